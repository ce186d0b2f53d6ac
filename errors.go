package raft

import "errors"

// The exported sentinel errors. Their texts are identical to hashicorp/raft's,
// because applications and peers match some of them by text. Compare them with
// errors.Is: errors returned by this package wrap them with context where that
// helps, and errors.Is sees through the wrapping.
var (
	// ErrLeader: the operation is one a leader refuses (bootstrapping a
	// live cluster, for instance).
	ErrLeader = errors.New("node is the leader")

	// ErrNotLeader: the operation needs the leader and this node is a
	// follower or candidate. Nothing was done; retry on the leader.
	ErrNotLeader = errors.New("node is not the leader")

	// ErrNotVoter: the operation needs a voter and this node has no vote.
	ErrNotVoter = errors.New("node is not a voter")

	// ErrLeadershipLost: this node stopped leading before the entry was
	// committed. A later leader may still commit it, so the outcome is
	// unknown to the caller.
	ErrLeadershipLost = errors.New("leadership lost while committing log")

	// ErrAbortedByRestore: a user Restore replaced the log while the entry
	// waited to commit.
	ErrAbortedByRestore = errors.New("snapshot restored while committing log")

	// ErrRaftShutdown: the node has been shut down (or shut down while the
	// operation was pending).
	ErrRaftShutdown = errors.New("raft is already shutdown")

	// ErrEnqueueTimeout: the main loop did not take the operation within
	// its timeout. It was not started.
	ErrEnqueueTimeout = errors.New("timed out enqueuing operation")

	// ErrNothingNewToSnapshot: a snapshot was asked for before the FSM had
	// applied anything.
	ErrNothingNewToSnapshot = errors.New("nothing new to snapshot")

	// ErrUnsupportedProtocol: the configured protocol version is too old for
	// the operation.
	ErrUnsupportedProtocol = errors.New("operation not supported with current protocol version")

	// ErrCantBootstrap: bootstrapping needs empty stores, and these hold
	// state already.
	ErrCantBootstrap = errors.New("bootstrap only works on new clusters")

	// ErrLeadershipTransferInProgress: the leader is handing leadership over
	// and takes no new requests meanwhile. Nothing was done.
	ErrLeadershipTransferInProgress = errors.New("leadership transfer in progress")

	// ErrTransportShutdown: the transport was closed.
	ErrTransportShutdown = errors.New("transport shutdown")

	// ErrReadIndexUnsupported: the leader cannot serve ReadIndex (a
	// hashicorp/raft node), so a follower cannot read linearizably through
	// it. Nothing was done; read on the leader, or through it.
	ErrReadIndexUnsupported = errors.New("the leader does not support ReadIndex")

	// ErrJointConsensusUnsupported: ChangeConfiguration found a member of
	// the current or the next configuration that has not shown it
	// understands joint configurations (a hashicorp/raft node cannot, and
	// a member that does not answer may be one). Nothing was written;
	// change one server at a time (AddVoter, RemoveServer...) instead.
	ErrJointConsensusUnsupported = errors.New("joint consensus is not supported by every server")

	// ErrPipelineShutdown: the AppendEntries pipeline was closed.
	ErrPipelineShutdown = errors.New("append pipeline closed")

	// ErrLogNotFound is what a LogStore returns for an index it does not
	// hold. Unlike hashicorp/raft, which compares with ==, this library
	// recognises it with errors.Is, so a store may wrap it with context.
	ErrLogNotFound = errors.New("log not found")

	// ErrPipelineReplicationNotSupported: a transport returns it from
	// AppendEntriesPipeline when it cannot pipeline at all; replication then
	// sends requests one at a time without logging an error.
	ErrPipelineReplicationNotSupported = errors.New("pipeline replication not supported")

	// ErrIncompatibleLogStore: NewRaft was given Config.RestoreCommittedLogs
	// with a LogStore that does not implement CommitTrackingLogStore.
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
