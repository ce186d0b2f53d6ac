// Package transport carries Raft over gRPC: the API and the wire of
// github.com/Jille/raft-grpc-transport, on this library. A program using
// that module changes only its import path (the package name is
// transport, as there), and nodes of both form one cluster.
//
// The application owns the gRPC server and its listener: New makes a
// Manager, Register puts the RaftTransport service on the server, and
// Transport is what raft.NewRaft takes. Outbound, the Manager keeps one
// client connection per server address, made with the dial options given
// to New (credentials for TLS, say).
package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/seed48a2b68f/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Manager holds the transport's state: its consumer channel, heartbeat
// handler and client connections.
type Manager struct {
	localAddress     raft.ServerAddress
	dialOptions      []grpc.DialOption
	heartbeatTimeout time.Duration
	// chunkTimeout bounds the wait for each message of an incoming
	// InstallSnapshot stream: Raft reads the snapshot on its main loop,
	// which a stalled sender must not hold.
	chunkTimeout time.Duration

	rpcChan chan raft.RPC

	hbMu        sync.RWMutex
	heartbeatFn func(raft.RPC)

	connMu  sync.Mutex
	conns   map[raft.ServerAddress]*grpc.ClientConn
	closed  bool
	closeCh chan struct{}
}

// Option sets something on a new Manager.
type Option func(*Manager)

// WithHeartbeatTimeout sets how long a heartbeat handed to the heartbeat
// handler may wait for its answer on the receiving side (default 10 s).
func WithHeartbeatTimeout(d time.Duration) Option {
	return func(m *Manager) { m.heartbeatTimeout = d }
}

// New makes a Manager for the node at localAddress (its own address, as
// other servers dial it). dialOptions are used for every outbound
// connection.
func New(localAddress raft.ServerAddress, dialOptions []grpc.DialOption, options ...Option) *Manager {
	m := &Manager{
		localAddress:     localAddress,
		dialOptions:      dialOptions,
		heartbeatTimeout: 10 * time.Second,
		chunkTimeout:     10 * time.Second,
		rpcChan:          make(chan raft.RPC),
		conns:            map[raft.ServerAddress]*grpc.ClientConn{},
		closeCh:          make(chan struct{}),
	}
	for _, o := range options {
		o(m)
	}
	return m
}

// Register puts the RaftTransport service on the application's gRPC
// server.
func (m *Manager) Register(s grpc.ServiceRegistrar) {
	s.RegisterService(&serviceDesc, &server{m: m})
}

// Transport returns the raft.Transport to give raft.NewRaft.
func (m *Manager) Transport() raft.Transport { return &raftAPI{m: m} }

// Close closes the client connections the Manager made; calls after it
// fail. It does not stop the application's server.
func (m *Manager) Close() error {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	close(m.closeCh)
	var errs []error
	for addr, c := range m.conns {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the connection to %s: %w", addr, err))
		}
	}
	clear(m.conns)
	return errors.Join(errs...)
}

// errClosed: the Manager was closed.
var errClosed = errors.New("grpctransport: the transport is closed")

// conn returns the client connection to target, making it on first use.
func (m *Manager) conn(target raft.ServerAddress) (*grpc.ClientConn, error) {
	m.connMu.Lock()
	defer m.connMu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	if c, ok := m.conns[target]; ok {
		return c, nil
	}
	dialTarget := string(target)
	if !strings.Contains(dialTarget, "://") {
		// The address as it is, as grpc.Dial took it (no name resolution
		// scheme of grpc.NewClient's default).
		dialTarget = "passthrough:///" + dialTarget
	}
	c, err := grpc.NewClient(dialTarget, m.dialOptions...)
	if err != nil {
		return nil, fmt.Errorf("grpctransport: connecting to %s: %w", target, err)
	}
	m.conns[target] = c
	return c, nil
}

// --- the client side: raft.Transport ---

type raftAPI struct{ m *Manager }

var (
	_ raft.Transport     = (*raftAPI)(nil)
	_ raft.WithClose     = (*raftAPI)(nil)
	_ raft.WithPreVote   = (*raftAPI)(nil)
	_ raft.WithReadIndex = (*raftAPI)(nil)
)

// Consumer returns the channel of RPCs received.
func (r *raftAPI) Consumer() <-chan raft.RPC { return r.m.rpcChan }

// LocalAddr returns the address given to New.
func (r *raftAPI) LocalAddr() raft.ServerAddress { return r.m.localAddress }

// EncodePeer encodes an address as its bytes.
func (r *raftAPI) EncodePeer(_ raft.ServerID, addr raft.ServerAddress) []byte { return []byte(addr) }

// DecodePeer decodes what EncodePeer made.
func (r *raftAPI) DecodePeer(b []byte) raft.ServerAddress { return raft.ServerAddress(b) }

// SetHeartbeatHandler sets the handler heartbeats go to, bypassing the
// consumer channel.
func (r *raftAPI) SetHeartbeatHandler(cb func(rpc raft.RPC)) {
	r.m.hbMu.Lock()
	r.m.heartbeatFn = cb
	r.m.hbMu.Unlock()
}

// Close closes the Manager's client connections.
func (r *raftAPI) Close() error { return r.m.Close() }

func (r *raftAPI) invoke(target raft.ServerAddress, method string, args, reply any) error {
	c, err := r.m.conn(target)
	if err != nil {
		return err
	}
	if err := c.Invoke(context.Background(), method, args, reply); err != nil {
		return callError(target, err)
	}
	return nil
}

// callError explains a failed call: a message over a size limit says
// which limit to raise.
func callError(target raft.ServerAddress, err error) error {
	if s, ok := status.FromError(err); ok && s.Code() == codes.ResourceExhausted {
		return fmt.Errorf("grpctransport: a message to or from %s is over a gRPC size limit (raise grpc.MaxRecvMsgSize on the receiving server, 4 MiB by default; AppendEntries batches reach 16 MiB): %w", target, err)
	}
	return fromStatus(err)
}

// AppendEntries sends one AppendEntries and waits for the answer.
func (r *raftAPI) AppendEntries(_ raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	return r.invoke(target, methodAppendEntries, &appendEntriesRequest{args}, &appendEntriesResponse{resp})
}

// RequestVote sends a vote request.
func (r *raftAPI) RequestVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return r.invoke(target, methodRequestVote, &requestVoteRequest{args}, &requestVoteResponse{resp})
}

// RequestPreVote sends a pre-vote request.
func (r *raftAPI) RequestPreVote(_ raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return r.invoke(target, methodRequestPreVote, &requestPreVoteRequest{args}, &requestPreVoteResponse{resp})
}

// ReadIndex asks the leader at target for a read index (this library's
// RPC, sent only to a leader that advertised it).
func (r *raftAPI) ReadIndex(_ raft.ServerID, target raft.ServerAddress, args *raft.ReadIndexRequest, resp *raft.ReadIndexResponse) error {
	return r.invoke(target, methodReadIndex, &readIndexRequest{args}, &readIndexResponse{resp})
}

// TimeoutNow asks target to campaign at once.
func (r *raftAPI) TimeoutNow(_ raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return r.invoke(target, methodTimeoutNow, &timeoutNowRequest{args}, &timeoutNowResponse{resp})
}

// snapshotChunk is how much snapshot data one stream message carries.
const snapshotChunk = 1 << 20

// InstallSnapshot streams a snapshot: the metadata with the first chunk,
// then the data in chunks of snapshotChunk bytes, holding one chunk in
// memory at a time.
func (r *raftAPI) InstallSnapshot(_ raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	c, err := r.m.conn(target)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := c.NewStream(ctx, &serviceDesc.Streams[1], methodInstallSnapshot)
	if err != nil {
		return fromStatus(err)
	}
	buf := make([]byte, min(snapshotChunk, max(args.Size, 1)))
	msg := &installSnapshotRequest{req: args, first: true}
	for sent := int64(0); ; {
		n, rerr := io.ReadFull(data, buf[:min(int64(len(buf)), max(args.Size-sent, 0))])
		if rerr != nil && rerr != io.ErrUnexpectedEOF && rerr != io.EOF {
			return fmt.Errorf("grpctransport: reading the snapshot: %w", rerr)
		}
		msg.data = buf[:n]
		if msg.first || n > 0 {
			if err := s.SendMsg(msg); err != nil {
				return r.streamError(s, err)
			}
		}
		msg.first = false
		sent += int64(n)
		if sent >= args.Size || n == 0 {
			break
		}
	}
	if err := s.CloseSend(); err != nil {
		return fromStatus(err)
	}
	if err := s.RecvMsg(&installSnapshotResponse{resp}); err != nil {
		return fromStatus(err)
	}
	return nil
}

// streamError turns a send error into the stream's real error: a failed
// send reports io.EOF and the status comes with the next receive.
func (r *raftAPI) streamError(s grpc.ClientStream, err error) error {
	if err == io.EOF {
		if rerr := s.RecvMsg(&installSnapshotResponse{&raft.InstallSnapshotResponse{}}); rerr != nil {
			return fromStatus(rerr)
		}
	}
	return fromStatus(err)
}

// fromStatus makes a gRPC status error a plain error with the handler's
// message (raft compares some errors by text, as over TCP).
func fromStatus(err error) error {
	if s, ok := status.FromError(err); ok && s.Code() == codes.Unknown {
		return errors.New(s.Message())
	}
	return err
}

// --- the server side ---

// Method paths: the service is RaftTransport, with no proto package.
const (
	serviceName                 = "RaftTransport"
	methodAppendEntriesPipeline = "/RaftTransport/AppendEntriesPipeline"
	methodAppendEntries         = "/RaftTransport/AppendEntries"
	methodRequestVote           = "/RaftTransport/RequestVote"
	methodTimeoutNow            = "/RaftTransport/TimeoutNow"
	methodInstallSnapshot       = "/RaftTransport/InstallSnapshot"
	methodRequestPreVote        = "/RaftTransport/RequestPreVote"
	methodReadIndex             = "/RaftTransport/ReadIndex"
)

// raftTransportServer is the service's handler type (for
// RegisterService's check).
type raftTransportServer interface {
	handle(ctx context.Context, command any, data io.Reader) (any, error)
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*raftTransportServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "AppendEntries", Handler: unary(methodAppendEntries, func() (any, any) {
			r := &raft.AppendEntriesRequest{}
			return &appendEntriesRequest{r}, r
		}, func(resp any) any { return &appendEntriesResponse{resp.(*raft.AppendEntriesResponse)} })},
		{MethodName: "RequestVote", Handler: unary(methodRequestVote, func() (any, any) {
			r := &raft.RequestVoteRequest{}
			return &requestVoteRequest{r}, r
		}, func(resp any) any { return &requestVoteResponse{resp.(*raft.RequestVoteResponse)} })},
		{MethodName: "TimeoutNow", Handler: unary(methodTimeoutNow, func() (any, any) {
			r := &raft.TimeoutNowRequest{}
			return &timeoutNowRequest{r}, r
		}, func(resp any) any { return &timeoutNowResponse{resp.(*raft.TimeoutNowResponse)} })},
		{MethodName: "RequestPreVote", Handler: unary(methodRequestPreVote, func() (any, any) {
			r := &raft.RequestPreVoteRequest{}
			return &requestPreVoteRequest{r}, r
		}, func(resp any) any { return &requestPreVoteResponse{resp.(*raft.RequestPreVoteResponse)} })},
		{MethodName: "ReadIndex", Handler: unary(methodReadIndex, func() (any, any) {
			r := &raft.ReadIndexRequest{}
			return &readIndexRequest{r}, r
		}, func(resp any) any { return &readIndexResponse{resp.(*raft.ReadIndexResponse)} })},
	},
	Streams: []grpc.StreamDesc{
		{StreamName: "AppendEntriesPipeline", Handler: pipelineHandler, ServerStreams: true, ClientStreams: true},
		{StreamName: "InstallSnapshot", Handler: installSnapshotHandler, ClientStreams: true},
	},
	Metadata: "transport.proto",
}

// unary makes a unary method's handler: decode into a fresh request,
// hand it to Raft, wrap the answer.
func unary(fullMethod string, newReq func() (wire, command any), wrap func(resp any) any) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		w, cmd := newReq()
		if err := dec(w); err != nil {
			return nil, err
		}
		call := func(ctx context.Context, _ any) (any, error) {
			resp, err := srv.(raftTransportServer).handle(ctx, cmd, nil)
			if err != nil {
				return nil, err
			}
			return wrap(resp), nil
		}
		if interceptor == nil {
			return call(ctx, w)
		}
		return interceptor(ctx, w, &grpc.UnaryServerInfo{Server: srv, FullMethod: fullMethod}, call)
	}
}

type server struct{ m *Manager }

// isHeartbeat reports whether an AppendEntries is a bare heartbeat: term
// and leader, nothing else.
func isHeartbeat(r *raft.AppendEntriesRequest) bool {
	return r.Term != 0 && r.Leader != nil && r.PrevLogEntry == 0 && r.PrevLogTerm == 0 &&
		len(r.Entries) == 0 && r.LeaderCommitIndex == 0
}

// handle gives one command to Raft (a heartbeat to the heartbeat handler
// when one is set) and waits for its answer.
func (s *server) handle(ctx context.Context, command any, data io.Reader) (any, error) {
	respCh := make(chan raft.RPCResponse, 1)
	rpc := raft.RPC{Command: command, Reader: data, RespChan: respCh}
	if ae, ok := command.(*raft.AppendEntriesRequest); ok && isHeartbeat(ae) {
		s.m.hbMu.RLock()
		fn := s.m.heartbeatFn
		s.m.hbMu.RUnlock()
		if fn != nil {
			fn(rpc)
			t := time.NewTimer(s.m.heartbeatTimeout)
			defer t.Stop()
			select {
			case r := <-respCh:
				return r.Response, r.Error
			case <-t.C:
				return nil, status.Error(codes.DeadlineExceeded, "grpctransport: the heartbeat handler did not answer in time")
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	select {
	case s.m.rpcChan <- rpc:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.m.closeCh:
		return nil, status.Error(codes.Unavailable, errClosed.Error())
	}
	select {
	case r := <-respCh:
		return r.Response, r.Error
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pipelineHandler serves AppendEntriesPipeline: requests in, answers out,
// in order, one at a time.
func pipelineHandler(srv any, stream grpc.ServerStream) error {
	for {
		req := &raft.AppendEntriesRequest{}
		if err := stream.RecvMsg(&appendEntriesRequest{req}); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		resp, err := srv.(*server).handle(stream.Context(), req, nil)
		if err != nil {
			return err
		}
		if err := stream.SendMsg(&appendEntriesResponse{resp.(*raft.AppendEntriesResponse)}); err != nil {
			return err
		}
	}
}

// installSnapshotHandler serves InstallSnapshot: the first message's
// metadata, then the data of every message as the snapshot's reader.
func installSnapshotHandler(srv any, stream grpc.ServerStream) error {
	req := &raft.InstallSnapshotRequest{}
	first := &installSnapshotRequest{req: req}
	if err := stream.RecvMsg(first); err != nil {
		return err
	}
	s := srv.(*server)
	body := &snapshotReader{pending: first.data, left: req.Size, timeout: s.m.chunkTimeout,
		chunks: make(chan chunk), done: make(chan struct{})}
	defer close(body.done)
	go body.receive(stream)
	resp, err := s.handle(stream.Context(), req, body)
	if err != nil {
		return err
	}
	return stream.SendMsg(&installSnapshotResponse{resp.(*raft.InstallSnapshotResponse)})
}

// chunk is one received message's data, or the error that ended the
// stream.
type chunk struct {
	data []byte
	err  error
}

// snapshotReader reads the snapshot's bytes from the stream's messages,
// exactly the request's Size of them, waiting at most timeout for each
// message.
type snapshotReader struct {
	pending []byte
	left    int64
	timeout time.Duration
	chunks  chan chunk
	done    chan struct{} // closed when the handler returns
}

// receive passes the stream's messages to Read until the stream ends or
// the handler returns.
func (r *snapshotReader) receive(stream grpc.ServerStream) {
	for {
		msg := &installSnapshotRequest{req: &raft.InstallSnapshotRequest{}}
		err := stream.RecvMsg(msg)
		select {
		case r.chunks <- chunk{msg.data, err}:
		case <-r.done:
			return
		}
		if err != nil {
			return
		}
	}
}

func (r *snapshotReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	for len(r.pending) == 0 {
		t := time.NewTimer(r.timeout)
		select {
		case c := <-r.chunks:
			t.Stop()
			if c.err == io.EOF {
				return 0, io.ErrUnexpectedEOF
			}
			if c.err != nil {
				return 0, c.err
			}
			// gRPC reuses nothing it handed over, so the data may be kept.
			r.pending = c.data
		case <-t.C:
			return 0, fmt.Errorf("grpctransport: no snapshot data for %v (%d bytes still to come)", r.timeout, r.left)
		}
	}
	n := copy(p[:min(int64(len(p)), r.left)], r.pending)
	r.pending = r.pending[n:]
	r.left -= int64(n)
	return n, nil
}
