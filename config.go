package raft

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ProtocolVersion is the version of the protocol (which includes RPC messages
// as well as Raft-specific log entries) that this server can _understand_.
// Version 3, the default, uses server IDs; versions 1 and 2 exist for rolling
// upgrades from old clusters.
type ProtocolVersion int

const (
	// ProtocolVersionMin is the minimum protocol version understood.
	ProtocolVersionMin ProtocolVersion = 0
	// ProtocolVersionMax is the maximum protocol version understood.
	ProtocolVersionMax = 3
)

// SnapshotVersion is the version of snapshots that this server can
// understand. Snapshots are always created at version 1.
type SnapshotVersion int

const (
	// SnapshotVersionMin is the minimum snapshot version understood.
	SnapshotVersionMin SnapshotVersion = 0
	// SnapshotVersionMax is the maximum snapshot version understood.
	SnapshotVersionMax = 1
)

// SuggestedMaxDataSize is the advised upper bound for the Data of one log
// entry. Nothing enforces it.
const SuggestedMaxDataSize = 512 * 1024

// Config provides any necessary configuration for the Raft server. Its fields
// and defaults are those of hashicorp/raft v1.8.
type Config struct {
	// ProtocolVersion allows a Raft server to inter-operate with older
	// Raft servers running an older version of the code. Valid values are
	// 1 to 3; the default is 3.
	ProtocolVersion ProtocolVersion

	// HeartbeatTimeout specifies the time in follower state without contact
	// from a leader before we attempt an election.
	HeartbeatTimeout time.Duration

	// ElectionTimeout specifies the time in candidate state without contact
	// from a leader before we attempt an election.
	ElectionTimeout time.Duration

	// CommitTimeout specifies the time without an Apply operation before the
	// leader sends an AppendEntry RPC to followers, to ensure a timely commit
	// of log entries.
	CommitTimeout time.Duration

	// MaxAppendEntries controls the maximum number of append entries to send
	// at once, and the largest batch written to the LogStore in one call.
	MaxAppendEntries int

	// BatchApplyCh is accepted for compatibility. Applies are always queued
	// without a per-entry channel hand-off in this library, so it changes
	// nothing.
	BatchApplyCh bool

	// ShutdownOnRemove is used to shutdown Raft if it is removed from the
	// cluster. Otherwise, Raft remains running as a follower. A leader that
	// is only demoted to non-voter always stays running as a follower
	// (hashicorp/raft shuts it down too).
	ShutdownOnRemove bool

	// TrailingLogs controls how many logs we leave after a snapshot, so that
	// a slightly lagging follower can catch up from the log.
	TrailingLogs uint64

	// SnapshotInterval controls how often we check if we should perform a
	// snapshot. The check is randomly staggered between this value and 2x.
	SnapshotInterval time.Duration

	// SnapshotThreshold controls how many outstanding logs there must be
	// before we perform a snapshot.
	SnapshotThreshold uint64

	// LeaderLeaseTimeout is used to control how long the "lease" lasts for
	// being the leader without being able to contact a quorum of nodes. If we
	// reach this interval without contact, we will step down as leader.
	LeaderLeaseTimeout time.Duration

	// LocalID is a unique ID for this server across all time.
	LocalID ServerID

	// NotifyCh is used to provide a channel that will be notified of
	// leadership changes. Raft blocks writing to it, so it should be
	// buffered or read promptly.
	NotifyCh chan<- bool

	// LogOutput is used as a sink for logs, unless Logger is specified.
	// Defaults to os.Stderr.
	LogOutput io.Writer

	// LogLevel represents a log level. If the value does not match a known
	// logging level hclog.NoLevel is used.
	LogLevel string

	// Logger is a user-provided logger. If nil, a logger writing to
	// LogOutput with LogLevel is used.
	Logger hclog.Logger

	// NoSnapshotRestoreOnStart controls if raft will restore a snapshot to
	// the FSM on start. This is useful if your FSM recovers from other
	// mechanisms than raft snapshotting.
	NoSnapshotRestoreOnStart bool

	// PreVoteDisabled deactivates the pre-vote feature when set to true.
	PreVoteDisabled bool

	// NoLegacyTelemetry allows to disable the legacy metrics, which carry
	// peer IDs in their names, in favour of the labelled ones.
	NoLegacyTelemetry bool

	// RestoreCommittedLogs makes NewRaft replay the entries the
	// CommitTrackingLogStore knows to be committed before it returns.
	RestoreCommittedLogs bool

	// RandomSeed seeds this node's timer jitter. Zero picks a random seed.
	// Tests set it, with a virtual clock, to make elections reproducible.
	// (Not in hashicorp/raft.)
	RandomSeed uint64

	// skipStartup lets GetConfiguration build a Raft without goroutines.
	skipStartup bool
}

// ReloadableConfig is the subset of Config that may be reconfigured during
// runtime using raft.ReloadConfig.
type ReloadableConfig struct {
	// TrailingLogs controls how many logs we leave after a snapshot.
	TrailingLogs uint64
	// SnapshotInterval controls how often we check if we should perform a
	// snapshot.
	SnapshotInterval time.Duration
	// SnapshotThreshold controls how many outstanding logs there must be
	// before we perform a snapshot.
	SnapshotThreshold uint64
	// HeartbeatTimeout specifies the time in follower state without contact
	// from a leader before we attempt an election.
	HeartbeatTimeout time.Duration
	// ElectionTimeout specifies the time in candidate state without contact
	// from a leader before we attempt an election.
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

// DefaultConfig returns a Config with usable defaults: the same values as
// hashicorp/raft (LocalID must still be set).
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

// ValidateConfig is used to validate a sane configuration. It runs the same
// ten checks as hashicorp/raft, in the same order, with the same messages,
// each naming the offending field.
func ValidateConfig(config *Config) error {
	if config == nil {
		return fmt.Errorf("config cannot be nil")
	}
	// We don't actually support running as 0 in the library any more, but
	// we do understand it.
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
	return nil
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
