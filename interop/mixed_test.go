package interop

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// In a cluster of one hashicorp node and two of ours, leadership moves from
// one library to the other and back with LeadershipTransferToServer, and the
// leader of either library drives the followers of the other.
func TestMixedClusterLeadershipMovesBothWays(t *testing.T) {
	nodes := startCluster(t, true, false, false)
	leader := waitLeader(t, nodes)
	for round := 0; round < 4; round++ {
		applyN(t, leader, fmt.Sprintf("round%d", round), 50)
		waitSameState(t, nodes, leader)
		next := leaderOf(t, nodes, !leader.hashi)
		t.Logf("round %d: leadership moved from %s to %s", round, leader, next)
		leader = next
	}
	applyN(t, leader, "last", 10)
	waitSameState(t, nodes, leader)
}

// Two nodes of each library elect and commit whichever side leads.
func TestMixedClusterTwoAndTwo(t *testing.T) {
	nodes := startCluster(t, true, true, false, false)
	for _, hashi := range []bool{true, false} {
		leader := leaderOf(t, nodes, hashi)
		applyN(t, leader, fmt.Sprintf("led-by-hashicorp-%v", hashi), 100)
		waitSameState(t, nodes, leader)
	}
}

// A follower of one library is down while the leader of the other library
// applies, snapshots and compacts its log; when the follower comes back, it
// can only catch up through InstallSnapshot, which works both ways.
func TestMixedInstallSnapshotBothWays(t *testing.T) {
	for _, leaderHashi := range []bool{true, false} {
		t.Run(fmt.Sprintf("leader-hashicorp-%v", leaderHashi), func(t *testing.T) {
			nodes := startCluster(t, leaderHashi, leaderHashi, !leaderHashi)
			leader := leaderOf(t, nodes, leaderHashi)
			applyN(t, leader, "before", 20)
			waitSameState(t, nodes, leader)

			follower := nodes[2]
			follower.stop()
			// More than our leader keeps in memory past compaction (its log
			// tail holds up to 2048 entries by default): only a snapshot
			// can help.
			applyN(t, leader, "while-down", 2200)
			if err := leader.snapshot(); err != nil {
				t.Fatalf("snapshot on %s: %v", leader, err)
			}
			applyN(t, leader, "after-snapshot", 5)

			follower.start(nil)
			waitSameState(t, nodes, leader)
			if follower.fsm.restoreCount() == 0 {
				t.Fatalf("%s caught up without installing a snapshot", follower)
			}
		})
	}
}

// Membership changes made by a leader of one library (add a voter of the
// other library, demote one, remove one) are followed by every node.
func TestMixedMembershipChanges(t *testing.T) {
	for _, leaderHashi := range []bool{true, false} {
		t.Run(fmt.Sprintf("leader-hashicorp-%v", leaderHashi), func(t *testing.T) {
			nodes := startCluster(t, leaderHashi, !leaderHashi, !leaderHashi)
			leader := leaderOf(t, nodes, leaderHashi)
			applyN(t, leader, "start", 10)

			// Add a fourth node, of the other library.
			newcomer := newNode(t, !leaderHashi)
			newcomer.start(nil)
			if err := leader.addVoter(newcomer); err != nil {
				t.Fatalf("AddVoter by %s: %v", leader, err)
			}
			all := append(append([]*node{}, nodes...), newcomer)
			applyN(t, leader, "with-newcomer", 10)
			waitSameState(t, all, leader)

			// Demote one follower of the other library, remove another.
			if err := leader.demote(nodes[1]); err != nil {
				t.Fatalf("DemoteVoter by %s: %v", leader, err)
			}
			if err := leader.removeServer(nodes[2]); err != nil {
				t.Fatalf("RemoveServer by %s: %v", leader, err)
			}
			want := []string{leader.id + ":Voter", nodes[1].id + ":Nonvoter", newcomer.id + ":Voter"}
			want = sortedCopy(want)
			remaining := []*node{leader, nodes[1], newcomer}
			eventually(t, "every node to see the new configuration", func() bool {
				for _, n := range remaining {
					if fmt.Sprint(n.members()) != fmt.Sprint(want) {
						return false
					}
				}
				return true
			})
			applyN(t, leader, "after-changes", 10)
			waitSameState(t, remaining, leader)

			// The new voter of the other library can lead the changed cluster.
			next := leaderOf(t, []*node{leader, newcomer}, !leaderHashi)
			applyN(t, next, "under-newcomer", 10)
			waitSameState(t, remaining, next)
		})
	}
}

// Pre-vote across libraries: a node cut off from the others keeps asking
// for pre-votes without raising its term, so when it comes back the leader
// of the other library stays leader in the same term. Each library plays
// each role.
func TestMixedPreVote(t *testing.T) {
	for _, isolatedHashi := range []bool{true, false} {
		t.Run(fmt.Sprintf("isolated-hashicorp-%v", isolatedHashi), func(t *testing.T) {
			nodes := startCluster(t, !isolatedHashi, !isolatedHashi, isolatedHashi)
			leader := leaderOf(t, nodes, !isolatedHashi)
			applyN(t, leader, "before", 10)
			waitSameState(t, nodes, leader)
			isolated := nodes[2]
			term := leader.term()

			isolated.layer.setCut(true)
			// Long enough for many election timeouts on the isolated node.
			time.Sleep(15 * heartbeat)
			if got := isolated.term(); got != term {
				t.Fatalf("%s raised its term from %d to %d while cut off", isolated, term, got)
			}
			isolated.layer.setCut(false)
			applyN(t, leader, "after", 10)
			waitSameState(t, nodes, leader)
			if !leader.isLeader() || leader.term() != term {
				t.Fatalf("the leader %s was disturbed: leader=%v term %d -> %d", leader, leader.isLeader(), term, leader.term())
			}
		})
	}
}

// A rolling replacement: a three-node hashicorp cluster becomes a
// three-node cluster of ours one node at a time (add one of ours, remove one
// of theirs, the leader last), while a client keeps writing. Every write
// that was acknowledged is in the final state.
func TestMixedRollingReplacement(t *testing.T) {
	old := startCluster(t, true, true, true)
	waitLeader(t, old)

	var mu sync.Mutex
	members := append([]*node{}, old...)
	current := func() []*node {
		mu.Lock()
		defer mu.Unlock()
		return append([]*node{}, members...)
	}
	var acked []string
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !stop.Load(); i++ {
			cmd := fmt.Sprintf("w-%d", i)
			for _, n := range current() {
				if n.running() && n.isLeader() {
					if n.apply([]byte(cmd)) == nil {
						mu.Lock()
						acked = append(acked, cmd)
						mu.Unlock()
					}
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	for step := 0; step < 3; step++ {
		newcomer := newNode(t, false)
		newcomer.start(nil)
		leader := waitLeader(t, current())
		if err := leader.addVoter(newcomer); err != nil {
			t.Fatalf("step %d: AddVoter by %s: %v", step, leader, err)
		}
		mu.Lock()
		members = append(members, newcomer)
		mu.Unlock()
		eventually(t, "the newcomer to catch up", func() bool {
			return newcomer.fsm.count() > 0 && newcomer.fsm.count() >= leader.fsm.count()-5
		})

		// Remove a hashicorp node; the leader goes last (it hands over
		// leadership to one of ours before it leaves).
		var victim *node
		for _, n := range current() {
			if n.hashi && !n.isLeader() {
				victim = n
				break
			}
		}
		if victim == nil {
			for _, n := range current() {
				if n.hashi {
					victim = n
				}
			}
			if err := victim.transferTo(newcomer); err != nil {
				t.Fatalf("step %d: transfer from %s: %v", step, victim, err)
			}
			waitLeader(t, []*node{newcomer})
		}
		leader = waitLeader(t, current())
		if err := leader.removeServer(victim); err != nil {
			t.Fatalf("step %d: RemoveServer(%s) by %s: %v", step, victim, leader, err)
		}
		mu.Lock()
		for i, n := range members {
			if n == victim {
				members = append(members[:i], members[i+1:]...)
				break
			}
		}
		mu.Unlock()
		victim.stop()
		t.Logf("step %d: replaced %s with %s", step, victim, newcomer)
		// Writes go on through the replacement: wait for some to be
		// acknowledged by the new membership before the next step (a count
		// at the end would measure only how fast the steps ran).
		mu.Lock()
		before := len(acked)
		mu.Unlock()
		eventually(t, fmt.Sprintf("writes acknowledged after step %d", step), func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(acked) >= before+10
		})
	}

	time.Sleep(100 * time.Millisecond)
	stop.Store(true)
	<-done
	final := current()
	for _, n := range final {
		if n.hashi {
			t.Fatalf("%s is still a member", n)
		}
	}
	leader := waitLeader(t, final)
	applyN(t, leader, "final", 1)
	waitSameState(t, final, leader)
	have := map[string]bool{}
	for _, c := range leader.fsm.state() {
		have[c] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range acked {
		if !have[c] {
			t.Fatalf("acknowledged write %s lost", c)
		}
	}
	t.Logf("%d acknowledged writes, all present on the new cluster of ours", len(acked))
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
