package transport

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/seed48a2b68f/raft"
	"google.golang.org/grpc"
)

// Bounds of one AppendEntries pipeline: requests sent and not yet
// answered, and their bytes (a request larger than the byte bound goes
// alone).
const (
	pipelineMaxInFlight = 128
	pipelineMaxBytes    = 64 << 20
)

var errPipelineClosed = errors.New("grpctransport: the pipeline is closed")

// AppendEntriesPipeline opens a stream to target on which AppendEntries
// requests go out back to back and their answers come back in order.
func (r *raftAPI) AppendEntriesPipeline(_ raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	c, err := r.m.conn(target)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := c.NewStream(ctx, &serviceDesc.Streams[0], methodAppendEntriesPipeline)
	if err != nil {
		cancel()
		return nil, fromStatus(err)
	}
	p := &pipeline{
		target:   target,
		stream:   s,
		cancel:   cancel,
		inflight: make(chan *appendFuture, pipelineMaxInFlight),
		done:     make(chan raft.AppendFuture, pipelineMaxInFlight),
		closed:   make(chan struct{}),
		finished: make(chan struct{}),
	}
	p.room = sync.NewCond(&p.mu)
	go p.receive()
	return p, nil
}

type pipeline struct {
	target   raft.ServerAddress
	stream   grpc.ClientStream
	cancel   context.CancelFunc
	inflight chan *appendFuture     // sent, in order, awaiting answers
	done     chan raft.AppendFuture // answered (or failed), for Consumer
	closed   chan struct{}          // Close was called
	finished chan struct{}          // the receiver has ended

	sendMu sync.Mutex // orders sends with their place in inflight

	mu      sync.Mutex
	room    *sync.Cond
	bytes   int64 // bytes of the requests in flight
	broken  error // set when the stream failed
	closeMu sync.Once
}

// AppendEntries sends args on the stream and returns its future; it
// blocks while the bounds are reached.
func (p *pipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	size := int64(0)
	for _, l := range args.Entries {
		size += int64(len(l.Data) + len(l.Extensions) + 32)
	}
	p.mu.Lock()
	for p.broken == nil && p.bytes > 0 && p.bytes+size > pipelineMaxBytes {
		p.room.Wait()
	}
	if p.broken != nil {
		err := p.broken
		p.mu.Unlock()
		return nil, err
	}
	p.bytes += size
	p.mu.Unlock()

	f := &appendFuture{start: time.Now(), req: args, resp: resp, size: size, ready: make(chan struct{})}
	p.sendMu.Lock()
	defer p.sendMu.Unlock()
	select {
	case p.inflight <- f:
	case <-p.closed:
		return nil, errPipelineClosed
	case <-p.finished:
		return nil, p.err()
	}
	if err := p.stream.SendMsg(&appendEntriesRequest{args}); err != nil {
		// The stream is broken: the receiver fails what is in flight.
		err = callError(p.target, err)
		p.fail(err)
		return nil, err
	}
	return f, nil
}

func (p *pipeline) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken != nil {
		return p.broken
	}
	return errPipelineClosed
}

func (p *pipeline) fail(err error) {
	p.mu.Lock()
	if p.broken == nil {
		p.broken = err
	}
	p.room.Broadcast()
	p.mu.Unlock()
	p.cancel()
}

// receive reads the answers in order and completes the futures; when the
// stream breaks it fails every future still waiting.
func (p *pipeline) receive() {
	defer close(p.finished)
	for {
		var f *appendFuture
		select {
		case f = <-p.inflight:
		case <-p.closed:
			p.fail(errPipelineClosed)
			p.drain()
			return
		}
		err := p.stream.RecvMsg(&appendEntriesResponse{f.resp})
		if err != nil {
			p.fail(callError(p.target, err))
			f.finish(p.err())
			p.deliver(f)
			p.drain()
			return
		}
		p.mu.Lock()
		p.bytes -= f.size
		p.room.Broadcast()
		p.mu.Unlock()
		f.finish(nil)
		if !p.deliver(f) {
			p.drain()
			return
		}
	}
}

// deliver hands f to Consumer, unless the pipeline is closed.
func (p *pipeline) deliver(f *appendFuture) bool {
	select {
	case p.done <- f:
		return true
	case <-p.closed:
		return false
	}
}

// drain fails the futures still in flight.
func (p *pipeline) drain() {
	for {
		select {
		case f := <-p.inflight:
			f.finish(p.err())
		default:
			return
		}
	}
}

// Consumer returns the answered futures, in order.
func (p *pipeline) Consumer() <-chan raft.AppendFuture { return p.done }

// Close ends the stream; futures not answered fail.
func (p *pipeline) Close() error {
	p.closeMu.Do(func() {
		close(p.closed)
		p.sendMu.Lock()
		_ = p.stream.CloseSend()
		p.sendMu.Unlock()
		p.cancel()
	})
	<-p.finished
	return nil
}

// appendFuture is one pipelined AppendEntries.
type appendFuture struct {
	start time.Time
	req   *raft.AppendEntriesRequest
	resp  *raft.AppendEntriesResponse
	size  int64
	err   error
	ready chan struct{}
}

func (f *appendFuture) finish(err error) {
	f.err = err
	close(f.ready)
}

// Error waits for the answer.
func (f *appendFuture) Error() error {
	<-f.ready
	return f.err
}

// Start is when the request was handed to the pipeline.
func (f *appendFuture) Start() time.Time { return f.start }

// Request is the request sent.
func (f *appendFuture) Request() *raft.AppendEntriesRequest { return f.req }

// Response is the answer, once Error has returned nil.
func (f *appendFuture) Response() *raft.AppendEntriesResponse { return f.resp }
