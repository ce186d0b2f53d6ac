package raft

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ProtocolVersion numbers the forms of RPC messages and log entries a server
// can read. Version 3, the default, identifies servers by ID; versions 1 and
// 2 exist for rolling upgrades from old clusters.
type ProtocolVersion int

const (
	// ProtocolVersionMin is the oldest protocol version this library reads.
	ProtocolVersionMin ProtocolVersion = 0
	// ProtocolVersionMax is the newest protocol version this library reads.
	ProtocolVersionMax = 3
)

// SnapshotVersion numbers the forms of snapshot metadata. This library
// reads 0 and 1 and writes 1.
type SnapshotVersion int

const (
	// SnapshotVersionMin is the oldest snapshot version read.
	SnapshotVersionMin SnapshotVersion = 0
	// SnapshotVersionMax is the newest snapshot version read, and the one
	// written.
	SnapshotVersionMax = 1
)

// SuggestedMaxDataSize is the advised upper bound for the Data of one log
// entry. Nothing enforces it.
const SuggestedMaxDataSize = 512 * 1024

// Config holds a node's settings. Its fields and their defaults
// (DefaultConfig) are hashicorp/raft v1.8's.
type Config struct {
	// ProtocolVersion is the protocol this server speaks: 1 to 3, 3 by
	// default. A lower one lets it join a cluster of older servers.
	ProtocolVersion ProtocolVersion

	// HeartbeatTimeout is how long a follower goes without hearing from a
	// leader before it stands for election (randomized up to twice this),
	// and how long a voter counts a leader it has heard from as live:
	// within it, vote requests from other candidates are refused.
	HeartbeatTimeout time.Duration

	// ElectionTimeout is how long a candidate waits for an election's
	// outcome before starting another (randomized up to twice this).
	ElectionTimeout time.Duration

	// CommitTimeout is the longest a leader lets followers wait, when no
	// new entries arrive, before it sends them an AppendEntries anyway, so
	// that they learn the commit index promptly.
	CommitTimeout time.Duration

	// MaxAppendEntries caps the entries of one AppendEntries and of one
	// group commit written to the LogStore.
	MaxAppendEntries int

	// BatchApplyCh is accepted for compatibility. Applies are always queued
	// without a per-entry channel hand-off in this library, so it changes
	// nothing.
	BatchApplyCh bool

	// ShutdownOnRemove makes a node shut itself down once its removal
	// from the configuration is committed; without it the node stays, a
	// follower that never stands for election. A leader merely demoted to
	// nonvoter always stays, as a follower (hashicorp/raft shuts it down
	// too).
	ShutdownOnRemove bool

	// TrailingLogs is how many entries a snapshot leaves in the log
	// before its index, for followers a little behind to catch up from.
	TrailingLogs uint64

	// SnapshotInterval is how often the node considers taking a snapshot,
	// at a random time between this and twice this.
	SnapshotInterval time.Duration

	// SnapshotThreshold is how many entries past the last snapshot make
	// the next one worth taking (checked every SnapshotInterval).
	SnapshotThreshold uint64

	// LeaderLeaseTimeout: a leader that has not heard from a quorum for
	// this long steps down. At most HeartbeatTimeout.
	LeaderLeaseTimeout time.Duration

	// LocalID is this server's ID; required, and never reused.
	LocalID ServerID

	// NotifyCh, when set, receives true when this node becomes leader and
	// false when it stops. The node waits on the send, so read it
	// promptly or give it a buffer.
	NotifyCh chan<- bool

	// LogOutput receives the logs when Logger is nil; os.Stderr if nil too.
	LogOutput io.Writer

	// LogLevel is the level of the logger built from LogOutput, by name
	// ("DEBUG", "INFO", ...); an unknown name means hclog.NoLevel.
	LogLevel string

	// Logger, when set, receives every log line; LogOutput and LogLevel are
	// then ignored.
	Logger hclog.Logger

	// NoSnapshotRestoreOnStart skips restoring the newest snapshot into
	// the FSM at start, for an FSM that keeps its own durable state.
	NoSnapshotRestoreOnStart bool

	// PreVoteDisabled makes candidates skip the pre-vote round.
	PreVoteDisabled bool

	// NoLegacyTelemetry drops the old metrics that put peer IDs in their
	// names, keeping only the labelled ones.
	NoLegacyTelemetry bool

	// RestoreCommittedLogs makes NewRaft replay the entries the
	// CommitTrackingLogStore knows to be committed before it returns.
	RestoreCommittedLogs bool

	// LeaseReads lets the leader answer ReadIndex (and ReadBarrier) from a
	// lease, without a round of heartbeats, while the lease holds. (Not in
	// hashicorp/raft.)
	//
	// The lease rule. The leader notes, for each voter, when it sent the
	// newest heartbeat that voter acknowledged. The lease starts at the
	// newest time by which a quorum of voters (counting the leader itself)
	// had acknowledged heartbeats sent at or after it, and lasts
	// HeartbeatTimeout / (1 + LeaseClockDrift) from there, on the leader's
	// monotonic clock. It holds because a voter refuses votes and pre-votes
	// for one HeartbeatTimeout after it last heard from its leader (and for
	// one HeartbeatTimeout after it starts), so no quorum can elect another
	// leader before the lease ends. No lease is used before an entry of
	// the leader's term has committed, while a configuration change is
	// uncommitted, or while a leadership transfer runs; starting a transfer
	// (before TimeoutNow is sent) or appending a configuration ends the
	// current lease, and only heartbeats sent after that start a new one.
	// A leader that steps down has none.
	//
	// The clock assumption: no node's clock runs faster than another's by
	// more than the factor 1 + LeaseClockDrift over a HeartbeatTimeout, and
	// every voter runs this library with the same HeartbeatTimeout (or a
	// larger one). A hashicorp/raft voter that restarts votes at once, so do
	// not use leases in a mixed cluster.
	LeaseReads bool

	// LeaseClockDrift bounds how much faster one node's clock may run than
	// another's, as a fraction (0.1: 10%). Zero means the default, 0.1, far
	// above the drift of real clocks (parts per million), so that a lease
	// ends well before any other leader can be elected. Negative values
	// are refused.
	LeaseClockDrift float64

	// RandomSeed seeds this node's timer jitter. Zero picks a random seed.
	// Tests set it, with a virtual clock, to make elections reproducible.
	// (Not in hashicorp/raft.)
	RandomSeed uint64

	// skipStartup lets GetConfiguration build a Raft without goroutines.
	skipStartup bool
}

// ReloadableConfig holds the Config fields that Raft.ReloadConfig can change
// on a running node.
type ReloadableConfig struct {
	// TrailingLogs: see Config.TrailingLogs.
	TrailingLogs uint64
	// SnapshotInterval: see Config.SnapshotInterval.
	SnapshotInterval time.Duration
	// SnapshotThreshold: see Config.SnapshotThreshold.
	SnapshotThreshold uint64
	// HeartbeatTimeout: see Config.HeartbeatTimeout.
	HeartbeatTimeout time.Duration
	// ElectionTimeout: see Config.ElectionTimeout.
	ElectionTimeout time.Duration
}

// apply returns a copy of base with the reloadable fields of rc.
func (rc *ReloadableConfig) apply(base Config) Config {
	base.TrailingLogs = rc.TrailingLogs
	base.SnapshotInterval = rc.SnapshotInterval
	base.SnapshotThreshold = rc.SnapshotThreshold
	base.HeartbeatTimeout = rc.HeartbeatTimeout
	base.ElectionTimeout = rc.ElectionTimeout
	return base
}

func (rc *ReloadableConfig) fromConfig(from Config) {
	rc.TrailingLogs = from.TrailingLogs
	rc.SnapshotInterval = from.SnapshotInterval
	rc.SnapshotThreshold = from.SnapshotThreshold
	rc.HeartbeatTimeout = from.HeartbeatTimeout
	rc.ElectionTimeout = from.ElectionTimeout
}

// DefaultConfig returns hashicorp/raft's defaults; set LocalID before use.
func DefaultConfig() *Config {
	return &Config{
		ProtocolVersion:    ProtocolVersionMax,
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		MaxAppendEntries:   64,
		ShutdownOnRemove:   true,
		TrailingLogs:       10240,
		SnapshotInterval:   120 * time.Second,
		SnapshotThreshold:  8192,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		LogLevel:           "DEBUG",
	}
}

// ValidateConfig checks a Config before use. It runs the same
// ten checks as hashicorp/raft, in the same order, with the same messages,
// each naming the offending field.
func ValidateConfig(config *Config) error {
	if config == nil {
		return fmt.Errorf("config cannot be nil")
	}
	// Version 0 is known but no longer runs; the lowest accepted is 1.
	protocolMin := ProtocolVersionMin
	if protocolMin == 0 {
		protocolMin = 1
	}
	if config.ProtocolVersion < protocolMin ||
		config.ProtocolVersion > ProtocolVersionMax {
		return fmt.Errorf("ProtocolVersion %d must be >= %d and <= %d",
			config.ProtocolVersion, protocolMin, ProtocolVersionMax)
	}
	if len(config.LocalID) == 0 {
		return fmt.Errorf("LocalID cannot be empty")
	}
	if config.HeartbeatTimeout < 5*time.Millisecond {
		return fmt.Errorf("HeartbeatTimeout is too low")
	}
	if config.ElectionTimeout < 5*time.Millisecond {
		return fmt.Errorf("ElectionTimeout is too low")
	}
	if config.CommitTimeout < time.Millisecond {
		return fmt.Errorf("CommitTimeout is too low")
	}
	if config.MaxAppendEntries <= 0 {
		return fmt.Errorf("MaxAppendEntries must be positive")
	}
	if config.MaxAppendEntries > 1024 {
		return fmt.Errorf("MaxAppendEntries is too large")
	}
	if config.SnapshotInterval < 5*time.Millisecond {
		return fmt.Errorf("SnapshotInterval is too low")
	}
	if config.LeaderLeaseTimeout < 5*time.Millisecond {
		return fmt.Errorf("LeaderLeaseTimeout is too low")
	}
	if config.LeaderLeaseTimeout > config.HeartbeatTimeout {
		return fmt.Errorf("LeaderLeaseTimeout (%s) cannot be larger than heartbeat timeout (%s)", config.LeaderLeaseTimeout, config.HeartbeatTimeout)
	}
	if config.ElectionTimeout < config.HeartbeatTimeout {
		return fmt.Errorf("ElectionTimeout (%s) must be equal or greater than Heartbeat Timeout (%s)", config.ElectionTimeout, config.HeartbeatTimeout)
	}
	if config.LeaseClockDrift < 0 || config.LeaseClockDrift != config.LeaseClockDrift {
		return fmt.Errorf("LeaseClockDrift (%v) must be zero (the default) or positive", config.LeaseClockDrift)
	}
	return nil
}

// defaultLeaseClockDrift is LeaseClockDrift's value when it is zero.
const defaultLeaseClockDrift = 0.1

// leaseDuration is how long a lease lasts from its start on the leader's
// clock: one heartbeat timeout, shortened by the clock drift allowed.
func leaseDuration(heartbeatTimeout time.Duration, drift float64) time.Duration {
	if drift == 0 {
		drift = defaultLeaseClockDrift
	}
	return time.Duration(float64(heartbeatTimeout) / (1 + drift))
}

// newLogger builds the logger NewRaft uses when Config.Logger is nil.
func newLogger(conf *Config) hclog.Logger {
	if conf.Logger != nil {
		return conf.Logger
	}
	out := conf.LogOutput
	if out == nil {
		out = os.Stderr
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.LevelFromString(conf.LogLevel),
		Output: out,
	})
}
