package raft_test

// Regression tests for the failures of ../shared/reference/known-raft-bugs.md
// that apply to the core, named after their number there. More live in
// decisions_test.go and internal_test.go (those that need internals).

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// Bug 3: an isolated node must not inflate its term and depose the leader
// when it comes back. Pre-vote keeps its term still.
func TestKnownBug03_IsolatedNodeRejoinsWithoutDisruption(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		term := leader.Raft.CurrentTerm()
		isolated := c.Others(leader)[0]
		c.Partition(isolated)
		time.Sleep(20 * time.Second) // hundreds of election timeouts
		if got := isolated.Raft.CurrentTerm(); got != term {
			t.Fatalf("isolated node's term went from %d to %d", term, got)
		}
		c.Heal()
		time.Sleep(2 * time.Second)
		if l := c.WaitLeader(); l != leader || l.Raft.CurrentTerm() != term {
			t.Fatalf("rejoin disrupted the cluster: leader %s term %d, was %s term %d", l.ID, l.Raft.CurrentTerm(), leader.ID, term)
		}
	})
}

// Without pre-vote the same scenario does disrupt the cluster: the control
// for the test above.
func TestKnownBug03_ControlWithoutPreVoteTermInflates(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		term := leader.Raft.CurrentTerm()
		isolated := c.Others(leader)[0]
		c.Partition(isolated)
		time.Sleep(20 * time.Second)
		if got := isolated.Raft.CurrentTerm(); got <= term {
			t.Fatalf("without pre-vote the isolated node kept term %d", got)
		}
	}, rafttest.WithConfig(func(cfg *raft.Config) { cfg.PreVoteDisabled = true }))
}

// Bug 4: a server removed while partitioned must not disrupt the cluster
// when it comes back. Pre-vote alone protects; without pre-vote the voters
// must refuse a candidate outside their configuration before adopting its
// term.
func TestKnownBug04_RemovedServerDoesNotDisrupt(t *testing.T) {
	for _, preVoteDisabled := range []bool{false, true} {
		t.Run(map[bool]string{false: "pre-vote", true: "no-pre-vote"}[preVoteDisabled], func(t *testing.T) {
			inBubble(t, 5, func(t *testing.T, c *rafttest.Cluster) {
				leader := c.WaitLeader()
				victim := c.Others(leader)[0]
				c.Partition(victim)
				if err := leader.Raft.RemoveServer(victim.ID, 0, time.Second).Error(); err != nil {
					t.Fatal(err)
				}
				c.ApplyN(leader, "a", 5)
				term := leader.Raft.CurrentTerm()
				time.Sleep(5 * time.Second) // the victim campaigns alone
				c.Heal()
				time.Sleep(10 * time.Second)
				if l := c.WaitLeader(c.Others(victim)...); l != leader || l.Raft.CurrentTerm() != term {
					t.Fatalf("removed server disrupted: leader %s term %d, was %s term %d",
						l.ID, l.Raft.CurrentTerm(), leader.ID, term)
				}
			}, rafttest.WithConfig(func(cfg *raft.Config) {
				cfg.ShutdownOnRemove = false
				cfg.PreVoteDisabled = preVoteDisabled
			}))
		})
	}
}

// flakyStore fails StoreLogs while failing is set.
type flakyStore struct {
	*raft.InmemStore
	failing atomic.Bool
	failed  atomic.Int64
}

func (f *flakyStore) StoreLogs(logs []*raft.Log) error {
	if f.failing.Load() {
		f.failed.Add(1)
		return errors.New("disk says no")
	}
	return f.InmemStore.StoreLogs(logs)
}

func (f *flakyStore) StoreLog(l *raft.Log) error { return f.StoreLogs([]*raft.Log{l}) }

// Bug 8: after a follower's StoreLogs fails, the leader must keep resending
// entries, not only heartbeats (hashicorp #612).
func TestKnownBug08_LeaderResendsEntriesAfterFollowerStoreError(t *testing.T) {
	stores := map[raft.ServerID]*flakyStore{}
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		follower := c.Others(leader)[0]
		fs := stores[follower.ID]
		fs.failing.Store(true)
		c.ApplyN(leader, "a", 10) // committed by the leader and the other follower
		c.WaitFor(5*time.Second, "store failures", func() bool { return fs.failed.Load() > 0 })
		time.Sleep(time.Second)
		fs.failing.Store(false)
		// No new applies: only the leader's retries can fill the gap.
		c.WaitApplied(10, follower)
		c.CheckConsistent()
	}, rafttest.WithStores(func(id raft.ServerID, s *raft.InmemStore) (raft.LogStore, raft.StableStore) {
		fs := &flakyStore{InmemStore: s}
		stores[id] = fs
		return fs, s
	}))
}

// Bug 9: a server removed and re-added (with a wiped disk) in the same term
// must catch up; its old replication session must not corrupt progress.
func TestKnownBug09_RemoveAndReaddInSameTerm(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		term := leader.Raft.CurrentTerm()
		c.ApplyN(leader, "a", 20)
		victim := c.Others(leader)[0]
		if err := leader.Raft.RemoveServer(victim.ID, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.Stop(victim)
		victim.Store = raft.NewInmemStore()
		victim.Logs, victim.Stable = victim.Store, victim.Store
		victim.Snapshots = raft.NewInmemSnapshotStore()
		c.Restart(victim)
		if err := leader.Raft.AddVoter(victim.ID, victim.Addr, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.ApplyN(leader, "b", 20)
		c.WaitApplied(40, victim)
		if leader.Raft.CurrentTerm() != term {
			t.Fatalf("term changed from %d to %d", term, leader.Raft.CurrentTerm())
		}
		c.CheckConsistent()
	})
}

// failingStable fails Set (where the vote's candidate is stored) while fail
// is set, as a full disk would.
type failingStable struct {
	raft.StableStore
	fail atomic.Bool
}

func (f *failingStable) Set(k, v []byte) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.StableStore.Set(k, v)
}

// Bug 11: a vote is granted only once it is durable. Voters that cannot
// persist never elect anyone.
func TestKnownBug11_VoteNotGrantedUnlessDurable(t *testing.T) {
	stables := map[raft.ServerID]*failingStable{}
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		for _, f := range c.Others(leader) {
			stables[f.ID].fail.Store(true)
		}
		c.Stop(leader)
		time.Sleep(5 * time.Second)
		for _, f := range c.Others(leader) {
			if f.Raft.State() == raft.Leader {
				t.Fatalf("%s became leader without a durable vote", f.ID)
			}
		}
		// Once votes can be stored again, an election succeeds.
		for _, f := range c.Others(leader) {
			stables[f.ID].fail.Store(false)
		}
		c.WaitLeader(c.Others(leader)...)
	}, rafttest.WithStores(func(id raft.ServerID, s *raft.InmemStore) (raft.LogStore, raft.StableStore) {
		fs := &failingStable{StableStore: s}
		stables[id] = fs
		return s, fs
	}))
}

// Bug 18: leadership transfer edge cases: a non-voter is never a target,
// transfer on a non-leader fails at once, and a transfer while writes flow
// ends with the writes applied (TestCluster_LeadershipTransferWhileWritesFlow).
func TestKnownBug18_LeadershipTransferEdgeCases(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		nonvoter := c.AddNode()
		if err := leader.Raft.AddNonvoter(nonvoter.ID, nonvoter.Addr, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		if err := leader.Raft.LeadershipTransferToServer(nonvoter.ID, nonvoter.Addr).Error(); err == nil {
			t.Fatal("transfer to a non-voter accepted")
		}
		// Demote both followers: no voter is left to take over.
		for _, f := range c.Others(leader) {
			if f != nonvoter {
				if err := leader.Raft.DemoteVoter(f.ID, 0, time.Second).Error(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := leader.Raft.LeadershipTransfer().Error(); err == nil {
			t.Fatal("transfer with no voter to take over accepted")
		}
		if got := c.WaitLeader(); got != leader {
			t.Fatalf("leadership moved to %s", got.ID)
		}
		for _, f := range c.Others(leader) {
			if err := f.Raft.LeadershipTransfer().Error(); !errors.Is(err, raft.ErrNotLeader) {
				t.Fatalf("transfer on %v = %v", f.Raft.State(), err)
			}
		}
	})
}

// Bug 23: futures resolve after quorum loss and on shutdown.
func TestKnownBug23_ApplyResolvesAfterQuorumLoss(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		for _, f := range c.Others(leader) {
			c.Stop(f)
		}
		f := leader.Raft.Apply([]byte("x"), 0)
		if err := f.Error(); !errors.Is(err, raft.ErrLeadershipLost) {
			t.Fatalf("apply after quorum loss = %v, want ErrLeadershipLost", err)
		}
	})
}

// Bug 18 (continued), and hashicorp #696: while a transfer is in progress
// the leader refuses writes; when the transfer fails the flag is cleared and
// writes flow again.
func TestKnownBug18_WritesRefusedDuringTransferAndResumeAfterFailure(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		target := c.Others(leader)[0]
		c.ApplyN(leader, "a", 3)
		c.Partition(target) // it can never catch up
		c.ApplyN(leader, "b", 3)
		tf := leader.Raft.LeadershipTransferToServer(target.ID, target.Addr)
		synctest.Wait()
		if err := leader.Raft.Apply([]byte("x"), 0).Error(); !errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			t.Fatalf("apply during transfer = %v", err)
		}
		if err := leader.Raft.LeadershipTransfer().Error(); !errors.Is(err, raft.ErrLeadershipTransferInProgress) {
			t.Fatalf("second transfer = %v", err)
		}
		if err := tf.Error(); err == nil {
			t.Fatal("transfer to an unreachable server succeeded")
		}
		if leader.Raft.State() != raft.Leader {
			t.Fatal("leader lost leadership after a failed transfer")
		}
		if err := leader.Raft.Apply([]byte("y"), 0).Error(); err != nil {
			t.Fatalf("apply after the failed transfer = %v", err)
		}
	})
}

// Bug 14: a snapshot taken right after a membership change includes it.
func TestKnownBug14_SnapshotAfterMembershipChangeIncludesIt(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 5)
		joiner := c.AddNode()
		af := leader.Raft.AddVoter(joiner.ID, joiner.Addr, 0, time.Second)
		if err := af.Error(); err != nil {
			t.Fatal(err)
		}
		meta, rc := takeSnapshot(t, leader.Raft)
		rc.Close()
		if len(meta.Configuration.Servers) != 4 || meta.ConfigurationIndex != af.Index() {
			t.Fatalf("snapshot carries %v at %d, want 4 servers at %d",
				meta.Configuration.Servers, meta.ConfigurationIndex, af.Index())
		}
	})
}

// monotonicStore is a LogStore that cannot hold gaps.
type monotonicStore struct{ *raft.InmemStore }

func (monotonicStore) IsMonotonic() bool { return true }

// Bug 15: restoring a snapshot on a store that cannot have gaps deletes the
// whole log instead of leaving a hole (hashicorp v1.4.0).
func TestKnownBug15_RestoreOnMonotonicStoreLeavesNoGap(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		snapshotApplyRestore(t, c, leader)
		c.ApplyN(leader, "c", 1)
		c.WaitApplied(11)
		for _, n := range c.Nodes {
			first, _ := n.Store.FirstIndex()
			last, _ := n.Store.LastIndex()
			for i := first; i <= last && first > 0; i++ {
				var l raft.Log
				if err := n.Store.GetLog(i, &l); err != nil {
					t.Fatalf("%s has a gap at %d in [%d, %d]", n.ID, i, first, last)
				}
			}
			if snaps, _ := n.Snapshots.List(); len(snaps) == 0 || first <= snaps[0].Index && first != 0 {
				t.Fatalf("%s kept entries [%d, %d] below its snapshot", n.ID, first, last)
			}
		}
		c.CheckConsistent()
	}, rafttest.WithStores(func(id raft.ServerID, s *raft.InmemStore) (raft.LogStore, raft.StableStore) {
		return monotonicStore{s}, s
	}))
}

// Bug 2: a node that reaches some peers but not others (the 2020 Cloudflare
// outage) must not keep the cluster from having a stable leader while a
// majority is fully connected.
func TestKnownBug02_PartialPartitionKeepsAStableLeader(t *testing.T) {
	inBubble(t, 5, func(t *testing.T, c *rafttest.Cluster) {
		c.WaitLeader()
		bridge := c.Nodes[4]
		c.Cut(bridge, c.Nodes[0])
		c.Cut(bridge, c.Nodes[1])
		time.Sleep(2 * time.Second)
		var leader *rafttest.Node
		for _, n := range c.Nodes {
			if n.Raft.State() == raft.Leader {
				leader = n
			}
		}
		if leader == nil {
			t.Fatal("no leader after the partial partition")
		}
		term := leader.Raft.CurrentTerm()
		for i := 0; i < 20; i++ {
			if err := leader.Raft.Apply([]byte("x"), time.Second).Error(); err != nil {
				t.Fatalf("write %d failed: %v", i, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if leader.Raft.State() != raft.Leader || leader.Raft.CurrentTerm() != term {
			t.Fatalf("leadership churned: %s is %v in term %d (was leader in %d)",
				leader.ID, leader.Raft.State(), leader.Raft.CurrentTerm(), term)
		}
	})
}

// Bug 7: randomized election timeouts let a large cluster elect a leader
// without endless split votes.
func TestKnownBug07_SevenNodesElectDespiteSplitVotes(t *testing.T) {
	inBubble(t, 7, func(t *testing.T, c *rafttest.Cluster) {
		for round := 0; round < 5; round++ {
			leader := c.WaitLeader()
			c.Stop(leader)
			c.WaitLeader()
			c.Restart(leader)
		}
	})
}

// wrappingStore reports missing entries with context around ErrLogNotFound.
type wrappingStore struct{ *raft.InmemStore }

func (w wrappingStore) GetLog(i uint64, l *raft.Log) error {
	if err := w.InmemStore.GetLog(i, l); err != nil {
		return fmt.Errorf("wrapping store, index %d: %w", i, err)
	}
	return nil
}

// hashicorp/raft compares GetLog's error with ==, so a store that wraps
// ErrLogNotFound leaves a lagging follower stranded; here errors.Is finds it
// and the follower gets a snapshot.
func TestWrappedErrLogNotFoundStillTriggersSnapshot(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		lagging := c.Others(leader)[0]
		c.Stop(lagging)
		c.ApplyN(leader, "a", 3000)
		if err := leader.Raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
		c.Restart(lagging)
		c.WaitApplied(3000, lagging)
	}, rafttest.WithConfig(func(cfg *raft.Config) { cfg.TrailingLogs = 10 }),
		rafttest.WithStores(func(id raft.ServerID, s *raft.InmemStore) (raft.LogStore, raft.StableStore) {
			return wrappingStore{s}, s
		}))
}

// A leader whose disk write fails steps down, and the writes waiting on it
// report an unknown outcome (ErrLeadershipLost, wrapping the store error):
// they were sent to followers while the leader was writing, and a new leader
// may still commit them.
func TestLeaderStoreFailureStepsDownWithUnknownOutcome(t *testing.T) {
	stores := map[raft.ServerID]*flakyStore{}
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		stores[leader.ID].failing.Store(true)
		err := leader.Raft.Apply([]byte("x"), 0).Error()
		if !errors.Is(err, raft.ErrLeadershipLost) || !strings.Contains(err.Error(), "disk says no") {
			t.Fatalf("apply on a failing leader = %v", err)
		}
		c.WaitFor(time.Second, "step down", func() bool { return leader.Raft.State() != raft.Leader })
		stores[leader.ID].failing.Store(false)
		l := c.WaitLeader()
		c.ApplyN(l, "after", 5)
		c.CheckConsistent()
	}, rafttest.WithStores(func(id raft.ServerID, s *raft.InmemStore) (raft.LogStore, raft.StableStore) {
		fs := &flakyStore{InmemStore: s}
		stores[id] = fs
		return fs, s
	}))
}

// hangingStore blocks StoreLogs while hang is set, until release is closed,
// as a disk that stopped answering would.
type hangingStore struct {
	*raft.InmemStore
	hang    atomic.Bool
	hung    atomic.Int64
	release chan struct{}
	once    sync.Once
}

// unhang lets hung and later writes through; calling it again does nothing,
// so tests defer it to let the cluster shut down after a failure.
func (h *hangingStore) unhang() {
	h.once.Do(func() { h.hang.Store(false); close(h.release) })
}

func (h *hangingStore) StoreLogs(logs []*raft.Log) error {
	if h.hang.Load() {
		h.hung.Add(1)
		<-h.release
	}
	return h.InmemStore.StoreLogs(logs)
}

func (h *hangingStore) StoreLog(l *raft.Log) error { return h.StoreLogs([]*raft.Log{l}) }

// Bug 6: a leader whose disk hangs must not keep its leadership for ever
// (hashicorp #503): its heartbeats stop, the others elect a new leader and
// commit without it, and once the disk answers again the old leader steps
// down and converges.
func TestKnownBug06_HungLeaderDiskEndsInNewLeader(t *testing.T) {
	stores := map[raft.ServerID]*hangingStore{}
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		c.ApplyN(old, "before", 5)
		hs := stores[old.ID]
		defer hs.unhang() // on failure too, so that the cluster can shut down
		hs.hang.Store(true)
		stuck := old.Raft.Apply([]byte("stuck"), 0)
		c.WaitFor(5*time.Second, "the leader's disk to hang", func() bool { return hs.hung.Load() > 0 })

		newLeader := c.WaitLeader(c.Others(old)...)
		if newLeader == old {
			t.Fatal("the leader with a hung disk kept its leadership")
		}
		c.ApplyN(newLeader, "after", 5)

		hs.unhang()
		// The stuck write resolves. It may well have committed: the
		// followers had it before replication stopped, and the new
		// leader commits it with its first entry.
		stuckErr := stuck.Error()
		c.WaitFor(10*time.Second, "the old leader to follow", func() bool { return old.Raft.State() == raft.Follower })
		c.ApplyN(c.WaitLeader(), "later", 5)
		c.CheckConsistent()
		if stuckErr == nil {
			found := false
			for _, cmd := range newLeader.Recorder().Logs() {
				found = found || string(cmd) == "stuck"
			}
			if !found {
				t.Fatal("the stuck write was acknowledged but is not in the FSM")
			}
		}
	}, hangingStores(stores))
}

// A follower that was down long enough for the leader's replication
// back-off to reach its ceiling (about 10 s) catches up as soon as its
// heartbeats answer again, not when the back-off runs out: a successful
// heartbeat after failures wakes replication and clears its back-off.
func TestRestartedFollowerCatchesUpWithoutBackoff(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "before", 5)
		c.WaitApplied(5)
		down := c.Others(leader)[0]
		c.Stop(down)
		c.ApplyN(leader, "while-down", 20)
		// Long enough for many failed rounds at the largest back-off.
		time.Sleep(time.Minute)
		c.Restart(down)
		// Nothing new is applied: only the resumed replication can bring
		// the follower up. A heartbeat round takes at most
		// HeartbeatTimeout/2 after failures, far below the back-off.
		c.WaitFor(time.Second, "the restarted follower to catch up", func() bool {
			return down.Recorder().Len() >= 25
		})
		if leader.Raft.State() != raft.Leader {
			t.Fatal("the leader lost its leadership while the follower restarted")
		}
		c.CheckConsistent()
	})
}

// linearizableRead is the read path users are told to use: VerifyLeader,
// then wait until the FSM has applied the commit index. It returns the
// commands applied when the read is served.
func linearizableRead(c *rafttest.Cluster, n *rafttest.Node) ([][]byte, error) {
	if err := n.Raft.VerifyLeader().Error(); err != nil {
		return nil, err
	}
	idx := n.Raft.CommitIndex()
	c.WaitFor(5*time.Second, "the read's index to be applied", func() bool { return n.Raft.AppliedIndex() >= idx })
	return n.Recorder().Logs(), nil
}

// Bug 17: removing a member from a 2-node cluster while that member is
// down must not wedge the cluster. A configuration here takes effect when
// appended, so the removal commits with the leader alone and writes go on.
func TestKnownBug17_TwoMemberRemovalDoesNotWedge(t *testing.T) {
	inBubble(t, 2, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 5)
		gone := c.Others(leader)[0]
		c.Stop(gone)
		if err := leader.Raft.RemoveServer(gone.ID, 0, time.Second).Error(); err != nil {
			t.Fatalf("removing the dead member of a 2-node cluster: %v", err)
		}
		if err := leader.Raft.Apply([]byte("after"), time.Second).Error(); err != nil {
			t.Fatalf("write after the removal: %v", err)
		}
		if leader.Raft.State() != raft.Leader {
			t.Fatal("the remaining member is not leading")
		}
	})
}

// Bug 19: a leader cut off from the others must not serve a stale read, not
// even inside its lease window (Consul 2014): VerifyLeader fails on it
// while the others elect a leader and commit a newer write.
func TestKnownBug19_DeposedLeaderServesNoStaleRead(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		c.ApplyN(old, "a", 3)
		c.Partition(old)
		// At once, inside the old leader's lease.
		readErr := make(chan error, 1)
		go func() {
			_, err := linearizableRead(c, old)
			readErr <- err
		}()
		newLeader := c.WaitLeader(c.Others(old)...)
		c.ApplyN(newLeader, "b", 1) // acknowledged: every later read must see it
		if err := <-readErr; err == nil {
			t.Fatal("the cut-off leader served a linearizable read")
		}
		if _, err := linearizableRead(c, old); err == nil {
			t.Fatal("the cut-off leader served a read after the new leader's write")
		}
		got, err := linearizableRead(c, newLeader)
		if err != nil || len(got) != 4 {
			t.Fatalf("read on the new leader: %d commands, %v", len(got), err)
		}
	})
}

// Bug 22: reads right after a restart. Every node restarts; the first read
// served through the read path on the new leader already reflects every
// write acknowledged before the restart (Consul #2644).
func TestKnownBug22_NoStaleReadsOnStartup(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 40)
		for _, n := range c.Nodes {
			c.Stop(n)
		}
		for _, n := range c.Nodes {
			c.Restart(n)
		}
		var l *rafttest.Node
		c.WaitFor(5*time.Second, "a leader", func() bool {
			if ls := c.Leaders(); len(ls) == 1 {
				l = ls[0]
			}
			return l != nil
		})
		got, err := linearizableRead(c, l)
		for err != nil { // leadership may still move; each attempt must be right
			l = c.WaitLeader()
			got, err = linearizableRead(c, l)
		}
		if len(got) < 40 {
			t.Fatalf("the first read after the restart saw %d of 40 acknowledged writes", len(got))
		}
	})
}

// gatedFSM is rafttest's FSM whose snapshots wait in Persist while gate
// is set, until release is closed.
type gatedFSM struct {
	*rafttest.FSM
	gate    *atomic.Bool
	waiting *atomic.Int64
	release *chan struct{} // made inside the bubble, so waits on it are durable
}

func (g gatedFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := g.FSM.Snapshot()
	if err != nil || !g.gate.Load() {
		return s, err
	}
	return gatedSnapshot{s, g}, nil
}

type gatedSnapshot struct {
	raft.FSMSnapshot
	g gatedFSM
}

func (s gatedSnapshot) Persist(sink raft.SnapshotSink) error {
	s.g.waiting.Add(1)
	<-*s.g.release
	return s.FSMSnapshot.Persist(sink)
}

// A user Restore while an automatic snapshot is still being written (found
// by fuzzy): the older snapshot finishing later must not replace the
// restored one, the last snapshot index must not move back, and the leader
// must not spin resending a snapshot that does not reach the entries a
// follower needs. The followers end with the restored state.
func TestUserRestoreDuringSnapshotKeepsTheRestoredState(t *testing.T) {
	var gate atomic.Bool
	var waiting atomic.Int64
	var release chan struct{}
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		release = make(chan struct{})
		defer open()
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 10)
		autoIndex := leader.Raft.AppliedIndex() // where the automatic snapshot ends
		gate.Store(true)
		snapDone := make(chan error, 1)
		go func() { snapDone <- leader.Raft.Snapshot().Error() }()
		c.WaitFor(time.Second, "the snapshot to wait in Persist", func() bool { return waiting.Load() > 0 })
		gate.Store(false)

		// The user's state: a snapshot of a fresh FSM holding one command.
		src := rafttest.NewFSM()
		src.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: []byte("restored")})
		snap, _ := src.Snapshot()
		sink := &memSink{}
		if err := snap.Persist(sink); err != nil {
			t.Fatal(err)
		}
		meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: int64(sink.Len())}
		restored := make(chan error, 1)
		go func() { restored <- leader.Raft.Restore(meta, bytes.NewReader(sink.Bytes()), 5*time.Second) }()
		// Let the restore install its snapshot, then the old one finish.
		time.Sleep(100 * time.Millisecond)
		open()
		if err := <-snapDone; err != nil {
			t.Logf("the automatic snapshot: %v", err)
		}
		if err := <-restored; err != nil {
			t.Fatalf("Restore: %v", err)
		}
		metas, err := leader.Snapshots.List()
		if err != nil || len(metas) == 0 {
			t.Fatalf("snapshots: %v, %v", metas, err)
		}
		if metas[0].Index <= autoIndex {
			t.Fatalf("the newest snapshot is at %d: the older automatic one replaced the restored one", metas[0].Index)
		}
		c.ApplyN(leader, "b", 3)
		for _, n := range c.Nodes {
			c.WaitFor(5*time.Second, fmt.Sprintf("%s to hold the restored state", n.ID), func() bool {
				logs := n.FSM.(gatedFSM).FSM.Logs()
				return len(logs) == 4 && string(logs[0]) == "restored"
			})
		}
	}, rafttest.WithFSM(func() raft.FSM {
		return gatedFSM{FSM: rafttest.NewFSM(), gate: &gate, waiting: &waiting, release: &release}
	}))
}

// memSink is a SnapshotSink in memory, for building user snapshots.
type memSink struct{ bytes.Buffer }

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Cancel() error { return nil }
func (m *memSink) Close() error  { return nil }
