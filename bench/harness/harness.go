// Package harness holds what the benchmark tool shares between the two
// libraries: the options of one run, the cluster a library builds, and
// the workload that drives it. Nothing here imports a raft library; the
// packages under libs/ build clusters, one per library, from one source.
package harness

import (
	"errors"
	"time"
)

// Scenario names a cluster shape.
type Scenario string

// The scenarios of the comparison.
const (
	// S1: 3 nodes, in-memory transport and stores.
	S1 Scenario = "S1"
	// S2: 3 nodes, TCP on loopback, bolt stores with fsync, file snapshots.
	S2 Scenario = "S2"
	// S3: 1 node, bolt store with fsync.
	S3 Scenario = "S3"
	// Failover: 3 nodes on TCP with in-memory stores and LAN timeouts;
	// the leader is killed and the time to the next commit measured.
	Failover Scenario = "failover"
	// R: S2's cluster under linearizable reads only (Cluster.Read).
	R Scenario = "R"
	// RW: S2's cluster, each client doing nine reads for every write (an
	// Apply of the payload on the leader).
	RW Scenario = "RW"
	// S2g: S2 with our nodes on grpctransport (gRPC on loopback); the
	// hashicorp/raft row is its TCP transport, as in S2 (its gRPC
	// transport, Jille's, is not served here).
	S2g Scenario = "S2g"
)

// ReadMode is how our library reads in a read cell. hashicorp/raft has one
// way, whatever the mode: VerifyLeader on the leader, then a wait until the
// applied index reaches the commit index.
type ReadMode string

// The read modes.
const (
	// ReadRound: ReadBarrier on the leader, confirmed by a round of
	// heartbeats (ReadByRound).
	ReadRound ReadMode = "round"
	// ReadLease: ReadBarrier on the leader from its lease (ReadByLease).
	ReadLease ReadMode = "lease"
	// ReadSpread: ReadBarrier by round on every node, client i on node
	// i mod 3.
	ReadSpread ReadMode = "spread"
)

// Base is the scenario whose cluster a scenario runs on.
func (s Scenario) Base() Scenario {
	if s == R || s == RW || s == S2g {
		return S2
	}
	return s
}

// Options describe one cluster.
type Options struct {
	Scenario Scenario
	Dir      string // for bolt files and snapshots
	// PlainStore opens our raftbolt store without its journal, as
	// NewBoltStore does (what a program moved over from hashicorp/raft
	// gets unless it asks for the journal). hashicorp's raft-boltdb has
	// one mode and ignores it.
	PlainStore bool
	// GRPC runs our nodes on grpctransport instead of the TCP transport
	// (scenario S2g); hashicorp's ignore it.
	GRPC bool
}

// Cluster is a running cluster of one library.
type Cluster interface {
	// Nodes is the number of nodes.
	Nodes() int
	// Leader returns the index of the node that is leader now, or -1.
	Leader() int
	// Apply applies data through node i and waits for it to be applied.
	Apply(i int, data []byte) error
	// Read makes a linearizable read possible on node i: once it returns
	// nil, node i's state machine reflects every write acknowledged
	// before the call.
	Read(i int, mode ReadMode) error
	// Kill stops node i at once (its transport too).
	Kill(i int) error
	// Close stops every node and releases its files.
	Close() error
}

// ErrNoLeader is returned when no leader appears in time.
var ErrNoLeader = errors.New("no leader")

// WaitLeader polls until some live node leads.
func WaitLeader(c Cluster, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l := c.Leader(); l >= 0 {
			return l, nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return -1, ErrNoLeader
}
