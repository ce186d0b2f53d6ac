package raft

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-metrics"
)

// The read metrics, emitted by the leader loop as counts since its last
// emission (emitReadMetrics) rather than once per read: a lease read costs
// a few atomic operations, and a go-metrics call per read would be most of
// its cost.
var (
	keyReadIndex      = []string{"raft", "read_index"}
	keyReadIndexRound = []string{"raft", "read_index", "round"}
	keyReadIndexLease = []string{"raft", "read_index", "lease"}
	// keyReadIndexFollowers counts reads followers asked this leader for.
	keyReadIndexFollowers = []string{"raft", "read_index", "followers"}
	// keyReadIndexHeartbeats counts heartbeats sent to answer VerifyLeader
	// and ReadIndex rounds (one per follower per batch of waiting rounds).
	keyReadIndexHeartbeats = []string{"raft", "read_index", "heartbeats"}
	// keyReadIndexRounds counts heartbeat rounds started for ReadIndex
	// calls; its rate is rounds per second.
	keyReadIndexRounds = []string{"raft", "read_index", "rounds"}
)

// readMetricsEmitted are the read counters as last emitted to go-metrics;
// only the goroutine calling emitReadMetrics uses it.
type readMetricsEmitted struct {
	calls, round, lease, followers, heartbeats, rounds uint64
}

// emitReadMetrics adds to go-metrics' read counters what the node's own
// counters gained since the last call.
func (r *Raft) emitReadMetrics() {
	e := &r.readMetrics
	emit := func(key []string, now uint64, last *uint64) {
		if now > *last {
			metrics.IncrCounter(key, float32(now-*last))
			*last = now
		}
	}
	emit(keyReadIndex, r.readCalls.Load(), &e.calls)
	emit(keyReadIndexRound, r.readsByRound.Load(), &e.round)
	emit(keyReadIndexLease, r.readsByLease.Load(), &e.lease)
	emit(keyReadIndexFollowers, r.readsForFollowers.Load(), &e.followers)
	emit(keyReadIndexHeartbeats, r.readHeartbeats.Load(), &e.heartbeats)
	emit(keyReadIndexRounds, r.readRoundsStarted.Load(), &e.rounds)
}

// leaseStart returns when the lease starts: the newest time t such that a
// quorum of voters acknowledged heartbeats sent at or after t, the leader
// (if a voter) counting with now. acks holds the other voters' newest
// acknowledged send times (0: none), all in nanoseconds on one monotonic
// clock. It reports false when no quorum has acknowledged anything.
func leaseStart(acks []int64, selfVoter bool, quorum int, now int64) (int64, bool) {
	var buf [9]int64 // no allocation for clusters of up to nine voters
	times := buf[:0]
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

// leaseHolds reports whether the leader may answer a read of consistency c
// from its lease now; it runs on the leader loop, where the published view
// is current. See Config.LeaseReads for the rule.
func (r *Raft) leaseHolds(c ReadConsistency) bool {
	conf := r.config()
	if !c.leaseAllowed(conf) {
		return false
	}
	v := r.leaseViewPtr.Load()
	return v != nil && r.getCommitIndex() >= v.startIndex && viewGrantsLease(v, conf, int64(r.now().Sub(r.started)))
}

// viewGrantsLease reports whether the lease inputs v grant a lease at now
// (monotonic nanoseconds since Raft.started): a quorum acknowledged
// heartbeats sent after the floor, recently enough.
func viewGrantsLease(v *leaseView, conf Config, now int64) bool {
	var buf [8]int64
	acks := buf[:0]
	for _, s := range v.voters {
		if s == nil {
			acks = append(acks, 0)
		} else {
			acks = append(acks, s.leaseAck.Load())
		}
	}
	start, ok := leaseStart(acks, v.selfVoter, v.quorum, now)
	return ok && start > v.floor &&
		time.Duration(now-start) < leaseDuration(conf.HeartbeatTimeout, conf.LeaseClockDrift)
}

// endLease ends the current lease: only heartbeats sent after now can start
// a new one. Called before a TimeoutNow can be sent and when a
// configuration is appended.
func (r *Raft) endLease() {
	if ls := r.leaderState; ls != nil {
		ls.leaseFloor = int64(r.now().Sub(r.started))
	}
	r.publishLeaseView()
}

// leaseView is what ReadIndex's fast path needs to check the lease off the
// leader loop: the leader loop publishes a new one whenever any of it
// changes, and nil while no lease may be used.
type leaseView struct {
	voters     []*followerReplication // the voters other than this node
	selfVoter  bool
	quorum     int
	floor      int64
	startIndex uint64
}

// publishLeaseView publishes the lease's inputs for the fast path; it runs
// on the leader loop. Every change of them replaces the pointer, which is
// how a reader knows its check is still current.
func (r *Raft) publishLeaseView() {
	ls := r.leaderState
	c := r.configurations
	// No lease while a change is uncommitted or the configuration is joint
	// (leaseStart counts one set of voters).
	if ls == nil || ls.transferInProgress || c.latestIndex != c.committedIndex || isJoint(c.latest) {
		r.leaseViewPtr.Store(nil)
		return
	}
	v := &leaseView{selfVoter: hasVote(c.latest, r.localID), quorum: len(voters(c.latest))/2 + 1,
		floor: ls.leaseFloor, startIndex: ls.startIndex}
	for _, s := range c.latest.Servers {
		if s.Suffrage != Voter || s.ID == r.localID {
			continue
		}
		v.voters = append(v.voters, ls.replState[s.ID]) // nil if not replicating yet
	}
	r.leaseViewPtr.Store(v)
}

// readIndexFromLease answers a ReadIndex from the lease without the leader
// loop, when it holds: the published view is checked, the commit index
// read, and the view loaded again. An unchanged view means nothing that
// ends the lease (a transfer's TimeoutNow, a configuration, stepping down)
// was published before the commit index was read, so the index is what
// the leader loop itself would have answered.
func (r *Raft) readIndexFromLease(c ReadConsistency) (uint64, bool) {
	conf := r.config()
	if !c.leaseAllowed(conf) || r.State() != Leader {
		return 0, false
	}
	v := r.leaseViewPtr.Load()
	if v == nil || !viewGrantsLease(v, conf, int64(r.now().Sub(r.started))) {
		return 0, false
	}
	index := r.getCommitIndex()
	if index < v.startIndex || r.leaseViewPtr.Load() != v {
		return 0, false
	}
	return index, true
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
// On a follower or nonvoter, the read index comes from the leader: waiting
// calls are sent together in one ReadIndexRequest (a call waits for the
// next request if one is already on its way, so the leader's round always
// starts after the call), and the leader answers as above.
//
// Errors: ErrNotLeader (no leader is known), ErrLeadershipLost (leadership
// ended, or the leader could not be reached, before the index was
// confirmed), ErrReadIndexUnsupported (the leader is a hashicorp/raft node,
// or the transport cannot carry the request), ErrEnqueueTimeout (the
// request was not taken, by the main loop or by a request to the leader,
// within a nonzero timeout; nothing was done), ErrRaftShutdown. The
// timeout bounds only that wait.
//
// With Config.LeaseReads, the leader answers from its lease while it
// holds; ReadIndexWith chooses per call.
func (r *Raft) ReadIndex(timeout time.Duration) IndexFuture {
	return r.ReadIndexWith(ReadDefault, timeout)
}

// ReadConsistency chooses how the leader confirms a read index, per call
// of ReadIndexWith and ReadBarrierWith. (Not in hashicorp/raft.)
type ReadConsistency uint8

const (
	// ReadDefault confirms by lease when Config.LeaseReads is set (on the
	// leader that confirms it) and the lease holds, else by round: what
	// ReadIndex and ReadBarrier do.
	ReadDefault ReadConsistency = iota
	// ReadByRound always confirms by a round of heartbeats answered by a
	// quorum, whatever Config.LeaseReads says: linearizable with no
	// assumption about clocks.
	ReadByRound
	// ReadByLease confirms by the lease while it holds, else by a round,
	// whatever Config.LeaseReads says. It is linearizable under the clock
	// assumption written at Config.LeaseReads, which the caller accepts.
	ReadByLease
)

// String names the consistency as the raftkv API does.
func (c ReadConsistency) String() string {
	switch c {
	case ReadDefault:
		return "default"
	case ReadByRound:
		return "round"
	case ReadByLease:
		return "lease"
	}
	return fmt.Sprintf("ReadConsistency(%d)", uint8(c))
}

// leaseAllowed reports whether a read of consistency c may be answered
// from the lease on a leader configured with conf.
func (c ReadConsistency) leaseAllowed(conf Config) bool {
	switch c {
	case ReadByLease:
		return true
	case ReadDefault:
		return conf.LeaseReads
	}
	return false
}

// ReadIndexWith is ReadIndex with the choice of round or lease made by the
// call rather than by Config.LeaseReads. On a follower the choice travels
// to the leader with the request; calls with different choices that wait
// together are confirmed by a round, which satisfies each.
func (r *Raft) ReadIndexWith(c ReadConsistency, timeout time.Duration) IndexFuture {
	f, round := r.readIndex(c, timeout)
	if round.f != nil {
		if round.by == 0 {
			return round.f
		}
		return &round
	}
	return f
}

// readIndex starts a ReadIndex: a leader's call comes back as its share of
// a round (round.f set), any other as a future.
func (r *Raft) readIndex(c ReadConsistency, timeout time.Duration) (IndexFuture, timedRead) {
	if c > ReadByLease {
		return errorFuture{fmt.Errorf("ReadIndexWith: unknown %v", c)}, timedRead{}
	}
	r.readCalls.Add(1)
	if index, ok := r.readIndexFromLease(c); ok {
		r.readsByLease.Add(1)
		return readIndexDone(index), timedRead{}
	}
	if r.State() != Leader {
		f := &verifyFuture{read: true, consistency: c, readers: 1}
		f.init()
		f.shutdownCh = r.shutdownCh
		if timeout > 0 {
			// Checked when the next request to the leader takes it.
			f.enqueueBy = time.Now().Add(timeout)
		}
		return r.followerReadIndex(f), timedRead{}
	}
	round := timedRead{f: r.joinReadRound(c, 1)}
	if timeout > 0 {
		round.by = r.readRounds.since() + int64(timeout)
	}
	return nil, round
}

// since is the time now in nanoseconds since the rounds' epoch (set by
// NewRaft, on the clock a synctest bubble runs too), plus one, so that it
// is never zero.
func (q *readRounds) since() int64 { return int64(time.Since(q.epoch)) + 1 }

// readRounds gathers the leader's ReadIndex calls into shared rounds: a
// call joins the round the main loop has not taken yet, and only a new
// round is handed to the main loop, so a round's control input, its
// heartbeats and their acknowledgements cost the same for one call as for
// hundreds. Every call of a round waits on the one future; its index is
// the commit index when the round starts, after every call joined.
//
// A round's waiters do not watch the shutdown channel (hundreds of them
// parked on it would contend for its lock, as Apply's would): every round
// is answered, by the loop that takes it (leaveLeader when leadership or
// the node ends), by the drain of the control queue at shutdown, or at
// once when the queue is already closed.
type readRounds struct {
	// next is the round calls join; nil when none waits. Joining takes
	// no lock: the hundreds of callers a round's answer wakes at once all
	// join the next round, and a mutex here was where they queued.
	next atomic.Pointer[verifyFuture]
	// epoch is the base of the rounds' times (takenAt, deadlines).
	epoch time.Time
}

// roundClosed marks a round's joins word once the main loop has taken it.
const roundClosed = int64(1) << 62

// joinReadRound adds n reads of consistency c to the round not yet taken,
// handing a new round to the main loop, and returns the round's future.
func (r *Raft) joinReadRound(c ReadConsistency, n uint64) *verifyFuture {
	lease := c.leaseAllowed(r.config())
	q := &r.readRounds
	for {
		f := q.next.Load()
		fresh := false
		if f == nil {
			f = &verifyFuture{read: true, shared: true, consistency: ReadByLease}
			f.init()
			if !q.next.CompareAndSwap(nil, f) {
				continue // another call made the round first
			}
			fresh = true
		}
		if !lease {
			// The round may answer from the lease only if every call
			// in it allows that; set before joining, so that take,
			// which closes the round after every counted join, sees it.
			f.noLease.Store(true)
		}
		if f.joins.Add(int64(n))&roundClosed != 0 {
			continue // taken meanwhile: join the next one
		}
		if fresh && !r.ctl.push(f) {
			f.respond(ErrRaftShutdown)
		}
		return f
	}
}

// take closes f to joins (later calls join a new round) and settles what
// its calls asked for: how many they are, and round or lease. The main
// loop calls it when it takes f, before anything of the round starts.
func (q *readRounds) take(f *verifyFuture) {
	q.next.CompareAndSwap(f, nil)
	joined := f.joins.Or(roundClosed)
	if f.takenAt.Load() != 0 {
		return
	}
	if f.shared {
		f.readers = uint64(joined &^ roundClosed)
		if f.noLease.Load() {
			f.consistency = ReadByRound
		}
	}
	f.takenAt.Store(q.since())
}

// startReadRound starts the shared read round f, or holds it back, open to
// more calls, while the newest round started is still unanswered. One
// heartbeat per follower is in flight at a time and it carries every
// round registered with that follower, so rounds started faster than
// answers come back only split the calls into more rounds, each costing
// the main loop a round of its own; held back, the calls the answer wakes
// join the next round together. A held round starts when the round before
// it is answered (sigRoundAnswered), once the calls that answer woke have
// stopped arriving.
func (r *Raft) startReadRound(f *verifyFuture) {
	ls := r.leaderState
	if last := ls.lastRound; last != nil && !last.future.responded.Load() && ls.heldRound == nil {
		last.held.Store(true)
		if !last.future.responded.Load() { // else the signal may have been missed
			ls.heldRound = f
			return
		}
	}
	r.readRounds.take(f)
	r.verifyLeader(f)
}

// timedRead is a leader's ReadIndex call with an enqueue timeout on a
// shared round. As Apply's, the timeout is checked when the main loop
// takes the request, with no timer per call: a round taken after the
// call's deadline answers it ErrEnqueueTimeout (the round may have run for
// the others; for this call nothing was done), else what the round
// answers.
type timedRead struct {
	f  *verifyFuture
	by int64 // the deadline, in readRounds.since's nanoseconds; 0: none
}

func (t *timedRead) Error() error {
	err := t.f.Error()
	if taken := t.f.takenAt.Load(); t.by != 0 && taken != 0 && taken > t.by {
		return ErrEnqueueTimeout
	}
	return err
}

// Index is the round's read index; call it only after Error returned nil.
func (t *timedRead) Index() uint64 { return t.f.Index() }

// readIndexDone is a ReadIndex answered at once, from the lease.
type readIndexDone uint64

func (readIndexDone) Error() error    { return nil }
func (d readIndexDone) Index() uint64 { return uint64(d) }

// ReadBarrier is ReadIndex followed by a wait until this node's FSM has
// applied the read index. Once Error returns nil, a read of this node's FSM
// is linearizable: it sees every write acknowledged before ReadBarrier was
// called. It writes nothing to the log (Barrier writes an entry). Errors
// are ReadIndex's; a node shut down while waiting answers ErrRaftShutdown.
func (r *Raft) ReadBarrier(timeout time.Duration) Future {
	return r.ReadBarrierWith(ReadDefault, timeout)
}

// ReadBarrierWith is ReadBarrier with the choice of round or lease made by
// the call (see ReadIndexWith).
func (r *Raft) ReadBarrierWith(c ReadConsistency, timeout time.Duration) Future {
	f, round := r.readIndex(c, timeout)
	return &readBarrierFuture{r: r, read: f, round: round}
}

// readBarrierFuture waits in Error, on the caller's goroutine: first for
// the read index (read, or the leader's round), then for the FSM to reach
// it. Concurrent calls of Error each wait and get the same answer.
type readBarrierFuture struct {
	r      *Raft
	read   IndexFuture
	round  timedRead // used when round.f is set
	result atomic.Pointer[error]
}

// noError is the result of every read barrier that succeeded.
var noError error

func (f *readBarrierFuture) Error() error {
	if p := f.result.Load(); p != nil {
		return *p
	}
	var read IndexFuture = &f.round
	if f.round.f == nil {
		read = f.read
	}
	err := read.Error()
	if err == nil {
		err = f.r.waitApplied(read.Index())
	}
	p := &noError
	if err != nil {
		p = &err
	}
	f.result.CompareAndSwap(nil, p)
	return *f.result.Load()
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

// followerReadBatch holds the ReadIndex calls waiting on a follower for the
// next request to the leader.
type followerReadBatch struct {
	mu      sync.Mutex
	pending []*verifyFuture
	senders int // requests to the leader on their way, at most maxReadSenders
}

// maxReadSenders bounds the ReadIndexRequests a follower has on their way
// to the leader at once; each carries only calls made before it was sent.
// One: calls made while a request is out wait for its answer and go
// together in the next. Four were measured slower (interop
// BenchmarkTCPRead, spread over 3 nodes: 16 clients 42k -> 29k reads/s,
// 256 clients 312k -> 241k): more requests mean more rounds on the leader.
const maxReadSenders = 1

// followerReadIndex queues f for the next request to the leader and starts
// a sender if none runs.
func (r *Raft) followerReadIndex(f *verifyFuture) IndexFuture {
	b := &r.followerReads
	b.mu.Lock()
	b.pending = append(b.pending, f)
	start := b.senders < maxReadSenders
	if start {
		b.senders++
	}
	b.mu.Unlock()
	if start {
		go r.sendFollowerReads()
	}
	return f
}

// sendFollowerReads sends the waiting calls to the leader, one request at a
// time, until none waits. Up to maxReadSenders run at once.
func (r *Raft) sendFollowerReads() {
	b := &r.followerReads
	for {
		b.mu.Lock()
		batch := b.pending
		b.pending = nil
		if len(batch) == 0 {
			b.senders--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		// Calls whose enqueue timeout passed while an earlier request
		// was on its way are not sent.
		now := time.Now()
		kept := batch[:0]
		for _, f := range batch {
			if f.expired(now) {
				f.respond(ErrEnqueueTimeout)
				continue
			}
			kept = append(kept, f)
		}
		batch = kept
		if len(batch) == 0 {
			continue
		}
		index, err := r.askLeaderForReadIndex(len(batch), batchConsistency(batch))
		for _, f := range batch {
			if err == nil {
				f.index = index
			}
			f.respond(err)
		}
	}
}

// batchConsistency is the one choice that satisfies every call of a
// batch: theirs if they agree, else a round.
func batchConsistency(batch []*verifyFuture) ReadConsistency {
	c := batch[0].consistency
	for _, f := range batch[1:] {
		if f.consistency != c {
			return ReadByRound
		}
	}
	return c
}

// askLeaderForReadIndex asks the current leader for a read index on behalf
// of n waiting reads of consistency c.
func (r *Raft) askLeaderForReadIndex(n int, c ReadConsistency) (uint64, error) {
	select {
	case <-r.shutdownCh:
		return 0, ErrRaftShutdown
	default:
	}
	addr, id := r.LeaderWithID()
	switch {
	case addr == "":
		return 0, ErrNotLeader
	case addr == r.localAddr:
		// This node has just become leader: the caller asks again.
		return 0, ErrLeadershipLost
	case r.leaderCaps.Load()&capReadIndex == 0:
		return 0, ErrReadIndexUnsupported
	}
	t, ok := r.trans.(WithReadIndex)
	if !ok {
		return 0, ErrReadIndexUnsupported
	}
	req := &ReadIndexRequest{RPCHeader: r.getRPCHeader(), Term: r.getCurrentTerm(), Reads: uint64(n), Consistency: c}
	var resp ReadIndexResponse
	if err := t.ReadIndex(id, addr, req, &resp); err != nil {
		if err.Error() == ErrLeadershipLost.Error() || err.Error() == ErrNotLeader.Error() {
			return 0, ErrLeadershipLost
		}
		return 0, fmt.Errorf("%w: asking the leader %s for a read index: %v", ErrLeadershipLost, id, err)
	}
	return resp.Index, nil
}

// serveReadIndex answers a follower's ReadIndexRequest as ReadIndex is
// answered on the leader, without holding up the main loop: the answer
// goes out once the round (or the lease) confirms the index.
func (r *Raft) serveReadIndex(rpc RPC, req *ReadIndexRequest) {
	resp := &ReadIndexResponse{RPCHeader: r.getRPCHeader(), Term: r.getCurrentTerm()}
	if r.State() != Leader || req.Term > r.getCurrentTerm() {
		rpc.Respond(resp, ErrNotLeader)
		return
	}
	reads := max(req.Reads, 1)
	r.readsForFollowers.Add(reads)
	c := req.Consistency
	if c > ReadByLease {
		c = ReadByRound // a choice this version does not know: the safe one
	}
	// The follower's reads share the next round with the leader's own;
	// this main loop takes it after the current input.
	f := r.joinReadRound(c, reads)
	repl := r.leaderState.replState[ServerID(req.ID)]
	go func() {
		err := f.Error()
		if err == nil {
			resp.Index = f.Index()
			// The follower serves the read once it has applied the
			// index, so it must learn that the index is committed: if
			// no AppendEntries has told it yet, one goes now rather than
			// with the next write or after CommitTimeout.
			if repl != nil && repl.sentCommit.Load() < resp.Index {
				asyncNotify(repl.triggerCh)
			}
		}
		rpc.Respond(resp, err)
	}()
}
