package raft

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-metrics"
)

var (
	keyReadIndex      = []string{"raft", "read_index"}
	keyReadIndexRound = []string{"raft", "read_index", "round"}
	keyReadBarrier    = []string{"raft", "read_barrier"}
)

// ReadIndex returns a future whose Index is the commit index a linearizable
// read must wait for: once this node has applied up to it, its FSM reflects
// every write acknowledged before ReadIndex was called. No log entry is
// written.
//
// On the leader, the index is the commit index of the moment the request
// is taken, confirmed by a round of heartbeats sent after that moment and
// answered by a quorum, so no other leader can have committed anything
// newer; concurrent calls share heartbeats. A new leader first waits until
// an entry of its own term has committed, so the index is never from
// before its term (etcd #7331).
//
// Errors: ErrNotLeader (this node is not the leader; reads on followers
// through the leader are not served yet), ErrLeadershipLost (leadership
// ended before the round completed), ErrEnqueueTimeout (the main loop did
// not take the request within a nonzero timeout; nothing was done),
// ErrRaftShutdown. The timeout bounds only the wait for the main loop.
func (r *Raft) ReadIndex(timeout time.Duration) IndexFuture {
	metrics.IncrCounter(keyReadIndex, 1)
	f := &verifyFuture{read: true}
	f.init()
	f.shutdownCh = r.shutdownCh
	if !r.ctl.push(f) {
		return errorFuture{ErrRaftShutdown}
	}
	if timeout > 0 {
		time.AfterFunc(timeout, func() {
			if r.ctl.withdraw(f) {
				f.respond(ErrEnqueueTimeout)
			}
		})
	}
	return f
}

// ReadBarrier is ReadIndex followed by a wait until this node's FSM has
// applied the read index. Once Error returns nil, a read of this node's FSM
// is linearizable: it sees every write acknowledged before ReadBarrier was
// called. It writes nothing to the log (Barrier writes an entry). Errors
// are ReadIndex's; a node shut down while waiting answers ErrRaftShutdown.
func (r *Raft) ReadBarrier(timeout time.Duration) Future {
	metrics.IncrCounter(keyReadBarrier, 1)
	return &readBarrierFuture{r: r, read: r.ReadIndex(timeout)}
}

// readBarrierFuture waits in Error, on the caller's goroutine: first for
// the read index, then for the FSM to reach it.
type readBarrierFuture struct {
	r    *Raft
	read IndexFuture
	once sync.Once
	err  error
}

func (f *readBarrierFuture) Error() error {
	f.once.Do(func() {
		if f.err = f.read.Error(); f.err != nil {
			return
		}
		f.err = f.r.waitApplied(f.read.Index())
	})
	return f.err
}

// waitApplied blocks until the FSM has applied index, or the node shuts
// down (ErrRaftShutdown).
func (r *Raft) waitApplied(index uint64) error {
	if r.appliedIndex.Load() >= index {
		return nil
	}
	select {
	case <-r.applied.wait(index, &r.appliedIndex):
		return nil
	case <-r.shutdownCh:
		return ErrRaftShutdown
	}
}

// appliedWaiters wakes goroutines waiting for the FSM to reach an index.
// The FSM goroutine calls advance after it publishes a new applied index.
type appliedWaiters struct {
	n       atomic.Int32 // len(waiters), so advance skips the lock when 0
	mu      sync.Mutex
	waiters []appliedWaiter
}

type appliedWaiter struct {
	index uint64
	ch    chan struct{}
}

// wait returns a channel closed once applied reaches index.
func (w *appliedWaiters) wait(index uint64, applied *atomic.Uint64) <-chan struct{} {
	ch := make(chan struct{})
	w.mu.Lock()
	defer w.mu.Unlock()
	// Counted before the index is checked: an advance that misses this
	// waiter (it saw n == 0) published its index before, and the check
	// below sees it.
	w.n.Add(1)
	if applied.Load() >= index {
		w.n.Add(-1)
		close(ch)
		return ch
	}
	w.waiters = append(w.waiters, appliedWaiter{index, ch})
	return ch
}

// advance wakes every waiter whose index is at most applied.
func (w *appliedWaiters) advance(applied uint64) {
	// The applied index is published before this load; a waiter counted
	// after it checks the index itself (wait), so none is missed.
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := w.waiters[:0]
	for _, x := range w.waiters {
		if x.index <= applied {
			close(x.ch)
			continue
		}
		kept = append(kept, x)
	}
	w.n.Add(-int32(len(w.waiters) - len(kept)))
	clear(w.waiters[len(kept):])
	w.waiters = kept
}
