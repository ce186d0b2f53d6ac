package raft

import (
	"io"
	"time"
)

// RPCResponse captures both a response and a potential error.
type RPCResponse struct {
	Response interface{}
	Error    error
}

// RPC has a command, and provides a response mechanism.
type RPC struct {
	// Command is one of the request structs of this package (a pointer).
	Command interface{}
	// Reader carries the snapshot data of an InstallSnapshotRequest.
	Reader io.Reader
	// RespChan receives exactly one response.
	RespChan chan<- RPCResponse
}

// Respond is used to respond with a response, error or both. RespChan must
// have room for the response (transports give it a buffer of one).
func (r *RPC) Respond(resp interface{}, err error) {
	r.RespChan <- RPCResponse{resp, err}
}

// Transport provides an interface for network transports to allow Raft to
// communicate with other nodes. Its methods may be called concurrently.
type Transport interface {
	// Consumer returns a channel that can be used to consume and respond to
	// RPC requests.
	Consumer() <-chan RPC

	// LocalAddr is used to return our local address to distinguish from our
	// peers.
	LocalAddr() ServerAddress

	// AppendEntriesPipeline returns an interface that can be used to
	// pipeline AppendEntries requests.
	AppendEntriesPipeline(id ServerID, target ServerAddress) (AppendPipeline, error)

	// AppendEntries sends the appropriate RPC to the target node.
	AppendEntries(id ServerID, target ServerAddress, args *AppendEntriesRequest, resp *AppendEntriesResponse) error

	// RequestVote sends the appropriate RPC to the target node.
	RequestVote(id ServerID, target ServerAddress, args *RequestVoteRequest, resp *RequestVoteResponse) error

	// InstallSnapshot is used to push a snapshot down to a follower. The
	// data is read from the ReadCloser and streamed to the client.
	InstallSnapshot(id ServerID, target ServerAddress, args *InstallSnapshotRequest, resp *InstallSnapshotResponse, data io.Reader) error

	// EncodePeer is used to serialize a peer's address.
	EncodePeer(id ServerID, addr ServerAddress) []byte

	// DecodePeer is used to deserialize a peer's address.
	DecodePeer([]byte) ServerAddress

	// SetHeartbeatHandler is used to setup a heartbeat handler as a fast
	// path. This is to avoid head-of-line blocking from disk IO. If a
	// Transport does not support this, it can simply ignore the call, and
	// push the heartbeat onto the Consumer channel.
	SetHeartbeatHandler(cb func(rpc RPC))

	// TimeoutNow is used to start a leadership transfer to the target node.
	TimeoutNow(id ServerID, target ServerAddress, args *TimeoutNowRequest, resp *TimeoutNowResponse) error
}

// WithPreVote is an interface that a transport may provide which allows a
// transport to support a PreVote request.
type WithPreVote interface {
	// RequestPreVote sends the appropriate RPC to the target node.
	RequestPreVote(id ServerID, target ServerAddress, args *RequestPreVoteRequest, resp *RequestPreVoteResponse) error
}

// WithClose is an interface that a transport may provide which allows a
// transport to be shut down cleanly when a Raft instance shuts down.
type WithClose interface {
	// Close permanently closes a transport, stopping any associated
	// goroutines and freeing other resources.
	Close() error
}

// LoopbackTransport is an interface that provides a loopback transport
// suitable for testing e.g. InmemTransport. It's there so we don't have to
// rewrite tests.
type LoopbackTransport interface {
	Transport   // Embedded transport reference
	WithPeers   // Embedded peer management
	WithClose   // with a close routine
	WithPreVote // with a prevote
}

// WithPeers is an interface that a transport may provide which allows for
// connection and disconnection. Unless the transport is a loopback transport,
// the transport specified to "Connect" is likely to be nil.
type WithPeers interface {
	Connect(peer ServerAddress, t Transport) // Connect a peer
	Disconnect(peer ServerAddress)           // Disconnect a given peer
	DisconnectAll()                          // Disconnect all peers, possibly to reconnect them later
}

// AppendPipeline is used for pipelining AppendEntries requests. It is used
// to increase the replication throughput by masking latency and better
// utilizing bandwidth.
type AppendPipeline interface {
	// AppendEntries is used to add another request to the pipeline. The
	// send may block which is an effective form of back-pressure.
	AppendEntries(args *AppendEntriesRequest, resp *AppendEntriesResponse) (AppendFuture, error)

	// Consumer returns a channel that can be used to consume response
	// futures when they are ready, in the order the requests were sent.
	Consumer() <-chan AppendFuture

	// Close closes the pipeline and cancels all inflight RPCs.
	Close() error
}

// AppendFuture is used to return information about a pipelined AppendEntries
// request.
type AppendFuture interface {
	Future

	// Start returns the time that the append request was started. It is
	// always OK to call this method.
	Start() time.Time

	// Request holds the parameters of the AppendEntries call. It is always
	// OK to call this method.
	Request() *AppendEntriesRequest

	// Response holds the results of the AppendEntries call. This method
	// must only be called after the Error method returns, and will only be
	// valid on success.
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
