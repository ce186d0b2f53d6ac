package raft_test

import (
	"testing"
	"testing/synctest"
	"time"

	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

func TestCluster_ElectsOneLeaderAndReplicates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := rafttest.NewCluster(t, 3, rafttest.WithSeed(7))
		leader := c.WaitLeader()
		c.ApplyN(leader, "x", 100)
		c.WaitApplied(100)
		c.CheckConsistent()
		if got := len(c.Leaders()); got != 1 {
			t.Fatalf("leaders = %d, want 1", got)
		}
		time.Sleep(time.Second)
		if l := c.WaitLeader(); l != leader {
			t.Fatalf("leader changed without faults: %s -> %s", leader.ID, l.ID)
		}
		_ = raft.Leader
	})
}
