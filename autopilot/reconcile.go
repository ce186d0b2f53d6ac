package autopilot

import (
	"errors"
	"fmt"
	"slices"

	"github.com/seed48a2b68f/raft"
)

// reconcileChanges makes the promoter's changes: promotions of healthy
// nonvoters, demotions, and a leadership move. With joint consensus
// available, the promotions and demotions of one round are one
// configuration change; otherwise (or when a member cannot take part in
// one) they go one server at a time: with an odd number of voters a
// failed voter is demoted first, then promotions, and only when none was
// made, demotions.
func (a *Autopilot) reconcileChanges() error {
	if !a.ReconciliationEnabled() {
		return nil
	}
	conf := a.delegate.AutopilotConfig()
	if conf == nil {
		return nil
	}
	state := a.GetState()
	if state == nil || state.Leader == "" {
		return fmt.Errorf("cannot reconcile Raft server voting rights without a valid autopilot state")
	}
	changes := a.promoter.CalculatePromotionsAndDemotions(conf, state)
	promote := filterServers(changes.Promotions, state, func(s *ServerState) bool {
		return !s.HasVotingRights() && s.Health.Healthy
	})
	demote := filterServers(changes.Demotions, state, func(s *ServerState) bool { return s.State != RaftNonVoter })

	done, err := a.changeTogether(promote, demote)
	switch {
	case err != nil:
		return err
	case !done:
		if done, err := a.changeOneByOne(state, promote, demote); done || err != nil {
			return err
		}
	}
	if changes.Leader == "" || changes.Leader == state.Leader {
		return nil
	}
	target, ok := state.Servers[changes.Leader]
	if !ok {
		return fmt.Errorf("cannot transfer leadership to an unknown server with ID %s", changes.Leader)
	}
	a.logger.Info("Transferring leadership to new server", "id", target.Server.ID, "address", target.Server.Address)
	return a.raft.LeadershipTransferToServer(target.Server.ID, target.Server.Address).Error()
}

// filterServers keeps the ids that are in the state and for which keep
// reports true.
func filterServers(ids []raft.ServerID, state *State, keep func(*ServerState) bool) []*ServerState {
	var out []*ServerState
	for _, id := range ids {
		if s, ok := state.Servers[id]; ok && keep(s) {
			out = append(out, s)
		}
	}
	return out
}

// changeTogether makes the promotions and demotions in one
// ChangeConfiguration, when the Raft offers it and there are two changes
// or more. It reports false when it did not (nothing to batch, no joint
// consensus, or a member that cannot take part): the caller then goes one
// server at a time.
func (a *Autopilot) changeTogether(promote, demote []*ServerState) (bool, error) {
	jc, ok := a.raft.(jointChanger)
	if !ok || len(promote)+len(demote) < 2 {
		return false, nil
	}
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return false, err
	}
	next := f.Configuration()
	next.Servers = slices.Clone(next.Servers)
	set := func(id raft.ServerID, s raft.ServerSuffrage) {
		for i := range next.Servers {
			if next.Servers[i].ID == id {
				next.Servers[i].Suffrage = s
			}
		}
	}
	var ids []raft.ServerID
	for _, s := range promote {
		set(s.Server.ID, raft.Voter)
		ids = append(ids, s.Server.ID)
	}
	for _, s := range demote {
		set(s.Server.ID, raft.Nonvoter)
		ids = append(ids, s.Server.ID)
	}
	a.logger.Info("Changing voters in one joint configuration change", "promote", ids[:len(promote)], "demote", ids[len(promote):])
	err := jc.ChangeConfiguration(next, f.Index(), 0).Error()
	if errors.Is(err, raft.ErrJointConsensusUnsupported) {
		a.logger.Info("joint consensus unavailable, changing one server at a time", "error", err)
		return false, nil
	}
	if err != nil {
		return true, fmt.Errorf("failed changing voters %v: %w", ids, err)
	}
	return true, nil
}

// changeOneByOne makes the changes with single-server calls. It reports
// whether it changed anything (or failed), in which case leadership is
// left for the next round.
func (a *Autopilot) changeOneByOne(state *State, promote, demote []*ServerState) (bool, error) {
	if len(state.Voters)%2 == 1 {
		// An odd number of voters: one failed voter goes first, so the
		// promotions that follow keep the count odd.
		for _, s := range demote {
			if !s.Health.Healthy {
				a.logger.Info("Demoting server", "id", s.Server.ID, "address", s.Server.Address, "name", s.Server.Name)
				if err := a.raft.DemoteVoter(s.Server.ID, 0, 0).Error(); err != nil {
					return true, fmt.Errorf("failed demoting server %s: %w", s.Server.ID, err)
				}
				break
			}
		}
	}
	for _, s := range promote {
		a.logger.Info("Promoting server", "id", s.Server.ID, "address", s.Server.Address, "name", s.Server.Name)
		if err := a.raft.AddVoter(s.Server.ID, s.Server.Address, 0, 0).Error(); err != nil {
			return true, fmt.Errorf("failed promoting server %s: %w", s.Server.ID, err)
		}
	}
	if len(promote) > 0 {
		return true, nil
	}
	for _, s := range demote {
		a.logger.Info("Demoting server", "id", s.Server.ID, "address", s.Server.Address, "name", s.Server.Name)
		if err := a.raft.DemoteVoter(s.Server.ID, 0, 0).Error(); err != nil {
			return true, fmt.Errorf("failed demoting server %s: %w", s.Server.ID, err)
		}
	}
	return len(demote) > 0, nil
}
