package raft

import (
	"slices"
	"sync"
)

// controlSignal is a notification to the main loop that carries no data. A
// signal already pending is not queued again.
type controlSignal uint8

const (
	// sigObservedTerm: a replication goroutine saw a newer term (the value
	// is in Raft.observedTerm).
	sigObservedTerm controlSignal = 1 << iota
	// sigHeartbeatShortened: ReloadConfig lowered the heartbeat timeout, so
	// a follower re-arms its timer and a leader wakes its heartbeaters.
	sigHeartbeatShortened
	// sigRoundAnswered: the newest read round was answered, so a read round
	// held back behind it may start (startReadRound).
	sigRoundAnswered
)

// controlQueue carries the main loop's rarely used inputs: VerifyLeader,
// Restore, LeadershipTransfer and live BootstrapCluster requests, the
// snapshot goroutine's configuration request, heartbeats the transport's
// fast path hands over, and signals. They share one notification channel,
// so each role's loop selects over one channel for all of them instead of
// one per kind: a select locks every channel it waits on when the loop
// parks and again when it wakes, and the loops park and wake for every
// batch of entries.
//
// The loop takes one input per notification (next), as it would take one
// value per channel receive, so an input that changes the node's role is
// followed by inputs handled in the new role.
type controlQueue struct {
	mu      sync.Mutex
	items   []any
	signals controlSignal
	// closed is set when the main loop has ended; pushes are refused.
	closed bool
	notify chan struct{}
}

func newControlQueue() *controlQueue {
	return &controlQueue{notify: make(chan struct{}, 1)}
}

// push queues item for the main loop. It reports false once the main loop
// has ended; the caller answers ErrRaftShutdown.
func (q *controlQueue) push(item any) bool {
	return q.pushUnlessPending(item, nil) == nil
}

// pushUnlessPending queues item unless an item for which pending (if not
// nil) reports true is already waiting. It returns ErrRaftShutdown once the
// main loop has ended and ErrEnqueueTimeout when such an item is waiting.
func (q *controlQueue) pushUnlessPending(item any, pending func(any) bool) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrRaftShutdown
	}
	if pending != nil && slices.ContainsFunc(q.items, pending) {
		q.mu.Unlock()
		return ErrEnqueueTimeout
	}
	q.items = append(q.items, item)
	q.mu.Unlock()
	asyncNotify(q.notify)
	return nil
}

// signal raises s; the loop sees it once however often it was raised
// before the loop took it.
func (q *controlQueue) signal(s controlSignal) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return
	}
	q.signals |= s
	q.mu.Unlock()
	asyncNotify(q.notify)
}

// withdraw removes item if the loop has not taken it yet, and reports
// whether it did.
func (q *controlQueue) withdraw(item any) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	i := slices.Index(q.items, item)
	if i < 0 {
		return false
	}
	q.items = slices.Delete(q.items, i, i+1) // clears the vacated slot
	return true
}

// next takes one input: a signal (sig non-zero) before any item, else the
// oldest item. ok is false when nothing is queued. When more remains, the
// notification is raised again so the loop comes back for it.
func (q *controlQueue) next() (item any, sig controlSignal, ok bool) {
	q.mu.Lock()
	switch {
	case q.signals != 0:
		sig = q.signals & -q.signals // lowest raised signal
		q.signals &^= sig
		ok = true
	case len(q.items) > 0:
		item = q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		if len(q.items) == 0 {
			q.items = nil
		}
		ok = true
	}
	more := q.signals != 0 || len(q.items) > 0
	q.mu.Unlock()
	if more {
		asyncNotify(q.notify)
	}
	return item, sig, ok
}

// close refuses further pushes and returns the items still queued, for the
// main loop to answer.
func (q *controlQueue) close() []any {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.signals = 0
	items := q.items
	q.items = nil
	return items
}

// answerShutdown answers an input the main loop will never handle.
func answerShutdown(item any) {
	switch v := item.(type) {
	case RPC:
		v.Respond(nil, ErrRaftShutdown)
	case interface{ respond(error) }:
		v.respond(ErrRaftShutdown)
	}
}
