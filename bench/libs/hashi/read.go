package hashi

import (
	"time"

	"github.com/seed48a2b68f/raft/bench/harness"
)

// Read is how a hashicorp/raft program reads linearizably without a log
// write: VerifyLeader on the leader, then a wait until the state machine
// has applied the commit index. hashicorp has no lease and no read on
// followers, so the mode is ignored. (Written by hand for each library:
// the read API is not one they share.)
func (c *cluster) Read(i int, _ harness.ReadMode) error {
	r := c.nodes[i].r
	if err := r.VerifyLeader().Error(); err != nil {
		return err
	}
	for idx := r.CommitIndex(); r.AppliedIndex() < idx; {
		time.Sleep(20 * time.Microsecond)
	}
	return nil
}
