package raft

import (
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"time"
)

// NewInmemAddr returns a fresh random address (a UUID) for an in-memory
// transport.
func NewInmemAddr() ServerAddress {
	return ServerAddress(generateUUID())
}

// generateUUID returns a random version-4 UUID string.
func generateUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Errorf("failed to read random bytes: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// inmemPipelineDepth bounds the requests in flight on one pipeline.
const inmemPipelineDepth = 128

// InmemTransport is a Transport within one process, for tests: requests and
// responses pass between linked transports as pointers, never serialised.
type InmemTransport struct {
	sync.RWMutex
	consumerCh chan RPC
	localAddr  ServerAddress
	peers      map[ServerAddress]*InmemTransport
	pipelines  []*inmemPipeline
	timeout    time.Duration
}

// NewInmemTransportWithTimeout returns an in-memory transport at addr (a
// random UUID when addr is empty). timeout bounds how long an RPC waits for
// the peer to take and answer it. Peers reach each other once Connect has
// linked them.
func NewInmemTransportWithTimeout(addr ServerAddress, timeout time.Duration) (ServerAddress, *InmemTransport) {
	if string(addr) == "" {
		addr = NewInmemAddr()
	}
	trans := &InmemTransport{
		consumerCh: make(chan RPC, 16),
		localAddr:  addr,
		peers:      make(map[ServerAddress]*InmemTransport),
		timeout:    timeout,
	}
	return addr, trans
}

// NewInmemTransport is NewInmemTransportWithTimeout with a 500 ms timeout.
func NewInmemTransport(addr ServerAddress) (ServerAddress, *InmemTransport) {
	return NewInmemTransportWithTimeout(addr, 500*time.Millisecond)
}

// SetHeartbeatHandler is a no-op: heartbeats arrive on the consumer
// channel like every other RPC.
func (i *InmemTransport) SetHeartbeatHandler(cb func(RPC)) {}

// Consumer is part of Transport.
func (i *InmemTransport) Consumer() <-chan RPC {
	return i.consumerCh
}

// LocalAddr is part of Transport.
func (i *InmemTransport) LocalAddr() ServerAddress {
	return i.localAddr
}

// AppendEntriesPipeline opens a pipeline of AppendEntries to target.
func (i *InmemTransport) AppendEntriesPipeline(id ServerID, target ServerAddress) (AppendPipeline, error) {
	i.Lock()
	defer i.Unlock()
	peer, ok := i.peers[target]
	if !ok {
		return nil, fmt.Errorf("failed to connect to peer: %v", target)
	}
	pipeline := newInmemPipeline(i, peer, target)
	i.pipelines = append(i.pipelines, pipeline)
	return pipeline, nil
}

// AppendEntries is part of Transport.
func (i *InmemTransport) AppendEntries(id ServerID, target ServerAddress, args *AppendEntriesRequest, resp *AppendEntriesResponse) error {
	rpcResp, err := i.makeRPC(target, args, nil, i.timeout)
	if err != nil {
		return err
	}
	*resp = *rpcResp.Response.(*AppendEntriesResponse)
	return nil
}

// RequestVote is part of Transport.
func (i *InmemTransport) RequestVote(id ServerID, target ServerAddress, args *RequestVoteRequest, resp *RequestVoteResponse) error {
	rpcResp, err := i.makeRPC(target, args, nil, i.timeout)
	if err != nil {
		return err
	}
	*resp = *rpcResp.Response.(*RequestVoteResponse)
	return nil
}

// RequestPreVote is part of WithPreVote.
func (i *InmemTransport) RequestPreVote(id ServerID, target ServerAddress, args *RequestPreVoteRequest, resp *RequestPreVoteResponse) error {
	rpcResp, err := i.makeRPC(target, args, nil, i.timeout)
	if err != nil {
		return err
	}
	*resp = *rpcResp.Response.(*RequestPreVoteResponse)
	return nil
}

// InstallSnapshot is part of Transport.
func (i *InmemTransport) InstallSnapshot(id ServerID, target ServerAddress, args *InstallSnapshotRequest, resp *InstallSnapshotResponse, data io.Reader) error {
	rpcResp, err := i.makeRPC(target, args, data, 10*i.timeout)
	if err != nil {
		return err
	}
	*resp = *rpcResp.Response.(*InstallSnapshotResponse)
	return nil
}

// TimeoutNow is part of Transport.
func (i *InmemTransport) TimeoutNow(id ServerID, target ServerAddress, args *TimeoutNowRequest, resp *TimeoutNowResponse) error {
	rpcResp, err := i.makeRPC(target, args, nil, 10*i.timeout)
	if err != nil {
		return err
	}
	*resp = *rpcResp.Response.(*TimeoutNowResponse)
	return nil
}

// ReadIndex is part of WithReadIndex.
func (i *InmemTransport) ReadIndex(id ServerID, target ServerAddress, args *ReadIndexRequest, resp *ReadIndexResponse) error {
	rpcResp, err := i.makeRPC(target, args, nil, i.timeout)
	if err != nil {
		return err
	}
	*resp = *rpcResp.Response.(*ReadIndexResponse)
	return nil
}

// makeRPC hands args to the target's consumer and waits for the answer, at
// most timeout in all.
func (i *InmemTransport) makeRPC(target ServerAddress, args interface{}, r io.Reader, timeout time.Duration) (rpcResp RPCResponse, err error) {
	i.RLock()
	peer, ok := i.peers[target]
	i.RUnlock()
	if !ok {
		err = fmt.Errorf("failed to connect to peer: %v", target)
		return
	}

	respCh := make(chan RPCResponse, 1)
	req := RPC{Command: args, Reader: r, RespChan: respCh}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case peer.consumerCh <- req:
	case <-timer.C:
		err = fmt.Errorf("send timed out")
		return
	}

	select {
	case rpcResp = <-respCh:
		if rpcResp.Error != nil {
			err = rpcResp.Error
		} else if rpcResp.Response == nil {
			err = fmt.Errorf("empty response")
		}
	case <-timer.C:
		err = fmt.Errorf("command timed out")
	}
	return
}

// EncodePeer implements the Transport interface: the address bytes.
func (i *InmemTransport) EncodePeer(id ServerID, p ServerAddress) []byte {
	return []byte(p)
}

// DecodePeer is part of Transport.
func (i *InmemTransport) DecodePeer(buf []byte) ServerAddress {
	return ServerAddress(buf)
}

// Connect routes requests for peer to t, which must be an InmemTransport.
// Links are one-way: connect both sides for two nodes to talk.
func (i *InmemTransport) Connect(peer ServerAddress, t Transport) {
	trans := t.(*InmemTransport)
	i.Lock()
	defer i.Unlock()
	i.peers[peer] = trans
}

// Disconnect drops the route to peer and closes the pipelines to it.
func (i *InmemTransport) Disconnect(peer ServerAddress) {
	i.Lock()
	defer i.Unlock()
	delete(i.peers, peer)

	// Disconnect any pipelines
	n := 0
	for _, p := range i.pipelines {
		if p.peerAddr == peer {
			p.Close()
			continue
		}
		i.pipelines[n] = p
		n++
	}
	clear(i.pipelines[n:])
	i.pipelines = i.pipelines[:n]
}

// DisconnectAll removes every link Connect made.
func (i *InmemTransport) DisconnectAll() {
	i.Lock()
	defer i.Unlock()
	i.peers = make(map[ServerAddress]*InmemTransport)

	// Handle pipelines
	for _, p := range i.pipelines {
		p.Close()
	}
	i.pipelines = nil
}

// Close drops every route and pipeline.
func (i *InmemTransport) Close() error {
	i.DisconnectAll()
	return nil
}

// inmemPipeline is the in-memory transport's AppendEntries pipeline.
type inmemPipeline struct {
	trans    *InmemTransport
	peer     *InmemTransport
	peerAddr ServerAddress

	doneCh       chan AppendFuture
	inprogressCh chan *inmemPipelineInflight
	// freeResp holds answer channels to reuse: a channel whose one answer
	// has been read is empty and referenced by nobody else.
	freeResp chan chan RPCResponse

	shutdown     bool
	shutdownCh   chan struct{}
	shutdownLock sync.RWMutex
}

// inmemPipelineInflight is a request in flight; the future lives in the
// same allocation.
type inmemPipelineInflight struct {
	future appendFuture
	respCh chan RPCResponse
}

func newInmemPipeline(trans *InmemTransport, peer *InmemTransport, addr ServerAddress) *inmemPipeline {
	i := &inmemPipeline{
		trans:        trans,
		peer:         peer,
		peerAddr:     addr,
		doneCh:       make(chan AppendFuture, inmemPipelineDepth),
		inprogressCh: make(chan *inmemPipelineInflight, inmemPipelineDepth),
		freeResp:     make(chan chan RPCResponse, inmemPipelineDepth),
		shutdownCh:   make(chan struct{}),
	}
	go i.decodeResponses()
	return i
}

// decodeResponses completes the futures in the order the requests were
// sent.
func (i *inmemPipeline) decodeResponses() {
	timeout := i.trans.timeout
	// One timer for the pipeline's life, armed only while waiting.
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var inp *inmemPipelineInflight
		select {
		case inp = <-i.inprogressCh:
		case <-i.shutdownCh:
			return
		}
		var rpcResp RPCResponse
		select {
		case rpcResp = <-inp.respCh:
		default:
			// Not answered yet: wait, with a timer.
			timer.Reset(timeout)
			select {
			case rpcResp = <-inp.respCh:
				timer.Stop()
			case <-timer.C:
				inp.future.respond(fmt.Errorf("command timed out"))
				select {
				case i.doneCh <- &inp.future:
				case <-i.shutdownCh:
				}
				return
			case <-i.shutdownCh:
				timer.Stop()
				return
			}
		}
		if rpcResp.Error == nil && rpcResp.Response == nil {
			rpcResp.Error = fmt.Errorf("empty response")
		}
		if rpcResp.Error == nil {
			*inp.future.resp = *rpcResp.Response.(*AppendEntriesResponse)
		}
		// The one answer has been read: the channel can carry another.
		select {
		case i.freeResp <- inp.respCh:
		default:
		}
		inp.future.respond(rpcResp.Error)
		select {
		case i.doneCh <- &inp.future:
		case <-i.shutdownCh:
			return
		}
	}
}

// AppendEntries sends one request down the pipeline.
func (i *inmemPipeline) AppendEntries(args *AppendEntriesRequest, resp *AppendEntriesResponse) (AppendFuture, error) {
	inflight := &inmemPipelineInflight{future: appendFuture{start: time.Now(), args: args, resp: resp}}
	future := &inflight.future
	future.init()

	// Send the RPC
	select {
	case inflight.respCh = <-i.freeResp:
	default:
		inflight.respCh = make(chan RPCResponse, 1)
	}
	rpc := RPC{Command: args, RespChan: inflight.respCh}

	// A closed pipeline must refuse at once: the select below could
	// otherwise pick the send even after the close.
	i.shutdownLock.RLock()
	shutdown := i.shutdown
	i.shutdownLock.RUnlock()
	if shutdown {
		return nil, ErrPipelineShutdown
	}

	select {
	case i.peer.consumerCh <- rpc:
	default:
		// The peer is busy: wait, at most the transport's timeout.
		var timeout <-chan time.Time
		if i.trans.timeout > 0 {
			timer := time.NewTimer(i.trans.timeout)
			defer timer.Stop()
			timeout = timer.C
		}
		select {
		case i.peer.consumerCh <- rpc:
		case <-timeout:
			return nil, fmt.Errorf("command enqueue timeout")
		case <-i.shutdownCh:
			return nil, ErrPipelineShutdown
		}
	}

	// Send to be decoded
	select {
	case i.inprogressCh <- inflight:
		return future, nil
	case <-i.shutdownCh:
		return nil, ErrPipelineShutdown
	}
}

// Consumer returns the channel of completed futures.
func (i *inmemPipeline) Consumer() <-chan AppendFuture {
	return i.doneCh
}

// Close is used to shutdown the pipeline connection.
func (i *inmemPipeline) Close() error {
	i.shutdownLock.Lock()
	defer i.shutdownLock.Unlock()
	if i.shutdown {
		return nil
	}
	i.shutdown = true
	close(i.shutdownCh)
	return nil
}
