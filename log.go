package raft

import (
	"fmt"
	"time"
)

// LogType describes the kind of a log entry. The numbers are stored in logs
// and sent on the wire, so they are never renumbered.
type LogType uint8

const (
	// LogCommand carries an application command for the FSM.
	LogCommand LogType = iota
	// LogNoop is the empty entry a new leader writes in its term.
	LogNoop
	// LogAddPeerDeprecated added a peer under protocol version 0.
	LogAddPeerDeprecated
	// LogRemovePeerDeprecated removed a peer under protocol version 0; it
	// carries the whole list of voter addresses.
	LogRemovePeerDeprecated
	// LogBarrier is written by Barrier; once it is applied, so is
	// everything before it.
	LogBarrier
	// LogConfiguration carries a new membership configuration.
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

// Log is one entry of the replicated log.
type Log struct {
	// Index is the entry's position in the log, from 1.
	Index uint64
	// Term is the term of the leader that created the entry.
	Term uint64
	// Type says how to read Data.
	Type LogType
	// Data is the entry's content: the command for LogCommand, the
	// encoded configuration for LogConfiguration.
	Data []byte
	// Extensions is opaque to the library: replicated and stored with the
	// entry, for layers between the application and Raft.
	Extensions []byte
	// AppendedAt is when the leader first stored the entry; followers keep
	// the leader's time.
	AppendedAt time.Time
}

// LogStore keeps the log durably. Its methods are called concurrently: the
// main loop appends while the snapshot goroutine compacts and replication
// reads.
type LogStore interface {
	// FirstIndex is the lowest index held, 0 when empty.
	FirstIndex() (uint64, error)
	// LastIndex is the highest index held, 0 when empty.
	LastIndex() (uint64, error)
	// GetLog fills log with the entry at index, or returns ErrLogNotFound
	// (possibly wrapped) when there is none.
	GetLog(index uint64, log *Log) error
	// StoreLog stores one entry, durably, as StoreLogs.
	StoreLog(log *Log) error
	// StoreLogs stores entries, replacing any at the same indexes. When it
	// returns nil they must survive a crash: the library acknowledges them
	// to the leader at once.
	StoreLogs(logs []*Log) error
	// DeleteRange removes the entries from min to max, both included.
	DeleteRange(min, max uint64) error
}

// MonotonicLogStore is a LogStore that can tell it cannot hold a gap between
// indexes. When IsMonotonic returns true, installing a snapshot empties the
// whole log instead of keeping entries past a gap.
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

// StableStore keeps a few durable values under fixed keys: the current term
// and the last vote. A missing key is reported by an error whose text is
// "not found" (hashicorp/raft compares the text, so stores written for it do
// exactly that).
type StableStore interface {
	Set(key []byte, val []byte) error
	// Get returns key's value; a missing key is an error "not found".
	Get(key []byte) ([]byte, error)
	SetUint64(key []byte, val uint64) error
	// GetUint64 returns key's number; a missing key gives 0 with an error
	// "not found", or 0 with no error (as InmemStore does).
	GetUint64(key []byte) (uint64, error)
}

func isMonotonic(s LogStore) bool {
	m, ok := s.(MonotonicLogStore)
	return ok && m.IsMonotonic()
}
