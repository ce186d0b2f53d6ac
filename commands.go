package raft

import "github.com/seed48a2b68f/raft/internal/wirecaps"

// RPCHeader identifies the sender of every request and response: its
// protocol version, server ID and address. On the wire its fields sit at
// the top level of each message, beside the message's own.
type RPCHeader struct {
	// ProtocolVersion is the sender's protocol version.
	ProtocolVersion ProtocolVersion
	// ID is the sender's server ID.
	ID []byte
	// Addr is the sender's address, as the transport encodes it.
	Addr []byte
}

// WithRPCHeader is implemented by every RPC message, giving access to its
// header.
type WithRPCHeader interface {
	GetRPCHeader() RPCHeader
}

// AppendEntriesRequest carries entries (none for a heartbeat) from the
// leader to a follower, with the point in the log they follow.
type AppendEntriesRequest struct {
	RPCHeader

	// Term is the leader's current term.
	Term uint64

	// Leader is the leader's address. Deprecated: use RPCHeader.Addr; it is
	// still filled for old peers.
	Leader []byte

	// PrevLogEntry and PrevLogTerm identify the entry just before Entries,
	// for the consistency check. PrevLogEntry 0 skips the check.
	PrevLogEntry uint64
	PrevLogTerm  uint64

	// Entries are the new entries to append. Never nil elements.
	Entries []*Log

	// LeaderCommitIndex is the commit index on the leader.
	LeaderCommitIndex uint64

	// capabilities is what a leader of this library can do beyond
	// hashicorp/raft (capReadIndex...), sent as an extra msgpack key
	// that hashicorp/raft's decoder skips; zero from a hashicorp node.
	capabilities uint64
}

// Capabilities a node advertises: a leader in its AppendEntries, a
// follower in its answers to a leader that advertised its own.
const (
	// capReadIndex: the leader serves ReadIndexRequest.
	capReadIndex uint64 = 1 << iota
	// capJointConsensus: the node understands joint configurations
	// (ChangeConfiguration).
	capJointConsensus
)

// capAnswered is never sent: a leader keeps it with a follower's
// capabilities once the follower has answered, so that a hashicorp/raft
// follower (which advertises nothing) is told from one not heard from yet.
const capAnswered uint64 = 1 << 63

// ourCapabilities is what a node of this library advertises: as leader in
// its AppendEntries, as follower in its answers to such a leader.
const ourCapabilities = capReadIndex | capJointConsensus

func init() {
	wirecaps.Request = func(req any) *uint64 { return &req.(*AppendEntriesRequest).capabilities }
	wirecaps.Response = func(resp any) *uint64 { return &resp.(*AppendEntriesResponse).capabilities }
}

// answerCapabilities is what a follower puts in its answer to req: its
// capabilities for a leader that advertised its own, else nothing.
func answerCapabilities(req *AppendEntriesRequest) uint64 {
	if req.capabilities == 0 {
		return 0
	}
	return ourCapabilities
}

// GetRPCHeader - See WithRPCHeader.
func (r *AppendEntriesRequest) GetRPCHeader() RPCHeader { return r.RPCHeader }

// AppendEntriesResponse answers an AppendEntriesRequest.
type AppendEntriesResponse struct {
	RPCHeader

	// Term is the responder's term; a newer term deposes the leader.
	Term uint64

	// LastLog is the responder's last index, which lets the leader jump
	// back to where the logs can match instead of probing one by one.
	LastLog uint64

	// Success reports that the entries were appended (and are durable).
	Success bool

	// NoRetryBackoff tells the leader that the failure was a log mismatch and
	// it should retry at once, without backing off.
	NoRetryBackoff bool

	// capabilities is what a follower of this library can do, sent only
	// in answer to a leader that advertised its own (so a hashicorp/raft
	// leader never sees the key; it would skip it anyway), as the same
	// extra msgpack key. A leader learns each peer's this way.
	capabilities uint64
}

// GetRPCHeader - See WithRPCHeader.
func (r *AppendEntriesResponse) GetRPCHeader() RPCHeader { return r.RPCHeader }

// RequestVoteRequest is a candidate's request for a server's vote in a
// new term.
type RequestVoteRequest struct {
	RPCHeader

	// Term is the candidate's new term.
	Term uint64
	// Candidate is the candidate's address. Deprecated: use RPCHeader.Addr.
	Candidate []byte

	// LastLogIndex and LastLogTerm describe the candidate's log, for the
	// up-to-date check.
	LastLogIndex uint64
	LastLogTerm  uint64

	// LeadershipTransfer is set when the election was started by a
	// TimeoutNow: voters then ignore the leader they know.
	LeadershipTransfer bool
}

// GetRPCHeader - See WithRPCHeader.
func (r *RequestVoteRequest) GetRPCHeader() RPCHeader { return r.RPCHeader }

// RequestVoteResponse answers a RequestVoteRequest.
type RequestVoteResponse struct {
	RPCHeader

	// Term is the responder's term; a newer term deposes the candidate.
	Term uint64

	// Peers is deprecated, used to support previous versions of Raft
	// (filled only with protocol versions below 2).
	Peers []byte

	// Granted reports whether the vote was granted.
	Granted bool
}

// GetRPCHeader - See WithRPCHeader.
func (r *RequestVoteResponse) GetRPCHeader() RPCHeader { return r.RPCHeader }

// RequestPreVoteRequest asks a server whether it would vote for the sender
// in the next term, without anyone changing term; only a candidate that
// would win runs the real election.
type RequestPreVoteRequest struct {
	RPCHeader

	// Term is the term the candidate would campaign in (its current + 1).
	Term uint64

	// LastLogIndex and LastLogTerm describe the candidate's log.
	LastLogIndex uint64
	LastLogTerm  uint64
}

// GetRPCHeader - See WithRPCHeader.
func (r *RequestPreVoteRequest) GetRPCHeader() RPCHeader { return r.RPCHeader }

// RequestPreVoteResponse answers a RequestPreVoteRequest.
type RequestPreVoteResponse struct {
	RPCHeader

	// Term is the responder's term, or the request's when that is higher.
	Term uint64

	// Granted reports whether the responder would vote.
	Granted bool
}

// GetRPCHeader - See WithRPCHeader.
func (r *RequestPreVoteResponse) GetRPCHeader() RPCHeader { return r.RPCHeader }

// InstallSnapshotRequest hands a follower the leader's snapshot, for a
// follower that needs entries the leader no longer has. The snapshot's
// bytes follow the request on the same stream.
type InstallSnapshotRequest struct {
	RPCHeader
	// SnapshotVersion is the version of the snapshot (0 or 1).
	SnapshotVersion SnapshotVersion

	// Term is the leader's term.
	Term uint64
	// Leader is the leader's address. Deprecated: use RPCHeader.Addr.
	Leader []byte

	// LastLogIndex and LastLogTerm are the last index and term included in
	// the snapshot.
	LastLogIndex uint64
	LastLogTerm  uint64

	// Peers is the legacy voter list. Deprecated: filled for old readers.
	Peers []byte

	// Configuration is the cluster membership, encoded with
	// EncodeConfiguration.
	Configuration []byte
	// ConfigurationIndex is the log index where Configuration was
	// originally written.
	ConfigurationIndex uint64

	// Size is the number of bytes of snapshot data that follow.
	Size int64
}

// GetRPCHeader - See WithRPCHeader.
func (r *InstallSnapshotRequest) GetRPCHeader() RPCHeader { return r.RPCHeader }

// InstallSnapshotResponse answers an InstallSnapshotRequest.
type InstallSnapshotResponse struct {
	RPCHeader

	// Term is the responder's term.
	Term uint64
	// Success reports that the snapshot was installed.
	Success bool
}

// GetRPCHeader - See WithRPCHeader.
func (r *InstallSnapshotResponse) GetRPCHeader() RPCHeader { return r.RPCHeader }

// TimeoutNowRequest tells a server to stand for election right away: the
// last step of a leadership transfer.
type TimeoutNowRequest struct {
	RPCHeader
}

// GetRPCHeader - See WithRPCHeader.
func (r *TimeoutNowRequest) GetRPCHeader() RPCHeader { return r.RPCHeader }

// TimeoutNowResponse answers a TimeoutNowRequest.
type TimeoutNowResponse struct {
	RPCHeader
}

// GetRPCHeader - See WithRPCHeader.
func (r *TimeoutNowResponse) GetRPCHeader() RPCHeader { return r.RPCHeader }

// ReadIndexRequest asks the leader for a read index on behalf of reads
// waiting on a follower or nonvoter (ReadIndex off the leader). Not in
// hashicorp/raft: it is sent only to a leader that advertised it.
type ReadIndexRequest struct {
	RPCHeader

	// Term is the sender's current term.
	Term uint64

	// Reads is how many waiting reads the request carries.
	Reads uint64

	// Consistency is the reads' choice of round or lease (ReadDefault:
	// the leader's Config.LeaseReads decides).
	Consistency ReadConsistency
}

// GetRPCHeader - See WithRPCHeader.
func (r *ReadIndexRequest) GetRPCHeader() RPCHeader { return r.RPCHeader }

// ReadIndexResponse answers a ReadIndexRequest: the read index, confirmed
// by the leader as Raft.ReadIndex is on the leader. A leader that cannot
// confirm it answers with an error instead.
type ReadIndexResponse struct {
	RPCHeader

	// Term is the leader's term.
	Term uint64

	// Index is the read index.
	Index uint64
}

// GetRPCHeader - See WithRPCHeader.
func (r *ReadIndexResponse) GetRPCHeader() RPCHeader { return r.RPCHeader }
