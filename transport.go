package raft

import (
	"io"
	"time"
)

// RPCResponse is the answer to an RPC: a response message or an error.
type RPCResponse struct {
	Response interface{}
	Error    error
}

// RPC is an inbound request, handed to the node by its transport.
type RPC struct {
	// Command is one of the request structs of this package (a pointer).
	Command interface{}
	// Reader carries the snapshot data of an InstallSnapshotRequest.
	Reader io.Reader
	// RespChan receives exactly one response.
	RespChan chan<- RPCResponse
}

// Respond answers the request. RespChan must have room for the answer
// (transports give it a buffer of one).
func (r *RPC) Respond(resp interface{}, err error) {
	r.RespChan <- RPCResponse{resp, err}
}

// Transport carries RPCs between nodes. Its methods are called
// concurrently.
type Transport interface {
	// Consumer delivers inbound requests; each must be answered with
	// Respond.
	Consumer() <-chan RPC

	// LocalAddr is this node's address, as peers reach it.
	LocalAddr() ServerAddress

	// AppendEntriesPipeline opens a pipeline of AppendEntries to target,
	// or returns ErrPipelineReplicationNotSupported.
	AppendEntriesPipeline(id ServerID, target ServerAddress) (AppendPipeline, error)

	// AppendEntries sends args to target and fills resp with the answer.
	AppendEntries(id ServerID, target ServerAddress, args *AppendEntriesRequest, resp *AppendEntriesResponse) error

	// RequestVote sends args to target and fills resp with the answer.
	RequestVote(id ServerID, target ServerAddress, args *RequestVoteRequest, resp *RequestVoteResponse) error

	// InstallSnapshot sends args and then the snapshot's bytes read from
	// data to target, and fills resp with the answer.
	InstallSnapshot(id ServerID, target ServerAddress, args *InstallSnapshotRequest, resp *InstallSnapshotResponse, data io.Reader) error

	// EncodePeer turns a peer's address into bytes for messages.
	EncodePeer(id ServerID, addr ServerAddress) []byte

	// DecodePeer reverses EncodePeer.
	DecodePeer([]byte) ServerAddress

	// SetHeartbeatHandler installs a handler the transport may call
	// directly for heartbeats (AppendEntries without entries), so they do
	// not queue behind requests that wait on the disk. A transport may
	// ignore it and deliver heartbeats on Consumer like the rest.
	SetHeartbeatHandler(cb func(rpc RPC))

	// TimeoutNow tells target to start an election at once (the last step
	// of a leadership transfer).
	TimeoutNow(id ServerID, target ServerAddress, args *TimeoutNowRequest, resp *TimeoutNowResponse) error
}

// WithPreVote is implemented by transports that can carry pre-vote
// requests; without it, a node runs elections without pre-vote.
type WithPreVote interface {
	// RequestPreVote sends args to target and fills resp with the answer.
	RequestPreVote(id ServerID, target ServerAddress, args *RequestPreVoteRequest, resp *RequestPreVoteResponse) error
}

// WithReadIndex is implemented by transports that can carry ReadIndex
// requests from followers to the leader (NetworkTransport and
// InmemTransport do); without it, ReadIndex off the leader fails with
// ErrReadIndexUnsupported. Not in hashicorp/raft.
type WithReadIndex interface {
	// ReadIndex sends args to target and fills resp with the answer.
	ReadIndex(id ServerID, target ServerAddress, args *ReadIndexRequest, resp *ReadIndexResponse) error
}

// WithClose is implemented by transports that Raft.Shutdown should close.
type WithClose interface {
	// Close stops the transport for good and releases what it holds.
	Close() error
}

// LoopbackTransport is a transport whose peers are linked in process, such
// as InmemTransport, for tests.
type LoopbackTransport interface {
	Transport   // Embedded transport reference
	WithPeers   // Embedded peer management
	WithClose   // with a close routine
	WithPreVote // with a prevote
}

// WithPeers is implemented by transports whose links are made by hand, as
// between in-memory transports.
type WithPeers interface {
	Connect(peer ServerAddress, t Transport) // Connect a peer
	Disconnect(peer ServerAddress)           // Disconnect a given peer
	DisconnectAll()                          // Disconnect all peers, possibly to reconnect them later
}

// AppendPipeline sends AppendEntries without waiting for each answer, so
// that replication is not bound by the round trip.
type AppendPipeline interface {
	// AppendEntries sends a request; it may block while too many are in
	// flight, which holds the sender back.
	AppendEntries(args *AppendEntriesRequest, resp *AppendEntriesResponse) (AppendFuture, error)

	// Consumer delivers the answered requests, in the order sent.
	Consumer() <-chan AppendFuture

	// Close ends the pipeline; requests in flight fail.
	Close() error
}

// AppendFuture is one pipelined AppendEntries.
type AppendFuture interface {
	Future

	// Start is when the request was sent; callable at any time.
	Start() time.Time

	// Request is the request sent; callable at any time.
	Request() *AppendEntriesRequest

	// Response is the answer; call it only after Error has returned nil.
	Response() *AppendEntriesResponse
}

// maxAppendEntriesBytes is the most entry bytes one AppendEntries carries
// (a single larger entry still goes alone).
const maxAppendEntriesBytes = 16 << 20

// withMaxMessageSize is implemented by transports that refuse messages above
// a size; the leader keeps its requests well below it.
type withMaxMessageSize interface {
	maxInboundMessageSize() int
}

// appendBytesBudget is the entry bytes per AppendEntries for trans: at most
// maxAppendEntriesBytes and half the transport's message limit (peers are
// assumed to run with the same limit; the rest is room for the encoding).
func appendBytesBudget(trans Transport) int {
	budget := maxAppendEntriesBytes
	if t, ok := trans.(withMaxMessageSize); ok {
		budget = min(budget, t.maxInboundMessageSize()/2)
	}
	return max(budget, 1)
}
