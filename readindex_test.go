package raft_test

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/internal/nodeclock"
	"github.com/seed48a2b68f/raft/rafttest"
)

// readBarrierRead reads a node's FSM through ReadBarrier.
func readBarrierRead(n *rafttest.Node) ([][]byte, error) {
	if err := n.Raft.ReadBarrier(time.Second).Error(); err != nil {
		return nil, err
	}
	return n.Recorder().Logs(), nil
}

// concurrentReads runs n ReadBarrier reads on node at once and fails the
// test if one fails or sees fewer than want commands.
func concurrentReads(t *testing.T, node *rafttest.Node, n, want int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := readBarrierRead(node)
			if err == nil && len(got) < want {
				err = fmt.Errorf("a read on %s after ReadBarrier saw %d of %d acknowledged writes", node.ID, len(got), want)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// applyEach applies n one-byte commands on leader, each acknowledged before
// the next, and returns the last one's index.
func applyEach(t *testing.T, leader *rafttest.Node, n int) (last uint64) {
	t.Helper()
	for i := 0; i < n; i++ {
		f := leader.Raft.Apply([]byte{byte(i)}, time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		last = f.Index()
	}
	return last
}

// On the leader, ReadIndex is at least the index of every acknowledged
// write, and after ReadBarrier the FSM holds them all; many concurrent reads
// all succeed, and Stats counts them.
func TestReadIndex_LeaderCoversAcknowledgedWrites(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		last := applyEach(t, leader, 20)
		rf := leader.Raft.ReadIndex(time.Second)
		if err := rf.Error(); err != nil {
			t.Fatal(err)
		}
		if rf.Index() < last {
			t.Fatalf("read index %d is below the last acknowledged write %d", rf.Index(), last)
		}
		concurrentReads(t, leader, 50, 20)
		st := leader.Raft.Stats()
		if st["reads_by_round"] != "51" {
			t.Fatalf("reads_by_round = %s, want 51", st["reads_by_round"])
		}
		// 51 rounds on two followers: at least one heartbeat each, and
		// never more than one per round and follower (concurrent rounds
		// share them when they wait together).
		if hb, _ := strconv.Atoi(st["read_heartbeats"]); hb < 2 || hb > 2*51 {
			t.Fatalf("read_heartbeats = %d for 51 rounds on 2 followers", hb)
		}
	})
}

// Bug 19 for ReadIndex: a leader cut off from the others serves no read by
// round, neither at once nor after the others elected a leader and
// committed a write; the new leader's read sees that write.
func TestKnownBug19_DeposedLeaderServesNoReadIndex(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		c.ApplyN(old, "a", 3)
		c.Partition(old)
		early := old.Raft.ReadBarrier(0)
		newLeader := c.WaitLeader(c.Others(old)...)
		c.ApplyN(newLeader, "b", 1)
		if err := early.Error(); err == nil {
			t.Fatal("the cut-off leader served a read")
		} else if !errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("the cut-off leader's read failed with %v, want ErrLeadershipLost or ErrNotLeader", err)
		}
		if _, err := readBarrierRead(old); err == nil {
			t.Fatal("the cut-off leader served a read after the new leader's write")
		}
		got, err := readBarrierRead(newLeader)
		if err != nil || len(got) != 4 {
			t.Fatalf("read on the new leader: %d commands, %v", len(got), err)
		}
	})
}

// On a follower ReadIndex comes from the leader and covers every
// acknowledged write; ReadBarrier there sees them all, many concurrent
// reads go to the leader together, and after Shutdown reads fail with
// ErrRaftShutdown.
func TestReadIndex_OnAFollower(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		last := applyEach(t, leader, 20)
		f := c.Others(leader)[0]
		rf := f.Raft.ReadIndex(time.Second)
		if err := rf.Error(); err != nil || rf.Index() < last {
			t.Fatalf("ReadIndex on a follower = %d, %v; the last write is at %d", rf.Index(), err, last)
		}
		concurrentReads(t, f, 40, 20)
		if got := leader.Raft.Stats()["reads_for_followers"]; got != "41" {
			t.Fatalf("reads_for_followers = %s, want 41", got)
		}
		c.Stop(f)
		if err := f.Raft.ReadBarrier(time.Second).Error(); !errors.Is(err, raft.ErrRaftShutdown) {
			t.Fatalf("ReadBarrier after Shutdown = %v, want ErrRaftShutdown", err)
		}
	})
}

// A nonvoter reads as a follower does: it asks the leader for the index,
// and after ReadBarrier its FSM holds every acknowledged write.
func TestReadIndex_OnANonvoter(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		n := c.AddNode()
		if err := leader.Raft.AddNonvoter(n.ID, n.Addr, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		applyEach(t, leader, 10)
		// AddNonvoter commits without the nonvoter; until the leader
		// reaches it, it knows no leader and answers ErrNotLeader.
		c.WaitFor(5*time.Second, "the nonvoter to know its leader", func() bool {
			_, id := n.Raft.LeaderWithID()
			return id == leader.ID
		})
		for i := 0; i < 3; i++ {
			got, err := readBarrierRead(n)
			if err != nil {
				t.Fatalf("ReadBarrier on the nonvoter: %v", err)
			}
			if len(got) < 10 {
				t.Fatalf("the nonvoter's read saw %d commands, want 10", len(got))
			}
		}
		if got := leader.Raft.Stats()["reads_for_followers"]; got != "3" {
			t.Fatalf("reads_for_followers = %s, want 3", got)
		}
	})
}

// A node that knows no leader answers ErrNotLeader.
func TestReadIndex_NoLeaderKnown(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		f := c.Others(leader)[0]
		c.Partition(f)
		c.WaitFor(time.Second, "the cut follower to forget its leader", func() bool {
			addr, _ := f.Raft.LeaderWithID()
			return addr == ""
		})
		if err := f.Raft.ReadIndex(time.Second).Error(); !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("ReadIndex with no leader known = %v, want ErrNotLeader", err)
		}
	})
}

// A follower's read after a write waits for the follower to apply the read
// index, so the leader tells it the index is committed when it answers,
// instead of leaving it to the next write or CommitTimeout (5 s here).
func TestReadBarrier_FollowerLearnsTheCommitIndexWithItsAnswer(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		follower := c.Others(leader)[0]
		for i := 0; i < 5; i++ {
			f := leader.Raft.Apply([]byte{byte(i)}, time.Second)
			if err := f.Error(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := follower.Raft.ReadBarrier(time.Second).Error(); err != nil {
				t.Fatal(err)
			}
			if follower.Raft.AppliedIndex() < f.Index() {
				t.Fatalf("follower read after write %d applied only %d", f.Index(), follower.Raft.AppliedIndex())
			}
			if waited := time.Since(start); waited >= time.Second {
				t.Fatalf("follower read %d waited %v: the commit index came with CommitTimeout, not the answer", i, waited)
			}
		}
	}, rafttest.WithConfig(func(conf *raft.Config) { conf.CommitTimeout = 5 * time.Second }))
}

// A timeout of zero means no limit, for ReadIndex and ReadBarrier, on the
// leader and on a follower.
func TestReadIndex_ZeroTimeoutIsNoLimit(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 3)
		for _, n := range []*rafttest.Node{leader, c.Others(leader)[0]} {
			for _, c := range []raft.ReadConsistency{raft.ReadDefault, raft.ReadByRound, raft.ReadByLease} {
				if err := n.Raft.ReadIndexWith(c, 0).Error(); err != nil {
					t.Fatalf("ReadIndexWith(%v, 0) on %s: %v", c, n.ID, err)
				}
				if err := n.Raft.ReadBarrierWith(c, 0).Error(); err != nil {
					t.Fatalf("ReadBarrierWith(%v, 0) on %s: %v", c, n.ID, err)
				}
			}
		}
	})
}

// A ReadIndex the main loop does not take within its timeout fails with
// ErrEnqueueTimeout; one with time to spare succeeds.
func TestReadIndex_EnqueueTimeout(t *testing.T) {
	stores := map[raft.ServerID]*slowStore{}
	inBubble(t, 1, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		stores[leader.ID].stall.Store(int64(20 * time.Millisecond))
		leader.Raft.Apply([]byte("x"), 0)
		synctest.Wait() // every goroutine blocked: the leader loop sits in StoreLogs
		late := leader.Raft.ReadIndex(5 * time.Millisecond)
		patient := leader.Raft.ReadIndex(time.Second)
		if err := late.Error(); !errors.Is(err, raft.ErrEnqueueTimeout) {
			t.Fatalf("ReadIndex behind a 20ms disk write with a 5ms timeout = %v, want ErrEnqueueTimeout", err)
		}
		if err := patient.Error(); err != nil {
			t.Fatalf("ReadIndex with time to spare = %v", err)
		}
		stores[leader.ID].stall.Store(0)
	}, rafttest.WithStores(func(id raft.ServerID, s *raft.InmemStore) (raft.LogStore, raft.StableStore) {
		ss := &slowStore{InmemStore: s}
		stores[id] = ss
		return ss, s
	}))
}

// leaseConfig turns leases on.
func leaseConfig(conf *raft.Config) { conf.LeaseReads = true }

// With leases on, a settled leader answers ReadIndex from its lease: no
// round, and the reads still see every acknowledged write.
func TestReadIndex_LeaseServesWithoutARound(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 10)
		time.Sleep(20 * time.Millisecond) // heartbeats acknowledged
		for i := 0; i < 10; i++ {
			got, err := readBarrierRead(leader)
			if err != nil || len(got) < 10 {
				t.Fatalf("lease read %d: %d commands, %v", i, len(got), err)
			}
		}
		st := leader.Raft.Stats()
		if st["reads_by_lease"] != "10" || st["reads_by_round"] != "0" {
			t.Fatalf("reads by lease %s, by round %s; want 10 and 0", st["reads_by_lease"], st["reads_by_round"])
		}
	}, rafttest.WithConfig(leaseConfig))
}

// ReadIndexWith chooses round or lease per call, over Config.LeaseReads,
// on the leader and, carried in the request, for a follower's reads.
func TestReadIndexWith_ChoosesRoundOrLeasePerCall(t *testing.T) {
	for _, leaseReads := range []bool{false, true} {
		t.Run(fmt.Sprintf("LeaseReads=%v", leaseReads), func(t *testing.T) {
			inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
				leader := c.WaitLeader()
				c.ApplyN(leader, "a", 5)
				time.Sleep(20 * time.Millisecond) // heartbeats acknowledged
				follower := c.Others(leader)[0]
				counts := func() (round, lease int) {
					st := leader.Raft.Stats()
					round, _ = strconv.Atoi(st["reads_by_round"])
					lease, _ = strconv.Atoi(st["reads_by_lease"])
					return round, lease
				}
				for _, tc := range []struct {
					on      *rafttest.Node
					c       raft.ReadConsistency
					byLease bool
				}{
					{leader, raft.ReadByRound, false},
					{leader, raft.ReadByLease, true},
					{leader, raft.ReadDefault, leaseReads},
					{follower, raft.ReadByRound, false},
					{follower, raft.ReadByLease, true},
					{follower, raft.ReadDefault, leaseReads},
				} {
					round0, lease0 := counts()
					if err := tc.on.Raft.ReadBarrierWith(tc.c, time.Second).Error(); err != nil {
						t.Fatalf("ReadBarrierWith(%v) on %s: %v", tc.c, tc.on.ID, err)
					}
					round, lease := counts()
					if got := lease-lease0 == 1; got != tc.byLease || round-round0+lease-lease0 != 1 {
						t.Fatalf("ReadBarrierWith(%v) on %s: %d by round, %d by lease; want by lease: %v",
							tc.c, tc.on.ID, round-round0, lease-lease0, tc.byLease)
					}
					if got := len(tc.on.Recorder().Logs()); got < 5 {
						t.Fatalf("ReadBarrierWith(%v) on %s saw %d commands, want 5", tc.c, tc.on.ID, got)
					}
				}
				if err := leader.Raft.ReadIndexWith(raft.ReadConsistency(9), time.Second).Error(); err == nil {
					t.Fatal("ReadIndexWith accepted an unknown consistency")
				}
			}, rafttest.WithConfig(func(conf *raft.Config) { conf.LeaseReads = leaseReads }))
		})
	}
}

// Bug 19 with leases: a leader cut off from the others stops answering from
// its lease before any other node can lead, and answers nothing after.
func TestKnownBug19_DeposedLeaderLeaseEndsBeforeAnotherLeads(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		c.ApplyN(old, "a", 3)
		time.Sleep(20 * time.Millisecond)
		if lead, err := leaseOutlivesLeadership(t, c, old); err != nil || lead > 0 {
			t.Fatalf("the cut-off leader served a read %v after another node led (%v)", lead, err)
		}
	}, rafttest.WithConfig(leaseConfig))
}

// leaseOutlivesLeadership cuts old off and reads from it, every 20µs, until
// another node leads and has committed a write. It returns how long after
// another node became leader old still answered a ReadIndex (0 or less:
// it stopped before), and an error if old never answered at all (the test
// would show nothing).
func leaseOutlivesLeadership(t *testing.T, c *rafttest.Cluster, old *rafttest.Node) (time.Duration, error) {
	t.Helper()
	// The moment another node becomes leader, from its own observation.
	becameLeader := make(chan time.Time, 8)
	quit := make(chan struct{})
	defer close(quit)
	for _, n := range c.Others(old) {
		ch := make(chan raft.Observation, 16)
		obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
			s, ok := o.Data.(raft.RaftState)
			return ok && s == raft.Leader
		})
		n.Raft.RegisterObserver(obs)
		defer n.Raft.DeregisterObserver(obs)
		go func() {
			select {
			case <-ch:
				becameLeader <- time.Now()
			case <-quit:
			}
		}()
	}
	c.Partition(old)
	var lastServed time.Time
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if old.Raft.ReadIndex(0).Error() == nil {
				lastServed = time.Now()
			}
			time.Sleep(20 * time.Microsecond)
		}
	}()
	var elected time.Time
	select {
	case elected = <-becameLeader:
	case <-time.After(5 * time.Second):
		t.Fatal("no other node became leader within 5s of the cut")
	}
	newLeader := c.WaitLeader(c.Others(old)...)
	c.ApplyN(newLeader, "b", 1)
	time.Sleep(100 * time.Millisecond)
	close(stop)
	<-done
	c.Heal()
	if lastServed.IsZero() {
		return 0, errors.New("the cut-off leader never served from its lease")
	}
	return lastServed.Sub(elected), nil
}

// The clock assumption of Config.LeaseReads: with the followers' clocks
// running up to (not quite) 1 + LeaseClockDrift times faster than the
// leader's, or the leader's that much slower, a cut-off leader's lease
// still ends before another node leads. The control, followers' clocks 3
// times faster, must see it outlive the other's leadership, or the test
// could not tell.
func TestReadIndex_LeaseAgainstSkewedClocks(t *testing.T) {
	const drift = 0.1
	for _, tc := range []struct {
		name               string
		leader, followers  float64
		outlivesLeadership bool
	}{
		{"followers fast within drift", 1, 1 + 0.999*drift, false},
		{"leader slow within drift", 1 / (1 + 0.999*drift), 1, false},
		{"followers 3x fast (control)", 1, 3, true},
		{"leader 3x slow (control)", 1.0 / 3, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clocks := map[raft.ServerID]*nodeclock.Skewed{}
			inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
				old := c.WaitLeader()
				c.ApplyN(old, "a", 3)
				for id, k := range clocks {
					if id == old.ID {
						k.SetRate(tc.leader)
					} else {
						k.SetRate(tc.followers)
					}
				}
				time.Sleep(20 * time.Millisecond)
				lead, err := leaseOutlivesLeadership(t, c, old)
				if err != nil {
					t.Fatal(err)
				}
				if got := lead > 0; got != tc.outlivesLeadership {
					t.Fatalf("the cut-off leader's last read came %v after another node led; want after: %v", lead, tc.outlivesLeadership)
				}
			}, rafttest.WithConfig(func(conf *raft.Config) {
				conf.LeaseReads, conf.LeaseClockDrift = true, drift
				k := nodeclock.NewSkewed(1)
				clocks[conf.LocalID] = k
				nodeclock.Set(conf, k)
				t.Cleanup(func() { nodeclock.Clear(conf) })
			}))
		})
	}
}

// A leadership transfer ends the lease before TimeoutNow goes out: once
// the transfer runs (here it waits for a target that cannot catch up), a
// read is not answered from the lease, on the fast path or the leader loop.
func TestReadIndex_TransferEndsTheLease(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 3)
		time.Sleep(20 * time.Millisecond)
		if err := leader.Raft.ReadIndex(0).Error(); err != nil {
			t.Fatal(err)
		}
		before := leader.Raft.Stats()["reads_by_lease"]
		if before != "1" {
			t.Fatalf("reads by lease before the transfer = %s, want 1", before)
		}
		target := c.Others(leader)[0]
		c.Cut(leader, target)
		c.ApplyN(leader, "b", 3) // the target falls behind: the transfer waits
		tf := leader.Raft.LeadershipTransferToServer(target.ID, target.Addr)
		for {
			err := leader.Raft.Apply([]byte("probe"), 0).Error()
			if errors.Is(err, raft.ErrLeadershipTransferInProgress) {
				break // the transfer runs
			}
			if err != nil {
				t.Fatalf("probe write: %v", err)
			}
		}
		mid := leader.Raft.Stats()["reads_by_lease"]
		rf := leader.Raft.ReadIndex(0)
		rf.Error()
		if after := leader.Raft.Stats()["reads_by_lease"]; after != mid {
			t.Fatalf("a read while the transfer ran was served from the lease (%s -> %s)", mid, after)
		}
		c.Heal()
		tf.Error()
	}, rafttest.WithConfig(leaseConfig))
}

// stallFSM is rafttest's FSM whose Apply waits while its gate is shut.
type stallFSM struct {
	*rafttest.FSM
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func (s *stallFSM) shut() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

func (s *stallFSM) open() {
	s.mu.Lock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
	s.mu.Unlock()
}

func (s *stallFSM) Apply(l *raft.Log) interface{} {
	s.mu.Lock()
	g := s.gate
	s.mu.Unlock()
	if g != nil {
		<-g
	}
	return s.FSM.Apply(l)
}

// A follower's read waits for the leader's index and then for its own FSM:
// with its FSM stalled it answers nothing, and once the FSM catches up the
// read sees the write acknowledged before it.
func TestReadBarrier_FollowerWaitsForItsOwnFSM(t *testing.T) {
	var fsms []*stallFSM
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 5)
		var f *rafttest.Node
		var fsm *stallFSM
		for i, n := range c.Nodes {
			if n != leader {
				f, fsm = n, fsms[i]
				break
			}
		}
		c.WaitFor(time.Second, "the follower to apply the first writes", func() bool { return fsm.Len() == 5 })
		fsm.shut()
		if err := leader.Raft.Apply([]byte("late"), time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- f.Raft.ReadBarrier(time.Second).Error() }()
		time.Sleep(time.Second)
		select {
		case err := <-done:
			n := fsm.Len()
			fsm.open() // so that the cluster can shut down
			t.Fatalf("ReadBarrier on a follower whose FSM is stalled returned (%v) with %d of 6 commands applied", err, n)
		default:
		}
		fsm.open()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if fsm.Len() != 6 {
			t.Fatalf("after ReadBarrier the follower's FSM holds %d commands, want 6", fsm.Len())
		}
	}, rafttest.WithFSM(func() raft.FSM {
		s := &stallFSM{FSM: rafttest.NewFSM()}
		fsms = append(fsms, s)
		return s
	}))
}

// gatedReadTransport is an in-memory transport whose ReadIndex requests
// wait for the test's go-ahead, and are recorded.
type gatedReadTransport struct {
	*raft.InmemTransport
	mu    sync.Mutex
	reads []uint64 // Reads of each request, in order
	gate  chan struct{}
}

func (g *gatedReadTransport) ReadIndex(id raft.ServerID, target raft.ServerAddress, args *raft.ReadIndexRequest, resp *raft.ReadIndexResponse) error {
	g.mu.Lock()
	g.reads = append(g.reads, args.Reads)
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return g.InmemTransport.ReadIndex(id, target, args, resp)
}

func (g *gatedReadTransport) sent() []uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]uint64(nil), g.reads...)
}

// On a follower, a call made while a request to the leader is on its way
// never rides on it (the leader's round for it may have started before the
// call): it waits for the next request. Calls that wait together share one.
func TestReadIndex_FollowerCallNeverRidesAnEarlierRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := rafttest.NewCluster(t, 3, rafttest.WithSeed(seedFor(t)))
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 3)
		f := c.Others(leader)[0]
		c.Stop(f)
		// Restart f on a gated transport.
		addr, inner := raft.NewInmemTransport(f.Addr)
		g := &gatedReadTransport{InmemTransport: inner, gate: make(chan struct{})}
		for _, n := range c.Others(f) {
			n.Trans.Connect(addr, inner)
			inner.Connect(n.Addr, n.Trans)
		}
		r, err := raft.NewRaft(f.Config, rafttest.NewFSM(), f.Logs, f.Stable, f.Snapshots, g)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Shutdown()
		for {
			if a, _ := r.LeaderWithID(); a != "" {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(20 * time.Millisecond) // a heartbeat carried the leader's capabilities

		first := r.ReadIndex(0)
		synctest.Wait() // the first request is held at the gate
		if got := g.sent(); len(got) != 1 || got[0] != 1 {
			t.Fatalf("requests: %v, want [1]", got)
		}
		second, third := r.ReadIndex(0), r.ReadIndex(0)
		firstDone := done(first)
		synctest.Wait()
		select {
		case <-firstDone:
			t.Fatal("the first read was answered while its request was held")
		default:
		}
		close(g.gate)
		for i, rf := range []raft.IndexFuture{first, second, third} {
			if err := rf.Error(); err != nil {
				t.Fatalf("read %d: %v", i, err)
			}
		}
		// The later calls went in requests of their own (at once, as a
		// second sender, or together after the first answer), never in
		// the first.
		got := g.sent()
		total := uint64(0)
		for _, n := range got {
			total += n
		}
		if len(got) < 2 || got[0] != 1 || total != 3 {
			t.Fatalf("requests: %v, want the first carrying 1 read and 3 in all", got)
		}
	})
}

// done returns a channel closed once f resolves.
func done(f raft.Future) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		f.Error()
		close(ch)
	}()
	return ch
}
