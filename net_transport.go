package raft

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-msgpack/v2/codec"
)

// Wire type bytes of the five RPCs (hashicorp/raft's framing).
const (
	rpcAppendEntries uint8 = iota
	rpcRequestVote
	rpcInstallSnapshot
	rpcTimeoutNow
	rpcRequestPreVote
)

// rpcReadIndex is a ReadIndexRequest, this library's own; it is sent only
// to a leader that advertised it, so a hashicorp/raft node never sees one.
const rpcReadIndex uint8 = 64

const (
	// DefaultTimeoutScale is the default TimeoutScale in a NetworkTransport:
	// InstallSnapshot gets Timeout for every TimeoutScale bytes.
	DefaultTimeoutScale = 256 * 1024 // 256KB

	// DefaultMaxRPCsInFlight is the pipeline depth used when
	// NetworkTransportConfig.MaxRPCsInFlight is 0.
	DefaultMaxRPCsInFlight = 2

	// connReceiveBufferSize is the read buffer of an inbound connection.
	connReceiveBufferSize = 256 * 1024 // 256KB

	// connSendBufferSize is the write buffer of an outbound connection.
	connSendBufferSize = 256 * 1024 // 256KB

	// DefaultMaxMessageSize is the default NetworkTransportConfig.MaxMessageSize.
	// It is far above what a leader sends in one AppendEntries unless the
	// entries themselves are huge.
	DefaultMaxMessageSize = 128 << 20

	// DefaultReadTimeout is the default NetworkTransportConfig.ReadTimeout.
	DefaultReadTimeout = 10 * time.Second

	// DefaultMaxIdleTime is the default NetworkTransportConfig.MaxIdleTime.
	DefaultMaxIdleTime = 2 * time.Minute

	// maxRetainedBuffer is the largest encode buffer a pooled connection
	// keeps between requests.
	maxRetainedBuffer = 1 << 20

	// minInFlightForPipelining: below this many requests in flight a
	// pipeline would gain nothing over sending one at a time.
	minInFlightForPipelining = 2
)

var (
	// errNotAdvertisable is returned when the bind address is not
	// advertisable.
	errNotAdvertisable = errors.New("local bind address is not advertisable")
	// errNotTCP is returned when the local address is not TCP.
	errNotTCP = errors.New("local address is not a TCP address")
)

// StreamLayer gives a NetworkTransport its connections: a listener for
// inbound ones and Dial for outbound ones (plain TCP, TLS, or anything
// stream-like).
type StreamLayer interface {
	net.Listener

	// Dial opens a connection to address within timeout.
	Dial(address ServerAddress, timeout time.Duration) (net.Conn, error)
}

// ServerAddressProvider resolves a server ID to the address to dial.
type ServerAddressProvider interface {
	ServerAddr(id ServerID) (ServerAddress, error)
}

// NetworkTransportConfig holds the settings of a NetworkTransport.
type NetworkTransportConfig struct {
	// ServerAddressProvider, when set, decides the address dialed for a
	// server ID, in place of the address in the configuration.
	ServerAddressProvider ServerAddressProvider

	// Logger is used to log messages; a default one is made when nil.
	Logger hclog.Logger

	// Stream provides the connections.
	Stream StreamLayer

	// MaxPool is how many idle connections are kept per peer.
	MaxPool int

	// MaxRPCsInFlight is how many AppendEntries a pipeline may have
	// unanswered. 0 means DefaultMaxRPCsInFlight; 1 turns pipelining off.
	MaxRPCsInFlight int

	// Timeout is the I/O deadline of an RPC; an InstallSnapshot gets it
	// once per TimeoutScale bytes of snapshot.
	Timeout time.Duration

	// MsgpackUseNewTimeFormat, when true, encodes times in the msgpack
	// timestamp form; the default is the legacy form every raft version
	// reads.
	MsgpackUseNewTimeFormat bool

	// MaxMessageSize bounds one inbound message (a request, or a response
	// to one of ours), not counting InstallSnapshot's data. A peer that
	// sends more has its connection closed, so memory per connection stays
	// bounded. 0 means DefaultMaxMessageSize. (Not in hashicorp/raft.)
	MaxMessageSize int

	// ReadTimeout is how long a request may take to arrive once its first
	// byte has, extended by as much for every TimeoutScale bytes; a peer
	// that trickles slower has its connection closed. Idle connections
	// between requests are not affected. 0 means DefaultReadTimeout. (Not in
	// hashicorp/raft.)
	ReadTimeout time.Duration

	// MaxIdleTime closes pooled outbound connections that stayed unused for
	// this long. 0 means DefaultMaxIdleTime; a negative value keeps them
	// until they fail. (Not in hashicorp/raft.)
	MaxIdleTime time.Duration
}

// NetworkTransport is a Transport over connections from a StreamLayer, with
// the framing and encoding of
// hashicorp/raft: one type byte and one msgpack value per request, an error
// string and a msgpack value per response, one request at a time per
// connection.
type NetworkTransport struct {
	connPool     map[ServerAddress][]*netConn
	connPoolLock sync.Mutex

	consumeCh chan RPC

	heartbeatFn     func(RPC)
	heartbeatFnLock sync.Mutex

	logger hclog.Logger

	maxPool     int
	maxInFlight int

	serverAddressProvider ServerAddressProvider

	shutdown     bool
	shutdownCh   chan struct{}
	shutdownLock sync.Mutex

	stream StreamLayer

	// streamCtx is cancelled to stop every inbound connection handler.
	streamCtx     context.Context
	streamCancel  context.CancelFunc
	streamCtxLock sync.RWMutex

	timeout time.Duration
	// TimeoutScale is the number of snapshot bytes per Timeout when
	// sending InstallSnapshot, and per ReadTimeout when receiving a
	// request.
	TimeoutScale int

	msgpackUseNewTimeFormat bool

	maxMessageSize int
	readTimeout    time.Duration
	maxIdleTime    time.Duration
}

// netConn is an outbound connection: its buffered reader and writer, the
// go-msgpack encoder for the messages the hand-written codec does not cover,
// and reusable buffers.
type netConn struct {
	target ServerAddress
	conn   net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	enc    *codec.Encoder

	out      []byte // encoding buffer of AppendEntries requests
	scratch  []byte // framing buffer of responses
	maxMsg   int
	newTime  bool
	lastUsed time.Time // when it went back to the pool
}

func (n *netConn) Release() error {
	return n.conn.Close()
}

// NewNetworkTransportWithConfig returns a transport with config's settings
// (zero values take their defaults) and starts listening on config.Stream.
func NewNetworkTransportWithConfig(config *NetworkTransportConfig) *NetworkTransport {
	if config.Logger == nil {
		config.Logger = hclog.New(&hclog.LoggerOptions{
			Name:   "raft-net",
			Output: hclog.DefaultOutput,
			Level:  hclog.DefaultLevel,
		})
	}
	maxInFlight := config.MaxRPCsInFlight
	if maxInFlight == 0 {
		maxInFlight = DefaultMaxRPCsInFlight
	}
	maxMsg := config.MaxMessageSize
	if maxMsg <= 0 {
		maxMsg = DefaultMaxMessageSize
	}
	readTimeout := config.ReadTimeout
	if readTimeout <= 0 {
		readTimeout = DefaultReadTimeout
	}
	maxIdle := config.MaxIdleTime
	if maxIdle == 0 {
		maxIdle = DefaultMaxIdleTime
	}
	trans := &NetworkTransport{
		connPool:                make(map[ServerAddress][]*netConn),
		consumeCh:               make(chan RPC),
		logger:                  config.Logger,
		maxPool:                 config.MaxPool,
		maxInFlight:             maxInFlight,
		shutdownCh:              make(chan struct{}),
		stream:                  config.Stream,
		timeout:                 config.Timeout,
		TimeoutScale:            DefaultTimeoutScale,
		serverAddressProvider:   config.ServerAddressProvider,
		msgpackUseNewTimeFormat: config.MsgpackUseNewTimeFormat,
		maxMessageSize:          maxMsg,
		readTimeout:             readTimeout,
		maxIdleTime:             maxIdle,
	}
	trans.setupStreamContext()
	go trans.listen()
	if maxIdle > 0 {
		go trans.reapIdle()
	}
	return trans
}

// NewNetworkTransport returns a transport over stream, keeping up to maxPool
// idle connections per peer. timeout is the I/O deadline of an RPC; an
// InstallSnapshot gets it once per TimeoutScale bytes of snapshot.
func NewNetworkTransport(stream StreamLayer, maxPool int, timeout time.Duration, logOutput io.Writer) *NetworkTransport {
	if logOutput == nil {
		logOutput = os.Stderr
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft-net", Output: logOutput, Level: hclog.DefaultLevel})
	return NewNetworkTransportWithConfig(&NetworkTransportConfig{Stream: stream, MaxPool: maxPool, Timeout: timeout, Logger: logger})
}

// NewNetworkTransportWithLogger is NewNetworkTransport with a logger.
func NewNetworkTransportWithLogger(stream StreamLayer, maxPool int, timeout time.Duration, logger hclog.Logger) *NetworkTransport {
	return NewNetworkTransportWithConfig(&NetworkTransportConfig{Stream: stream, MaxPool: maxPool, Timeout: timeout, Logger: logger})
}

// setupStreamContext makes a fresh context for inbound handlers; the caller
// holds streamCtxLock.
func (n *NetworkTransport) setupStreamContext() {
	ctx, cancel := context.WithCancel(context.Background())
	n.streamCtx = ctx
	n.streamCancel = cancel
}

// getStreamContext returns the inbound handlers' current context.
func (n *NetworkTransport) getStreamContext() context.Context {
	n.streamCtxLock.RLock()
	defer n.streamCtxLock.RUnlock()
	return n.streamCtx
}

// SetHeartbeatHandler installs the handler that inbound heartbeats go to
// directly, off the consumer channel.
func (n *NetworkTransport) SetHeartbeatHandler(cb func(rpc RPC)) {
	n.heartbeatFnLock.Lock()
	defer n.heartbeatFnLock.Unlock()
	n.heartbeatFn = cb
}

// CloseStreams closes the current streams: pooled connections are closed
// and the inbound handlers exit at their next request.
func (n *NetworkTransport) CloseStreams() {
	n.connPoolLock.Lock()
	defer n.connPoolLock.Unlock()
	for k, e := range n.connPool {
		for _, conn := range e {
			_ = conn.Release()
		}
		delete(n.connPool, k)
	}
	n.streamCtxLock.Lock()
	n.streamCancel()
	n.setupStreamContext()
	n.streamCtxLock.Unlock()
}

// Close stops listening and ends the inbound handlers; later RPCs fail with
// ErrTransportShutdown.
func (n *NetworkTransport) Close() error {
	n.shutdownLock.Lock()
	defer n.shutdownLock.Unlock()
	if !n.shutdown {
		close(n.shutdownCh)
		_ = n.stream.Close()
		n.shutdown = true
	}
	return nil
}

// Consumer is part of Transport.
func (n *NetworkTransport) Consumer() <-chan RPC {
	return n.consumeCh
}

// maxInboundMessageSize reports MaxMessageSize to raft, which keeps its
// AppendEntries requests below it.
func (n *NetworkTransport) maxInboundMessageSize() int { return n.maxMessageSize }

// LocalAddr is part of Transport.
func (n *NetworkTransport) LocalAddr() ServerAddress {
	return ServerAddress(n.stream.Addr().String())
}

// IsShutdown reports whether Close has been called.
func (n *NetworkTransport) IsShutdown() bool {
	select {
	case <-n.shutdownCh:
		return true
	default:
		return false
	}
}

// getPooledConn takes the most recently used idle connection to target, if
// any; connections idle longer than MaxIdleTime are closed on the way.
func (n *NetworkTransport) getPooledConn(target ServerAddress) *netConn {
	n.connPoolLock.Lock()
	defer n.connPoolLock.Unlock()
	for {
		conns := n.connPool[target]
		num := len(conns)
		if num == 0 {
			return nil
		}
		conn := conns[num-1]
		conns[num-1] = nil
		n.connPool[target] = conns[:num-1]
		if n.maxIdleTime > 0 && time.Since(conn.lastUsed) > n.maxIdleTime {
			_ = conn.Release()
			continue
		}
		return conn
	}
}

// reapIdle closes pooled connections that stayed unused for MaxIdleTime,
// so that a peer that is gone does not hold file descriptors forever.
func (n *NetworkTransport) reapIdle() {
	ticker := time.NewTicker(n.maxIdleTime / 2)
	defer ticker.Stop()
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-ticker.C:
			n.reapIdleOnce(time.Now())
		}
	}
}

// reapIdleOnce closes the pooled connections idle since before now minus
// MaxIdleTime and reports how many it closed.
func (n *NetworkTransport) reapIdleOnce(now time.Time) int {
	n.connPoolLock.Lock()
	defer n.connPoolLock.Unlock()
	reaped := 0
	for target, conns := range n.connPool {
		kept := conns[:0]
		for _, c := range conns {
			if now.Sub(c.lastUsed) > n.maxIdleTime {
				_ = c.Release()
				reaped++
				continue
			}
			kept = append(kept, c)
		}
		for i := len(kept); i < len(conns); i++ {
			conns[i] = nil
		}
		if len(kept) == 0 {
			delete(n.connPool, target)
		} else {
			n.connPool[target] = kept
		}
	}
	return reaped
}

// getConnFromAddressProvider dials the address the ServerAddressProvider
// gives for id, or target when there is no provider or it fails.
func (n *NetworkTransport) getConnFromAddressProvider(id ServerID, target ServerAddress) (*netConn, error) {
	return n.getConn(n.getProviderAddressOrFallback(id, target))
}

func (n *NetworkTransport) getProviderAddressOrFallback(id ServerID, target ServerAddress) ServerAddress {
	if n.serverAddressProvider != nil {
		serverAddressOverride, err := n.serverAddressProvider.ServerAddr(id)
		if err != nil {
			n.logger.Warn("unable to get address for server, using fallback address", "id", id, "fallback", target, "error", err)
		} else {
			return serverAddressOverride
		}
	}
	return target
}

// getConn returns an idle pooled connection to target, or dials one.
func (n *NetworkTransport) getConn(target ServerAddress) (*netConn, error) {
	if conn := n.getPooledConn(target); conn != nil {
		return conn, nil
	}
	conn, err := n.stream.Dial(target, n.timeout)
	if err != nil {
		return nil, err
	}
	netConn := &netConn{
		target:  target,
		conn:    conn,
		r:       bufio.NewReader(conn),
		w:       bufio.NewWriterSize(conn, connSendBufferSize),
		maxMsg:  n.maxMessageSize,
		newTime: n.msgpackUseNewTimeFormat,
	}
	netConn.enc = codec.NewEncoder(netConn.w, n.encodeHandle())
	return netConn, nil
}

// encodeHandle is the msgpack handle for encoding: the defaults, with the
// legacy time format unless configured otherwise.
func (n *NetworkTransport) encodeHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.TimeNotBuiltin = !n.msgpackUseNewTimeFormat
	return h
}

// returnConn puts a connection back in its peer's pool, or closes it when
// the pool is full or the transport closed.
func (n *NetworkTransport) returnConn(conn *netConn) {
	n.connPoolLock.Lock()
	defer n.connPoolLock.Unlock()
	key := conn.target
	conns := n.connPool[key]
	if !n.IsShutdown() && len(conns) < n.maxPool {
		conn.lastUsed = time.Now()
		n.connPool[key] = append(conns, conn)
		return
	}
	_ = conn.Release()
}

// AppendEntriesPipeline opens a pipeline of AppendEntries to target on a
// connection of its own.
func (n *NetworkTransport) AppendEntriesPipeline(id ServerID, target ServerAddress) (AppendPipeline, error) {
	if n.maxInFlight < minInFlightForPipelining {
		return nil, ErrPipelineReplicationNotSupported
	}
	conn, err := n.getConnFromAddressProvider(id, target)
	if err != nil {
		return nil, err
	}
	return newNetPipeline(n, conn, n.maxInFlight), nil
}

// AppendEntries is part of Transport.
func (n *NetworkTransport) AppendEntries(id ServerID, target ServerAddress, args *AppendEntriesRequest, resp *AppendEntriesResponse) error {
	return n.genericRPC(id, target, rpcAppendEntries, args, resp)
}

// RequestVote is part of Transport.
func (n *NetworkTransport) RequestVote(id ServerID, target ServerAddress, args *RequestVoteRequest, resp *RequestVoteResponse) error {
	return n.genericRPC(id, target, rpcRequestVote, args, resp)
}

// RequestPreVote is part of WithPreVote.
func (n *NetworkTransport) RequestPreVote(id ServerID, target ServerAddress, args *RequestPreVoteRequest, resp *RequestPreVoteResponse) error {
	return n.genericRPC(id, target, rpcRequestPreVote, args, resp)
}

// ReadIndex is part of WithReadIndex.
func (n *NetworkTransport) ReadIndex(id ServerID, target ServerAddress, args *ReadIndexRequest, resp *ReadIndexResponse) error {
	return n.genericRPC(id, target, rpcReadIndex, args, resp)
}

// TimeoutNow is part of Transport.
func (n *NetworkTransport) TimeoutNow(id ServerID, target ServerAddress, args *TimeoutNowRequest, resp *TimeoutNowResponse) error {
	return n.genericRPC(id, target, rpcTimeoutNow, args, resp)
}

// genericRPC sends one request on a pooled connection and reads its answer.
func (n *NetworkTransport) genericRPC(id ServerID, target ServerAddress, rpcType uint8, args interface{}, resp interface{}) error {
	conn, err := n.getConnFromAddressProvider(id, target)
	if err != nil {
		return err
	}
	if n.timeout > 0 {
		_ = conn.conn.SetDeadline(time.Now().Add(n.timeout))
	}
	if err = sendRPC(conn, rpcType, args); err != nil {
		return err
	}
	canReturn, err := decodeResponse(conn, resp)
	if canReturn {
		n.returnConn(conn)
	}
	return err
}

// InstallSnapshot implements the Transport interface: the request, then
// exactly args.Size bytes of data on the same connection, which is closed
// afterwards.
func (n *NetworkTransport) InstallSnapshot(id ServerID, target ServerAddress, args *InstallSnapshotRequest, resp *InstallSnapshotResponse, data io.Reader) error {
	conn, err := n.getConnFromAddressProvider(id, target)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Release() }()

	if n.timeout > 0 {
		timeout := n.timeout * time.Duration(args.Size/int64(n.TimeoutScale))
		if timeout < n.timeout {
			timeout = n.timeout
		}
		_ = conn.conn.SetDeadline(time.Now().Add(timeout))
	}
	if err = sendRPC(conn, rpcInstallSnapshot, args); err != nil {
		return err
	}
	if _, err = io.Copy(conn.w, io.LimitReader(data, args.Size)); err != nil {
		return fmt.Errorf("send snapshot data: %w", err)
	}
	if err = conn.w.Flush(); err != nil {
		return err
	}
	_, err = decodeResponse(conn, resp)
	return err
}

// EncodePeer is part of Transport.
func (n *NetworkTransport) EncodePeer(id ServerID, p ServerAddress) []byte {
	address := n.getProviderAddressOrFallback(id, p)
	return []byte(address)
}

// DecodePeer is part of Transport.
func (n *NetworkTransport) DecodePeer(buf []byte) ServerAddress {
	return ServerAddress(buf)
}

// listen accepts inbound connections until the transport closes, backing
// off on accept errors.
func (n *NetworkTransport) listen() {
	const baseDelay = 5 * time.Millisecond
	const maxDelay = 1 * time.Second
	var loopDelay time.Duration
	for {
		conn, err := n.stream.Accept()
		if err != nil {
			if loopDelay == 0 {
				loopDelay = baseDelay
			} else {
				loopDelay *= 2
			}
			if loopDelay > maxDelay {
				loopDelay = maxDelay
			}
			if !n.IsShutdown() {
				n.logger.Error("failed to accept connection", "error", err)
			}
			select {
			case <-n.shutdownCh:
				return
			case <-time.After(loopDelay):
				continue
			}
		}
		loopDelay = 0
		n.logger.Debug("accepted connection", "local-address", n.LocalAddr(), "remote-address", conn.RemoteAddr().String())
		go n.handleConn(n.getStreamContext(), conn)
	}
}

// inboundConn is the receiving side of one connection.
type inboundConn struct {
	trans   *NetworkTransport
	conn    net.Conn
	r       *bufio.Reader
	w       *bufio.Writer
	enc     *codec.Encoder
	out     []byte
	scratch []byte

	// nextExtend is the message size at which the read deadline is
	// extended again (every TimeoutScale bytes).
	nextExtend int
}

// handleConn serves one inbound connection until it closes or connCtx is
// cancelled. A malformed, oversized or too slow request closes the
// connection, with a log line.
func (n *NetworkTransport) handleConn(connCtx context.Context, conn net.Conn) {
	defer conn.Close()
	in := &inboundConn{
		trans: n,
		conn:  conn,
		r:     bufio.NewReaderSize(conn, connReceiveBufferSize),
		w:     bufio.NewWriter(conn),
	}
	in.enc = codec.NewEncoder(in.w, n.encodeHandle())
	// A TLS connection completes its handshake (and the peer's certificate
	// check) first, within the read timeout.
	if hs, ok := conn.(interface {
		HandshakeContext(context.Context) error
	}); ok {
		ctx, cancel := context.WithTimeout(connCtx, n.readTimeout)
		err := hs.HandshakeContext(ctx)
		cancel()
		if err != nil {
			n.logger.Error("closing inbound connection: TLS handshake failed", "remote-address", conn.RemoteAddr().String(), "error", err)
			return
		}
	}
	// The connection is read ahead of the answers: this goroutine reads
	// and dispatches requests while the writer below answers earlier ones
	// in order, so raft can find several pipelined AppendEntries waiting
	// and store them together.
	queue := make(chan inflightRPC, inboundReadAhead)
	writerDone := make(chan struct{})
	var writeErr error
	go func() {
		defer close(writerDone)
		writeErr = in.writeResponses(queue)
		if writeErr != nil {
			conn.Close() // stops the reader
		}
	}()
	readErr := in.readRequests(connCtx, queue, writerDone)
	close(queue)
	<-writerDone
	switch {
	case n.IsShutdown():
	case writeErr != nil && !errors.Is(writeErr, ErrTransportShutdown):
		n.logger.Error("closing inbound connection: failed to write a response", "remote-address", conn.RemoteAddr().String(), "error", writeErr)
	case readErr == errConnContextDone:
		n.logger.Debug("stream layer is closed")
	case readErr != nil && readErr != io.EOF && writeErr == nil:
		n.logger.Error("closing inbound connection", "remote-address", conn.RemoteAddr().String(), "error", readErr)
	}
}

// inboundReadAhead is how many requests of one connection can be read and
// handed to raft before the first of them is answered.
const inboundReadAhead = 32

// errConnContextDone ends a connection's reader when the stream layer
// closes.
var errConnContextDone = errors.New("stream layer closed")

// inflightRPC is a request handed to raft whose answer is still to be
// written. done is set for a request that streams data after it
// (InstallSnapshot): the reader waits for it, since the writer drains what
// raft did not read of the stream.
type inflightRPC struct {
	rpc    RPC
	respCh chan RPCResponse
	done   chan struct{}
}

// readRequests reads and dispatches requests until an error, queueing each
// for writeResponses.
func (in *inboundConn) readRequests(connCtx context.Context, queue chan<- inflightRPC, writerDone <-chan struct{}) error {
	n := in.trans
	for {
		select {
		case <-connCtx.Done():
			return errConnContextDone
		default:
		}
		item, err := in.readCommand()
		if err != nil {
			return err
		}
		if cap(in.scratch) > maxRetainedBuffer {
			in.scratch = nil
		}
		select {
		case queue <- item:
		case <-writerDone:
			return nil
		case <-n.shutdownCh:
			return ErrTransportShutdown
		}
		if item.done != nil {
			// Nothing more is read until the snapshot's stream is
			// consumed.
			select {
			case <-item.done:
			case <-writerDone:
				return nil
			case <-n.shutdownCh:
				return ErrTransportShutdown
			}
		}
	}
}

// writeResponses writes the answers of the queued requests in order,
// flushing whenever no further answer is queued.
func (in *inboundConn) writeResponses(queue <-chan inflightRPC) error {
	n := in.trans
	for item := range queue {
		var resp RPCResponse
		select {
		case resp = <-item.respCh:
		case <-n.shutdownCh:
			return ErrTransportShutdown
		}
		if item.rpc.Reader != nil {
			// Keep the stream aligned: consume what raft did not read of
			// the snapshot data.
			if _, err := io.Copy(io.Discard, item.rpc.Reader); err != nil {
				return fmt.Errorf("drain snapshot data: %w", err)
			}
		}
		if stagesOn {
			if ae, ok := item.rpc.Command.(*AppendEntriesRequest); ok {
				stampEntries(stageFollowerAnswering, ae.Entries)
			}
		}
		err := in.writeResponse(resp)
		if item.done != nil {
			close(item.done)
		}
		if err != nil {
			return err
		}
		if len(queue) == 0 {
			if err := in.w.Flush(); err != nil {
				return fmt.Errorf("flush response: %w", err)
			}
		}
		if cap(in.out) > maxRetainedBuffer {
			in.out = nil
		}
	}
	return in.w.Flush()
}

// startDeadline gives the request that just started ReadTimeout to arrive.
func (in *inboundConn) startDeadline() {
	in.nextExtend = in.trans.TimeoutScale
	_ = in.conn.SetReadDeadline(time.Now().Add(in.trans.readTimeout))
}

// progress extends the read deadline by ReadTimeout for every TimeoutScale
// bytes received, so a large request from a healthy peer is never cut off
// while a trickle is.
func (in *inboundConn) progress(received int) {
	if in.trans.TimeoutScale > 0 && received >= in.nextExtend {
		in.nextExtend = received + in.trans.TimeoutScale
		_ = in.conn.SetReadDeadline(time.Now().Add(in.trans.readTimeout))
	}
}

// readRequest reads the msgpack value of a request into a buffer it owns.
func (in *inboundConn) readRequest(what string) ([]byte, error) {
	msg, scratch, err := readMessage(in.r, in.scratch, in.trans.maxMessageSize, in.progress)
	in.scratch = scratch
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return msg, nil
}

// deadlineReader extends the connection's read deadline as snapshot data
// arrives, at the same rate as for requests.
type deadlineReader struct {
	in       *inboundConn
	r        io.Reader
	received int
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	d.received += n
	d.in.progress(d.received)
	return n, err
}

// readCommand reads one request and hands it to raft (or the heartbeat
// fast path). The answer arrives on the returned item's respCh.
func (in *inboundConn) readCommand() (inflightRPC, error) {
	n := in.trans
	// Between requests the connection may stay idle as long as it likes.
	_ = in.conn.SetReadDeadline(time.Time{})
	rpcType, err := in.r.ReadByte()
	if err != nil {
		return inflightRPC{}, err
	}
	in.startDeadline()

	respCh := make(chan RPCResponse, 1)
	rpc := RPC{RespChan: respCh}
	isHeartbeat := false
	switch rpcType {
	case rpcAppendEntries:
		msg, err := in.readRequest("AppendEntries")
		if err != nil {
			return inflightRPC{}, err
		}
		req := new(AppendEntriesRequest)
		if err := decodeAppendEntriesRequest(msg, req); err != nil {
			return inflightRPC{}, err
		}
		stampEntries(stageFollowerRead, req.Entries)
		rpc.Command = req
		leaderAddr := req.RPCHeader.Addr
		if len(leaderAddr) == 0 {
			leaderAddr = req.Leader
		}
		if req.Term != 0 && leaderAddr != nil && req.PrevLogEntry == 0 && req.PrevLogTerm == 0 &&
			len(req.Entries) == 0 && req.LeaderCommitIndex == 0 {
			isHeartbeat = true
		}
	case rpcRequestVote:
		req := new(RequestVoteRequest)
		if err := in.decodeRequest("RequestVote", req); err != nil {
			return inflightRPC{}, err
		}
		rpc.Command = req
	case rpcRequestPreVote:
		req := new(RequestPreVoteRequest)
		if err := in.decodeRequest("RequestPreVote", req); err != nil {
			return inflightRPC{}, err
		}
		rpc.Command = req
	case rpcInstallSnapshot:
		req := new(InstallSnapshotRequest)
		if err := in.decodeRequest("InstallSnapshot", req); err != nil {
			return inflightRPC{}, err
		}
		if req.Size < 0 {
			return inflightRPC{}, fmt.Errorf("install snapshot with negative size %d", req.Size)
		}
		rpc.Command = req
		rpc.Reader = &deadlineReader{in: in, r: io.LimitReader(in.r, req.Size)}
	case rpcTimeoutNow:
		req := new(TimeoutNowRequest)
		if err := in.decodeRequest("TimeoutNow", req); err != nil {
			return inflightRPC{}, err
		}
		rpc.Command = req
	case rpcReadIndex:
		req := new(ReadIndexRequest)
		if err := in.decodeRequest("ReadIndex", req); err != nil {
			return inflightRPC{}, err
		}
		rpc.Command = req
	default:
		return inflightRPC{}, fmt.Errorf("unknown rpc type %d", rpcType)
	}

	if isHeartbeat {
		n.heartbeatFnLock.Lock()
		fn := n.heartbeatFn
		n.heartbeatFnLock.Unlock()
		if fn != nil {
			fn(rpc)
			goto RESP
		}
	}

	select {
	case n.consumeCh <- rpc:
	case <-n.shutdownCh:
		return inflightRPC{}, ErrTransportShutdown
	}

RESP:
	item := inflightRPC{rpc: rpc, respCh: respCh}
	if rpc.Reader != nil {
		item.done = make(chan struct{})
	}
	return item, nil
}

// decodeRequest reads and decodes a request that the hand-written codec
// does not cover, with go-msgpack from a bounded buffer.
func (in *inboundConn) decodeRequest(what string, out interface{}) error {
	msg, err := in.readRequest(what)
	if err != nil {
		return err
	}
	if err := decodeMsgPack(msg, out); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

// writeResponse writes the error string, then the response value.
func (in *inboundConn) writeResponse(resp RPCResponse) error {
	respErr := ""
	if resp.Error != nil {
		respErr = resp.Error.Error()
	}
	if ae, ok := resp.Response.(*AppendEntriesResponse); ok && ae != nil {
		in.out = appendRawHeader(in.out[:0], len(respErr))
		in.out = append(in.out, respErr...)
		in.out = appendAppendEntriesResponse(in.out, ae)
		_, err := in.w.Write(in.out)
		return err
	}
	if err := in.enc.Encode(respErr); err != nil {
		return err
	}
	return in.enc.Encode(resp.Response)
}

// decodeResponse reads an RPC response (the error string, then the value)
// and reports whether the connection can be reused.
func decodeResponse(conn *netConn, resp interface{}) (bool, error) {
	rpcError, err := conn.readResponse(resp)
	if err != nil {
		_ = conn.Release()
		return false, err
	}
	if rpcError != "" {
		return true, errors.New(rpcError)
	}
	return true, nil
}

func (c *netConn) readResponse(resp interface{}) (string, error) {
	msg, scratch, err := readMessage(c.r, c.scratch, c.maxMsg, nil)
	c.scratch = scratch
	if err != nil {
		return "", fmt.Errorf("read response error string: %w", err)
	}
	sr := msgReader{b: msg}
	rpcError := sr.bytes("the error string")
	if err := sr.finish("response error string"); err != nil {
		return "", err
	}
	msg, c.scratch, err = readMessage(c.r, c.scratch, c.maxMsg, nil)
	if err != nil {
		return "", fmt.Errorf("read response: %w", err)
	}
	if cap(c.scratch) > maxRetainedBuffer {
		c.scratch = nil
	}
	if ae, ok := resp.(*AppendEntriesResponse); ok {
		err = decodeAppendEntriesResponse(msg, ae)
	} else {
		err = decodeMsgPack(msg, resp)
	}
	if err != nil {
		return "", fmt.Errorf("decode response: %w", err)
	}
	return string(rpcError), nil
}

// sendRPC writes one request (AppendEntries through the hand-written
// encoder) and flushes it.
func sendRPC(conn *netConn, rpcType uint8, args interface{}) error {
	if err := conn.write(rpcType, args); err != nil {
		_ = conn.Release()
		return err
	}
	return nil
}

func (c *netConn) write(rpcType uint8, args interface{}) error {
	if err := c.w.WriteByte(rpcType); err != nil {
		return err
	}
	if req, ok := args.(*AppendEntriesRequest); ok {
		c.out = appendAppendEntriesRequest(c.out[:0], req, c.newTime)
		_, err := c.w.Write(c.out)
		if cap(c.out) > maxRetainedBuffer {
			c.out = nil
		}
		if err != nil {
			return err
		}
	} else if err := c.enc.Encode(args); err != nil {
		return err
	}
	return c.w.Flush()
}

// netPipeline is used to pipeline AppendEntries requests on one dedicated
// connection; responses are matched to requests by order.
type netPipeline struct {
	conn  *netConn
	trans *NetworkTransport

	doneCh       chan AppendFuture
	inprogressCh chan *appendFuture

	shutdown     bool
	shutdownCh   chan struct{}
	shutdownLock sync.Mutex
}

func newNetPipeline(trans *NetworkTransport, conn *netConn, maxInFlight int) *netPipeline {
	// Because we send the request before we wait for the response, one
	// request is always in flight beyond the channel's buffer.
	queueBuffer := maxInFlight - 2
	n := &netPipeline{
		conn:         conn,
		trans:        trans,
		doneCh:       make(chan AppendFuture, queueBuffer),
		inprogressCh: make(chan *appendFuture, queueBuffer),
		shutdownCh:   make(chan struct{}),
	}
	go n.decodeResponses()
	return n
}

// decodeResponses reads the pipeline's answers, in order, until it closes.
func (n *netPipeline) decodeResponses() {
	timeout := n.trans.timeout
	for {
		select {
		case future := <-n.inprogressCh:
			if timeout > 0 {
				_ = n.conn.conn.SetReadDeadline(time.Now().Add(timeout))
			}
			_, err := decodeResponse(n.conn, future.resp)
			stampEntries(stageLeaderRead, future.args.Entries)
			future.respond(err)
			select {
			case n.doneCh <- future:
			case <-n.shutdownCh:
				return
			}
		case <-n.shutdownCh:
			return
		}
	}
}

// AppendEntries sends a request down the pipeline without waiting for its
// answer, which arrives on Consumer.
func (n *netPipeline) AppendEntries(args *AppendEntriesRequest, resp *AppendEntriesResponse) (AppendFuture, error) {
	future := &appendFuture{start: time.Now(), args: args, resp: resp}
	future.init()

	if timeout := n.trans.timeout; timeout > 0 {
		_ = n.conn.conn.SetWriteDeadline(time.Now().Add(timeout))
	}
	if err := sendRPC(n.conn, rpcAppendEntries, future.args); err != nil {
		return nil, err
	}

	select {
	case n.inprogressCh <- future:
		return future, nil
	case <-n.shutdownCh:
		return nil, ErrPipelineShutdown
	}
}

// Consumer delivers the pipeline's answered requests, in order.
func (n *netPipeline) Consumer() <-chan AppendFuture {
	return n.doneCh
}

// Close ends the pipeline and its connection.
func (n *netPipeline) Close() error {
	n.shutdownLock.Lock()
	defer n.shutdownLock.Unlock()
	if n.shutdown {
		return nil
	}
	_ = n.conn.Release()
	n.shutdown = true
	close(n.shutdownCh)
	return nil
}
