package raft_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// inBubble runs f inside a synctest bubble with a fresh cluster.
func inBubble(t *testing.T, n int, f func(t *testing.T, c *rafttest.Cluster), opts ...rafttest.Option) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		c := rafttest.NewCluster(t, n, append([]rafttest.Option{rafttest.WithSeed(seedFor(t))}, opts...)...)
		f(t, c)
	})
}

// seedFor gives every test its own reproducible seed.
func seedFor(t *testing.T) uint64 {
	var h uint64 = 14695981039346656037
	for _, b := range []byte(t.Name()) {
		h = (h ^ uint64(b)) * 1099511628211
	}
	return h
}

func TestCluster_ElectsOneLeaderAndReplicates(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "x", 100)
		c.WaitApplied(100)
		c.CheckConsistent()
		if got := len(c.Leaders()); got != 1 {
			t.Fatalf("leaders = %d, want 1", got)
		}
		term := leader.Raft.CurrentTerm()
		time.Sleep(5 * time.Second)
		if l := c.WaitLeader(); l != leader || l.Raft.CurrentTerm() != term {
			t.Fatalf("leadership moved without faults: %s term %d -> %s term %d", leader.ID, term, l.ID, l.Raft.CurrentTerm())
		}
	})
}

func TestCluster_SingleNode(t *testing.T) {
	inBubble(t, 1, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		f := leader.Raft.Apply([]byte("one"), time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		if f.Response().(int) != 1 || f.Index() == 0 {
			t.Fatalf("response %v index %d", f.Response(), f.Index())
		}
	})
}

func TestCluster_ReelectionAfterLeaderLoss(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		c.ApplyN(old, "a", 10)
		c.Stop(old)
		leader := c.WaitLeader()
		if leader == old {
			t.Fatal("stopped node still leads")
		}
		if leader.Raft.CurrentTerm() <= old.Raft.CurrentTerm() {
			t.Fatalf("new leader term %d not above %d", leader.Raft.CurrentTerm(), old.Raft.CurrentTerm())
		}
		c.ApplyN(leader, "b", 10)
		c.Restart(old)
		c.WaitApplied(20)
		c.CheckConsistent()
	})
}

func TestCluster_MinorityLeaderCannotCommitAndStepsDown(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		c.ApplyN(old, "a", 5)
		c.Partition(old)
		f := old.Raft.Apply([]byte("lost"), time.Second)
		if err := f.Error(); !errors.Is(err, raft.ErrLeadershipLost) && !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("apply on a minority leader = %v, want ErrLeadershipLost", err)
		}
		c.WaitFor(time.Second, "old leader to step down", func() bool { return old.Raft.State() != raft.Leader })
		rest := c.Others(old)
		leader := c.WaitLeader(rest...)
		c.ApplyN(leader, "b", 5)
		c.Heal()
		c.WaitApplied(10)
		c.CheckConsistent()
		assertNoneApplied(t, c, "lost")
	})
}

func TestCluster_LogDivergenceRepaired(t *testing.T) {
	inBubble(t, 5, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		c.ApplyN(old, "base", 3)
		c.WaitApplied(3)
		// Cut the leader and one follower off; the leader appends entries
		// that only its partner may get.
		var partner *rafttest.Node
		for _, n := range c.Nodes {
			if n != old {
				partner = n
				break
			}
		}
		c.Partition(old, partner)
		for i := 0; i < 5; i++ {
			old.Raft.Apply([]byte(fmt.Sprintf("stale-%d", i)), time.Second)
		}
		rest := c.Others(old, partner)
		leader := c.WaitLeader(rest...)
		c.ApplyN(leader, "new", 10)
		c.Heal()
		c.WaitApplied(13)
		c.CheckConsistent()
		assertNoneApplied(t, c, "stale-")
	})
}

func TestCluster_InstallSnapshotCatchesUpFollower(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		var lagging *rafttest.Node
		for _, n := range c.Nodes {
			if n != leader {
				lagging = n
				break
			}
		}
		c.Stop(lagging)
		// More entries than the leader keeps in memory, so the follower
		// cannot be served from the log.
		c.ApplyN(leader, "a", 3000)
		if err := leader.Raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
		c.ApplyN(leader, "b", 10)
		first, _ := leader.Store.FirstIndex()
		if first <= 2 {
			t.Fatalf("leader did not compact its log (first index %d)", first)
		}
		c.Restart(lagging)
		c.WaitApplied(3010)
		c.CheckConsistent()
		if idx, _ := lagging.Snapshots.List(); len(idx) == 0 {
			t.Fatal("follower caught up without a snapshot")
		}
	}, rafttest.WithConfig(func(cfg *raft.Config) { cfg.TrailingLogs = 10 }))
}

func TestCluster_AutomaticSnapshots(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 200)
		c.WaitFor(10*time.Second, "automatic snapshots", func() bool {
			for _, n := range c.Nodes {
				if s, _ := n.Snapshots.List(); len(s) == 0 {
					return false
				}
			}
			return true
		})
		c.CheckConsistent()
	}, rafttest.WithConfig(func(cfg *raft.Config) {
		cfg.SnapshotThreshold = 50
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.TrailingLogs = 20
	}))
}

func TestCluster_AddRemoveDemote(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 20)

		joiner := c.AddNode()
		f := leader.Raft.AddVoter(joiner.ID, joiner.Addr, 0, time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		if f.Index() == 0 {
			t.Fatal("AddVoter returned index 0")
		}
		c.WaitApplied(20, joiner)
		cf := leader.Raft.GetConfiguration()
		if err := cf.Error(); err != nil || len(cf.Configuration().Servers) != 4 || cf.Index() != f.Index() {
			t.Fatalf("configuration %v index %d (want 4 servers at %d): %v", cf.Configuration(), cf.Index(), f.Index(), err)
		}

		// Demote a follower, then remove it.
		var victim *rafttest.Node
		for _, n := range c.Nodes {
			if n != leader && n != joiner {
				victim = n
				break
			}
		}
		if err := leader.Raft.DemoteVoter(victim.ID, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		if err := leader.Raft.RemoveServer(victim.ID, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(time.Second, "removed node to learn", func() bool {
			for _, s := range victim.Raft.GetConfiguration().Configuration().Servers {
				if s.ID == victim.ID {
					return false
				}
			}
			return true
		})
		c.Stop(victim)
		c.ApplyN(leader, "b", 5)

		// A stale prevIndex is refused.
		if err := leader.Raft.AddNonvoter("x", "nowhere", 1, time.Second).Error(); err == nil {
			t.Fatal("change with a stale prevIndex accepted")
		}
		c.CheckConsistent()
	})
}

func TestCluster_RemoveLeader(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		c.ApplyN(old, "a", 5)
		if err := old.Raft.RemoveServer(old.ID, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(5*time.Second, "removed leader to shut down", func() bool { return old.Raft.State() == raft.Shutdown })
		rest := c.Others(old)
		leader := c.WaitLeader(rest...)
		c.ApplyN(leader, "b", 5)
		c.WaitApplied(10, rest...)
		cf := leader.Raft.GetConfiguration()
		if len(cf.Configuration().Servers) != 2 {
			t.Fatalf("configuration after removing the leader: %v", cf.Configuration())
		}
	})
}

func TestCluster_RemoveLeaderWithoutShutdown(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		if err := old.Raft.RemoveServer(old.ID, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(5*time.Second, "removed leader to step down", func() bool { return old.Raft.State() == raft.Follower })
		rest := c.Others(old)
		leader := c.WaitLeader(rest...)
		c.ApplyN(leader, "b", 5)
		// The removed node never campaigns again.
		time.Sleep(2 * time.Second)
		if old.Raft.State() != raft.Follower {
			t.Fatalf("removed node is %v", old.Raft.State())
		}
		if l := c.WaitLeader(rest...); l != leader {
			t.Fatal("removed node disturbed the leader")
		}
	}, rafttest.WithConfig(func(cfg *raft.Config) { cfg.ShutdownOnRemove = false }))
}

func TestCluster_LeadershipTransferWhileWritesFlow(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		var wg sync.WaitGroup
		stop := make(chan struct{})
		var mu sync.Mutex
		acked := 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var leader *raft.Raft
				for _, n := range c.Nodes {
					if n.Raft.State() == raft.Leader {
						leader = n.Raft
					}
				}
				if leader == nil {
					time.Sleep(time.Millisecond)
					continue
				}
				if leader.Apply([]byte(fmt.Sprintf("w-%d", i)), time.Second).Error() != nil {
					time.Sleep(time.Millisecond) // refused during the transfer
					continue
				}
				mu.Lock()
				acked++
				mu.Unlock()
				// Let virtual time pass: inside the bubble a client that never
				// waits on a timer would keep the clock still.
				time.Sleep(100 * time.Microsecond)
			}
		}()
		time.Sleep(50 * time.Millisecond)
		if err := old.Raft.LeadershipTransfer().Error(); err != nil {
			t.Fatal(err)
		}
		leader := c.WaitLeader()
		if leader == old {
			t.Fatal("leadership did not move")
		}
		time.Sleep(50 * time.Millisecond)
		close(stop)
		wg.Wait()
		mu.Lock()
		n := acked
		mu.Unlock()
		c.WaitApplied(n)
		c.CheckConsistent()
	})
}

func TestCluster_LeadershipTransferToServer(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		old := c.WaitLeader()
		var target *rafttest.Node
		for _, n := range c.Nodes {
			if n != old {
				target = n
			}
		}
		if err := old.Raft.LeadershipTransferToServer(target.ID, target.Addr).Error(); err != nil {
			t.Fatal(err)
		}
		if l := c.WaitLeader(); l != target {
			t.Fatalf("leader is %s, want %s", l.ID, target.ID)
		}
		if err := target.Raft.LeadershipTransferToServer(target.ID, target.Addr).Error(); err == nil {
			t.Fatal("transfer to itself accepted")
		}
		if err := old.Raft.LeadershipTransfer().Error(); !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("transfer on a follower = %v", err)
		}
	})
}

func TestCluster_BarrierAndVerifyLeader(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		for i := 0; i < 50; i++ {
			leader.Raft.Apply([]byte(fmt.Sprintf("v-%d", i)), 0)
		}
		if err := leader.Raft.Barrier(0).Error(); err != nil {
			t.Fatal(err)
		}
		if got := leader.Recorder().Len(); got != 50 {
			t.Fatalf("after Barrier the FSM has %d commands, want 50", got)
		}
		if err := leader.Raft.VerifyLeader().Error(); err != nil {
			t.Fatal(err)
		}
		for _, n := range c.Followers() {
			if err := n.Raft.VerifyLeader().Error(); !errors.Is(err, raft.ErrNotLeader) {
				t.Fatalf("VerifyLeader on a follower = %v", err)
			}
			if err := n.Raft.Barrier(0).Error(); !errors.Is(err, raft.ErrNotLeader) {
				t.Fatalf("Barrier on a follower = %v", err)
			}
			if err := n.Raft.Apply(nil, 0).Error(); !errors.Is(err, raft.ErrNotLeader) {
				t.Fatalf("Apply on a follower = %v", err)
			}
		}
		c.Partition(leader)
		if err := leader.Raft.VerifyLeader().Error(); !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("VerifyLeader on a cut-off leader = %v", err)
		}
	})
}

func TestCluster_FuturesResolveOnShutdown(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		for _, n := range c.Nodes {
			if n != leader {
				c.Partition(n)
			}
		}
		var futures []raft.Future
		for i := 0; i < 20; i++ {
			futures = append(futures, leader.Raft.Apply([]byte("x"), 0))
		}
		futures = append(futures, leader.Raft.Barrier(0), leader.Raft.VerifyLeader())
		c.Stop(leader)
		for i, f := range futures {
			if err := f.Error(); err == nil {
				t.Fatalf("future %d succeeded without a quorum", i)
			}
		}
		if err := leader.Raft.Apply([]byte("late"), 0).Error(); !errors.Is(err, raft.ErrRaftShutdown) {
			t.Fatalf("apply after shutdown = %v", err)
		}
		if err := leader.Raft.Shutdown().Error(); err != nil {
			t.Fatalf("second shutdown = %v", err)
		}
	})
}

func TestCluster_ManyConcurrentAppliers(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		const workers, each = 64, 50
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < each; i++ {
					if err := leader.Raft.Apply([]byte(fmt.Sprintf("%d-%d", w, i)), 0).Error(); err != nil {
						errs <- err
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		c.WaitApplied(workers * each)
		c.CheckConsistent()
	})
}

func TestCluster_ObserversLeaderChAndStats(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		obsCh := make(chan raft.Observation, 64)
		obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
			_, ok := o.Data.(raft.LeaderObservation)
			return ok
		})
		for _, n := range c.Nodes {
			n.Raft.RegisterObserver(obs)
		}
		leader := c.WaitLeader()
		select {
		case o := <-obsCh:
			if _, ok := o.Data.(raft.LeaderObservation); !ok {
				t.Fatalf("filter let through %T", o.Data)
			}
		default:
			t.Fatal("no leader observation")
		}
		if obs.GetNumObserved() == 0 {
			t.Fatal("GetNumObserved = 0")
		}
		select {
		case v := <-leader.Raft.LeaderCh():
			if !v {
				t.Fatal("LeaderCh sent false to the leader")
			}
		default:
			t.Fatal("LeaderCh empty on the leader")
		}
		c.ApplyN(leader, "s", 3)
		st := leader.Raft.Stats()
		for _, k := range []string{"state", "term", "last_log_index", "last_log_term", "commit_index", "applied_index",
			"fsm_pending", "last_snapshot_index", "last_snapshot_term", "protocol_version", "protocol_version_min",
			"protocol_version_max", "snapshot_version_min", "snapshot_version_max", "latest_configuration_index",
			"latest_configuration", "num_peers", "last_contact"} {
			if _, ok := st[k]; !ok {
				t.Errorf("Stats lacks %q", k)
			}
		}
		if st["state"] != "Leader" || st["num_peers"] != "2" || st["last_contact"] != "0" || st["latest_configuration_index"] != "1" {
			t.Fatalf("Stats = %v", st)
		}
		for _, n := range c.Nodes {
			n.Raft.DeregisterObserver(obs)
		}
	})
}

// assertNoneApplied fails if any node applied a command starting with
// prefix: those were never committed.
func assertNoneApplied(t *testing.T, c *rafttest.Cluster, prefix string) {
	t.Helper()
	for _, n := range c.Nodes {
		for _, cmd := range n.Recorder().Logs() {
			if strings.HasPrefix(string(cmd), prefix) {
				t.Fatalf("%s applied uncommitted %q", n.ID, cmd)
			}
		}
	}
}

// A node re-added while cut off does not know it is a voter again, but the
// others count it as one. When the leader then fails, the survivor needs
// its vote: refusing because it is not a voter in its own (stale)
// configuration leaves the cluster without a leader for good, since only a
// leader could send it the entry that re-added it (found by fuzzy).
func TestCluster_ReaddedNodeVotesBeforeLearningItsReaddition(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 5)
		others := c.Others(leader)
		survivor, readded := others[0], others[1]
		if err := leader.Raft.RemoveServer(readded.ID, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(5*time.Second, "removed node to learn its removal", func() bool {
			return !hasServer(readded.Raft.GetConfiguration().Configuration(), readded.ID)
		})
		c.Partition(readded)
		if err := leader.Raft.AddVoter(readded.ID, readded.Addr, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(5*time.Second, "survivor to learn the re-addition", func() bool {
			return hasServer(survivor.Raft.GetConfiguration().Configuration(), readded.ID)
		})
		c.Stop(leader)
		c.Heal()
		if hasServer(readded.Raft.GetConfiguration().Configuration(), readded.ID) {
			t.Fatal("the re-added node already knows it is back: the scenario is void")
		}
		l := c.WaitLeader(survivor, readded)
		if l != survivor {
			t.Fatalf("%s leads; only the survivor has the entries to", l.ID)
		}
		c.ApplyN(l, "b", 3)
		c.WaitFor(5*time.Second, "re-added node to learn it is back", func() bool {
			return hasServer(readded.Raft.GetConfiguration().Configuration(), readded.ID)
		})
	}, rafttest.WithConfig(func(cfg *raft.Config) { cfg.ShutdownOnRemove = false }))
}

func hasServer(conf raft.Configuration, id raft.ServerID) bool {
	for _, s := range conf.Servers {
		if s.ID == id {
			return true
		}
	}
	return false
}

func TestCluster_PeerStatus(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 10)
		last := leader.Raft.LastIndex()
		c.WaitFor(time.Second, "followers to match", func() bool {
			st := leader.Raft.PeerStatus()
			for _, n := range c.Others(leader) {
				if st[n.ID].MatchIndex != last {
					return false
				}
			}
			return len(st) == 2
		})
		for _, n := range c.Others(leader) {
			if st := n.Raft.PeerStatus(); st != nil {
				t.Fatalf("follower %s reports peer status %v", n.ID, st)
			}
		}
		down, up := c.Others(leader)[0], c.Others(leader)[1]
		c.Stop(down)
		stoppedAt := time.Now()
		time.Sleep(2 * time.Second)
		st := leader.Raft.PeerStatus()
		if st[down.ID].LastContact.After(stoppedAt) {
			t.Fatalf("stopped peer last contact %v, stopped at %v", st[down.ID].LastContact, stoppedAt)
		}
		if !st[up.ID].LastContact.After(stoppedAt.Add(time.Second)) {
			t.Fatalf("live peer last contact %v, 2s after %v", st[up.ID].LastContact, stoppedAt)
		}
		if err := leader.Raft.RemoveServer(down.ID, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		if st := leader.Raft.PeerStatus(); len(st) != 1 {
			t.Fatalf("after the removal: %v", st)
		}
	})
}

// The mirror case: a voter that has not received a server's promotion
// still sees it as a nonvoter. When the leader fails, that server (holding
// the newest log among the survivors) is the only one that can win, and it
// needs this voter: refusing it because of the stale configuration, as
// hashicorp/raft does, leaves the cluster without a leader for good (found
// by fuzzy, seed 1898).
func TestCluster_PromotedNodeElectedByVoterThatMissedThePromotion(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 5)
		others := c.Others(leader)
		stale, promoted := others[0], others[1]
		if err := leader.Raft.DemoteVoter(promoted.ID, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(5*time.Second, "every node to learn the demotion", func() bool {
			return !isVoter(stale.Raft, promoted.ID) && !isVoter(promoted.Raft, promoted.ID)
		})
		c.Partition(stale)
		if err := leader.Raft.AddVoter(promoted.ID, promoted.Addr, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.ApplyN(leader, "b", 3)
		c.WaitFor(5*time.Second, "the promoted node to have the newest entries", func() bool {
			return isVoter(promoted.Raft, promoted.ID) && promoted.Raft.LastIndex() == leader.Raft.LastIndex()
		})
		c.Stop(leader)
		c.Heal()
		if isVoter(stale.Raft, promoted.ID) {
			t.Fatal("the stale voter already knows of the promotion: the scenario is void")
		}
		if l := c.WaitLeader(stale, promoted); l != promoted {
			t.Fatalf("%s leads; only the promoted node has the newest log", l.ID)
		}
		c.ApplyN(promoted, "c", 3)
		c.WaitApplied(11, stale)
	})
}

func isVoter(r *raft.Raft, id raft.ServerID) bool {
	for _, s := range r.GetConfiguration().Configuration().Servers {
		if s.ID == id {
			return s.Suffrage == raft.Voter
		}
	}
	return false
}

// TestCluster_FailoverWithinTwoHeartbeatTimeouts kills the leader of a
// three-node cluster with LAN-like timeouts and checks that a new leader is
// in place at most two heartbeat timeouts (the top of the randomized
// timeout) after the old one stopped: a follower stands for election at a
// random point between one and two heartbeat timeouts after it last heard
// from the leader. Checking again a fresh random timeout after a check that
// found the leader alive, as hashicorp/raft does, puts it up to three
// timeouts away (seeds 4-9 and 11 fail that way). The voter's side, a
// leader counted as live only within a heartbeat timeout of the last
// contact, is TestVoteCountsLeaderLiveOnlyWithinHeartbeatTimeout.
func TestCluster_FailoverWithinTwoHeartbeatTimeouts(t *testing.T) {
	const hb = time.Second
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := rafttest.NewCluster(t, 3, rafttest.WithSeed(seed), rafttest.WithConfig(func(conf *raft.Config) {
					conf.HeartbeatTimeout = hb
					conf.ElectionTimeout = hb
					conf.LeaderLeaseTimeout = hb / 2
				}))
				old := c.WaitLeader()
				c.ApplyN(old, "a", 5)
				// Let heartbeats run for a while so the followers' timers
				// are at arbitrary phases when the leader goes.
				time.Sleep(time.Duration(seed) * 137 * time.Millisecond)
				stopped := time.Now()
				c.Stop(old)
				leader := c.WaitLeader()
				took := time.Since(stopped)
				if took > 2*hb+50*time.Millisecond {
					t.Fatalf("new leader %s after %v, want at most %v", leader.ID, took, 2*hb+50*time.Millisecond)
				}
				c.ApplyN(leader, "b", 5)
				c.WaitApplied(10, c.Running()...)
			})
		})
	}
}

// TestCluster_StaleInstallSnapshotDoesNotRollBackTheFSM delivers an
// InstallSnapshot a second time, after the follower has applied entries
// past the snapshot (a duplicated or delayed message; found by fuzzy, seed
// 1931). Restoring it rolled the follower's FSM back to the snapshot while
// the entries after it still counted as applied, so they were never applied
// again and the follower's state diverged from the leader's.
func TestCluster_StaleInstallSnapshotDoesNotRollBackTheFSM(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 10)
		if err := leader.Raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
		snaps, err := leader.Snapshots.List()
		if err != nil || len(snaps) == 0 {
			t.Fatalf("leader snapshots: %v, %v", snaps, err)
		}
		meta, rc, err := leader.Snapshots.Open(snaps[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		c.ApplyN(leader, "b", 10)
		c.WaitApplied(20)
		follower := c.Followers()[0]

		// The leader's InstallSnapshot for index meta.Index, delivered late.
		_, trans := raft.NewInmemTransport("late-copy")
		trans.Connect(follower.Addr, follower.Trans)
		req := &raft.InstallSnapshotRequest{
			RPCHeader:          raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(leader.ID), Addr: []byte(leader.Addr)},
			SnapshotVersion:    meta.Version,
			Term:               leader.Raft.CurrentTerm(),
			Leader:             []byte(leader.Addr),
			LastLogIndex:       meta.Index,
			LastLogTerm:        meta.Term,
			Configuration:      raft.EncodeConfiguration(meta.Configuration),
			ConfigurationIndex: meta.ConfigurationIndex,
			Size:               int64(len(data)),
		}
		var resp raft.InstallSnapshotResponse
		if err := trans.InstallSnapshot(follower.ID, follower.Addr, req, &resp, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		c.ApplyN(leader, "c", 5)
		c.WaitApplied(25)
		want := leader.Recorder().Logs()
		got := follower.Recorder().Logs()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("follower's FSM diverged after a stale snapshot:\n got %d entries %q\nwant %d entries %q", len(got), got, len(want), want)
		}
	})
}
