package autopilot

import (
	"context"
	"time"

	"github.com/seed48a2b68f/raft"
)

// Raft is what autopilot uses of a Raft node. *raft.Raft implements it; a
// test may give a double. When the value also has ChangeConfiguration (as
// *raft.Raft does), several changes decided together are made in one joint
// configuration change.
type Raft interface {
	AddNonvoter(id raft.ServerID, address raft.ServerAddress, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	AddVoter(id raft.ServerID, address raft.ServerAddress, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	DemoteVoter(id raft.ServerID, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	LastIndex() uint64
	Leader() raft.ServerAddress
	GetConfiguration() raft.ConfigurationFuture
	RemoveServer(id raft.ServerID, prevIndex uint64, timeout time.Duration) raft.IndexFuture
	Stats() map[string]string
	LeadershipTransferToServer(id raft.ServerID, address raft.ServerAddress) raft.Future
	State() raft.RaftState
}

// jointChanger is the optional part of Raft that applies many membership
// changes at once.
type jointChanger interface {
	ChangeConfiguration(next raft.Configuration, prevIndex uint64, timeout time.Duration) raft.IndexFuture
}

// ApplicationIntegration is what the application tells autopilot and is
// told by it.
type ApplicationIntegration interface {
	// AutopilotConfig returns the settings to use now; nil skips the
	// round.
	AutopilotConfig() *Config
	// NotifyState is called with every new State (for metrics, say).
	NotifyState(*State)
	// FetchServerStats returns the Raft statistics of the given servers,
	// usually by asking each one. It must return by the context's deadline
	// (half the update interval); servers missing from the answer keep
	// their previous statistics.
	FetchServerStats(context.Context, map[raft.ServerID]*Server) map[raft.ServerID]*ServerStats
	// KnownServers returns every server the application knows of, failed
	// and left ones included.
	KnownServers() map[raft.ServerID]*Server
	// RemoveFailedServer asks the application to remove a failed server
	// (and from Raft too, in the way it chooses). It should return at once,
	// doing slow work on a goroutine of its own.
	RemoveFailedServer(*Server)
}

// Config holds autopilot's settings; the application returns it from
// AutopilotConfig.
type Config struct {
	// CleanupDeadServers lets autopilot remove failed servers and servers
	// the application no longer knows.
	CleanupDeadServers bool
	// LastContactThreshold: a server that has not heard from the leader for
	// longer is unhealthy.
	LastContactThreshold time.Duration
	// MaxTrailingLogs: a server further behind the leader's last index is
	// unhealthy.
	MaxTrailingLogs uint64
	// MinQuorum: dead servers are not removed if fewer potential voters
	// than this would remain.
	MinQuorum uint
	// ServerStabilizationTime: how long a server must have been healthy
	// before the stable promoter makes it a voter.
	ServerStabilizationTime time.Duration
	// Ext is for the application's or its promoter's own settings.
	Ext interface{}
}

// NodeStatus is a server's health as the application sees it (membership,
// not Raft).
type NodeStatus string

// The node statuses.
const (
	NodeUnknown NodeStatus = "unknown"
	NodeAlive   NodeStatus = "alive"
	NodeFailed  NodeStatus = "failed"
	NodeLeft    NodeStatus = "left"
)

// NodeType classifies a server for a promoter.
type NodeType string

// NodeVoter is the type of a server that may vote.
const NodeVoter NodeType = "voter"

// RaftState is a server's place in the Raft configuration.
type RaftState string

// The Raft states of a server.
const (
	RaftNone     RaftState = "none"
	RaftLeader   RaftState = "leader"
	RaftVoter    RaftState = "voter"
	RaftNonVoter RaftState = "non-voter"
	RaftStaging  RaftState = "staging"
)

// IsPotentialVoter reports whether a server in this state votes or is on
// its way to (voter, leader or staging).
func (s RaftState) IsPotentialVoter() bool {
	return s == RaftVoter || s == RaftStaging || s == RaftLeader
}

// Server is one server as the application describes it.
type Server struct {
	ID          raft.ServerID
	Name        string
	Address     raft.ServerAddress
	NodeStatus  NodeStatus
	Version     string
	Meta        map[string]string
	RaftVersion int
	IsLeader    bool

	NodeType NodeType
	Ext      interface{}
}

// ServerStats are a server's Raft statistics.
type ServerStats struct {
	// LastContact is how long ago the server last heard from the leader.
	LastContact time.Duration
	// LastTerm is the newest term in the server's log.
	LastTerm uint64
	// LastIndex is the server's last log index.
	LastIndex uint64
}

// ServerHealth is what autopilot concluded about a server.
type ServerHealth struct {
	// Healthy: alive, in touch with the leader, on its term and not too
	// far behind (see Config).
	Healthy bool
	// StableSince is when Healthy last changed (or the server was first
	// seen).
	StableSince time.Time
}

// IsStable reports whether the server is healthy and has been for at least
// minStableDuration at now.
func (h *ServerHealth) IsStable(now time.Time, minStableDuration time.Duration) bool {
	return h != nil && h.Healthy && now.Sub(h.StableSince) >= minStableDuration
}

// ServerState is everything autopilot knows of one server.
type ServerState struct {
	Server Server
	State  RaftState
	Stats  ServerStats
	Health ServerHealth
}

// HasVotingRights reports whether the server votes now (a voter or the
// leader).
func (s *ServerState) HasVotingRights() bool {
	return s.State == RaftVoter || s.State == RaftLeader
}

// State is autopilot's view of the cluster, made anew every update
// interval. It is never changed once published: do not modify it.
type State struct {
	// Healthy: every server is healthy.
	Healthy bool
	// FailureTolerance is how many healthy voters could fail with a
	// quorum left.
	FailureTolerance int
	Servers          map[raft.ServerID]*ServerState
	Leader           raft.ServerID
	// Voters are the voting servers, leader first, then by health and how
	// long they have been stable (SortServers).
	Voters []raft.ServerID
	Ext    interface{}

	// startedAt is when the first state of this run was made.
	startedAt time.Time
}

// ServerStabilizationTime is the stabilization time the promoter should
// require: the configured one, or none while autopilot has not yet run
// that long (servers cannot have been seen stable for longer than it has
// run, and a restart of autopilot should not hold back promotions).
func (s *State) ServerStabilizationTime(c *Config) time.Duration {
	if time.Since(s.startedAt) > c.ServerStabilizationTime {
		return c.ServerStabilizationTime
	}
	return 0
}

// FailedServers lists the servers a pruning round may remove.
type FailedServers struct {
	// StaleNonVoters and StaleVoters are in the Raft configuration but
	// unknown to the application.
	StaleNonVoters []raft.ServerID
	StaleVoters    []raft.ServerID
	// FailedNonVoters and FailedVoters are known to the application and
	// not alive.
	FailedNonVoters []*Server
	FailedVoters    []*Server
}

// RaftChanges is what a promoter wants done.
type RaftChanges struct {
	Promotions []raft.ServerID
	Demotions  []raft.ServerID
	// Leader, when set and not the leader now, is where leadership should
	// move.
	Leader raft.ServerID
}

// Promoter decides promotions, demotions, leadership and which failed
// servers may go. Its methods must not block (no network calls) and must
// not modify their arguments.
type Promoter interface {
	// GetServerExt returns what to store in a server's Ext (nil: leave it).
	GetServerExt(*Config, *ServerState) interface{}
	// GetStateExt returns what to store in the state's Ext (nil: leave it).
	GetStateExt(*Config, *State) interface{}
	// GetNodeTypes returns the NodeType of servers to update.
	GetNodeTypes(*Config, *State) map[raft.ServerID]NodeType
	// CalculatePromotionsAndDemotions returns the changes to make.
	CalculatePromotionsAndDemotions(*Config, *State) RaftChanges
	// FilterFailedServerRemovals returns those of the failed and stale
	// servers that may be removed.
	FilterFailedServerRemovals(*Config, *State, *FailedServers) *FailedServers
	// IsPotentialVoter reports whether servers of a type may vote.
	IsPotentialVoter(NodeType) bool
}

// TimeProvider gives autopilot the time it stamps states with; tests may
// fix it.
type TimeProvider interface {
	Now() time.Time
}

type systemTime struct{}

func (systemTime) Now() time.Time { return time.Now() }

// ExecutionStatus says whether autopilot's goroutines run.
type ExecutionStatus string

// The execution statuses.
const (
	NotRunning   ExecutionStatus = "not-running"
	Running      ExecutionStatus = "running"
	ShuttingDown ExecutionStatus = "shutting-down"
)
