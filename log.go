package raft

import (
	"fmt"
	"time"
)

// LogType describes the kind of a log entry. The numbers are stored in logs
// and sent on the wire, so they are never renumbered.
type LogType uint8

const (
	// LogCommand is applied to the user FSM.
	LogCommand LogType = iota
	// LogNoop is used to assert leadership.
	LogNoop
	// LogAddPeerDeprecated was used to add a peer (protocol version 0).
	LogAddPeerDeprecated
	// LogRemovePeerDeprecated was used to remove a peer (protocol version 0)
	// and carries a full list of voter addresses.
	LogRemovePeerDeprecated
	// LogBarrier is used to ensure all preceding operations have been
	// applied to the FSM.
	LogBarrier
	// LogConfiguration establishes a membership change configuration.
	LogConfiguration
)

// String returns the name of the log type, or its number if it is unknown.
func (lt LogType) String() string {
	switch lt {
	case LogCommand:
		return "LogCommand"
	case LogNoop:
		return "LogNoop"
	case LogAddPeerDeprecated:
		return "LogAddPeerDeprecated"
	case LogRemovePeerDeprecated:
		return "LogRemovePeerDeprecated"
	case LogBarrier:
		return "LogBarrier"
	case LogConfiguration:
		return "LogConfiguration"
	default:
		return fmt.Sprintf("%d", lt)
	}
}

// Log entries are replicated to all members of the Raft cluster and form the
// heart of the replicated state machine.
type Log struct {
	// Index holds the index of the log entry.
	Index uint64
	// Term holds the election term of the log entry.
	Term uint64
	// Type holds the type of the log entry.
	Type LogType
	// Data holds the log entry's type-specific data.
	Data []byte
	// Extensions holds an opaque byte slice of information for middleware.
	// It is replicated with the entry but never interpreted by the library.
	Extensions []byte
	// AppendedAt stores the time the leader first appended this log to its
	// LogStore. Followers keep the leader's value.
	AppendedAt time.Time
}

// LogStore is used to provide an interface for storing and retrieving logs in
// a durable fashion. Implementations must be safe for concurrent use: the main
// loop appends while the snapshot goroutine compacts and replication reads.
type LogStore interface {
	// FirstIndex returns the first index written. 0 for no entries.
	FirstIndex() (uint64, error)
	// LastIndex returns the last index written. 0 for no entries.
	LastIndex() (uint64, error)
	// GetLog gets a log entry at a given index. A missing index must be
	// reported with ErrLogNotFound (possibly wrapped).
	GetLog(index uint64, log *Log) error
	// StoreLog stores a log entry.
	StoreLog(log *Log) error
	// StoreLogs stores multiple log entries. When it returns nil the entries
	// must be durable: the library acknowledges them to the leader.
	StoreLogs(logs []*Log) error
	// DeleteRange deletes a range of log entries. The range is inclusive.
	DeleteRange(min, max uint64) error
}

// MonotonicLogStore is an optional interface for LogStore implementations that
// cannot tolerate gaps in between the Index values of consecutive log entries.
// When IsMonotonic returns true, installing a snapshot deletes the whole log
// rather than leaving a gap.
type MonotonicLogStore interface {
	IsMonotonic() bool
}

// CommitTrackingLogStore is a LogStore that also records the commit index, so
// that a restarted node can replay committed entries without waiting for a
// leader (Config.RestoreCommittedLogs).
type CommitTrackingLogStore interface {
	LogStore
	// StageCommitIndex records idx as committed. The value becomes durable
	// with the next StoreLogs at the latest.
	StageCommitIndex(idx uint64) error
	// GetCommitIndex returns the last durable commit index.
	GetCommitIndex() (uint64, error)
}

// StableStore is used to provide stable storage of key configurations, such
// as the current term and the last vote. A missing key must be reported with an
// error whose text is "not found" (hashicorp compares the text).
type StableStore interface {
	Set(key []byte, val []byte) error
	// Get returns the value for key, or an error "not found".
	Get(key []byte) ([]byte, error)
	SetUint64(key []byte, val uint64) error
	// GetUint64 returns the uint64 value for key, or 0 and an error
	// "not found" (or 0, nil, as InmemStore does).
	GetUint64(key []byte) (uint64, error)
}

func isMonotonic(s LogStore) bool {
	m, ok := s.(MonotonicLogStore)
	return ok && m.IsMonotonic()
}
