package ours

import (
	"github.com/seed48a2b68f/raft"

	"github.com/seed48a2b68f/raft/bench/harness"
)

// Read is ReadBarrier on node i, by lease for harness.ReadLease and by a
// round of heartbeats otherwise. (Written by hand for each library: the
// read API is not one they share.)
func (c *cluster) Read(i int, mode harness.ReadMode) error {
	consistency := raft.ReadByRound
	if mode == harness.ReadLease {
		consistency = raft.ReadByLease
	}
	return c.nodes[i].r.ReadBarrierWith(consistency, 0).Error()
}
