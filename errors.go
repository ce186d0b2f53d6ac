package raft

import "errors"

// The exported sentinel errors. Their texts are identical to hashicorp/raft's,
// because applications and peers match some of them by text. Compare them with
// errors.Is: errors returned by this package wrap them with context where that
// helps, and errors.Is sees through the wrapping.
var (
	// ErrLeader is returned when an operation can't be completed on a
	// leader node.
	ErrLeader = errors.New("node is the leader")

	// ErrNotLeader is returned when an operation can't be completed on a
	// follower or candidate node.
	ErrNotLeader = errors.New("node is not the leader")

	// ErrNotVoter is returned when an operation can't be completed on a
	// non-voter node.
	ErrNotVoter = errors.New("node is not a voter")

	// ErrLeadershipLost is returned when a leader fails to commit a log entry
	// because it's been deposed in the process. The entry may still be
	// committed by a later leader: the outcome is unknown to the caller.
	ErrLeadershipLost = errors.New("leadership lost while committing log")

	// ErrAbortedByRestore is returned when a leader fails to commit a log
	// entry because it's been superseded by a user snapshot restore.
	ErrAbortedByRestore = errors.New("snapshot restored while committing log")

	// ErrRaftShutdown is returned when operations are requested against an
	// inactive Raft.
	ErrRaftShutdown = errors.New("raft is already shutdown")

	// ErrEnqueueTimeout is returned when a command fails due to a timeout
	// while it was waiting to be accepted by the main loop.
	ErrEnqueueTimeout = errors.New("timed out enqueuing operation")

	// ErrNothingNewToSnapshot is returned when trying to create a snapshot
	// but there's nothing new committed to the FSM since we started.
	ErrNothingNewToSnapshot = errors.New("nothing new to snapshot")

	// ErrUnsupportedProtocol is returned when an operation is attempted
	// that's not supported by the current protocol version.
	ErrUnsupportedProtocol = errors.New("operation not supported with current protocol version")

	// ErrCantBootstrap is returned when attempt is made to bootstrap a
	// cluster that already has state present.
	ErrCantBootstrap = errors.New("bootstrap only works on new clusters")

	// ErrLeadershipTransferInProgress is returned when the leader is rejecting
	// client requests because it is attempting to transfer leadership.
	ErrLeadershipTransferInProgress = errors.New("leadership transfer in progress")

	// ErrTransportShutdown is returned when operations on a transport are
	// invoked after it's been terminated.
	ErrTransportShutdown = errors.New("transport shutdown")

	// ErrPipelineShutdown is returned when the pipeline is closed.
	ErrPipelineShutdown = errors.New("append pipeline closed")

	// ErrLogNotFound is what a LogStore returns for an index it does not
	// hold. Unlike hashicorp/raft, which compares with ==, this library
	// recognises it with errors.Is, so a store may wrap it with context.
	ErrLogNotFound = errors.New("log not found")

	// ErrPipelineReplicationNotSupported can be returned by the transport to
	// signal that pipeline replication is not supported in general, and that
	// no error message should be produced.
	ErrPipelineReplicationNotSupported = errors.New("pipeline replication not supported")

	// ErrIncompatibleLogStore is returned by NewRaft when
	// Config.RestoreCommittedLogs is set and the LogStore is not a
	// CommitTrackingLogStore.
	ErrIncompatibleLogStore = errors.New("log store does not implement some required methods or malformed")
)

// Texts produced on the wire that peers match.
const (
	errTextUnexpectedCommand = "unexpected command"
	errTextNoHeader          = "RPC does not have a header"
	errTextNotFound          = "not found"
)

// isNotFound reports whether a StableStore error means "missing key". Stores
// written for hashicorp/raft report it with an error whose text is exactly
// "not found"; we accept that and anything wrapping it.
func isNotFound(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e.Error() == errTextNotFound {
			return true
		}
	}
	return false
}
