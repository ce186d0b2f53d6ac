package raft

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-metrics"
)

const (
	// maxFailureScale bounds the exponent of the replication back-off.
	maxFailureScale = 12
	// failureWait is the base of the replication back-off.
	failureWait = 10 * time.Millisecond
)

// followerReplication is the leader's view of one follower, owned by that
// follower's replicate goroutine (nextIndex, failures, allowPipeline) with
// a few fields shared through atomics and locks.
type followerReplication struct {
	r       *Raft
	ls      *leaderState
	session uint64

	peerLock sync.RWMutex
	peer     Server

	nextIndex     uint64
	failures      uint64
	allowPipeline bool

	matchIndex  atomic.Uint64
	lastContact atomic.Int64 // unix nanoseconds
	// leaseAck is when the leader sent the newest heartbeat this follower
	// acknowledged, in monotonic nanoseconds since Raft.started (0: none).
	leaseAck atomic.Int64
	// peerCaps is what the follower advertised in its newest answer
	// (capReadIndex...; nothing for a hashicorp/raft follower), with
	// capAnswered once it has answered: what the leader may send it beyond
	// hashicorp/raft's protocol. 0 until the first answer.
	peerCaps atomic.Uint64
	// sentCommit is the commit index the newest AppendEntries built for
	// this follower carried (heartbeats carry none).
	sentCommit atomic.Uint64

	triggerCh chan struct{}
	notifyCh  chan struct{}
	// resumedCh is signalled by the heartbeat goroutine when the
	// follower answers again after failures, so that replication does not
	// sit out a back-off grown while the follower was away.
	resumedCh chan struct{}
	stopCh    chan uint64
	stopped   chan struct{}
	stopOnce  sync.Once

	verifyLock sync.Mutex
	verifies   []*verifyState

	replicatedLock sync.Mutex
	replicatedCh   chan struct{}
}

func newFollowerReplication(r *Raft, ls *leaderState, peer Server, nextIndex, session uint64) *followerReplication {
	s := &followerReplication{
		r:         r,
		ls:        ls,
		session:   session,
		peer:      peer,
		nextIndex: max(nextIndex, 1),
		triggerCh: make(chan struct{}, 1),
		notifyCh:  make(chan struct{}, 1),
		resumedCh: make(chan struct{}, 1),
		stopCh:    make(chan uint64, 1),
		stopped:   make(chan struct{}),
	}
	s.lastContact.Store(r.now().UnixNano())
	return s
}

func (s *followerReplication) getPeer() Server {
	s.peerLock.RLock()
	defer s.peerLock.RUnlock()
	return s.peer
}

func (s *followerReplication) setPeer(p Server) {
	s.peerLock.Lock()
	s.peer = p
	s.peerLock.Unlock()
}

// stop ends replication; a non-zero index is replicated first.
func (s *followerReplication) stop(index uint64) {
	s.stopOnce.Do(func() {
		s.stopCh <- index
		close(s.stopped)
	})
}

func (s *followerReplication) getLastContact() time.Time {
	return time.Unix(0, s.lastContact.Load())
}

func (s *followerReplication) setLastContact() {
	s.lastContact.Store(s.r.now().UnixNano())
}

func (s *followerReplication) getMatchIndex() uint64 { return s.matchIndex.Load() }

// waitReplicated returns a channel closed the next time the match index
// moves.
func (s *followerReplication) waitReplicated() <-chan struct{} {
	s.replicatedLock.Lock()
	defer s.replicatedLock.Unlock()
	if s.replicatedCh == nil {
		s.replicatedCh = make(chan struct{})
	}
	return s.replicatedCh
}

// matched records that the follower holds everything up to index.
func (s *followerReplication) matched(index uint64) {
	for {
		old := s.matchIndex.Load()
		if index <= old {
			return
		}
		if s.matchIndex.CompareAndSwap(old, index) {
			break
		}
	}
	s.ls.commitment.match(s.getPeer().ID, s.session, index)
	s.replicatedLock.Lock()
	if s.replicatedCh != nil {
		close(s.replicatedCh)
		s.replicatedCh = nil
	}
	s.replicatedLock.Unlock()
}

// addVerify registers a VerifyLeader round and asks for a heartbeat now.
func (s *followerReplication) addVerify(v *verifyState) {
	s.verifyLock.Lock()
	s.verifies = append(s.verifies, v)
	s.verifyLock.Unlock()
	asyncNotify(s.notifyCh)
}

// takeVerifies removes the rounds the next heartbeat will answer.
func (s *followerReplication) takeVerifies() []*verifyState {
	s.verifyLock.Lock()
	vs := s.verifies
	s.verifies = nil
	s.verifyLock.Unlock()
	return vs
}

// done reports whether replication should end.
func (s *followerReplication) done() bool {
	select {
	case <-s.ls.stopCh:
		return true
	case <-s.r.shutdownCh:
		return true
	default:
		return false
	}
}

// observeTerm passes a newer term seen off the main loop to the main loop,
// which alone changes terms.
func (r *Raft) observeTerm(term uint64) {
	for {
		old := r.observedTerm.Load()
		if term <= old || r.observedTerm.CompareAndSwap(old, term) {
			break
		}
	}
	r.ctl.signal(sigObservedTerm)
}

// leaderLastIndex is the last index the leader has appended, durable or not.
func (s *followerReplication) leaderLastIndex() uint64 {
	last, _ := s.r.getLastLog()
	return max(last, s.r.tail.lastIndex())
}

// run is the replicate goroutine: it sends entries when triggered and the
// commit index every CommitTimeout, and switches to pipelining once the
// follower is caught up.
func (s *followerReplication) run() {
	commitTimer := time.NewTimer(s.r.rng.jitter(s.r.config().CommitTimeout))
	defer commitTimer.Stop()
	for {
		shouldStop := false
		select {
		case maxIndex := <-s.stopCh:
			if maxIndex > 0 {
				s.replicateTo(maxIndex)
			}
			return
		case <-s.ls.stopCh:
			return
		case <-s.triggerCh:
			shouldStop = s.replicateTo(s.leaderLastIndex())
		case <-s.resumedCh:
			s.failures = 0
			shouldStop = s.replicateTo(s.leaderLastIndex())
		case <-commitTimer.C:
			shouldStop = s.replicateTo(s.leaderLastIndex())
		}
		if shouldStop {
			return
		}
		commitTimer.Reset(s.r.rng.jitter(s.r.config().CommitTimeout))
		if s.allowPipeline {
			if s.pipelineReplicate() {
				return
			}
		}
	}
}

// sleepBackoff waits after failures; it reports false when replication
// should end instead.
func (s *followerReplication) sleepBackoff(limit time.Duration) bool {
	if s.failures == 0 {
		return true
	}
	d := time.Duration(backoff(uint64(failureWait), s.failures, maxFailureScale, uint64(limit)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.resumedCh:
		// The follower answers heartbeats again: try at once.
		s.failures = 0
		return true
	case <-s.stopped:
		// A stop with an index still wants that index sent.
		return true
	case <-s.ls.stopCh:
		return false
	case <-s.r.shutdownCh:
		return false
	}
}

// replicateTo sends AppendEntries (or a snapshot) until the follower has
// everything up to lastIndex or an RPC fails. It reports true when
// replication must end (a newer term, or leadership lost).
func (s *followerReplication) replicateTo(lastIndex uint64) bool {
	r := s.r
	for {
		if !s.sleepBackoff(0) {
			return true
		}
		if s.done() {
			return true
		}
		peer := s.getPeer()
		req, err := s.setupAppendEntries(s.nextIndex, lastIndex)
		if errors.Is(err, ErrLogNotFound) {
			before := s.nextIndex
			stop, err := s.sendLatestSnapshot()
			if stop {
				return true
			}
			if err == nil && s.nextIndex <= before {
				// The newest snapshot does not reach the missing entries
				// (a newer one is still being written): sending it again
				// at once would spin, so back off like a failure.
				err = fmt.Errorf("the newest snapshot ends at %d, before the missing entry %d", s.nextIndex-1, before)
			}
			if err != nil {
				r.logger.Error("failed to send snapshot to", "peer", peer, "error", err)
				s.failures++
				return false
			}
			if s.nextIndex <= lastIndex {
				continue
			}
			return false
		}
		if err != nil {
			r.logger.Error("failed to prepare entries", "peer", peer, "error", err)
			s.failures++
			return false
		}

		var resp AppendEntriesResponse
		start := time.Now()
		if err := r.trans.AppendEntries(peer.ID, peer.Address, req, &resp); err != nil {
			r.logger.Error("failed to appendEntries to", "peer", peer, "error", err)
			s.failures++
			return false
		}
		metrics.MeasureSinceWithLabels([]string{"raft", "replication", "appendEntries", "rpc"}, start,
			[]metrics.Label{{Name: "peer_id", Value: string(peer.ID)}})
		if resp.Term > req.Term {
			r.logger.Error("peer has newer term, stopping replication", "peer", peer)
			s.r.observeTerm(resp.Term)
			return true
		}
		s.setLastContact()
		s.peerCaps.Store(resp.capabilities | capAnswered)
		if resp.Success {
			s.appended(req)
			s.failures = 0
			s.allowPipeline = true
		} else {
			s.rejected(&resp)
			r.logger.Warn("appendEntries rejected, sending older logs", "peer", peer, "next", s.nextIndex)
		}
		if s.done() {
			return true
		}
		if s.nextIndex > lastIndex {
			return false
		}
	}
}

// appended moves the indexes after a successful AppendEntries.
func (s *followerReplication) appended(req *AppendEntriesRequest) {
	last := req.PrevLogEntry + uint64(len(req.Entries))
	s.nextIndex = max(s.nextIndex, last+1)
	s.matched(last)
}

// rejected moves nextIndex back after a refused AppendEntries, using the
// follower's LastLog hint. It never goes below the match index unless the
// follower reports a shorter log than that (it lost data).
func (s *followerReplication) rejected(resp *AppendEntriesResponse) {
	next := nextIndexAfterReject(s.nextIndex, resp.LastLog)
	if match := s.getMatchIndex(); next <= match && resp.LastLog >= match {
		next = match + 1
	}
	s.nextIndex = next
	if resp.NoRetryBackoff {
		s.failures = 0
	} else {
		s.failures++
	}
}

// setupAppendEntries builds the request for entries [nextIndex, lastIndex]
// (at most MaxAppendEntries). ErrLogNotFound means the follower needs a
// snapshot.
func (s *followerReplication) setupAppendEntries(nextIndex, lastIndex uint64) (*AppendEntriesRequest, error) {
	r := s.r
	if r.leaderDiskStalled() {
		return nil, errLeaderDiskStalled
	}
	header := r.getRPCHeader()
	req := &AppendEntriesRequest{
		RPCHeader:         header,
		Term:              s.ls.term,
		Leader:            header.Addr,
		LeaderCommitIndex: r.getCommitIndex(),
		capabilities:      ourCapabilities,
	}
	s.sentCommit.Store(req.LeaderCommitIndex)
	prev := nextIndex - 1
	if prev > 0 {
		if snapIdx, snapTerm := r.getLastSnapshot(); prev == snapIdx {
			req.PrevLogEntry, req.PrevLogTerm = snapIdx, snapTerm
		} else {
			l, err := r.entryAt(prev)
			if err != nil {
				return nil, err
			}
			req.PrevLogEntry, req.PrevLogTerm = l.Index, l.Term
		}
	}
	maxAppend := uint64(r.config().MaxAppendEntries)
	end := min(lastIndex, nextIndex+maxAppend-1)
	if end >= nextIndex {
		req.Entries = make([]*Log, 0, end-nextIndex+1)
		budget := r.appendBytesBudget
		for i := nextIndex; i <= end; i++ {
			l, err := r.entryAt(i)
			if err != nil {
				return nil, err
			}
			// Byte-based flow control: a request stays within the budget
			// (and so within what a peer accepts), but always carries at
			// least one entry.
			size := len(l.Data) + len(l.Extensions)
			if len(req.Entries) > 0 && size > budget {
				break
			}
			budget -= size
			req.Entries = append(req.Entries, l)
		}
	} else {
		req.Entries = []*Log{}
	}
	return req, nil
}

// sendLatestSnapshot sends the newest snapshot. It reports true when
// replication must end.
func (s *followerReplication) sendLatestSnapshot() (bool, error) {
	r := s.r
	peer := s.getPeer()
	snapshots, err := r.snapshots.List()
	if err != nil {
		r.logger.Error("failed to list snapshots", "error", err)
		return false, fmt.Errorf("failed to list snapshots: %w", err)
	}
	if len(snapshots) == 0 {
		return false, fmt.Errorf("no snapshots found")
	}
	snapID := snapshots[0].ID
	r.logger.Info("opening snapshot", "id", snapID)
	meta, snapshot, err := r.snapshots.Open(snapID)
	if err != nil {
		r.logger.Error("failed to open snapshot", "id", snapID, "error", err)
		return false, fmt.Errorf("failed to open snapshot %v: %w", snapID, err)
	}
	defer snapshot.Close()

	header := r.getRPCHeader()
	req := &InstallSnapshotRequest{
		RPCHeader:          header,
		SnapshotVersion:    meta.Version,
		Term:               s.ls.term,
		Leader:             header.Addr,
		LastLogIndex:       meta.Index,
		LastLogTerm:        meta.Term,
		Peers:              meta.Peers,
		Size:               meta.Size,
		Configuration:      EncodeConfiguration(meta.Configuration),
		ConfigurationIndex: meta.ConfigurationIndex,
	}
	start := time.Now()
	var resp InstallSnapshotResponse
	r.logger.Info("installing snapshot on", "peer", peer.ID, "id", snapID, "size", req.Size)
	if err := r.trans.InstallSnapshot(peer.ID, peer.Address, req, &resp, snapshot); err != nil {
		r.logger.Error("failed to install snapshot", "peer", peer.ID, "id", snapID, "error", err)
		return false, fmt.Errorf("failed to install snapshot %v: %w", meta.ID, err)
	}
	metrics.MeasureSinceWithLabels([]string{"raft", "replication", "installSnapshot"}, start,
		[]metrics.Label{{Name: "peer_id", Value: string(peer.ID)}})
	if resp.Term > req.Term {
		s.r.observeTerm(resp.Term)
		return true, nil
	}
	s.setLastContact()
	if !resp.Success {
		r.logger.Warn("installSnapshot rejected to", "peer", peer.ID, "id", snapID)
		return false, fmt.Errorf("installSnapshot rejected by %v", peer.ID)
	}
	s.nextIndex = meta.Index + 1
	s.matched(meta.Index)
	s.failures = 0
	r.logger.Info("copied snapshot to follower", "peer", peer.ID, "index", meta.Index)
	return false, nil
}

// heartbeat is the heartbeat goroutine: it sends a heartbeat every
// HeartbeatTimeout/10 (jittered), and at once when a VerifyLeader round
// asks. Failures back off, capped at HeartbeatTimeout/2 (hashicorp #494).
func (s *followerReplication) heartbeat() {
	r := s.r
	var failures uint64
	stallWarned := false
	for {
		hbTimeout := r.config().HeartbeatTimeout
		timer := time.NewTimer(r.rng.jitter(hbTimeout / 10))
		select {
		case <-s.notifyCh:
		case <-timer.C:
		case <-s.stopped:
			timer.Stop()
			return
		case <-s.ls.stopCh:
			timer.Stop()
			return
		}
		timer.Stop()
		if r.leaderDiskStalled() {
			// Let the followers time out and elect a leader whose
			// disk works; stopping is always safe.
			if !stallWarned {
				r.logger.Error("the leader's disk write has hung; stopping heartbeats so that another server can lead",
					"peer", s.getPeer().ID, "limit", r.diskStallLimit())
				stallWarned = true
			}
			continue
		}
		stallWarned = false

		verifies := s.takeVerifies()
		if len(verifies) > 0 {
			// One heartbeat answers every round waiting on this follower.
			r.readHeartbeats.Add(1)
		}
		peer := s.getPeer()
		header := r.getRPCHeader()
		req := AppendEntriesRequest{RPCHeader: header, Term: s.ls.term, Leader: header.Addr, capabilities: ourCapabilities}
		var resp AppendEntriesResponse
		start, sent := time.Now(), r.now()
		if err := r.trans.AppendEntries(peer.ID, peer.Address, &req, &resp); err != nil {
			failures++
			if failures == 1 {
				r.observe(FailedHeartbeatObservation{PeerID: peer.ID, LastContact: s.getLastContact()})
			}
			d := time.Duration(backoff(uint64(failureWait), failures, maxFailureScale, uint64(hbTimeout/2)))
			r.logger.Error("failed to heartbeat to", "peer", peer.Address, "backoff time", d, "error", err)
			// Those rounds still need an answer from this follower.
			s.verifyLock.Lock()
			s.verifies = append(verifies, s.verifies...)
			s.verifyLock.Unlock()
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-s.stopped:
				t.Stop()
				return
			case <-s.ls.stopCh:
				t.Stop()
				return
			}
			continue
		}
		if failures > 0 {
			r.observe(ResumedHeartbeatObservation{PeerID: peer.ID})
			asyncNotify(s.resumedCh)
		}
		failures = 0
		metrics.MeasureSinceWithLabels([]string{"raft", "replication", "heartbeat"}, start,
			[]metrics.Label{{Name: "peer_id", Value: string(peer.ID)}})
		ok := resp.Success && resp.Term == req.Term
		if ok {
			s.setLastContact()
			s.peerCaps.Store(resp.capabilities | capAnswered)
			if sent := int64(sent.Sub(r.started)); sent > s.leaseAck.Load() {
				s.leaseAck.Store(sent) // only this goroutine writes it
			}
		} else if resp.Term > req.Term {
			s.r.observeTerm(resp.Term)
		}
		for _, v := range verifies {
			v.ack(peer.ID, ok)
			// A read round held back behind this one may start now.
			if v.future.responded.Load() && v.held.Swap(false) {
				r.ctl.signal(sigRoundAnswered)
			}
		}
	}
}

// pipelineReplicate streams AppendEntries without waiting for each answer,
// until an error or a refusal sends it back to the synchronous path. It
// reports true when replication must end.
func (s *followerReplication) pipelineReplicate() bool {
	r := s.r
	peer := s.getPeer()
	pipeline, err := r.trans.AppendEntriesPipeline(peer.ID, peer.Address)
	if err != nil {
		if !errors.Is(err, ErrPipelineReplicationNotSupported) {
			r.logger.Error("failed to start pipeline replication to", "peer", peer, "error", err)
		}
		s.allowPipeline = false
		return false
	}
	r.logger.Info("pipelining replication", "peer", peer)

	stopDecode := make(chan struct{})
	finished := make(chan struct{})
	r.goFunc(func() { s.pipelineDecode(pipeline, stopDecode, finished) })

	shouldStop := false
	nextIndex := s.nextIndex
	commitTimer := time.NewTimer(r.rng.jitter(r.config().CommitTimeout))
	defer commitTimer.Stop()
LOOP:
	for !shouldStop {
		select {
		case <-finished:
			break LOOP
		case maxIndex := <-s.stopCh:
			if maxIndex > 0 {
				s.pipelineSend(pipeline, &nextIndex, maxIndex)
			}
			shouldStop = true
		case <-s.ls.stopCh:
			shouldStop = true
		case <-r.shutdownCh:
			shouldStop = true
		case <-s.triggerCh:
			last := s.leaderLastIndex()
			stampRange(stageReplicationWoke, nextIndex, last)
			if s.pipelineSend(pipeline, &nextIndex, last) {
				break LOOP
			}
		case <-commitTimer.C:
			last := s.leaderLastIndex()
			stampRange(stageReplicationWoke, nextIndex, last)
			if s.pipelineSend(pipeline, &nextIndex, last) {
				break LOOP
			}
			commitTimer.Reset(r.rng.jitter(r.config().CommitTimeout))
		}
	}

	close(stopDecode)
	<-finished
	_ = pipeline.Close()
	s.allowPipeline = false
	s.nextIndex = max(s.getMatchIndex()+1, 1)
	r.logger.Info("aborting pipeline replication", "peer", peer)
	return shouldStop
}

// pipelineSend queues entries [*nextIndex, lastIndex] on the pipeline,
// MaxAppendEntries at a time. It reports true when the pipeline must end.
func (s *followerReplication) pipelineSend(p AppendPipeline, nextIndex *uint64, lastIndex uint64) bool {
	for {
		req, err := s.setupAppendEntries(*nextIndex, lastIndex)
		if err != nil {
			return true
		}
		stampEntries(stageSending, req.Entries)
		if _, err := p.AppendEntries(req, new(AppendEntriesResponse)); err != nil {
			if !errors.Is(err, ErrPipelineShutdown) {
				// A shut pipeline is the decoder's doing; it said why.
				s.r.logger.Error("failed to pipeline appendEntries", "peer", s.getPeer(), "error", err)
			}
			return true
		}
		if n := len(req.Entries); n > 0 {
			*nextIndex = req.Entries[n-1].Index + 1
		}
		if *nextIndex > lastIndex {
			return false
		}
	}
}

// pipelineDecode reads the pipeline's answers in order. When it ends on
// its own (an error, a refusal, a newer term) it closes the pipeline: the
// sender may be blocked in AppendEntries on a full pipeline whose answers
// nobody reads any more, and would otherwise never return, nor would
// Shutdown, which waits for it.
func (s *followerReplication) pipelineDecode(p AppendPipeline, stop <-chan struct{}, finished chan<- struct{}) {
	defer close(finished)
	stopped := false
	defer func() {
		if !stopped {
			_ = p.Close()
		}
	}()
	for {
		select {
		case ready := <-p.Consumer():
			if err := ready.Error(); err != nil {
				s.r.logger.Debug("pipelined appendEntries failed", "peer", s.getPeer(), "error", err)
				return
			}
			req, resp := ready.Request(), ready.Response()
			if resp.Term > req.Term {
				s.r.logger.Error("peer has newer term, stopping replication", "peer", s.getPeer())
				s.r.observeTerm(resp.Term)
				return
			}
			s.setLastContact()
			s.peerCaps.Store(resp.capabilities | capAnswered)
			if !resp.Success {
				return
			}
			stampEntries(stageMatched, req.Entries)
			last := req.PrevLogEntry + uint64(len(req.Entries))
			s.matched(last)
		case <-stop:
			stopped = true
			return
		}
	}
}
