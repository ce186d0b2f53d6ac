package raft

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-metrics"
)

var (
	keyReadIndex      = []string{"raft", "read_index"}
	keyReadIndexRound = []string{"raft", "read_index", "round"}
	keyReadIndexLease = []string{"raft", "read_index", "lease"}
	keyReadBarrier    = []string{"raft", "read_barrier"}
)

// leaseStart returns when the lease starts: the newest time t such that a
// quorum of voters acknowledged heartbeats sent at or after t, the leader
// (if a voter) counting with now. acks holds the other voters' newest
// acknowledged send times (0: none), all in nanoseconds on one monotonic
// clock. It reports false when no quorum has acknowledged anything.
func leaseStart(acks []int64, selfVoter bool, quorum int, now int64) (int64, bool) {
	times := make([]int64, 0, len(acks)+1)
	if selfVoter {
		times = append(times, now)
	}
	for _, a := range acks {
		if a > 0 {
			times = append(times, a)
		}
	}
	if quorum <= 0 || len(times) < quorum {
		return 0, false
	}
	slices.Sort(times)
	return times[len(times)-quorum], true
}

// leaseHolds reports whether the leader may answer a read from its lease
// now; it runs on the leader loop. See Config.LeaseReads for the rule.
func (r *Raft) leaseHolds() bool {
	conf := r.config()
	ls := r.leaderState
	c := r.configurations
	if !conf.LeaseReads || ls == nil || ls.transferInProgress ||
		c.latestIndex != c.committedIndex || r.getCommitIndex() < ls.startIndex {
		return false
	}
	now := int64(time.Since(r.started))
	var acks []int64
	for _, s := range c.latest.Servers {
		if s.Suffrage != Voter || s.ID == r.localID {
			continue
		}
		if repl, ok := ls.replState[s.ID]; ok {
			acks = append(acks, repl.leaseAck.Load())
		} else {
			acks = append(acks, 0)
		}
	}
	start, ok := leaseStart(acks, hasVote(c.latest, r.localID), quorumSize(c.latest), now)
	if !ok || start <= ls.leaseFloor {
		return false
	}
	return time.Duration(now-start) < leaseDuration(conf.HeartbeatTimeout, conf.LeaseClockDrift)
}

// endLease ends the current lease: only heartbeats sent after now can start
// a new one. Called before a TimeoutNow can be sent and when a
// configuration is appended.
func (r *Raft) endLease() {
	if ls := r.leaderState; ls != nil {
		ls.leaseFloor = int64(time.Since(r.started))
	}
}

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
