package raft

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-metrics"
)

// leaderState is the state that exists only while this node leads, for one
// term. It is owned by the main loop; the replication goroutines share only
// the commitment (locked) and their own followerReplication.
type leaderState struct {
	term       uint64
	startIndex uint64
	commitCh   chan struct{}
	commitment *commitment
	inflight   []*logFuture // dispatched, not yet committed, in index order
	replState  map[ServerID]*followerReplication
	verifies   []*verifyState
	// deferredVerifies wait for the first commit of this term: before it the
	// commit index may be stale, so a read behind it would be too.
	deferredVerifies []*verifyState
	// lastRound is the newest read round started; heldRound a read round
	// not started (still open to joiners) because lastRound was still
	// unanswered (see startReadRound).
	lastRound *verifyState
	heldRound *verifyFuture
	stopCh    chan struct{} // closed when leadership ends

	// leaseFloor: heartbeats sent at or before it (monotonic nanoseconds
	// since Raft.started) do not count toward a lease (see endLease).
	leaseFloor int64

	transferInProgress bool
	transferFuture     *leadershipTransferFuture
	transferDone       chan error
	transferStop       chan struct{}
	transferTimer      *time.Timer

	nextSession uint64

	// jointProbe is a ChangeConfiguration request waiting for the
	// capabilities of servers this leader has not heard from; jointChange
	// the one whose joint entry is written, waiting for it to commit so
	// that the final configuration can be written (jointchange.go).
	jointProbe  *configurationChangeFuture
	jointChange *configurationChangeFuture
	// handOver: the final configuration written leaves this leader out;
	// once it commits, another voter is asked to campaign at once.
	handOver bool
}

// verifyState collects acknowledgements for one VerifyLeader call.
type verifyState struct {
	future *verifyFuture
	mu     sync.Mutex
	// oldVoters and newVoters are the voters whose majorities make a
	// quorum (the same for a configuration that is not joint); self counts
	// as acknowledged. Set by reconfigure.
	oldVoters, newVoters []ServerID
	self                 ServerID
	acks                 map[ServerID]bool
	// held is set while a read round waits for this one to be answered
	// (startReadRound).
	held atomic.Bool
}

// ack records a follower's acknowledgement; failed=true means the follower
// knows a newer term.
func (v *verifyState) ack(id ServerID, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !ok {
		v.future.respond(v.future.lostErr())
		return
	}
	v.acks[id] = true
	if v.confirmed() {
		v.future.respond(nil)
	}
}

// confirmed reports whether the acknowledgements (and the leader itself)
// make a quorum of conf; v.mu is held.
func (v *verifyState) confirmed() bool {
	if v.oldVoters == nil && v.newVoters == nil {
		return false // not started against a configuration yet
	}
	yes := func(id ServerID) bool { return id == v.self || v.acks[id] }
	return majorityOf(v.oldVoters, yes) && majorityOf(v.newVoters, yes)
}

// reconfigure re-states the round against a new latest configuration: the
// acknowledgements still counted are those of its voters, and a quorum of
// it is what is needed. It returns the voters whose acknowledgement is
// still missing (to be asked again) and resolves the round when none is
// needed any more. Without it, a round that counted on servers since
// removed waited for acknowledgements that could never come.
func (v *verifyState) reconfigure(latest Configuration, self ServerID) []ServerID {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.oldVoters, v.newVoters = jointHalves(latest)
	v.self = self
	for id := range v.acks {
		if !hasVote(latest, id) {
			delete(v.acks, id)
		}
	}
	if v.confirmed() {
		v.future.respond(nil)
		return nil
	}
	var ask []ServerID
	for _, s := range latest.Servers {
		if s.ID != self && isVoterSuffrage(s.Suffrage) && !v.acks[s.ID] {
			ask = append(ask, s.ID)
		}
	}
	return ask
}

// runLeader is the main loop of a leader for one term.
func (r *Raft) runLeader() {
	r.logger.Info("entering leader state", "leader", r)
	metrics.IncrCounter([]string{"raft", "state", "leader"}, 1)
	r.notifyLeadership(true)

	lastIdx, _ := r.getLastLog()
	ls := &leaderState{
		term:       r.getCurrentTerm(),
		startIndex: lastIdx + 1,
		commitCh:   make(chan struct{}, 1),
		replState:  make(map[ServerID]*followerReplication),
		stopCh:     make(chan struct{}),
	}
	ls.commitment = newCommitment(ls.commitCh, r.configurations.latest, ls.startIndex)
	// A leader elected to finish a change that leaves it without a vote
	// (mayCampaign) hands over once that change commits.
	ls.handOver = !hasVote(r.configurations.latest, r.localID)
	r.leaderState = ls
	defer r.leaveLeader()

	r.startStopReplication()

	// Dispatch a no-op entry first: committing it commits everything
	// before it and lets this leader serve reads and membership changes.
	noop := &logFuture{log: Log{Type: LogNoop}}
	noop.init()
	noop.shutdownCh = r.shutdownCh
	if err := r.dispatchLogs([]*logFuture{noop}); err != nil {
		return
	}
	r.leaderLoop()
}

// leaderControl handles a control input on the leader: the signals here,
// requests in controlRequest.
func (r *Raft) leaderControl(item any, sig controlSignal) {
	switch sig {
	case sigObservedTerm:
		if t := r.observedTerm.Load(); t > r.getCurrentTerm() {
			r.logger.Info("a follower has a newer term, stepping down", "term", t)
			r.stepDownTo(t)
			r.setLeader("", "")
		}
	case sigHeartbeatShortened:
		for _, repl := range r.leaderState.replState {
			asyncNotify(repl.notifyCh)
		}
	case sigRoundAnswered:
		if f := r.leaderState.heldRound; f != nil {
			r.leaderState.heldRound = nil
			// The calls the last round's answer woke are on their way
			// to join: give them a moment, while they keep coming.
			for i := 0; i < 8; i++ {
				n := f.joins.Load()
				runtime.Gosched()
				if f.joins.Load() == n {
					break
				}
			}
			r.startReadRound(f)
		}
	default:
		r.controlRequest(item)
	}
}

// leaderLoop is the leader's select loop; each arm is one call.
func (r *Raft) leaderLoop() {
	ls := r.leaderState
	lease := r.newTimer(r.config().LeaderLeaseTimeout)
	defer lease.Stop()

	fast := 0
	for r.State() == Leader {
		// Under load, commits and applies are nearly always ready: take
		// them with a two-way select, far cheaper than the full one. After
		// leaderFastPathRuns in a row the full select runs, so nothing
		// else (RPCs, the lease, shutdown) waits long.
		if fast < leaderFastPathRuns {
			fast++
			select {
			case <-ls.commitCh:
				r.leaderCommit()
				continue
			case <-r.applyQ.notify:
				r.dispatchQueued()
				continue
			default:
			}
		}
		fast = 0
		var transferTimeout <-chan time.Time
		var transferDone chan error
		if ls.transferInProgress {
			transferTimeout = ls.transferTimer.C
			transferDone = ls.transferDone
		}
		select {
		case rpc := <-r.trans.Consumer():
			r.processRPC(rpc)
		case <-ls.commitCh:
			r.leaderCommit()
		case <-r.applyQ.notify:
			r.dispatchQueued()
		case f := <-r.configurationChangeChIfStable():
			r.appendConfigurationEntry(f)
		case <-lease.C:
			lease.Reset(r.clock.Real(r.checkLeaderLease()))
			r.emitReadMetrics()
		case err := <-transferDone:
			r.transferTimeoutNowDone(err)
		case <-transferTimeout:
			r.finishLeadershipTransfer(fmt.Errorf("leadership transfer timeout"))
		case <-r.ctl.notify:
			if item, sig, ok := r.ctl.next(); ok {
				r.leaderControl(item, sig)
			}
		case <-r.shutdownCh:
			return
		}
	}
}

// leaderFastPathRuns bounds how many commits and applies the leader loop
// takes in a row before it looks at everything else.
const leaderFastPathRuns = 8

// notifyLeadership tells LeaderCh (replacing an unread value) and NotifyCh.
func (r *Raft) notifyLeadership(leader bool) {
	select {
	case r.leaderCh <- leader:
	default:
		select {
		case <-r.leaderCh:
		default:
		}
		select {
		case r.leaderCh <- leader:
		default:
		}
	}
	if ch := r.config().NotifyCh; ch != nil {
		// A send that fits goes first: a select with shutdownCh already
		// closed would pick at random, and a node shutting down would
		// lose its false although the channel had room (hashicorp/raft
		// makes the same best effort). Only a full channel waits, and
		// not past shutdown.
		select {
		case ch <- leader:
		default:
			select {
			case ch <- leader:
			case <-r.shutdownCh:
			}
		}
	}
}

// leaveLeader cleans up when leadership ends for any reason: replication
// stops, and every future waiting on this leader resolves.
func (r *Raft) leaveLeader() {
	ls := r.leaderState
	r.leaderState = nil
	r.peerView.Store(nil)
	r.leaseViewPtr.Store(nil)
	close(ls.stopCh)
	for _, repl := range ls.replState {
		repl.stop(0)
	}
	for _, f := range ls.inflight {
		f.respond(ErrLeadershipLost)
	}
	if f := ls.jointChange; f != nil {
		// Its joint entry may still commit under the next leader, which
		// then finishes the change itself.
		f.respond(ErrLeadershipLost)
	}
	// Read rounds do not watch the shutdown channel: this answer is the
	// one they get.
	answer := func(f *verifyFuture) { f.respond(f.lostErr()) }
	select {
	case <-r.shutdownCh:
		answer = func(f *verifyFuture) { f.respond(ErrRaftShutdown) }
	default:
	}
	for _, v := range ls.verifies {
		answer(v.future)
	}
	if f := ls.heldRound; f != nil {
		r.readRounds.take(f) // later calls join a new round
		answer(f)
	}
	if addr, _ := r.LeaderWithID(); addr == r.localAddr {
		r.setLeader("", "")
	}
	if r.State() == Leader {
		r.transition(Follower)
	}
	// As hashicorp/raft does: a former leader's LastContact is the moment
	// it stopped leading, not a time from before its term (or zero), so
	// that its data does not look older than it is.
	r.setLastContact()
	if ls.transferInProgress {
		// Leadership ended while a transfer ran: that is what was asked
		// for (hashicorp/raft answers nil here too, whether or not the
		// TimeoutNow had been answered). The future resolves only now,
		// when State no longer reads Leader.
		r.logger.Debug("lost leadership during transfer (expected)")
		ls.transferInProgress = false
		ls.transferTimer.Stop()
		close(ls.transferStop)
		select {
		case <-r.shutdownCh:
			ls.transferFuture.respond(ErrRaftShutdown)
		default:
			ls.transferFuture.respond(nil)
		}
	}
	r.notifyLeadership(false)
	r.logger.Info("leadership ended", "term", ls.term)
}

// configurationChangeChIfStable returns the channel of membership changes
// only when the leader may take one: no other change is uncommitted, and an
// entry of this leader's term is committed (the single-server change bug:
// Ongaro's 2015 errata).
func (r *Raft) configurationChangeChIfStable() chan *configurationChangeFuture {
	if r.configurations.latestIndex == r.configurations.committedIndex &&
		r.getCommitIndex() >= r.leaderState.startIndex &&
		!r.leaderState.transferInProgress &&
		r.leaderState.jointProbe == nil && !isJoint(r.configurations.latest) {
		return r.configurationChangeCh
	}
	return nil
}

// dispatchQueued takes queued applies and dispatches them as one batch:
// one write to the local log (group commit). A batch may hold several
// AppendEntries' worth (groupCommitFactor x MaxAppendEntries); replication
// still sends at most MaxAppendEntries per message.
func (r *Raft) dispatchQueued() {
	if r.leaderState.transferInProgress {
		r.rejectQueued(ErrLeadershipTransferInProgress)
		return
	}
	// Yield first, so that clients already runnable (those a commit just
	// answered) queue their next applies and join this batch. Without it
	// the woken leader runs ahead of them and takes one apply at a time,
	// each with a disk sync that holds the processor, while the clients
	// wait behind it: under load batches collapse to single entries and,
	// with every processor busy, the network poller goes unserved for
	// milliseconds (followers' data sits unread). Measured: S2 with 256
	// clients 1.6-1.9x the throughput, S3's p99 13 -> 2-3 ms; no change
	// with one client.
	runtime.Gosched()
	futures := dropExpired(r.applyQ.take(groupCommitFactor*r.config().MaxAppendEntries), time.Now())
	if len(futures) == 0 {
		return
	}
	_ = r.dispatchLogs(futures)
}

// dropExpired answers ErrEnqueueTimeout to the futures whose enqueue
// deadline passed before the leader loop took them (hashicorp/raft's Apply
// times out while its leader loop does not take the command) and returns
// the others, in order, reusing the slice.
func dropExpired(futures []*logFuture, now time.Time) []*logFuture {
	kept := futures[:0]
	for _, f := range futures {
		if !f.enqueueBy.IsZero() && now.After(f.enqueueBy) {
			f.respond(ErrEnqueueTimeout)
			continue
		}
		kept = append(kept, f)
	}
	clear(futures[len(kept):])
	return kept
}

// groupCommitFactor is how many AppendEntries' worth of queued applies one
// local write may take. The in-memory tail holds at least eight of them.
const groupCommitFactor = 8

// dispatchLogs appends the futures' entries: it numbers and stamps them,
// hands them to the replication goroutines at once (through the in-memory
// tail) and writes them to the local log meanwhile; the leader counts itself
// only once its write is durable. A failed write fails the batch and the
// leader steps down.
func (r *Raft) dispatchLogs(futures []*logFuture) error {
	ls := r.leaderState
	now := time.Now()
	term := ls.term
	lastIndex, _ := r.getLastLog()
	logs := make([]*Log, len(futures))
	for i, f := range futures {
		lastIndex++
		f.log.Index = lastIndex
		f.log.Term = term
		f.log.AppendedAt = now
		f.dispatch = now
		logs[i] = &f.log
		stampApply(&f.clock, lastIndex)
	}
	r.tail.appendEntries(logs)
	ls.inflight = append(ls.inflight, futures...)
	for _, repl := range ls.replState {
		asyncNotify(repl.triggerCh)
	}

	if ct, ok := r.logs.(CommitTrackingLogStore); ok && r.RestoreCommittedLogs {
		if err := ct.StageCommitIndex(r.getCommitIndex()); err != nil {
			r.logger.Warn("failed to stage commit index", "error", err)
		}
	}
	r.diskWriteStart.Store(now.UnixNano())
	err := r.logs.StoreLogs(logs)
	r.diskWriteStart.Store(0)
	if err != nil {
		// The entries may already be on followers and may still commit
		// under a new leader, so the outcome is unknown: the error wraps
		// ErrLeadershipLost as well as the store's error.
		err = fmt.Errorf("%w: failed to store entries [%d, %d]: %w", ErrLeadershipLost, logs[0].Index, lastIndex, err)
		r.logger.Error("failed to commit logs", "error", err)
		for _, f := range futures {
			f.respond(err)
		}
		r.tail.truncateFrom(logs[0].Index)
		r.transition(Follower)
		return err
	}
	metrics.MeasureSince(keyDispatchLog, now)
	stampRange(stageLeaderStored, logs[0].Index, lastIndex)
	r.setLastLog(lastIndex, term)
	if hasVote(r.configurations.latest, r.localID) {
		ls.commitment.match(r.localID, 0, lastIndex)
	}
	return nil
}

// errLeaderDiskStalled pauses replication while the leader's own disk write
// hangs.
var errLeaderDiskStalled = errors.New("the leader's disk write is stalled")

// diskStallLimit is how long the leader's own StoreLogs may run before the
// leader stops heartbeating and replicating, so that the followers elect a
// leader whose disk works (hashicorp #503: a leader with a hung disk kept
// its leadership for ever). It is generous: a slow fsync is not a hang.
func (r *Raft) diskStallLimit() time.Duration {
	c := r.conf.Load()
	return max(5*c.HeartbeatTimeout, 2*c.ElectionTimeout)
}

// leaderDiskStalled reports whether the leader's current StoreLogs has run
// longer than diskStallLimit.
func (r *Raft) leaderDiskStalled() bool {
	start := r.diskWriteStart.Load()
	return start != 0 && time.Since(time.Unix(0, start)) > r.diskStallLimit()
}

// leaderCommit acts on a new commit index from the commitment.
func (r *Raft) leaderCommit() {
	ls := r.leaderState
	commit := ls.commitment.getCommitIndex()
	if commit <= r.getCommitIndex() {
		return
	}
	r.setCommitIndex(commit)
	metrics.SetGauge(keyCommitNumLogs, float32(commit-r.fsmDispatched))

	c := r.configurations
	if c.latestIndex <= commit && c.committedIndex < c.latestIndex {
		removed := len(ls.replState) > 0 && slices.ContainsFunc(c.committed.Servers, func(s Server) bool { return !inConfiguration(c.latest, s.ID) })
		c.committed, c.committedIndex = c.latest, c.latestIndex
		r.setConfigurations(c)
		r.publishLeaseView()
		if removed {
			r.startStopReplication() // the removed servers get the commit, then stop
		}
	}
	if c.committedIndex == c.latestIndex && isJoint(c.latest) && commit >= ls.startIndex {
		// The joint configuration is committed: leave it (this leader's
		// change, or one a former leader began).
		r.appendFinalConfiguration()
		if r.State() != Leader {
			return // the write failed and the leader stepped down
		}
	}

	if commit >= ls.startIndex && len(ls.deferredVerifies) > 0 {
		for _, v := range ls.deferredVerifies {
			r.startVerify(v)
		}
		ls.deferredVerifies = nil
	}

	// Hand the committed entries, with their futures, to the FSM.
	n := 0
	for n < len(ls.inflight) && ls.inflight[n].log.Index <= commit {
		n++
	}
	committed := ls.inflight[:n:n]
	if stagesOn && n > 0 {
		stampRange(stageCommitted, committed[0].log.Index, committed[n-1].log.Index)
	}
	r.applyCommitted(commit, committed)
	if n > 0 {
		metrics.MeasureSince(keyCommitTime, committed[0].dispatch)
	}
	ls.inflight = ls.inflight[n:]
	if len(ls.inflight) == 0 {
		ls.inflight = nil
	}

	// A leader that is no longer a voter in the committed configuration
	// steps down; one removed altogether shuts down if configured to.
	if c.committedIndex == c.latestIndex && !hasVote(c.committed, r.localID) {
		if ls.handOver {
			r.handOverLeadership(c.committed)
		}
		if r.config().ShutdownOnRemove && !inConfiguration(c.committed, r.localID) {
			// The change that removed us is committed: answer its future
			// before the FSM goroutine stops with the node.
			for _, f := range committed {
				if f.log.Type == LogConfiguration || f.log.Type == LogRemovePeerDeprecated {
					f.respond(nil)
				}
			}
			r.logger.Info("removed ourself, shutting down")
			r.Shutdown()
			return
		}
		r.logger.Info("removed ourself, transitioning to follower")
		r.transition(Follower)
	}
}

// appendConfigurationEntry appends a membership change computed by
// nextConfiguration and starts or stops replication to match it.
func (r *Raft) appendConfigurationEntry(f *configurationChangeFuture) {
	if f.req.next != nil {
		r.appendJointChange(f, nil)
		return
	}
	c := r.configurations
	next, err := nextConfiguration(c.latest, c.latestIndex, f.req)
	if err != nil {
		f.respond(err)
		return
	}
	r.logger.Info("updating configuration", "command", f.req.command, "server-id", f.req.serverID,
		"server-addr", f.req.serverAddress, "servers", fmt.Sprintf("%+v", next.Servers))

	r.writeConfiguration(f, next)
}

// startStopReplication makes the set of replication goroutines match the
// latest configuration. A removed server gets entries up to the current last
// index (so it learns of its removal) before its goroutines stop.
func (r *Raft) startStopReplication() {
	ls := r.leaderState
	lastIdx := r.tail.lastIndex()
	if li, _ := r.getLastLog(); li > lastIdx {
		lastIdx = li
	}
	// A server an uncommitted change removes keeps getting entries until
	// the change commits (leaderCommit calls this again then), so that the
	// last AppendEntries it gets tells it the removal is committed: until
	// then it may stand for election (mayCampaign).
	inConfig := make(map[ServerID]bool)
	servers := r.configurations.latest.Servers
	for _, s := range r.configurations.committed.Servers {
		if !inConfiguration(r.configurations.latest, s.ID) {
			servers = append(slices.Clip(servers), s)
		}
	}
	for _, server := range servers {
		if server.ID == r.localID {
			continue
		}
		inConfig[server.ID] = true
		if repl, ok := ls.replState[server.ID]; ok {
			if repl.getPeer().Address != server.Address {
				r.logger.Info("updating peer", "peer", server.ID)
			}
			repl.setPeer(server)
			continue
		}
		r.logger.Info("added peer, starting replication", "peer", server.ID)
		ls.nextSession++
		repl := newFollowerReplication(r, ls, server, lastIdx+1, ls.nextSession)
		ls.replState[server.ID] = repl
		ls.commitment.setSession(server.ID, repl.session)
		r.goFunc(repl.run)
		r.goFunc(repl.heartbeat)
		r.observe(PeerObservation{Peer: server, Removed: false})
		asyncNotify(repl.triggerCh)
	}
	for id, repl := range ls.replState {
		if inConfig[id] {
			continue
		}
		r.logger.Info("removed peer, stopping replication", "peer", id, "last-index", lastIdx)
		repl.stop(lastIdx)
		delete(ls.replState, id)
		r.observe(PeerObservation{Peer: repl.getPeer(), Removed: true})
	}
	view := maps.Clone(ls.replState)
	r.peerView.Store(&view)
	r.publishLeaseView()

	// VerifyLeader rounds under way count against the new configuration.
	deferred := make(map[*verifyState]bool, len(ls.deferredVerifies))
	for _, v := range ls.deferredVerifies {
		deferred[v] = true
	}
	for _, v := range ls.verifies {
		if v.future.responded.Load() || deferred[v] {
			continue
		}
		for _, id := range v.reconfigure(r.configurations.latest, r.localID) {
			if repl, ok := ls.replState[id]; ok {
				repl.addVerify(v)
			}
		}
	}
}

// verifyLeader starts a VerifyLeader round: every voter gets a heartbeat now
// and the future resolves once a quorum (counting ourselves) acknowledged a
// heartbeat sent after this call. A leader that has not yet committed an
// entry of its term first waits for that, so that CommitIndex is current
// when the future resolves (etcd #7331).
func (r *Raft) verifyLeader(f *verifyFuture) {
	ls := r.leaderState
	// startVerify sets what the round needs, from the configuration of the
	// moment it starts.
	v := &verifyState{future: f, acks: make(map[ServerID]bool)}
	kept := ls.verifies[:0]
	for _, old := range ls.verifies {
		if !old.future.responded.Load() {
			kept = append(kept, old)
		}
	}
	if f.read && r.leaseHolds(f.consistency) {
		f.index = r.getCommitIndex()
		r.readsByLease.Add(f.readers)
		f.respond(nil)
		ls.verifies = kept
		return
	}
	ls.verifies = append(kept, v)
	if r.getCommitIndex() < ls.startIndex {
		ls.deferredVerifies = append(ls.deferredVerifies, v)
		return
	}
	r.startVerify(v)
}

// startVerify asks every voter for a fresh heartbeat on behalf of v.
func (r *Raft) startVerify(v *verifyState) {
	// The read index is the commit index now, before any heartbeat of the
	// round goes out: a quorum answering them proves that no other leader
	// had committed anything newer at this moment.
	v.future.index = r.getCommitIndex()
	if v.future.read {
		r.readsByRound.Add(v.future.readers)
		r.readRoundsStarted.Add(1)
		r.leaderState.lastRound = v
	}
	// A deferred round may start under a newer configuration than the one
	// it was created in.
	for _, id := range v.reconfigure(r.configurations.latest, r.localID) {
		if repl, ok := r.leaderState.replState[id]; ok {
			repl.addVerify(v)
		}
	}
}

// checkLeaderLease steps down when fewer than a quorum of voters (counting
// ourselves) were heard from within LeaderLeaseTimeout. It returns when to
// check next.
func (r *Raft) checkLeaderLease() time.Duration {
	ls := r.leaderState
	leaseTimeout := r.config().LeaderLeaseTimeout
	latest := r.configurations.latest
	contacted := make(map[ServerID]bool, len(latest.Servers))
	var maxDiff time.Duration
	now := r.now()
	for _, server := range latest.Servers {
		if !isVoterSuffrage(server.Suffrage) {
			continue
		}
		if server.ID == r.localID {
			contacted[server.ID] = true
			continue
		}
		repl, ok := ls.replState[server.ID]
		if !ok {
			continue
		}
		diff := now.Sub(repl.getLastContact())
		if diff <= leaseTimeout {
			contacted[server.ID] = true
			maxDiff = max(maxDiff, diff)
		} else if diff <= 3*leaseTimeout {
			r.logger.Warn("failed to contact", "server-id", server.ID, "time", diff)
		}
		metrics.AddSampleWithLabels([]string{"raft", "leader", "lastContact"},
			float32(diff/time.Millisecond), []metrics.Label{{Name: "peer_id", Value: string(server.ID)}})
	}
	if !jointAgreed(latest, func(id ServerID) bool { return contacted[id] }) {
		r.logger.Warn("failed to contact quorum of nodes, stepping down")
		r.setLeader("", "")
		r.transition(Follower)
		metrics.IncrCounter([]string{"raft", "transition", "leader_lease_timeout"}, 1)
		return leaseTimeout
	}
	return max(leaseTimeout-maxDiff, 10*time.Millisecond)
}

// mostUpToDateVoter returns the voter of the configuration conf leads to
// (conf itself when it is not joint), other than this node, whose log
// matches the leader's furthest: the best next leader.
func (r *Raft) mostUpToDateVoter(conf Configuration) (target Server, found bool) {
	var best uint64
	for _, s := range conf.Servers {
		if s.ID == r.localID || !votesInFinal(s.Suffrage) {
			continue
		}
		if m := r.leaderState.commitment.matchIndex(s.ID); !found || m > best {
			target, best, found = s, m, true
		}
	}
	return target, found
}

// startLeadershipTransfer validates a transfer request and starts it: the
// target is brought up to date, then told to campaign at once.
func (r *Raft) startLeadershipTransfer(f *leadershipTransferFuture) {
	ls := r.leaderState
	if ls.transferInProgress {
		f.respond(ErrLeadershipTransferInProgress)
		return
	}
	latest := r.configurations.latest
	var target Server
	if f.ID == nil {
		var found bool
		if target, found = r.mostUpToDateVoter(latest); !found {
			f.respond(fmt.Errorf("cannot find peer"))
			return
		}
	} else {
		found := false
		for _, s := range latest.Servers {
			if s.ID == *f.ID {
				target, found = s, true
				break
			}
		}
		if !found || !votesInFinal(target.Suffrage) {
			f.respond(fmt.Errorf("cannot find replication state for %v", *f.ID))
			return
		}
		if f.Address != nil && *f.Address != "" {
			target.Address = *f.Address
		}
	}
	repl, ok := ls.replState[target.ID]
	if !ok {
		f.respond(fmt.Errorf("cannot find replication state for %v", target.ID))
		return
	}
	r.logger.Debug("starting leadership transfer", "id", target.ID, "address", target.Address)
	// The target will campaign at once and voters grant it despite a live
	// leader: the lease ends before the TimeoutNow can be sent.
	r.endLease()
	ls.transferInProgress = true
	r.publishLeaseView() // nil: no lease while the transfer runs
	ls.transferFuture = f
	ls.transferDone = make(chan error, 1)
	ls.transferStop = make(chan struct{})
	ls.transferTimer = time.NewTimer(r.config().ElectionTimeout)
	lastIdx, _ := r.getLastLog()
	done, stop := ls.transferDone, ls.transferStop
	header := r.getRPCHeader()
	r.goFunc(func() {
		done <- r.leadershipTransfer(repl, target, lastIdx, header, stop)
	})
}

// transferTimeoutNowDone takes the transfer goroutine's outcome. A failure
// ends the transfer with that error. After a TimeoutNow the target was
// told to campaign, but this node still leads: the future resolves when
// leadership ends (leaveLeader), or with a timeout error if the target has
// not taken over within an election timeout, as in hashicorp/raft.
func (r *Raft) transferTimeoutNowDone(err error) {
	ls := r.leaderState
	if err != nil || !ls.transferInProgress {
		r.finishLeadershipTransfer(err)
		return
	}
	ls.transferTimer.Reset(r.config().ElectionTimeout)
}

// leadershipTransfer runs on its own goroutine: wait until the target has
// every entry up to lastIdx, then send TimeoutNow.
func (r *Raft) leadershipTransfer(repl *followerReplication, target Server, lastIdx uint64,
	header RPCHeader, stop <-chan struct{}) error {
	for repl.getMatchIndex() < lastIdx {
		wait := repl.waitReplicated()
		select {
		case <-wait:
		case <-stop:
			return fmt.Errorf("leadership transfer stopped: %w", ErrLeadershipLost)
		case <-r.shutdownCh:
			return ErrRaftShutdown
		}
	}
	var resp TimeoutNowResponse
	if err := r.trans.TimeoutNow(target.ID, target.Address, &TimeoutNowRequest{RPCHeader: header}, &resp); err != nil {
		return fmt.Errorf("failed to make TimeoutNow RPC to %v: %w", target.ID, err)
	}
	return nil
}

func (r *Raft) finishLeadershipTransfer(err error) {
	r.finishLeadershipTransferOf(r.leaderState, err)
}

func (r *Raft) finishLeadershipTransferOf(ls *leaderState, err error) {
	if !ls.transferInProgress {
		return
	}
	ls.transferInProgress = false
	ls.transferTimer.Stop()
	close(ls.transferStop)
	r.publishLeaseView()
	if err != nil {
		r.logger.Debug("leadership transfer failed", "error", err)
	}
	ls.transferFuture.respond(err)
}

// restoreUserSnapshot installs an external snapshot on the leader at a
// fresh index above everything it has, with the current configuration, so
// that followers must take it by InstallSnapshot.
func (r *Raft) restoreUserSnapshot(meta *SnapshotMeta, reader io.Reader) error {
	defer metrics.MeasureSince([]string{"raft", "restoreUserSnapshot"}, time.Now())
	if meta.Version < SnapshotVersionMin || meta.Version > SnapshotVersionMax {
		return fmt.Errorf("unsupported snapshot version %d", meta.Version)
	}
	c := r.configurations
	if c.committedIndex != c.latestIndex {
		return fmt.Errorf("cannot restore snapshot now, wait until the configuration entry at %v has been applied (have applied %v)",
			c.latestIndex, c.committedIndex)
	}
	ls := r.leaderState
	for _, f := range ls.inflight {
		f.respond(ErrAbortedByRestore)
	}
	ls.inflight = nil

	term := ls.term
	lastIndex, _ := r.getLastLog()
	lastIndex = max(lastIndex, meta.Index) + 1

	sink, err := r.snapshots.Create(SnapshotVersionMax, lastIndex, term, c.latest, c.latestIndex, r.trans)
	if err != nil {
		return fmt.Errorf("failed to create snapshot: %w", err)
	}
	n, err := io.Copy(sink, reader)
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("failed to write snapshot: %w", err)
	}
	if n != meta.Size {
		_ = sink.Cancel()
		return fmt.Errorf("failed to write snapshot, size didn't match (%d != %d)", n, meta.Size)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("failed to close snapshot: %w", err)
	}
	r.logger.Info("copied to local snapshot", "bytes", n)

	if err := r.restoreFSM(sink.ID()); err != nil {
		// The FSM is in an unknown state: stop rather than serve it.
		r.logger.Error("failed to restore user snapshot, shutting down", "error", err)
		r.Shutdown()
		return fmt.Errorf("failed to restore snapshot: %w", err)
	}

	// Drop the log below the new snapshot: all of it for monotonic stores,
	// else everything but the trailing entries.
	first, _ := r.logs.FirstIndex()
	oldLast, _ := r.getLastLog()
	if first > 0 && oldLast >= first {
		if isMonotonic(r.logs) {
			_ = r.logs.DeleteRange(first, oldLast)
		}
	}
	r.tail.reset()
	r.setLastLog(lastIndex, term)
	r.setLastSnapshot(lastIndex, term)
	r.fsmDispatched = lastIndex
	r.setCommitIndex(lastIndex)
	if !isMonotonic(r.logs) {
		if err := r.compactLogs(lastIndex); err != nil {
			r.logger.Warn("failed to compact logs after restore", "error", err)
		}
	}
	if hasVote(c.latest, r.localID) {
		ls.commitment.match(r.localID, 0, lastIndex)
	}
	for _, repl := range ls.replState {
		asyncNotify(repl.triggerCh)
	}
	r.logger.Info("restored user snapshot", "index", lastIndex)
	return nil
}
