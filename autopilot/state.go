package autopilot

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/seed48a2b68f/raft"
)

// stateInputs is everything a new State is made from.
type stateInputs struct {
	now       time.Time
	startedAt time.Time
	conf      *Config
	raftConf  raft.Configuration
	known     map[raft.ServerID]*Server
	stats     map[raft.ServerID]*ServerStats
	leader    raft.ServerID
	// leaderTerm and leaderIndex are what health is measured against: this
	// node's own when it leads, else the leader's fetched statistics (0:
	// no leader known, every server unhealthy).
	leaderTerm, leaderIndex uint64
	previous                *State
}

// gather collects the inputs of the next state.
func (a *Autopilot) gather(ctx context.Context) (*stateInputs, error) {
	in := &stateInputs{now: a.time.Now(), previous: a.GetState()}
	in.startedAt = in.previous.startedAt
	if in.startedAt.IsZero() {
		in.startedAt = in.now
	}
	if in.conf = a.delegate.AutopilotConfig(); in.conf == nil {
		return nil, fmt.Errorf("delegate did not return an Autopilot configuration")
	}
	f := a.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("failed to get the Raft configuration: %w", err)
	}
	in.raftConf = f.Configuration()
	in.known = a.delegate.KnownServers()
	for id, s := range in.known {
		if s.IsLeader {
			in.leader = id
			break
		}
	}
	if in.leader == "" {
		addr := a.raft.Leader()
		for _, s := range in.raftConf.Servers {
			if addr != "" && s.Address == addr {
				in.leader = s.ID
			}
		}
	}
	ownIndex := a.raft.LastIndex()
	isLeader := a.raft.State() == raft.Leader
	ownTerm, err := strconv.ParseUint(a.raft.Stats()["last_log_term"], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("failed to determine the last Raft term: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	alive := make(map[raft.ServerID]*Server, len(in.known))
	for id, s := range in.known {
		if s.NodeStatus != NodeLeft {
			alive[id] = s
		}
	}
	fetch, cancel := context.WithDeadline(ctx, in.now.Add(a.updateInterval/2))
	in.stats = a.delegate.FetchServerStats(fetch, alive)
	cancel()
	if isLeader {
		in.leaderTerm, in.leaderIndex = ownTerm, ownIndex
	} else if s, ok := in.stats[in.leader]; ok && s != nil {
		in.leaderTerm, in.leaderIndex = s.LastTerm, s.LastIndex
	}
	return in, ctx.Err()
}

// makeState computes the next State from its inputs.
func makeState(in *stateInputs, p Promoter) *State {
	st := &State{startedAt: in.startedAt, Healthy: true, Servers: make(map[raft.ServerID]*ServerState, len(in.raftConf.Servers))}
	for _, rs := range in.raftConf.Servers {
		s := serverState(in, rs)
		if ext := p.GetServerExt(in.conf, s); ext != nil {
			s.Server.Ext = ext
		}
		st.Servers[rs.ID] = s
	}
	healthyVoters := 0
	for id, s := range st.Servers {
		st.Healthy = st.Healthy && s.Health.Healthy
		if s.State == RaftLeader {
			st.Leader = id
		}
		if s.HasVotingRights() {
			st.Voters = append(st.Voters, id)
			if s.Health.Healthy {
				healthyVoters++
			}
		}
	}
	st.FailureTolerance = max(0, healthyVoters-(len(st.Voters)/2+1))
	if ext := p.GetStateExt(in.conf, st); ext != nil {
		st.Ext = ext
	}
	for id, t := range p.GetNodeTypes(in.conf, st) {
		if s, ok := st.Servers[id]; ok {
			s.Server.NodeType = t
		}
	}
	SortServers(st.Voters, st)
	return st
}

// raftState maps a suffrage to the state autopilot reports. A server in a
// joint configuration votes in one half at least, and counts as a voter.
func raftState(s raft.ServerSuffrage) RaftState {
	switch s {
	case raft.Voter, raft.JointIncoming, raft.JointOutgoing, raft.JointDemoting:
		return RaftVoter
	case raft.Nonvoter:
		return RaftNonVoter
	case raft.Staging:
		return RaftStaging
	}
	return RaftNone
}

// serverState makes one server's state: Raft's view, then the previous
// state's, then the application's, then the fresh statistics, each
// overriding the one before; health is judged last.
func serverState(in *stateInputs, rs raft.Server) *ServerState {
	s := &ServerState{Server: Server{ID: rs.ID, Address: rs.Address}, State: raftState(rs.Suffrage)}
	prev, seen := in.previous.Servers[rs.ID]
	if seen {
		s.Server, s.Stats, s.Health = prev.Server, prev.Stats, prev.Health
	}
	if k, ok := in.known[rs.ID]; ok && k != nil {
		s.Server = *k
	} else {
		s.Server.NodeStatus = NodeLeft
	}
	s.Server.Address = rs.Address // Raft's address is the one that counts
	if rs.ID == in.leader {
		s.State = RaftLeader
		s.Server.IsLeader = true
	}
	if st, ok := in.stats[rs.ID]; ok && st != nil {
		s.Stats = *st
	}
	healthy := healthyServer(s, in.leaderTerm, in.leaderIndex, in.conf)
	if !seen || prev.Health.Healthy != healthy {
		s.Health.StableSince = in.now
	}
	s.Health.Healthy = healthy
	return s
}

// healthyServer reports whether s is healthy measured against the leader's
// last term and index: the application says it is alive, it heard from
// the leader within LastContactThreshold, its log ends in the leader's term
// and at most MaxTrailingLogs behind. With no leader, nobody is healthy.
func healthyServer(s *ServerState, leaderTerm, leaderIndex uint64, c *Config) bool {
	switch {
	case leaderTerm == 0 || leaderIndex == 0:
		return false
	case s.Server.NodeStatus != NodeAlive:
		return false
	case s.Stats.LastContact < 0 || s.Stats.LastContact > c.LastContactThreshold:
		return false
	case s.Stats.LastTerm != leaderTerm:
		return false
	}
	return s.Stats.LastIndex+c.MaxTrailingLogs >= leaderIndex
}

// updateState makes a new state, publishes it and tells the application.
func (a *Autopilot) updateState(ctx context.Context) {
	s, err := a.ComputeState(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.logger.Error("Error when computing next state", "error", err)
		}
		return
	}
	a.setState(s)
	a.delegate.NotifyState(s)
}

// ComputeState makes a state as the background work does, without keeping
// it; for testing promoters and applications.
func (a *Autopilot) ComputeState(ctx context.Context) (*State, error) {
	in, err := a.gather(ctx)
	if err != nil {
		return nil, err
	}
	return makeState(in, a.promoter), nil
}

// SortServers orders ids by ServerLessThan.
func SortServers(ids []raft.ServerID, s *State) {
	slices.SortStableFunc(ids, func(x, y raft.ServerID) int {
		switch {
		case ServerLessThan(x, y, s):
			return -1
		case ServerLessThan(y, x, s):
			return 1
		}
		return 0
	})
}

// ServerLessThan reports whether server id1 comes before id2 in s: the
// leader first, then voters before the others, then healthy before
// unhealthy, then (equally healthy) the one whose health has held longer
// if healthy, shorter if not, and last by ID.
func ServerLessThan(id1 raft.ServerID, id2 raft.ServerID, s *State) bool {
	a, b := s.Servers[id1], s.Servers[id2]
	if a.State == RaftLeader || b.State == RaftLeader {
		return a.State == RaftLeader
	}
	if av, bv := a.State == RaftVoter, b.State == RaftVoter; av != bv {
		return av
	}
	if a.Health.Healthy != b.Health.Healthy {
		return a.Health.Healthy
	}
	if !a.Health.StableSince.Equal(b.Health.StableSince) {
		// Healthy: longer stable first; unhealthy: longer failing last.
		return a.Health.StableSince.Before(b.Health.StableSince) == a.Health.Healthy
	}
	return id1 < id2
}
