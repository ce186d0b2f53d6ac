package autopilot

import (
	"fmt"

	"github.com/seed48a2b68f/raft"
)

// NumVoters returns the number of voters in the latest Raft configuration.
func (a *Autopilot) NumVoters() (int, error) {
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return 0, err
	}
	n := 0
	for _, s := range f.Configuration().Servers {
		if raftState(s.Suffrage) == RaftVoter {
			n++
		}
	}
	return n, nil
}

// AddServer adds s to Raft as a nonvoter (autopilot promotes it once
// stable), or, if its ID is already a voter or staging, updates its address
// keeping its vote. Servers holding s's address under another ID are
// removed first, unless that would remove more voters than a quorum can
// spare (an error, with nothing changed). A server already present with
// the same ID and address is left as it is. Then dead servers are removed.
func (a *Autopilot) AddServer(s *Server) error {
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		a.logger.Error("failed to get raft configuration", "error", err)
		return err
	}
	voters, keepVote := 0, false
	var sameAddress []raft.Server
	for _, rs := range f.Configuration().Servers {
		if rs.Suffrage == raft.Voter {
			voters++
		}
		switch {
		case rs.ID == s.ID && rs.Address == s.Address:
			return nil
		case rs.ID == s.ID:
			keepVote = rs.Suffrage == raft.Voter || rs.Suffrage == raft.Staging
		case rs.Address == s.Address:
			sameAddress = append(sameAddress, rs)
		}
	}
	votersOut := 0
	for _, rs := range sameAddress {
		if rs.Suffrage == raft.Voter {
			votersOut++
		}
	}
	if votersOut > voters-(voters/2+1) {
		return fmt.Errorf("preventing server addition that would require removal of too many servers and cause cluster instability")
	}
	// Voters holding the address go first, then the others.
	for _, voterPass := range []bool{true, false} {
		for _, rs := range sameAddress {
			if (rs.Suffrage == raft.Voter) != voterPass {
				continue
			}
			if err := a.removeServer(rs.ID); err != nil {
				return fmt.Errorf("error removing server %q with duplicate address %q: %w", rs.ID, s.Address, err)
			}
			a.logger.Info("removed server with duplicate address", "address", s.Address)
		}
	}
	var err error
	if keepVote {
		err = a.raft.AddVoter(s.ID, s.Address, 0, 0).Error()
	} else {
		err = a.raft.AddNonvoter(s.ID, s.Address, 0, 0).Error()
	}
	if err != nil {
		a.logger.Error("failed to add raft peer", "id", s.ID, "address", s.Address, "voter", keepVote, "error", err)
		return err
	}
	a.RemoveDeadServers()
	return nil
}

// RemoveServer removes server id from Raft if the latest configuration
// holds it.
func (a *Autopilot) RemoveServer(id raft.ServerID) error {
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		a.logger.Error("failed to get raft configuration", "error", err)
		return err
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == id {
			return a.removeServer(id)
		}
	}
	return nil
}

func (a *Autopilot) removeServer(id raft.ServerID) error {
	a.logger.Debug("removing server by ID", "id", id)
	if err := a.raft.RemoveServer(id, 0, 0).Error(); err != nil {
		a.logger.Error("failed to remove raft server", "id", id, "error", err)
		return err
	}
	a.logger.Info("removed server", "id", id)
	return nil
}
