package autopilot

import (
	"time"

	"github.com/seed48a2b68f/raft"
)

// DefaultPromoter returns the promoter used when none is given: a
// StablePromoter.
func DefaultPromoter() Promoter { return new(StablePromoter) }

// StablePromoter promotes every nonvoter that has been healthy for the
// stabilization time; it never demotes, never moves leadership, lets every
// failed server be removed and counts every server as a potential voter.
type StablePromoter struct{}

// GetServerExt returns nil: no extension.
func (*StablePromoter) GetServerExt(*Config, *ServerState) interface{} { return nil }

// GetStateExt returns nil: no extension.
func (*StablePromoter) GetStateExt(*Config, *State) interface{} { return nil }

// GetNodeTypes makes every server a NodeVoter.
func (*StablePromoter) GetNodeTypes(_ *Config, s *State) map[raft.ServerID]NodeType {
	out := make(map[raft.ServerID]NodeType, len(s.Servers))
	for id := range s.Servers {
		out[id] = NodeVoter
	}
	return out
}

// CalculatePromotionsAndDemotions promotes the nonvoters that are stable
// (State.ServerStabilizationTime); nothing else.
func (*StablePromoter) CalculatePromotionsAndDemotions(c *Config, s *State) RaftChanges {
	var out RaftChanges
	now, stable := time.Now(), s.ServerStabilizationTime(c)
	for id, srv := range s.Servers {
		if srv.State == RaftNonVoter && srv.Health.IsStable(now, stable) {
			out.Promotions = append(out.Promotions, id)
		}
	}
	return out
}

// FilterFailedServerRemovals allows every removal.
func (*StablePromoter) FilterFailedServerRemovals(_ *Config, _ *State, failed *FailedServers) *FailedServers {
	return failed
}

// IsPotentialVoter reports whether t is NodeVoter.
func (*StablePromoter) IsPotentialVoter(t NodeType) bool { return t == NodeVoter }
