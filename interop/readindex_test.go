package interop

import (
	"errors"
	"fmt"
	"testing"
	"time"

	ours "github.com/seed48a2b68f/raft"
)

// Mixed clusters and ReadIndex (issue 21):
//   - our leader with hashicorp followers serves ReadIndex by round (their
//     heartbeat answers count), and the hashicorp followers take our
//     AppendEntries with its extra capabilities key as before;
//   - our follower under a hashicorp leader gets ErrReadIndexUnsupported and
//     never sends it a ReadIndexRequest (the hashicorp leader would drop
//     the connection on an unknown RPC type; it keeps replicating, which
//     shows it never saw one).
func TestMixedReadIndex(t *testing.T) {
	nodes := startCluster(t, true, true, false)
	var ourNode *node
	for _, n := range nodes {
		if !n.hashi {
			ourNode = n
		}
	}

	t.Run("our leader, hashicorp followers", func(t *testing.T) {
		leader := leaderOf(t, nodes, false)
		applyN(t, leader, "ours-leads", 20)
		waitSameState(t, nodes, leader)
		_, r := leader.rafts()
		rf := r.ReadIndex(5 * time.Second)
		if err := rf.Error(); err != nil {
			t.Fatalf("ReadIndex on our leader with hashicorp followers: %v", err)
		}
		if rf.Index() < r.LastIndex()-1 || r.Stats()["reads_by_round"] == "0" {
			t.Fatalf("read index %d (last index %d, reads by round %s)", rf.Index(), r.LastIndex(), r.Stats()["reads_by_round"])
		}
		if err := r.ReadBarrier(5 * time.Second).Error(); err != nil {
			t.Fatalf("ReadBarrier on our leader: %v", err)
		}
	})

	t.Run("hashicorp leader, our follower", func(t *testing.T) {
		leader := leaderOf(t, nodes, true)
		applyN(t, leader, "hashicorp-leads", 20)
		waitSameState(t, nodes, leader)
		_, r := ourNode.rafts()
		for i := 0; i < 5; i++ {
			if err := r.ReadIndex(time.Second).Error(); !errors.Is(err, ours.ErrReadIndexUnsupported) {
				t.Fatalf("ReadIndex through a hashicorp leader = %v, want ErrReadIndexUnsupported", err)
			}
			if err := r.ReadBarrier(time.Second).Error(); !errors.Is(err, ours.ErrReadIndexUnsupported) {
				t.Fatalf("ReadBarrier through a hashicorp leader = %v, want ErrReadIndexUnsupported", err)
			}
		}
		// The hashicorp leader still leads and replicates to us.
		applyN(t, leader, fmt.Sprintf("after-%d", 5), 10)
		waitSameState(t, nodes, leader)
		if !leader.isLeader() {
			t.Fatal("the hashicorp leader lost leadership")
		}
	})
}
