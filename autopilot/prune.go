package autopilot

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/seed48a2b68f/raft"
)

// eligibility is what a pruning round knows of a server in the Raft
// configuration.
type eligibility struct {
	voter     bool // votes now
	potential bool // known to the application as a type that may vote
}

// pruneRound decides, for one pruning round, which removals are safe, by
// raft-autopilot's rules and one more:
//   - no removal of a potential voter that would leave fewer potential
//     voters than MinQuorum;
//   - no removal of a voter once the potential voters removed in the round
//     reach half of those it started with (with no potential voter at all,
//     no voter is removed);
//   - here also: fewer than half the voters the round started with are
//     removed, counting every voter. raft-autopilot does not count the
//     removal of a voter the application does not know (a stale one), so
//     it may remove a majority of the voters; here a majority always
//     remains.
type pruneRound struct {
	servers              map[raft.ServerID]eligibility
	minQuorum            int
	potential            int
	maxPotentialRemovals int
	maxVoterRemovals     int
	removedPotential     int
	removedVoters        int
}

func newPruneRound(servers map[raft.ServerID]eligibility, minQuorum uint) *pruneRound {
	p := &pruneRound{servers: servers, minQuorum: int(minQuorum)}
	voters := 0
	for _, e := range servers {
		if e.potential {
			p.potential++
		}
		if e.voter {
			voters++
		}
	}
	p.maxPotentialRemovals = (p.potential - 1) / 2
	p.maxVoterRemovals = (voters - 1) / 2
	return p
}

// allow returns those of ids that may be removed, counting them as removed.
func (p *pruneRound) allow(ids []raft.ServerID, log func(msg string, args ...interface{})) []raft.ServerID {
	var out []raft.ServerID
	for _, id := range ids {
		e, ok := p.servers[id]
		if !ok {
			continue // removed earlier in the round, or not in Raft at all
		}
		if e.potential && p.potential-p.removedPotential-1 < p.minQuorum {
			log("will not remove server node as it would leave less voters than the minimum number allowed", "id", id, "min", p.minQuorum)
			continue
		}
		if e.voter && (p.removedPotential >= p.maxPotentialRemovals || p.removedVoters >= p.maxVoterRemovals) {
			log("will not remove server node as removal of a majority of voting servers is not safe", "id", id)
			continue
		}
		if e.potential {
			p.removedPotential++
		}
		if e.voter {
			p.removedVoters++
		}
		delete(p.servers, id)
		out = append(out, id)
	}
	return out
}

// failedServers sorts the Raft configuration's servers into stale ones
// (unknown to the application) and failed ones (known, not alive), and
// returns what a pruning round needs to know of each server.
func (a *Autopilot) failedServers() (*FailedServers, map[raft.ServerID]eligibility, error) {
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, nil, err
	}
	known := a.delegate.KnownServers()
	servers := make(map[raft.ServerID]eligibility)
	var failed FailedServers
	for _, rs := range f.Configuration().Servers {
		voter := raftState(rs.Suffrage) == RaftVoter
		k, isKnown := known[rs.ID]
		switch {
		case !isKnown || k == nil:
			if voter {
				failed.StaleVoters = append(failed.StaleVoters, rs.ID)
			} else {
				failed.StaleNonVoters = append(failed.StaleNonVoters, rs.ID)
			}
		case k.NodeStatus != NodeAlive:
			if voter {
				failed.FailedVoters = append(failed.FailedVoters, k)
			} else {
				failed.FailedNonVoters = append(failed.FailedNonVoters, k)
			}
		}
		// A potential voter is one the application knows with a NodeType
		// the promoter says may vote (as in raft-autopilot: with no
		// NodeType set, no server is one, and no voter is removed).
		servers[rs.ID] = eligibility{voter: voter, potential: isKnown && k != nil && a.promoter.IsPotentialVoter(k.NodeType)}
	}
	slices.Sort(failed.StaleVoters)
	slices.Sort(failed.StaleNonVoters)
	byID := func(x, y *Server) int { return cmp.Compare(x.ID, y.ID) }
	slices.SortFunc(failed.FailedVoters, byID)
	slices.SortFunc(failed.FailedNonVoters, byID)
	return &failed, servers, nil
}

// pruneDeadServers removes dead servers when Config.CleanupDeadServers is
// set: stale nonvoters, then stale voters (autopilot removes them itself,
// in one ChangeConfiguration when joint consensus is available), then
// failed nonvoters and failed voters (through the application's
// RemoveFailedServer), each as far as the promoter's filter and the round's
// safety rules allow.
func (a *Autopilot) pruneDeadServers() error {
	if !a.ReconciliationEnabled() {
		return nil
	}
	conf := a.delegate.AutopilotConfig()
	if conf == nil || !conf.CleanupDeadServers {
		return nil
	}
	state := a.GetState()
	failed, servers, err := a.failedServers()
	if err != nil {
		return err
	}
	if failed = a.promoter.FilterFailedServerRemovals(conf, state, failed); failed == nil {
		return nil
	}
	round := newPruneRound(servers, conf.MinQuorum)
	stale := round.allow(failed.StaleNonVoters, a.logger.Debug)
	stale = append(stale, round.allow(failed.StaleVoters, a.logger.Debug)...)
	if err := a.removeStale(stale); err != nil {
		return err
	}
	ids := func(ss []*Server) []raft.ServerID {
		out := make([]raft.ServerID, len(ss))
		for i, s := range ss {
			out[i] = s.ID
		}
		return out
	}
	for _, group := range [][]*Server{failed.FailedNonVoters, failed.FailedVoters} {
		for _, id := range round.allow(ids(group), a.logger.Debug) {
			for _, s := range group {
				if s.ID == id {
					a.logger.Info("Attempting removal of failed server node", "id", s.ID, "name", s.Name, "address", s.Address)
					a.delegate.RemoveFailedServer(s)
				}
			}
		}
	}
	return nil
}

// removeStale removes servers the application does not know: in one
// ChangeConfiguration when there are several and joint consensus is
// available, else one at a time.
func (a *Autopilot) removeStale(ids []raft.ServerID) error {
	if jc, ok := a.raft.(jointChanger); ok && len(ids) > 1 {
		f := a.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return err
		}
		next := f.Configuration()
		next.Servers = slices.DeleteFunc(slices.Clone(next.Servers), func(s raft.Server) bool { return slices.Contains(ids, s.ID) })
		err := jc.ChangeConfiguration(next, f.Index(), 0).Error()
		if err == nil {
			a.logger.Info("removed servers in one joint configuration change", "ids", ids)
			return nil
		}
		if !errors.Is(err, raft.ErrJointConsensusUnsupported) {
			return fmt.Errorf("failed removing servers %v: %w", ids, err)
		}
	}
	var errs []error
	for _, id := range ids {
		a.logger.Debug("removing server by ID", "id", id)
		if err := a.raft.RemoveServer(id, 0, 0).Error(); err != nil {
			a.logger.Error("failed to remove raft server", "id", id, "error", err)
			errs = append(errs, err)
			continue
		}
		a.logger.Info("removed server", "id", id)
	}
	return errors.Join(errs...)
}
