package raft_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"
	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

func quietConfig(id raft.ServerID) *raft.Config {
	c := rafttest.Config(id)
	c.Logger = hclog.NewNullLogger()
	return c
}

func TestBootstrapAndExistingState(t *testing.T) {
	conf := quietConfig("a")
	store := raft.NewInmemStore()
	snaps := raft.NewInmemSnapshotStore()
	addr, trans := raft.NewInmemTransport("")
	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil || has {
		t.Fatalf("HasExistingState on empty stores = %v, %v", has, err)
	}
	c := raft.Configuration{Servers: []raft.Server{{ID: "a", Address: addr}}}
	if err := raft.BootstrapCluster(conf, store, store, snaps, trans, raft.Configuration{}); err == nil {
		t.Fatal("bootstrap with an empty configuration accepted")
	}
	if err := raft.BootstrapCluster(conf, store, store, snaps, trans, c); err != nil {
		t.Fatal(err)
	}
	if err := raft.BootstrapCluster(conf, store, store, snaps, trans, c); !errors.Is(err, raft.ErrCantBootstrap) {
		t.Fatalf("second bootstrap = %v", err)
	}
	var l raft.Log
	if err := store.GetLog(1, &l); err != nil || l.Type != raft.LogConfiguration || l.Term != 1 {
		t.Fatalf("bootstrap entry %+v %v", l, err)
	}
	if term, _ := store.GetUint64([]byte("CurrentTerm")); term != 1 {
		t.Fatalf("CurrentTerm = %d", term)
	}
	got, err := raft.GetConfiguration(conf, nil, store, store, snaps, trans)
	if err != nil || len(got.Servers) != 1 || got.Servers[0].ID != "a" {
		t.Fatalf("GetConfiguration = %v, %v", got, err)
	}
}

func TestNewRaftRejectsStoresThatDisagree(t *testing.T) {
	conf := quietConfig("a")
	_, trans := raft.NewInmemTransport("")

	// The term was not persisted before entries of term 5 were accepted.
	store := raft.NewInmemStore()
	store.StoreLog(&raft.Log{Index: 1, Term: 5, Type: raft.LogNoop})
	store.SetUint64([]byte("CurrentTerm"), 1)
	if _, err := raft.NewRaft(conf, rafttest.NewFSM(), store, store, raft.NewInmemSnapshotStore(), trans); err == nil ||
		!strings.Contains(err.Error(), "disagree") {
		t.Fatalf("NewRaft = %v, want a disagreement error", err)
	}

	// No CurrentTerm at all: start from the last entry's term.
	store = raft.NewInmemStore()
	store.StoreLog(&raft.Log{Index: 1, Term: 3, Type: raft.LogNoop})
	r, err := raft.NewRaft(conf, rafttest.NewFSM(), store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		t.Fatalf("NewRaft on a store without CurrentTerm = %v", err)
	}
	if got := r.CurrentTerm(); got != 3 {
		t.Fatalf("CurrentTerm = %d, want 3", got)
	}
	r.Shutdown().Error()
	_, trans = raft.NewInmemTransport("")

	// The log starts at 10 and no snapshot covers 1..9.
	store = raft.NewInmemStore()
	store.StoreLog(&raft.Log{Index: 10, Term: 1, Type: raft.LogNoop})
	store.SetUint64([]byte("CurrentTerm"), 1)
	if _, err := raft.NewRaft(conf, rafttest.NewFSM(), store, store, raft.NewInmemSnapshotStore(), trans); err == nil ||
		!strings.Contains(err.Error(), "missing") {
		t.Fatalf("NewRaft = %v, want an error naming the missing entries", err)
	}

	// An undecodable configuration entry.
	store = raft.NewInmemStore()
	store.StoreLog(&raft.Log{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte{0xc1}})
	store.SetUint64([]byte("CurrentTerm"), 1)
	if _, err := raft.NewRaft(conf, rafttest.NewFSM(), store, store, raft.NewInmemSnapshotStore(), trans); err == nil ||
		!strings.Contains(err.Error(), "log entry 1") {
		t.Fatalf("NewRaft = %v, want an error naming entry 1", err)
	}

	// Bad configs are refused before anything is read.
	bad := quietConfig("")
	if _, err := raft.NewRaft(bad, rafttest.NewFSM(), store, store, raft.NewInmemSnapshotStore(), trans); err == nil ||
		err.Error() != "LocalID cannot be empty" {
		t.Fatalf("NewRaft with no LocalID = %v", err)
	}
	ct := quietConfig("a")
	ct.RestoreCommittedLogs = true
	if _, err := raft.NewRaft(ct, rafttest.NewFSM(), raft.NewInmemStore(), store, raft.NewInmemSnapshotStore(), trans); !errors.Is(err, raft.ErrIncompatibleLogStore) {
		t.Fatalf("NewRaft with RestoreCommittedLogs on a plain store = %v", err)
	}
}

func TestRestartRestoresSnapshotAndLog(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 50)
		c.WaitApplied(50)
		for _, n := range c.Nodes {
			if err := n.Raft.Snapshot().Error(); err != nil {
				t.Fatal(err)
			}
		}
		c.ApplyN(leader, "b", 10)
		c.WaitApplied(60)
		for _, n := range c.Nodes {
			c.Stop(n)
		}
		for _, n := range c.Nodes {
			c.Restart(n)
		}
		// The FSMs start from the snapshot; the rest comes from the log once
		// a leader commits.
		for _, n := range c.Nodes {
			if got := n.Recorder().Len(); got < 50 {
				t.Fatalf("%s restored %d commands from its snapshot, want 50", n.ID, got)
			}
		}
		c.WaitLeader()
		c.WaitApplied(60)
		c.CheckConsistent()
	})
}

func TestRestoreCommittedLogsOnStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		conf := quietConfig("a")
		conf.RestoreCommittedLogs = true
		store := raft.NewInmemCommitTrackingStore()
		snaps := raft.NewInmemSnapshotStore()
		addr, trans := raft.NewInmemTransport("a")
		c := raft.Configuration{Servers: []raft.Server{{ID: "a", Address: addr}}}
		if err := raft.BootstrapCluster(conf, store, store, snaps, trans, c); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(conf, rafttest.NewFSM(), store, store, snaps, trans)
		if err != nil {
			t.Fatal(err)
		}
		for r.State() != raft.Leader {
			time.Sleep(time.Millisecond)
		}
		for i := 0; i < 10; i++ {
			if err := r.Apply([]byte("x"), 0).Error(); err != nil {
				t.Fatal(err)
			}
		}
		// One more write stages the commit index of the ten.
		if err := r.Barrier(0).Error(); err != nil {
			t.Fatal(err)
		}
		r.Shutdown().Error()
		if ci, _ := store.GetCommitIndex(); ci < 12 {
			t.Fatalf("staged commit index %d, want at least 12", ci)
		}
		fsm := rafttest.NewFSM()
		_, trans2 := raft.NewInmemTransport("a")
		r2, err := raft.NewRaft(conf, fsm, store, store, snaps, trans2)
		if err != nil {
			t.Fatal(err)
		}
		defer r2.Shutdown()
		if fsm.Len() != 10 {
			t.Fatalf("NewRaft replayed %d commands, want 10 before returning", fsm.Len())
		}
	})
}

func TestRecoverCluster(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 20)
		c.WaitApplied(20)
		for _, n := range c.Nodes {
			c.Stop(n)
		}
		// Two servers are lost for good: recover the third alone.
		survivor := c.Nodes[0]
		only := raft.Configuration{Servers: []raft.Server{{ID: survivor.ID, Address: survivor.Addr}}}
		if err := raft.RecoverCluster(survivor.Config, rafttest.NewFSM(), survivor.Store, survivor.Store,
			survivor.Snapshots, survivor.Trans, only); err != nil {
			t.Fatal(err)
		}
		c.Restart(survivor)
		l := c.WaitLeader(survivor)
		if got := survivor.Recorder().Len(); got != 20 {
			t.Fatalf("recovered node has %d commands, want 20", got)
		}
		c.ApplyN(l, "b", 5)
		if got := survivor.Recorder().Len(); got != 25 {
			t.Fatalf("after recovery %d commands, want 25", got)
		}
	})
}

func TestReloadConfig(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, c *rafttest.Cluster) {
		r := c.WaitLeader().Raft
		rc := r.ReloadableConfig()
		rc.SnapshotThreshold = 7
		rc.TrailingLogs = 3
		if err := r.ReloadConfig(rc); err != nil {
			t.Fatal(err)
		}
		if got := r.ReloadableConfig(); got.SnapshotThreshold != 7 || got.TrailingLogs != 3 {
			t.Fatalf("ReloadableConfig = %+v", got)
		}
		rc.HeartbeatTimeout = time.Microsecond
		if err := r.ReloadConfig(rc); err == nil {
			t.Fatal("invalid reload accepted")
		}
		if got := r.ReloadableConfig(); got.HeartbeatTimeout == time.Microsecond {
			t.Fatal("invalid reload was applied")
		}
	})
}

func TestUserRestore(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		snapshotApplyRestore(t, c, leader)
		c.WaitFor(5*time.Second, "followers to take the restored state", func() bool {
			for _, n := range c.Nodes {
				if n.Recorder().Len() != 10 {
					return false
				}
			}
			return true
		})
		c.ApplyN(leader, "c", 1)
		c.WaitApplied(11)
		c.CheckConsistent()
	})
}

func TestReadPeersAndConfigJSON(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "peers.json")
	os.WriteFile(p, []byte(`["10.0.0.1:8300","10.0.0.2:8300"]`), 0o600)
	c, err := raft.ReadPeersJSON(p)
	if err != nil || len(c.Servers) != 2 || c.Servers[0].ID != "10.0.0.1:8300" || c.Servers[0].Suffrage != raft.Voter {
		t.Fatalf("ReadPeersJSON = %v, %v", c, err)
	}
	os.WriteFile(p, []byte(`[{"id":"a","address":"x:1"},{"id":"b","address":"y:1","non_voter":true}]`), 0o600)
	c, err = raft.ReadConfigJSON(p)
	if err != nil || len(c.Servers) != 2 || c.Servers[1].Suffrage != raft.Nonvoter {
		t.Fatalf("ReadConfigJSON = %v, %v", c, err)
	}
	os.WriteFile(p, []byte(`[{"id":"a","address":"x:1"},{"id":"a","address":"y:1"}]`), 0o600)
	if _, err := raft.ReadConfigJSON(p); err == nil {
		t.Fatal("duplicate IDs accepted")
	}
	os.WriteFile(p, []byte(`{`), 0o600)
	if _, err := raft.ReadConfigJSON(p); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

// snapshotApplyRestore applies 10 commands, snapshots, applies 10 more and
// restores the snapshot on the leader: the cluster is back at 10 commands.
func snapshotApplyRestore(t *testing.T, c *rafttest.Cluster, leader *rafttest.Node) {
	t.Helper()
	c.ApplyN(leader, "a", 10)
	meta, rc := takeSnapshot(t, leader.Raft)
	defer rc.Close()
	c.ApplyN(leader, "b", 10)
	if err := leader.Raft.Restore(meta, rc, time.Second); err != nil {
		t.Fatal(err)
	}
}

// takeSnapshot takes a user snapshot and opens it.
func takeSnapshot(t *testing.T, r *raft.Raft) (*raft.SnapshotMeta, io.ReadCloser) {
	t.Helper()
	sf := r.Snapshot()
	if err := sf.Error(); err != nil {
		t.Fatal(err)
	}
	meta, rc, err := sf.Open()
	if err != nil {
		t.Fatal(err)
	}
	return meta, rc
}

// blockingFSM holds Apply of the command "block" until gate.release is
// closed.
type blockingFSM struct {
	raft.FSM
	gate *gate
}

type gate struct{ release chan struct{} }

func (b *blockingFSM) Apply(l *raft.Log) interface{} {
	if string(l.Data) == "block" {
		<-b.gate.release
	}
	return b.FSM.Apply(l)
}

// A node removed from the configuration shuts itself down without waiting
// for its goroutines. A later Shutdown().Error() by the application must
// still wait for them (hashicorp returns at once, so the application could
// close its stores under a goroutine still running; found by fuzzy, seed
// 3765, as a goroutine outliving its node).
func TestShutdownAfterSelfRemovalWaitsForGoroutines(t *testing.T) {
	g := &gate{}
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		g.release = make(chan struct{}) // made in the bubble: a durable wait
		leader := c.WaitLeader()
		leader.Raft.Apply([]byte("block"), time.Second) // its FSM goroutine now waits
		if err := leader.Raft.RemoveServer(leader.ID, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(5*time.Second, "the removed leader to shut itself down", func() bool {
			return leader.Raft.State() == raft.Shutdown
		})
		releasedAt := time.Now().Add(3 * time.Second)
		go func() {
			time.Sleep(3 * time.Second)
			close(g.release)
		}()
		if err := leader.Raft.Shutdown().Error(); err != nil {
			t.Fatal(err)
		}
		if time.Now().Before(releasedAt) {
			t.Fatal("Shutdown().Error() returned while the node's FSM goroutine was still running")
		}
		if err := leader.Raft.Shutdown().Error(); err != nil {
			t.Fatalf("a second shutdown: %v", err)
		}
	}, rafttest.WithFSM(func() raft.FSM { return &blockingFSM{FSM: rafttest.NewFSM(), gate: g} }))
}

// Apply futures do not watch the shutdown channel (so that many waiting
// clients do not contend on it); those queued for the FSM when the node
// shuts down are answered by the FSM goroutine on its way out. Here the FSM
// is stuck in one Apply while later entries commit behind it; after
// Shutdown and the FSM's release, every future resolves (a hang is a
// deadlock of the bubble).
func TestApplyFuturesQueuedForTheFSMResolveOnShutdown(t *testing.T) {
	g := &gate{}
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		g.release = make(chan struct{})
		leader := c.WaitLeader()
		base := leader.Raft.LastIndex()
		first := leader.Raft.Apply([]byte("block"), time.Second)
		var futures []raft.ApplyFuture
		for i := 0; i < 300; i++ {
			futures = append(futures, leader.Raft.Apply([]byte(fmt.Sprint(i)), time.Second))
		}
		// Let the entries commit and queue up for the stuck FSM.
		c.WaitFor(5*time.Second, "the entries to commit", func() bool {
			return leader.Raft.CommitIndex() >= base+301
		})
		done := make(chan error, 1)
		go func() { done <- leader.Raft.Shutdown().Error() }()
		// Release the FSM only once the node is shutting down, so the
		// entries behind the stuck one meet the shutdown drain.
		c.WaitFor(5*time.Second, "the node to shut down", func() bool {
			return leader.Raft.State() == raft.Shutdown
		})
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := first.Error(); err != nil {
			t.Fatalf("the entry being applied: %v", err)
		}
		shut := 0
		for i, f := range futures {
			resolved := make(chan error, 1)
			go func() { resolved <- f.Error() }()
			var err error
			select {
			case err = <-resolved:
			case <-time.After(time.Minute): // virtual time: the cluster runs on
				t.Fatalf("future %d never resolved after shutdown", i)
			}
			switch {
			case errors.Is(err, raft.ErrRaftShutdown):
				shut++
			case err != nil:
				t.Fatalf("future %d: %v", i, err)
			}
		}
		if shut == 0 {
			t.Fatal("every queued entry was applied: the test did not reach the shutdown drain")
		}
	}, rafttest.WithFSM(func() raft.FSM { return &blockingFSM{FSM: rafttest.NewFSM(), gate: g} }))
}
