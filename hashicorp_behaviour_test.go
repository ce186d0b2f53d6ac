package raft_test

// Behaviours of hashicorp/raft that its own package tests rely on, each
// named after the hashicorp test that found the difference.

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"
	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// TestRaft_LeadershipTransfer (hashicorp): the future of LeadershipTransfer
// resolves only once the old leader has stopped leading, so a caller that
// reads State right after Error returns nil never sees Leader.
func TestHashicorpBehaviour_LeadershipTransferResolvesAfterStepDown(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		for i := 0; i < 20; i++ {
			old := c.WaitLeader()
			var f raft.Future
			if i%2 == 0 {
				f = old.Raft.LeadershipTransfer()
			} else {
				target := c.Others(old)[i%2]
				f = old.Raft.LeadershipTransferToServer(target.ID, target.Addr)
			}
			if err := f.Error(); err != nil {
				t.Fatalf("transfer %d: %v", i, err)
			}
			if s := old.Raft.State(); s == raft.Leader {
				t.Fatalf("transfer %d resolved nil while %s still reads %v", i, old.ID, s)
			}
		}
	})
}

// A target that takes TimeoutNow but never wins leaves the leader leading:
// the transfer then fails with a timeout an election timeout later, as in
// hashicorp/raft, and the leader takes writes again.
func TestHashicorpBehaviour_LeadershipTransferTimesOutWhenTheTargetNeverWins(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "x", 5)
		target := c.Others(leader)[0]
		// The target hears the leader (so it catches up and takes the
		// TimeoutNow) but its vote requests reach nobody: it can never win.
		for _, n := range c.Others(target) {
			if n != leader {
				c.Cut(target, n)
			}
		}
		c.Cut(target, leader)
		leader.Trans.Connect(target.Addr, target.Trans)
		err := leader.Raft.LeadershipTransferToServer(target.ID, target.Addr).Error()
		if err == nil {
			if leader.Raft.State() == raft.Leader {
				t.Fatal("transfer resolved nil with the old leader still leading")
			}
			t.Skip("the cut target still won; nothing to check")
		}
		if leader.Raft.State() != raft.Leader {
			t.Skipf("leadership moved anyway (%v)", err)
		}
		c.Heal()
		l := c.WaitLeader()
		if ferr := l.Raft.Apply([]byte("after"), time.Second).Error(); ferr != nil {
			t.Fatalf("write after a failed transfer (%v): %v", err, ferr)
		}
	})
}

// TestRaft_NotifyCh (hashicorp): a leader shutting down still delivers
// false on NotifyCh when the channel has room.
func TestHashicorpBehaviour_NotifyChGetsFalseOnShutdown(t *testing.T) {
	for i := 0; i < 20; i++ {
		inBubble(t, 1, func(t *testing.T, c *rafttest.Cluster) {
			ch := make(chan bool, 4)
			n := c.Nodes[0]
			c.Stop(n)
			n.Config.NotifyCh = ch
			c.Restart(n)
			c.WaitLeader()
			if v := <-ch; !v {
				t.Fatal("first NotifyCh value is false, want true")
			}
			if err := n.Raft.Shutdown().Error(); err != nil {
				t.Fatal(err)
			}
			select {
			case v := <-ch:
				if v {
					t.Fatal("NotifyCh gave true on shutdown")
				}
			default:
				t.Fatalf("run %d: NotifyCh got no false on shutdown although it had room", i)
			}
		})
	}
}

// TestRaft_LeaderLeaseExpire (hashicorp): a leader that steps down reports
// the moment it stepped down as LastContact, not zero.
func TestHashicorpBehaviour_LastContactIsTheStepDown(t *testing.T) {
	inBubble(t, 2, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.Partition(leader)
		c.WaitFor(time.Second, "the cut leader to step down", func() bool { return leader.Raft.State() != raft.Leader })
		stepped := time.Now()
		lc := leader.Raft.LastContact()
		if lc.IsZero() {
			t.Fatal("a former leader reports a zero LastContact")
		}
		if d := stepped.Sub(lc); d < 0 || d > 100*time.Millisecond {
			t.Fatalf("LastContact is %v before the step-down was seen, want the step-down itself", d)
		}
	})
}

// plainFSM is hashicorp's MockFSM in shape: it neither batches nor stores
// configurations.
type plainFSM struct {
	mu sync.Mutex
	n  int
}

func (f *plainFSM) Apply(*raft.Log) interface{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return f.n
}
func (f *plainFSM) Snapshot() (raft.FSMSnapshot, error) { return plainSnapshot{}, nil }
func (f *plainFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type plainSnapshot struct{}

func (plainSnapshot) Persist(s raft.SnapshotSink) error { return s.Close() }
func (plainSnapshot) Release()                          {}

// TestRaft_UserSnapshot (hashicorp): a fresh cluster whose FSM has seen
// nothing (only the bootstrap configuration and the leader's no-op were
// applied) has nothing to snapshot; after one command it has.
func TestHashicorpBehaviour_SnapshotOfAFreshClusterIsNothingNew(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		// Not a Barrier: a barrier counts as something the FSM saw.
		c.WaitFor(time.Second, "the no-op to apply", func() bool { return leader.Raft.AppliedIndex() >= 2 })
		if err := leader.Raft.Snapshot().Error(); !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			t.Fatalf("Snapshot of a fresh cluster: %v, want ErrNothingNewToSnapshot", err)
		}
		if err := leader.Raft.Apply([]byte("x"), time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		if err := leader.Raft.Snapshot().Error(); err != nil {
			t.Fatalf("Snapshot after a command: %v", err)
		}
	}, rafttest.WithFSM(func() raft.FSM { return &plainFSM{} }))
}

// slowStore stalls StoreLogs while armed, which holds the leader loop in its
// own disk write.
type slowStore struct {
	*raft.InmemStore
	stall atomic.Int64 // nanoseconds
}

func (s *slowStore) StoreLogs(logs []*raft.Log) error {
	if d := s.stall.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	return s.InmemStore.StoreLogs(logs)
}

// TestRaft_ApplyConcurrent_Timeout (hashicorp): an Apply the leader loop
// does not take within its timeout fails with ErrEnqueueTimeout, and is not
// written.
func TestHashicorpBehaviour_ApplyTimesOutWhileTheLeaderLoopIsBusy(t *testing.T) {
	stores := map[raft.ServerID]*slowStore{}
	inBubble(t, 1, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		store := stores[leader.ID]
		store.stall.Store(int64(20 * time.Millisecond))
		first := leader.Raft.Apply([]byte("first"), 0)
		synctest.Wait() // every goroutine blocked: the leader loop sits in StoreLogs
		late := leader.Raft.Apply([]byte("late"), 5*time.Millisecond)
		patient := leader.Raft.Apply([]byte("patient"), time.Second)
		if err := late.Error(); !errors.Is(err, raft.ErrEnqueueTimeout) {
			t.Fatalf("an apply queued behind a 20ms disk write with a 5ms timeout: %v, want ErrEnqueueTimeout", err)
		}
		if err := first.Error(); err != nil {
			t.Fatalf("first: %v", err)
		}
		if err := patient.Error(); err != nil {
			t.Fatalf("an apply with time to spare: %v", err)
		}
		store.stall.Store(0)
		for _, d := range leader.Recorder().Logs() {
			if string(d) == "late" {
				t.Fatal("the timed-out command was applied")
			}
		}
		if got := len(leader.Recorder().Logs()); got != 2 {
			t.Fatalf("applied %d commands, want 2", got)
		}
	}, rafttest.WithStores(func(id raft.ServerID, s *raft.InmemStore) (raft.LogStore, raft.StableStore) {
		ss := &slowStore{InmemStore: s}
		stores[id] = ss
		return ss, s
	}))
}

// refusingPipelineTransport is an in-memory transport whose pipelines
// refuse the first request and then behave as a pipeline that is full and
// whose answers nobody reads: AppendEntries waits until the pipeline is
// closed.
type refusingPipelineTransport struct {
	*raft.InmemTransport
	opened atomic.Int64
}

func (t *refusingPipelineTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	t.opened.Add(1)
	return &refusingPipeline{consumer: make(chan raft.AppendFuture, 1), closed: make(chan struct{})}, nil
}

type refusingPipeline struct {
	consumer chan raft.AppendFuture
	closed   chan struct{}
	once     sync.Once
	sent     atomic.Int64
}

func (p *refusingPipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	if p.sent.Add(1) == 1 {
		resp.Term, resp.Success = args.Term, false
		f := &answeredAppend{req: args, resp: resp, start: time.Now()}
		p.consumer <- f
		return f, nil
	}
	<-p.closed
	return nil, raft.ErrPipelineShutdown
}

func (p *refusingPipeline) Consumer() <-chan raft.AppendFuture { return p.consumer }
func (p *refusingPipeline) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}

type answeredAppend struct {
	req   *raft.AppendEntriesRequest
	resp  *raft.AppendEntriesResponse
	start time.Time
}

func (a *answeredAppend) Error() error                          { return nil }
func (a *answeredAppend) Start() time.Time                      { return a.start }
func (a *answeredAppend) Request() *raft.AppendEntriesRequest   { return a.req }
func (a *answeredAppend) Response() *raft.AppendEntriesResponse { return a.resp }

// A pipeline whose decoder stops (here on a refusal) while the sender is
// blocked on it, full, must not hang the replication goroutine: the
// decoder closes the pipeline. Before, the sender waited for ever and so
// did Shutdown (found by .ci/busy: TestClusterOverTCPSplitsLargeBatches
// hung for 10 minutes in its cleanup).
func TestPipelineSenderIsFreedWhenTheDecoderStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var nodes []*raft.Raft
		var trans []*refusingPipelineTransport
		var servers []raft.Server
		for i := 0; i < 3; i++ {
			addr, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("p%d", i)))
			trans = append(trans, &refusingPipelineTransport{InmemTransport: tr})
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(addr), Address: addr})
		}
		for i, a := range trans {
			for j, b := range trans {
				if i != j {
					a.Connect(b.LocalAddr(), b.InmemTransport)
				}
			}
		}
		for i, tr := range trans {
			conf := rafttest.Config(servers[i].ID)
			conf.MaxAppendEntries = 4 // a batch takes many pipelined requests
			conf.RandomSeed = uint64(i + 1)
			conf.Logger = hclog.NewNullLogger()
			store := raft.NewInmemStore()
			snaps := raft.NewInmemSnapshotStore()
			if err := raft.BootstrapCluster(conf, store, store, snaps, tr, raft.Configuration{Servers: servers}); err != nil {
				t.Fatal(err)
			}
			r, err := raft.NewRaft(conf, &plainFSM{}, store, store, snaps, tr)
			if err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, r)
		}
		var leader *raft.Raft
		for leader == nil {
			time.Sleep(10 * time.Millisecond)
			for _, r := range nodes {
				if r.State() == raft.Leader {
					leader = r
				}
			}
		}
		// Every round must commit within a minute of virtual time; with a
		// hung sender on both followers none does (and Shutdown below then
		// hangs too, which synctest reports as a deadlock).
		for round := 0; round < 20; round++ {
			for i := 0; i < 64; i++ {
				leader.Apply([]byte("x"), 0)
			}
			target := leader.LastIndex()
			deadline := time.Now().Add(time.Minute)
			for leader.CommitIndex() < target && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if got := leader.CommitIndex(); got < target {
				t.Errorf("round %d: commit index %d, want %d: replication is stuck", round, got, target)
				break
			}
		}
		opened := int64(0)
		for _, tr := range trans {
			opened += tr.opened.Load()
		}
		if opened == 0 {
			t.Fatal("no pipeline was opened: the test tests nothing")
		}
		for _, r := range nodes {
			if err := r.Shutdown().Error(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
