package raft_test

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// watchApply resolves f in the background and reports whether it has
// resolved and with what.
func watchApply(f raft.ApplyFuture) (done *atomic.Bool, err *error) {
	done = new(atomic.Bool)
	err = new(error)
	go func() {
		*err = f.Error()
		done.Store(true)
	}()
	return done, err
}

func hangingStores(stores map[raft.ServerID]*hangingStore) rafttest.Option {
	return rafttest.WithStores(func(id raft.ServerID, s *raft.InmemStore) (raft.LogStore, raft.StableStore) {
		hs := &hangingStore{InmemStore: s, release: make(chan struct{})}
		stores[id] = hs
		return hs, s
	})
}

// A follower answers AppendEntries with success only once the entries are
// on its disk: with both followers' writes hung, the leader cannot count
// them and commits nothing.
func TestFollowerAcksOnlyDurableEntries(t *testing.T) {
	stores := map[raft.ServerID]*hangingStore{}
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "before", 3)
		followers := c.Others(leader)
		for _, f := range followers {
			defer stores[f.ID].unhang()
			stores[f.ID].hang.Store(true)
		}
		done, err := watchApply(leader.Raft.Apply([]byte("x"), 0))
		c.WaitFor(time.Second, "both followers' writes to hang", func() bool {
			return stores[followers[0].ID].hung.Load() > 0 && stores[followers[1].ID].hung.Load() > 0
		})
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if done.Load() && *err == nil {
			t.Fatal("the write was acknowledged while no follower had stored it")
		}
		if got := leader.Recorder().Len(); got != 3 {
			t.Fatalf("the leader applied %d commands, want 3: it committed an entry no follower stored", got)
		}
		for _, f := range followers {
			stores[f.ID].unhang()
		}
		c.WaitFor(10*time.Second, "the write to resolve", done.Load)
		c.ApplyN(c.WaitLeader(), "after", 3)
		c.CheckConsistent()
	}, hangingStores(stores))
}

// The leader counts itself toward a quorum only once its own write is
// durable: with one follower cut off, the other follower's success is not a
// majority until the leader's disk write returns.
func TestLeaderCountsItselfOnlyWhenDurable(t *testing.T) {
	stores := map[raft.ServerID]*hangingStore{}
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "before", 3)
		others := c.Others(leader)
		c.Cut(leader, others[1])
		hs := stores[leader.ID]
		defer hs.unhang()
		hs.hang.Store(true)
		done, err := watchApply(leader.Raft.Apply([]byte("x"), 0))
		c.WaitFor(time.Second, "the leader's write to hang", func() bool { return hs.hung.Load() > 0 })
		c.WaitFor(time.Second, "the follower to store the entry", func() bool {
			last, _ := others[0].Logs.LastIndex()
			first, _ := leader.Logs.LastIndex()
			return last > first
		})
		// Shorter than the disk-stall limit, so the leader keeps leading.
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if done.Load() {
			t.Fatalf("the write resolved (%v) while the leader's own write hung and only one follower had it", *err)
		}
		hs.unhang()
		c.WaitFor(time.Second, "the write to resolve", done.Load)
		if *err != nil {
			t.Fatalf("apply after the disk answered: %v", *err)
		}
		c.Heal()
		c.CheckConsistent()
	}, hangingStores(stores))
}
