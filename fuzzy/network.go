package fuzzy

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	raft "github.com/seed48a2b68f/raft"
)

// errCut is what an RPC over a cut link, or a dropped one, returns.
var errCut = errors.New("fuzzy: message lost")

// faults is what the network does to messages at a moment of a schedule.
type faults struct {
	drop     float64       // chance a request or its response is lost
	dup      float64       // chance a request is delivered again, later
	maxDelay time.Duration // each request waits up to this long
}

// network is the fault state every node's transport consults: which
// directed links are cut, and how messages are lost, delayed, duplicated
// and reordered. It also watches AppendEntries to check election safety at
// the wire: no two servers may send AppendEntries as leader of one term.
//
// Its lock is held only for short computations, never across a send, so
// that a synctest bubble's clock can move while RPCs wait.
type network struct {
	mu      sync.Mutex
	rng     *rand.Rand
	cut     map[[2]raft.ServerAddress]bool
	f       faults
	leaders map[uint64]raft.ServerID
	errs    []string
	stats   struct{ sent, dropped, duplicated int }
}

func newNetwork(seed uint64) *network {
	return &network{
		rng:     rand.New(rand.NewPCG(seed, 0x6e6574)),
		cut:     make(map[[2]raft.ServerAddress]bool),
		leaders: make(map[uint64]raft.ServerID),
	}
}

// setFaults changes the message faults from now on.
func (n *network) setFaults(f faults) {
	n.mu.Lock()
	n.f = f
	n.mu.Unlock()
}

// setCut cuts (or heals) the link from a to b, one direction.
func (n *network) setCut(a, b raft.ServerAddress, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if cut {
		n.cut[[2]raft.ServerAddress{a, b}] = true
	} else {
		delete(n.cut, [2]raft.ServerAddress{a, b})
	}
}

// clearCuts heals every link, keeping message faults.
func (n *network) clearCuts() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
}

// healAll removes every cut and message fault.
func (n *network) healAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	n.f = faults{}
}

// fate is what happens to one request.
type fate struct {
	lost       bool          // not delivered
	lostReply  bool          // delivered, but the answer is lost
	delay      time.Duration // before delivery
	dupAfter   time.Duration // deliver a copy this long after, if > 0
	replyDelay time.Duration
}

func (n *network) decide(from, to raft.ServerAddress) fate {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stats.sent++
	var d fate
	if n.cut[[2]raft.ServerAddress{from, to}] {
		d.lost = true
	} else if n.cut[[2]raft.ServerAddress{to, from}] {
		d.lostReply = true
	}
	if n.f.drop > 0 && n.rng.Float64() < n.f.drop {
		if n.rng.IntN(2) == 0 {
			d.lost = true
		} else {
			d.lostReply = true
		}
	}
	if d.lost || d.lostReply {
		n.stats.dropped++
	}
	if n.f.maxDelay > 0 {
		d.delay = time.Duration(n.rng.Int64N(int64(n.f.maxDelay)))
		d.replyDelay = time.Duration(n.rng.Int64N(int64(n.f.maxDelay)))
	}
	if !d.lost && n.f.dup > 0 && n.rng.Float64() < n.f.dup {
		n.stats.duplicated++
		d.dupAfter = time.Millisecond + time.Duration(n.rng.Int64N(int64(50*time.Millisecond)))
	}
	return d
}

// sawAppend records that id sent AppendEntries as leader of term.
func (n *network) sawAppend(term uint64, id raft.ServerID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if prev, ok := n.leaders[term]; ok && prev != id {
		n.errs = append(n.errs, fmt.Sprintf("election safety: %s and %s both sent AppendEntries as leader of term %d", prev, id, term))
		return
	}
	n.leaders[term] = id
}

func (n *network) violations() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.errs...)
}

func (n *network) termsWithLeaders() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.leaders)
}

// transport wraps a node's transport with the network's faults. It sends
// pipelined AppendEntries one at a time, in order, through the same faulty
// path.
type transport struct {
	net   *network
	id    raft.ServerID
	inner interface {
		raft.Transport
		raft.WithPreVote
	}
	closed chan struct{}
	once   sync.Once
	// wg counts the goroutines this transport started (pipelines, late
	// duplicates); a synctest bubble must see them all exit.
	wg sync.WaitGroup
}

var (
	_ raft.Transport   = (*transport)(nil)
	_ raft.WithPreVote = (*transport)(nil)
	_ raft.WithClose   = (*transport)(nil)
)

func newTransport(net *network, id raft.ServerID, inner interface {
	raft.Transport
	raft.WithPreVote
}) *transport {
	return &transport{net: net, id: id, inner: inner, closed: make(chan struct{})}
}

func (t *transport) Consumer() <-chan raft.RPC            { return t.inner.Consumer() }
func (t *transport) LocalAddr() raft.ServerAddress        { return t.inner.LocalAddr() }
func (t *transport) SetHeartbeatHandler(h func(raft.RPC)) { t.inner.SetHeartbeatHandler(h) }
func (t *transport) EncodePeer(id raft.ServerID, a raft.ServerAddress) []byte {
	return t.inner.EncodePeer(id, a)
}
func (t *transport) DecodePeer(b []byte) raft.ServerAddress { return t.inner.DecodePeer(b) }

// wait waits for the goroutines the transport started; call it after
// Close (and after the node using it has shut down).
func (t *transport) wait() { t.wg.Wait() }

// Close closes the inner transport if it can be closed.
func (t *transport) Close() error {
	t.once.Do(func() { close(t.closed) })
	if c, ok := t.inner.(raft.WithClose); ok {
		return c.Close()
	}
	return nil
}

// sleep waits d unless the transport closes first.
func (t *transport) sleep(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-t.closed:
		return false
	}
}

// call runs one RPC through the network's faults; send delivers it (again
// for a duplicate, whose answer is thrown away).
func (t *transport) call(target raft.ServerAddress, send func(dup bool) error, dupable bool) error {
	d := t.net.decide(t.inner.LocalAddr(), target)
	if !t.sleep(d.delay) {
		return errCut
	}
	if d.lost {
		return errCut
	}
	err := send(false)
	if dupable && d.dupAfter > 0 && err == nil {
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			if t.sleep(d.dupAfter) {
				_ = send(true)
			}
		}()
	}
	if !t.sleep(d.replyDelay) {
		return errCut
	}
	if d.lostReply {
		return errCut
	}
	return err
}

func (t *transport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	t.net.sawAppend(args.Term, t.id)
	return t.call(target, func(dup bool) error {
		if dup {
			return t.inner.AppendEntries(id, target, copyAppend(args), new(raft.AppendEntriesResponse))
		}
		return t.inner.AppendEntries(id, target, args, resp)
	}, true)
}

// copyAppend deep-copies a request so a late duplicate shares nothing with
// the leader's memory.
func copyAppend(a *raft.AppendEntriesRequest) *raft.AppendEntriesRequest {
	c := *a
	c.Entries = make([]*raft.Log, len(a.Entries))
	for i, e := range a.Entries {
		l := *e
		l.Data = append([]byte(nil), e.Data...)
		l.Extensions = append([]byte(nil), e.Extensions...)
		c.Entries[i] = &l
	}
	return &c
}

func (t *transport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	return t.call(target, func(dup bool) error {
		if dup {
			a := *args
			return t.inner.RequestVote(id, target, &a, new(raft.RequestVoteResponse))
		}
		return t.inner.RequestVote(id, target, args, resp)
	}, true)
}

func (t *transport) RequestPreVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse) error {
	return t.call(target, func(dup bool) error {
		if dup {
			a := *args
			return t.inner.RequestPreVote(id, target, &a, new(raft.RequestPreVoteResponse))
		}
		return t.inner.RequestPreVote(id, target, args, resp)
	}, true)
}

func (t *transport) TimeoutNow(id raft.ServerID, target raft.ServerAddress, args *raft.TimeoutNowRequest, resp *raft.TimeoutNowResponse) error {
	return t.call(target, func(bool) error { return t.inner.TimeoutNow(id, target, args, resp) }, false)
}

func (t *transport) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest, resp *raft.InstallSnapshotResponse, data io.Reader) error {
	return t.call(target, func(bool) error { return t.inner.InstallSnapshot(id, target, args, resp, data) }, false)
}

// AppendEntriesPipeline returns a pipeline that sends up to pipelineDepth
// requests at once through the faulty path and answers them in order of
// sending. Several requests in flight let the receiving follower find
// them waiting together (and merge them); the faulty path's delays can
// also deliver them out of order.
func (t *transport) AppendEntriesPipeline(id raft.ServerID, target raft.ServerAddress) (raft.AppendPipeline, error) {
	p := &pipeline{t: t, id: id, target: target, queue: make(chan *pipeFuture, 64),
		sent: make(chan *pipeFuture, pipelineDepth), done: make(chan raft.AppendFuture, 64), closed: make(chan struct{})}
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		p.run()
	}()
	go func() {
		defer t.wg.Done()
		p.answer()
	}()
	return p, nil
}

// pipelineDepth is how many requests a pipeline has in flight at most.
const pipelineDepth = 8

type pipeline struct {
	t      *transport
	id     raft.ServerID
	target raft.ServerAddress
	queue  chan *pipeFuture
	sent   chan *pipeFuture // in flight, in order of sending
	done   chan raft.AppendFuture
	closed chan struct{}
	once   sync.Once
}

type pipeFuture struct {
	start time.Time
	req   *raft.AppendEntriesRequest
	resp  *raft.AppendEntriesResponse
	err   error
	ready chan struct{}
}

func (f *pipeFuture) Error() error                        { <-f.ready; return f.err }
func (f *pipeFuture) Start() time.Time                    { return f.start }
func (f *pipeFuture) Request() *raft.AppendEntriesRequest { return f.req }
func (f *pipeFuture) Response() *raft.AppendEntriesResponse {
	<-f.ready
	return f.resp
}

// run sends each queued request in a goroutine of its own, at most
// pipelineDepth at once (sent is that bound).
func (p *pipeline) run() {
	defer close(p.sent)
	for {
		select {
		case f := <-p.queue:
			select {
			case p.sent <- f:
			case <-p.closed:
				return
			}
			p.t.wg.Add(1)
			go func() {
				defer p.t.wg.Done()
				f.err = p.t.AppendEntries(p.id, p.target, f.req, f.resp)
				close(f.ready)
			}()
		case <-p.closed:
			return
		}
	}
}

// answer hands the futures to the consumer in order of sending.
func (p *pipeline) answer() {
	for f := range p.sent {
		select {
		case <-f.ready:
		case <-p.closed:
			return
		}
		select {
		case p.done <- f:
		case <-p.closed:
			return
		}
	}
}

func (p *pipeline) AppendEntries(args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) (raft.AppendFuture, error) {
	f := &pipeFuture{start: time.Now(), req: args, resp: resp, ready: make(chan struct{})}
	select {
	case p.queue <- f:
		return f, nil
	case <-p.closed:
		return nil, raft.ErrPipelineShutdown
	}
}

func (p *pipeline) Consumer() <-chan raft.AppendFuture { return p.done }

func (p *pipeline) Close() error {
	p.once.Do(func() { close(p.closed) })
	return nil
}
