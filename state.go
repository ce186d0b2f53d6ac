package raft

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"
)

// RaftState is a node's role: Follower, Candidate or Leader, or Shutdown.
type RaftState uint32

const (
	// Follower: every node starts here, following a leader or waiting
	// for one.
	Follower RaftState = iota
	// Candidate: standing for election.
	Candidate
	// Leader: elected for the current term.
	Leader
	// Shutdown: stopped for good.
	Shutdown
)

// String returns the state's name.
func (s RaftState) String() string {
	switch s {
	case Follower:
		return "Follower"
	case Candidate:
		return "Candidate"
	case Leader:
		return "Leader"
	case Shutdown:
		return "Shutdown"
	default:
		return "Unknown"
	}
}

// lockedRand is a seeded random source safe for concurrent use.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(seed uint64) *lockedRand {
	if seed == 0 {
		var b [8]byte
		_, _ = crand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	return &lockedRand{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// jitter returns a duration in [d, 2d).
func (l *lockedRand) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return d + time.Duration(l.r.Int64N(int64(d)))
}

// logTailMaxBytes bounds the entry data the log tail keeps, whatever the
// entry count: a tail of large entries must not hold gigabytes.
const logTailMaxBytes = 64 << 20

// logTail keeps the most recent entries of this node's log in memory, so the
// leader can replicate entries while it is still writing them (the disk
// write runs in parallel with replication) and neither role rereads recent
// entries from the store. Entries are contiguous and never mutated. It holds
// up to 2*limit entries and logTailMaxBytes of data, but never drops the
// batch just appended (it may not be in the store yet).
type logTail struct {
	mu       sync.RWMutex
	entries  []*Log
	limit    int
	maxBytes int
	bytes    int // sum of len(Data) over entries
}

func newLogTail(limit int) *logTail {
	return &logTail{limit: limit, maxBytes: logTailMaxBytes}
}

func dataBytes(entries []*Log) int {
	n := 0
	for _, e := range entries {
		n += len(e.Data)
	}
	return n
}

// appendEntries adds entries, which must follow the current tail or replace a
// suffix of it; otherwise the tail restarts at entries.
func (t *logTail) appendEntries(entries []*Log) {
	if len(entries) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	first := entries[0].Index
	if n := len(t.entries); n > 0 {
		base := t.entries[0].Index
		switch {
		case first == base+uint64(n):
		case first >= base && first < base+uint64(n):
			clear(t.entries[first-base:])
			t.entries = t.entries[:first-base]
			t.bytes = dataBytes(t.entries)
		default:
			clear(t.entries)
			t.entries = t.entries[:0]
			t.bytes = 0
		}
	}
	t.entries = append(t.entries, entries...)
	t.bytes += dataBytes(entries)
	if len(t.entries) <= 2*t.limit && t.bytes <= t.maxBytes {
		return
	}
	// Trim down to half the budgets, oldest first, sparing the new batch.
	drop, dropped := 0, 0
	for drop < len(t.entries)-len(entries) &&
		(len(t.entries)-drop > t.limit || t.bytes-dropped > t.maxBytes/2) {
		dropped += len(t.entries[drop].Data)
		drop++
	}
	kept := make([]*Log, len(t.entries)-drop, max(len(t.entries)-drop, 2*t.limit))
	copy(kept, t.entries[drop:])
	t.entries = kept
	t.bytes -= dropped
}

// get returns the entry at index, if the tail holds it.
func (t *logTail) get(index uint64) (*Log, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := len(t.entries)
	if n == 0 {
		return nil, false
	}
	base := t.entries[0].Index
	if index < base || index >= base+uint64(n) {
		return nil, false
	}
	return t.entries[index-base], true
}

// lastIndex returns the index of the newest entry in the tail, or 0.
func (t *logTail) lastIndex() uint64 {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if n := len(t.entries); n > 0 {
		return t.entries[n-1].Index
	}
	return 0
}

// truncateFrom drops the entries at index and above.
func (t *logTail) truncateFrom(index uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.entries)
	if n == 0 {
		return
	}
	base := t.entries[0].Index
	switch {
	case index <= base:
		clear(t.entries)
		t.entries = t.entries[:0]
	case index < base+uint64(n):
		clear(t.entries[index-base:])
		t.entries = t.entries[:index-base]
	}
	t.bytes = dataBytes(t.entries)
}

// reset empties the tail.
func (t *logTail) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.entries)
	t.entries = nil
	t.bytes = 0
}

// applyQueue carries Apply and Barrier requests to the main loop without a
// channel hand-off per entry: callers append under a lock and poke a
// one-slot channel; the loop takes everything queued at once (group commit).
// A full queue makes callers wait, up to their enqueue timeout.
type applyQueue struct {
	mu      sync.Mutex
	items   []*logFuture
	limit   int
	notify  chan struct{}
	drained chan struct{}
	// closed is set once the node's main loop has ended: queued futures
	// were answered, and a push is refused.
	closed bool
}

func newApplyQueue(limit int) *applyQueue {
	return &applyQueue{
		limit:  limit,
		notify: make(chan struct{}, 1),
	}
}

// push enqueues f, waiting while the queue is full. timeout 0 waits without
// a bound.
func (q *applyQueue) push(f *logFuture, timeout time.Duration, shutdownCh <-chan struct{}) error {
	var timer *time.Timer
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrRaftShutdown
		}
		if len(q.items) < q.limit {
			q.items = append(q.items, f)
			q.mu.Unlock()
			select {
			case q.notify <- struct{}{}:
			default:
			}
			if timer != nil {
				timer.Stop()
			}
			return nil
		}
		if q.drained == nil {
			q.drained = make(chan struct{})
		}
		wait := q.drained
		q.mu.Unlock()
		if timer == nil && timeout > 0 {
			timer = time.NewTimer(timeout)
			defer timer.Stop()
		}
		var expired <-chan time.Time
		if timer != nil {
			expired = timer.C
		}
		select {
		case <-wait:
		case <-expired:
			return ErrEnqueueTimeout
		case <-shutdownCh:
			return ErrRaftShutdown
		}
	}
}

// close answers every queued future with err and refuses later pushes.
func (q *applyQueue) close(err error) {
	q.mu.Lock()
	items := q.items
	q.items, q.closed = nil, true
	if q.drained != nil {
		close(q.drained)
		q.drained = nil
	}
	q.mu.Unlock()
	for _, f := range items {
		f.respond(err)
	}
}

// take removes and returns up to max queued items (all when max <= 0).
func (q *applyQueue) take(max int) []*logFuture {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items)
	if n == 0 {
		return nil
	}
	if max > 0 && n > max {
		n = max
	}
	out := make([]*logFuture, n)
	copy(out, q.items)
	rest := copy(q.items, q.items[n:])
	clear(q.items[rest:])
	q.items = q.items[:rest]
	if rest > 0 {
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	if q.drained != nil {
		close(q.drained)
		q.drained = nil
	}
	return out
}

// commitment tracks the match index of every voter on the leader and
// computes the commit index. Replication goroutines report matches; the
// leader loop is poked through commitCh when the commit index moves.
type commitment struct {
	mu          sync.Mutex
	commitCh    chan struct{}
	matches     map[ServerID]uint64
	sessions    map[ServerID]uint64
	commitIndex uint64
	startIndex  uint64
	scratch     []uint64
	// joint holds the configuration while it is joint: the commit index
	// is then the lower of the two halves' majorities.
	joint *Configuration
}

func newCommitment(commitCh chan struct{}, c Configuration, startIndex uint64) *commitment {
	cm := &commitment{
		commitCh:   commitCh,
		matches:    make(map[ServerID]uint64),
		sessions:   make(map[ServerID]uint64),
		startIndex: startIndex,
	}
	cm.setConfiguration(c)
	return cm
}

// setConfiguration changes the set of voters, keeping known matches.
func (c *commitment) setConfiguration(conf Configuration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.matches
	c.matches = make(map[ServerID]uint64)
	for _, s := range conf.Servers {
		if isVoterSuffrage(s.Suffrage) {
			c.matches[s.ID] = old[s.ID]
		}
	}
	c.joint = nil
	if isJoint(conf) {
		j := conf.Clone()
		c.joint = &j
	}
	c.recalculate()
}

// setSession records the replication session that may report for id;
// reports from older sessions are ignored (a removed and re-added server's
// old replicator must not count).
func (c *commitment) setSession(id ServerID, session uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions[id] = session
	if _, ok := c.matches[id]; ok {
		c.matches[id] = 0
	}
}

// match records that id's log matches the leader's up to index.
func (c *commitment) match(id ServerID, session uint64, index uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions[id] != session {
		return
	}
	if prev, ok := c.matches[id]; ok && index > prev {
		c.matches[id] = index
		c.recalculate()
	}
}

func (c *commitment) recalculate() {
	if len(c.matches) == 0 {
		return
	}
	var quorumMatch uint64
	if c.joint != nil {
		quorumMatch = jointCommitIndex(*c.joint, func(id ServerID) uint64 { return c.matches[id] })
	} else {
		c.scratch = c.scratch[:0]
		for _, m := range c.matches {
			c.scratch = append(c.scratch, m)
		}
		quorumMatch = quorumMatchIndex(c.scratch)
	}
	next := leaderCommit(c.commitIndex, quorumMatch, c.startIndex)
	if next > c.commitIndex {
		c.commitIndex = next
		select {
		case c.commitCh <- struct{}{}:
		default:
		}
	}
}

// getCommitIndex returns the commit index computed so far.
func (c *commitment) getCommitIndex() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commitIndex
}

// matchIndex returns the match index of id.
func (c *commitment) matchIndex(id ServerID) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.matches[id]
}
