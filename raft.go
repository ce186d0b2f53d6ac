package raft

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-metrics"
)

// run is the main loop. It runs the sub-loop of the current role until the
// node shuts down. Every change of term happens on this goroutine.
func (r *Raft) run() {
	defer r.setLeader("", "")
	// Apply futures do not watch the shutdown channel (hundreds of waiting
	// clients would contend on it): those still queued are answered here,
	// those on their way to the FSM by runFSM once this loop has ended.
	defer close(r.mainLoopDone)
	defer r.applyQ.close(ErrRaftShutdown)
	defer func() {
		for _, item := range r.ctl.close() {
			answerShutdown(item)
		}
	}()
	defer func() {
		for _, f := range r.stranded {
			f.respond(ErrRaftShutdown)
		}
		r.stranded = nil
	}()
	for {
		select {
		case <-r.shutdownCh:
			return
		default:
		}
		switch r.State() {
		case Follower:
			r.runFollower()
		case Candidate:
			r.runCandidate()
		case Leader:
			r.runLeader()
		default:
			return
		}
	}
}

// transition changes the role, unless the node is shutting down.
func (r *Raft) transition(s RaftState) {
	for {
		old := r.state.Load()
		if RaftState(old) == Shutdown {
			return
		}
		if r.state.CompareAndSwap(old, uint32(s)) {
			if RaftState(old) != s {
				r.observe(s)
			}
			return
		}
	}
}

// persistTerm durably stores a new term and forgets the vote (the vote is
// keyed by term). It must run on the main loop. The fast heartbeat path is
// excluded while the term changes.
func (r *Raft) persistTerm(t uint64) error {
	if err := r.stable.SetUint64(keyCurrentTerm, t); err != nil {
		return fmt.Errorf("failed to save current term %d: %w", t, err)
	}
	r.termLock.Lock()
	r.currentTerm.Store(t)
	r.termLock.Unlock()
	return nil
}

// stepDownTo becomes a follower and adopts a higher term, in that order
// (as hashicorp/raft does): anyone reading State and then CurrentTerm
// must never see a leader with a term it did not lead. On a storage
// failure the node shuts down: it cannot safely go on without its term.
func (r *Raft) stepDownTo(t uint64) bool {
	r.transition(Follower)
	if t > r.getCurrentTerm() {
		if err := r.persistTerm(t); err != nil {
			r.logger.Error("cannot persist term, shutting down", "error", err)
			r.Shutdown()
			return false
		}
	}
	return true
}

// runFollower is the main loop of a follower: it answers RPCs and stands
// for election when the leader goes quiet.
func (r *Raft) runFollower() {
	didWarn := false
	leaderAddr, leaderID := r.LeaderWithID()
	r.logger.Info("entering follower state", "follower", r, "leader-address", leaderAddr, "leader-id", leaderID)
	metrics.IncrCounter([]string{"raft", "state", "follower"}, 1)

	hb := r.config().HeartbeatTimeout
	timer := r.newTimer(r.rng.jitter(hb))
	defer func() { timer.Stop() }()

	for r.State() == Follower {
		select {
		case rpc := <-r.trans.Consumer():
			r.processFollowerRPC(rpc, r.trans.Consumer())
		case <-r.fsmSpaceCh:
			if r.fsmDispatched < r.getCommitIndex() {
				r.dispatchCommitted(r.getCommitIndex(), nil, false)
			}
		case <-r.applyQ.notify:
			r.rejectQueued(ErrNotLeader)
		case f := <-r.configurationChangeCh:
			f.respond(ErrNotLeader)
		case <-r.ctl.notify:
			item, sig, ok := r.ctl.next()
			switch {
			case !ok:
			case sig == sigHeartbeatShortened:
				timer.Stop()
				timer = r.newTimer(r.rng.jitter(r.config().HeartbeatTimeout))
			case sig == 0:
				r.controlRequest(item)
			}
		case <-timer.C:
			r.emitReadMetrics()
			hb = r.config().HeartbeatTimeout
			wait, expired := heartbeatRecheck(r.now().Sub(r.LastContact()), hb, r.rng.jitter(hb))
			timer = r.newTimer(wait)
			if !expired {
				continue
			}
			// Heartbeat failed: forget the leader and campaign if we may.
			lastLeaderAddr, lastLeaderID := r.LeaderWithID()
			r.setLeader("", "")
			switch {
			case r.configurations.latestIndex == 0:
				if !didWarn {
					r.logger.Warn("no known peers, aborting election")
					didWarn = true
				}
			case r.configurations.latestIndex == r.configurations.committedIndex &&
				!hasVote(r.configurations.latest, r.localID):
				if !didWarn {
					r.logger.Warn("not part of stable configuration, aborting election")
					didWarn = true
				}
			case !mayCampaign(r.configurations, r.localID):
				if !didWarn {
					r.logger.Warn("heartbeat timeout reached, not part of a stable configuration or a non-voter, not triggering a leader election")
					didWarn = true
				}
			case r.hole.active():
				// A leader must hold every committed entry.
				if !didWarn {
					r.logger.Warn("log entries are missing, not standing for election until a leader sends them",
						"missing-from", r.hole.from, "missing-to", r.hole.to)
					didWarn = true
				}
			default:
				metrics.IncrCounter([]string{"raft", "transition", "heartbeat_timeout"}, 1)
				r.logger.Warn("heartbeat timeout reached, starting election",
					"last-leader-addr", lastLeaderAddr, "last-leader-id", lastLeaderID)
				r.transition(Candidate)
				return
			}
		case <-r.shutdownCh:
			return
		}
	}
}

// heartbeatRecheck decides what a follower does when its heartbeat timer
// fires, having last heard from the leader since ago. timeout is a fresh
// random timeout between hb and 2*hb. The leader has failed once it has
// been silent for hb; otherwise the next check is timeout after the last
// contact, not after now, so a follower stands for election between one
// and two heartbeat timeouts after the leader's last message. (Counting
// from now, as hashicorp/raft does, puts it up to three timeouts away.)
func heartbeatRecheck(since, hb, timeout time.Duration) (wait time.Duration, expired bool) {
	if since >= hb {
		return timeout, true
	}
	return timeout - since, false
}

// controlRequest handles a request taken from the control queue in the
// current role: requests only a leader serves are refused with ErrNotLeader
// elsewhere, and a running node can be bootstrapped only as a follower.
func (r *Raft) controlRequest(item any) {
	leader := r.State() == Leader
	switch v := item.(type) {
	case RPC:
		r.processRPC(v)
	case *configurationsFuture:
		v.configurations = r.configurations.Clone()
		v.respond(nil)
	case *verifyFuture:
		switch {
		case v.expired(time.Now()):
			v.respond(ErrEnqueueTimeout)
		case leader && v.shared:
			r.startReadRound(v)
		case leader:
			r.verifyLeader(v)
		default:
			// VerifyLeader: ErrNotLeader; a ReadIndex taken by the leader
			// that has stopped leading since: ErrLeadershipLost.
			r.readRounds.take(v) // later calls join a new round
			v.respond(v.lostErr())
		}
	case *leadershipTransferFuture:
		if leader {
			r.startLeadershipTransfer(v)
		} else {
			v.respond(ErrNotLeader)
		}
	case *userRestoreFuture:
		if leader {
			v.respond(r.restoreUserSnapshot(v.meta, v.reader))
		} else {
			v.respond(ErrNotLeader)
		}
	case *jointProbeDone:
		r.jointProbeAnswered(v)
	case *bootstrapFuture:
		if r.State() == Follower {
			v.respond(r.liveBootstrap(v.configuration))
		} else {
			v.respond(ErrCantBootstrap)
		}
	default:
		r.logger.Error("unexpected control input", "type", fmt.Sprintf("%T", item))
	}
}

// rejectQueued fails every queued Apply and Barrier.
func (r *Raft) rejectQueued(err error) {
	for _, f := range r.applyQ.take(0) {
		f.respond(err)
	}
}

// liveBootstrap bootstraps a running node that has no state.
func (r *Raft) liveBootstrap(configuration Configuration) error {
	if !hasVote(configuration, r.localID) {
		return ErrNotVoter
	}
	cfg := r.config()
	if err := BootstrapCluster(&cfg, r.logs, r.stable, r.snapshots, r.trans, configuration); err != nil {
		return err
	}
	var entry Log
	if err := r.logs.GetLog(1, &entry); err != nil {
		return fmt.Errorf("failed to read bootstrap entry: %w", err)
	}
	r.termLock.Lock()
	r.currentTerm.Store(1)
	r.termLock.Unlock()
	r.setLastLog(entry.Index, entry.Term)
	r.tail.appendEntries([]*Log{&entry})
	r.setConfigurations(configurations{latest: configuration, latestIndex: 1})
	return nil
}

// voteResult is one answer to a (pre-)vote request.
type voteResult struct {
	voter   ServerID
	term    uint64
	granted bool
	preVote bool
}

// election is one round of a campaign.
type election struct {
	preVote  bool
	term     uint64
	respCh   chan voteResult
	tally    *electionTally
	transfer bool
	// failedLogged: "pre-vote campaign failed" was logged for this round.
	failedLogged bool
}

// runCandidate is the main loop of a candidate: one election (after a
// pre-vote round unless disabled), until it wins, loses or times out.
func (r *Raft) runCandidate() {
	transfer := r.candidateByTransfer
	r.candidateByTransfer = false
	metrics.IncrCounter([]string{"raft", "state", "candidate"}, 1)
	r.logger.Info("entering candidate state", "node", r, "term", r.getCurrentTerm()+1)

	el := r.startElection(r.preVote && !transfer, transfer)
	if el == nil {
		return
	}
	timer := r.newTimer(r.rng.jitter(r.config().ElectionTimeout))
	defer func() { timer.Stop() }()

	for r.State() == Candidate {
		if el.tally.won() {
			if !r.electionWon(el) {
				return
			}
			if el = r.startElection(false, transfer); el == nil {
				return
			}
			timer.Stop()
			timer = r.newTimer(r.rng.jitter(r.config().ElectionTimeout))
			continue
		}
		select {
		case rpc := <-r.trans.Consumer():
			r.processRPC(rpc)
		case v := <-el.respCh:
			r.countVote(el, v)
		case <-timer.C:
			// Election failed: the run loop starts a new round.
			r.logger.Warn("Election timeout reached, restarting election")
			return
		case <-r.applyQ.notify:
			r.rejectQueued(ErrNotLeader)
		case f := <-r.configurationChangeCh:
			f.respond(ErrNotLeader)
		case <-r.ctl.notify:
			if item, sig, ok := r.ctl.next(); ok && sig == 0 {
				r.controlRequest(item)
			}
		case <-r.shutdownCh:
			return
		}
	}
}

// electionWon acts on a quorum: after a pre-vote it reports true so that a
// real election follows; after a vote it makes the node leader.
func (r *Raft) electionWon(el *election) bool {
	if el.preVote {
		granted, refused, needed := el.tally.counts()
		r.logger.Info("pre-vote successful, starting election", "term", el.term,
			"tally", granted, "refused", refused, "votesNeeded", needed)
		return true
	}
	r.logger.Info("election won", "term", el.term, "tally", len(el.tally.granted))
	r.transition(Leader)
	r.setLeader(r.localAddr, r.localID)
	return false
}

// countVote records one answer.
func (r *Raft) countVote(el *election, v voteResult) {
	if v.preVote != el.preVote {
		return
	}
	if !v.preVote && v.term > r.getCurrentTerm() {
		r.logger.Debug("newer term discovered, fallback to follower", "term", v.term)
		r.stepDownTo(v.term)
		return
	}
	if v.preVote {
		r.logger.Debug("pre-vote received", "from", v.voter, "term", v.term, "tally", len(el.tally.granted))
	}
	if v.preVote && v.term > el.term {
		r.logger.Debug("pre-vote denied: found newer term, falling back to follower", "term", v.term)
		r.stepDownTo(v.term)
		return
	}
	if v.granted {
		el.tally.grant(v.voter)
		if v.preVote {
			r.logger.Debug("pre-vote granted", "from", v.voter, "term", v.term, "tally", len(el.tally.granted))
		} else {
			r.logger.Debug("vote granted", "from", v.voter, "term", v.term, "tally", len(el.tally.granted))
		}
		return
	}
	if v.preVote {
		el.tally.refuse(v.voter)
		r.logger.Debug("pre-vote denied", "from", v.voter, "term", v.term, "tally", len(el.tally.granted))
		if el.tally.lost() && !el.failedLogged {
			// The timer still runs out before the next round, as in
			// hashicorp/raft.
			el.failedLogged = true
			granted, refused, needed := el.tally.counts()
			r.logger.Info("pre-vote campaign failed, waiting for election timeout", "term", el.term,
				"tally", granted, "refused", refused, "votesNeeded", needed)
		}
	}
}

// startElection starts a pre-vote round (which changes nothing durable) or
// a real election (which increments and persists the term and the vote for
// ourselves first). It sends the requests from goroutines and returns the
// round, or nil when the node cannot campaign.
func (r *Raft) startElection(preVote, transfer bool) *election {
	latest := r.configurations.latest
	if !mayCampaign(r.configurations, r.localID) {
		r.logger.Warn("not a voter, cannot campaign")
		r.transition(Follower)
		return nil
	}
	lastIdx, lastTerm := r.getLastLog()
	el := &election{
		preVote:  preVote,
		term:     r.getCurrentTerm() + 1,
		respCh:   make(chan voteResult, len(latest.Servers)),
		tally:    newElectionTally(latest),
		transfer: transfer,
	}
	if !preVote {
		if err := r.persistTerm(el.term); err != nil {
			r.logger.Error("failed to persist term, shutting down", "error", err)
			r.Shutdown()
			return nil
		}
		if err := r.persistVote(el.term, r.trans.EncodePeer(r.localID, r.localAddr)); err != nil {
			// Without a durable vote for ourselves we cannot campaign; wait
			// for the next timeout as a follower instead of spinning.
			r.logger.Error("failed to persist vote", "error", err)
			r.transition(Follower)
			return nil
		}
		metrics.IncrCounter([]string{"raft", "election", "started"}, 1)
	}
	_, _, needed := el.tally.counts()
	r.logger.Debug("calculated votes needed", "needed", needed, "term", el.term)
	el.tally.grant(r.localID)
	if preVote {
		r.logger.Debug("pre-voting for self", "term", el.term, "id", r.localID)
	} else {
		r.logger.Debug("voting for self", "term", el.term, "id", r.localID)
	}
	header := r.getRPCHeader()
	for _, server := range latest.Servers {
		if !isVoterSuffrage(server.Suffrage) || server.ID == r.localID {
			continue
		}
		server := server
		if preVote {
			r.logger.Debug("asking for pre-vote", "term", el.term, "from", server.ID, "address", server.Address)
			req := &RequestPreVoteRequest{RPCHeader: header, Term: el.term, LastLogIndex: lastIdx, LastLogTerm: lastTerm}
			r.goFunc(func() { r.sendPreVote(server, req, el.respCh) })
			continue
		}
		req := &RequestVoteRequest{
			RPCHeader:          header,
			Term:               el.term,
			Candidate:          r.trans.EncodePeer(r.localID, r.localAddr),
			LastLogIndex:       lastIdx,
			LastLogTerm:        lastTerm,
			LeadershipTransfer: transfer,
		}
		r.logger.Debug("asking for vote", "term", el.term, "from", server.ID, "address", server.Address)
		r.goFunc(func() { r.sendVote(server, req, el.respCh) })
	}
	return el
}

func (r *Raft) sendVote(server Server, req *RequestVoteRequest, out chan<- voteResult) {
	var resp RequestVoteResponse
	if err := r.trans.RequestVote(server.ID, server.Address, req, &resp); err != nil {
		r.logger.Error("failed to make requestVote RPC", "target", server, "error", err, "term", req.Term)
		resp.Term = req.Term
		resp.Granted = false
	}
	out <- voteResult{voter: server.ID, term: resp.Term, granted: resp.Granted}
}

func (r *Raft) sendPreVote(server Server, req *RequestPreVoteRequest, out chan<- voteResult) {
	var resp RequestPreVoteResponse
	pv, ok := r.trans.(WithPreVote)
	var err error
	if ok {
		err = pv.RequestPreVote(server.ID, server.Address, req, &resp)
	} else {
		err = errors.New(errTextUnexpectedCommand)
	}
	if err != nil {
		// A peer that does not know pre-vote answers "unexpected command";
		// count it as granted so it cannot block elections.
		granted := bytes.Contains([]byte(err.Error()), []byte(errTextUnexpectedCommand))
		if granted {
			r.logger.Error("target does not support pre-vote RPC, treating as granted", "target", server, "error", err, "term", req.Term)
		} else {
			r.logger.Error("failed to make requestVote RPC", "target", server, "error", err, "term", req.Term)
		}
		resp = RequestPreVoteResponse{Term: req.Term, Granted: granted}
	}
	out <- voteResult{voter: server.ID, term: resp.Term, granted: resp.Granted, preVote: true}
}

// persistVote durably records a vote before it is granted.
func (r *Raft) persistVote(term uint64, candidate []byte) error {
	if err := r.stable.SetUint64(keyLastVoteTerm, term); err != nil {
		return fmt.Errorf("failed to persist vote term: %w", err)
	}
	if err := r.stable.Set(keyLastVoteCand, candidate); err != nil {
		return fmt.Errorf("failed to persist vote candidate: %w", err)
	}
	return nil
}

// getRPCHeader returns the header every outgoing request carries.
// The byte slices are computed once and shared: nobody modifies them.
func (r *Raft) getRPCHeader() RPCHeader {
	return r.rpcHeader
}

// checkRPCHeader rejects requests without a header or from a protocol
// version we cannot speak with.
func (r *Raft) checkRPCHeader(rpc RPC) error {
	wh, ok := rpc.Command.(WithRPCHeader)
	if !ok {
		return errors.New(errTextNoHeader)
	}
	header := wh.GetRPCHeader()
	if header.ProtocolVersion < ProtocolVersionMin ||
		header.ProtocolVersion > ProtocolVersionMax ||
		header.ProtocolVersion < r.protocolVersion-1 {
		return ErrUnsupportedProtocol
	}
	return nil
}

// processRPC dispatches one inbound request. Handlers never panic on bad
// input: they answer with an error.
func (r *Raft) processRPC(rpc RPC) {
	if err := r.checkRPCHeader(rpc); err != nil {
		rpc.Respond(nil, err)
		return
	}
	switch cmd := rpc.Command.(type) {
	case *AppendEntriesRequest:
		r.appendEntries(rpc, cmd)
	case *RequestVoteRequest:
		r.requestVote(rpc, cmd)
	case *RequestPreVoteRequest:
		r.requestPreVote(rpc, cmd)
	case *InstallSnapshotRequest:
		r.installSnapshot(rpc, cmd)
	case *TimeoutNowRequest:
		r.timeoutNow(rpc, cmd)
	case *ReadIndexRequest:
		r.serveReadIndex(rpc, cmd)
	default:
		r.logger.Error("got unexpected command", "command", fmt.Sprintf("%T", rpc.Command))
		rpc.Respond(nil, errors.New(errTextUnexpectedCommand))
	}
}

// processHeartbeat is the transport's fast path for heartbeats, called off
// the main loop. It answers only when the heartbeat's term equals ours and
// we are a follower, and it never changes the term: anything else goes to
// the main loop (known-raft-bugs #1, hashicorp/raft #695).
func (r *Raft) processHeartbeat(rpc RPC) {
	defer metrics.MeasureSince([]string{"raft", "rpc", "processHeartbeat"}, time.Now())
	req, ok := rpc.Command.(*AppendEntriesRequest)
	if !ok {
		r.logger.Error("expected heartbeat, got", "command", fmt.Sprintf("%T", rpc.Command))
		rpc.Respond(nil, errors.New(errTextUnexpectedCommand))
		return
	}
	if r.answerHeartbeat(rpc, req) {
		return
	}
	if !r.ctl.push(rpc) {
		rpc.Respond(nil, ErrRaftShutdown)
	}
}

// answerHeartbeat answers a heartbeat of the current term while holding the
// term lock, so no term change can interleave between the check and the
// reply.
func (r *Raft) answerHeartbeat(rpc RPC, req *AppendEntriesRequest) bool {
	if len(req.Entries) > 0 || req.PrevLogEntry != 0 || req.LeaderCommitIndex != 0 {
		return false
	}
	r.termLock.RLock()
	defer r.termLock.RUnlock()
	if r.State() != Follower || req.Term != r.getCurrentTerm() || r.checkRPCHeader(rpc) != nil {
		return false
	}
	r.setLeaderFrom(&req.RPCHeader, req.Leader)
	r.leaderCaps.Store(req.capabilities)
	r.setLastContact()
	lastIdx, _ := r.getLastLog()
	rpc.Respond(&AppendEntriesResponse{
		RPCHeader:    r.getRPCHeader(),
		Term:         req.Term,
		LastLog:      lastIdx,
		Success:      true,
		capabilities: answerCapabilities(req),
	}, nil)
	return true
}

// leaderAddrOf returns the sender's address from the header, or from the
// deprecated field for old peers.
func (r *Raft) leaderAddrOf(h *RPCHeader, deprecated []byte) ServerAddress {
	if len(h.Addr) > 0 {
		return r.trans.DecodePeer(h.Addr)
	}
	return r.trans.DecodePeer(deprecated)
}

// termAt returns the term of the entry at index, from the last entry, the
// snapshot, the in-memory tail or the store.
func (r *Raft) termAt(index uint64) (uint64, bool) {
	if index == 0 {
		return 0, true
	}
	lastIdx, lastTerm := r.getLastLog()
	if index == lastIdx {
		return lastTerm, true
	}
	if index > lastIdx {
		return 0, false
	}
	if snapIdx, snapTerm := r.getLastSnapshot(); index == snapIdx {
		return snapTerm, true
	}
	if l, ok := r.tail.get(index); ok {
		return l.Term, true
	}
	var l Log
	if err := r.logs.GetLog(index, &l); err != nil {
		if !errors.Is(err, ErrLogNotFound) {
			r.logger.Warn("failed to get log entry", "index", index, "error", err)
		}
		return 0, false
	}
	return l.Term, true
}

// entryAt returns the entry at index from the tail or the store.
func (r *Raft) entryAt(index uint64) (*Log, error) {
	if l, ok := r.tail.get(index); ok {
		return l, nil
	}
	l := new(Log)
	if err := r.logs.GetLog(index, l); err != nil {
		return nil, fmt.Errorf("failed to get log entry %d: %w", index, err)
	}
	return l, nil
}

// validateEntries checks an AppendEntries' entries before anything is
// stored: no nil entries, consecutive indexes after prev, known types,
// terms not above the leader's, and decodable configurations.
func validateEntries(req *AppendEntriesRequest) ([]Configuration, error) {
	var confs []Configuration
	next := req.PrevLogEntry + 1
	for i, e := range req.Entries {
		if e == nil {
			return nil, fmt.Errorf("entry %d is nil", i)
		}
		if e.Index != next {
			return nil, fmt.Errorf("entry %d has index %d, want %d", i, e.Index, next)
		}
		next++
		if e.Term > req.Term {
			return nil, fmt.Errorf("entry %d has term %d above the leader's term %d", e.Index, e.Term, req.Term)
		}
		switch e.Type {
		case LogCommand, LogNoop, LogBarrier:
		case LogConfiguration:
			c, err := decodeConfiguration(e.Data)
			if err != nil {
				return nil, fmt.Errorf("entry %d: %w", e.Index, err)
			}
			confs = append(confs, c)
		case LogAddPeerDeprecated, LogRemovePeerDeprecated:
			c, err := decodePeers(e.Data, stubTransport{})
			if err != nil {
				return nil, fmt.Errorf("entry %d: %w", e.Index, err)
			}
			confs = append(confs, c)
		default:
			return nil, fmt.Errorf("entry %d has unknown log type %d", e.Index, e.Type)
		}
	}
	return confs, nil
}

// appendEntries handles an AppendEntries on the main loop.
func (r *Raft) appendEntries(rpc RPC, a *AppendEntriesRequest) {
	defer metrics.MeasureSince([]string{"raft", "rpc", "appendEntries"}, time.Now())
	lastIdx, _ := r.getLastLog()
	resp := &AppendEntriesResponse{
		RPCHeader:      r.getRPCHeader(),
		Term:           r.getCurrentTerm(),
		LastLog:        lastIdx,
		Success:        false,
		NoRetryBackoff: false,
		capabilities:   answerCapabilities(a),
	}
	var rpcErr error
	defer func() { rpc.Respond(resp, rpcErr) }()

	if a.Term < r.getCurrentTerm() {
		return
	}
	if a.Term > r.getCurrentTerm() || r.State() != Follower {
		if !r.stepDownTo(a.Term) {
			return
		}
		resp.Term = a.Term
	}
	r.setLeaderFrom(&a.RPCHeader, a.Leader)
	r.leaderCaps.Store(a.capabilities)

	if r.hole.active() && a.PrevLogEntry >= r.hole.from {
		// Entries after the hole cannot be checked or applied yet: ask the
		// leader to start where the hole does (it sends entries from
		// there, or a snapshot if it has compacted them).
		resp.LastLog = r.hole.from - 1
		resp.NoRetryBackoff = true
		r.setLastContact()
		return
	}
	if !checkPrev(a.PrevLogEntry, a.PrevLogTerm, r.termAt) {
		// hashicorp/raft's two lines: the entry is missing, or its term
		// differs.
		if ours, ok := r.termAt(a.PrevLogEntry); ok {
			r.logger.Warn("previous log term mis-match", "ours", ours, "remote", a.PrevLogTerm)
		} else {
			r.logger.Warn("failed to get previous log", "previous-index", a.PrevLogEntry, "last-index", lastIdx, "error", ErrLogNotFound)
		}
		resp.NoRetryBackoff = true
		return
	}

	if len(a.Entries) > 0 {
		if err := r.storeEntries(a); err != nil {
			r.logger.Error("failed to append to logs", "error", err)
			resp.LastLog, _ = r.getLastLog()
			if errors.Is(err, errBadEntries) {
				rpcErr = err
			}
			return
		}
		stampEntries(stageFollowerStored, a.Entries)
		resp.LastLog, _ = r.getLastLog()
	}

	if next := followerCommit(r.getCommitIndex(), a.LeaderCommitIndex, a.PrevLogEntry, len(a.Entries)); next > r.getCommitIndex() {
		r.setCommitIndex(next)
		if c := r.configurations; c.latestIndex <= next && c.committedIndex < c.latestIndex {
			c.committed, c.committedIndex = c.latest, c.latestIndex
			r.setConfigurations(c)
		}
		r.dispatchCommitted(next, nil, false)
	}

	resp.Success = true
	r.setLastContact()
}

var errBadEntries = errors.New("bad entries")

// storeEntries truncates a conflicting suffix and durably stores the new
// entries of a request whose consistency check passed.
func (r *Raft) storeEntries(a *AppendEntriesRequest) error {
	confs, err := validateEntries(a)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadEntries, err)
	}
	lastIdx, _ := r.getLastLog()
	plan := planAppend(a.Entries, lastIdx, r.termAt, r.hole)
	if plan.truncateFrom > 0 {
		if plan.truncateFrom <= r.getCommitIndex() {
			return fmt.Errorf("%w: leader would overwrite committed entry %d (commit index %d)",
				errBadEntries, plan.truncateFrom, r.getCommitIndex())
		}
		r.logger.Warn("clearing log suffix", "from", plan.truncateFrom, "to", lastIdx)
		if err := r.logs.DeleteRange(plan.truncateFrom, lastIdx); err != nil {
			r.logger.Error("failed to clear log suffix", "error", err)
			return fmt.Errorf("failed to clear log suffix [%d, %d]: %w", plan.truncateFrom, lastIdx, err)
		}
		r.tail.truncateFrom(plan.truncateFrom)
		prevIdx := plan.truncateFrom - 1
		prevTerm, _ := r.termAt(prevIdx)
		if snapIdx, snapTerm := r.getLastSnapshot(); prevIdx == snapIdx {
			prevTerm = snapTerm
		}
		r.setLastLog(prevIdx, prevTerm)
		if r.configurations.latestIndex >= plan.truncateFrom {
			r.rescanLatestConfiguration(prevIdx)
		}
	}
	if len(plan.newEntries) == 0 {
		return nil
	}
	if ct, ok := r.logs.(CommitTrackingLogStore); ok && r.RestoreCommittedLogs {
		// The request's commit index, capped at its last entry (verified
		// to match the leader's log), goes down with the entries: a
		// restarted node can then replay everything it acknowledged as
		// committed, not only what the previous request said.
		lastNew := plan.newEntries[len(plan.newEntries)-1].Index
		staged := max(r.getCommitIndex(), min(a.LeaderCommitIndex, lastNew))
		if err := ct.StageCommitIndex(staged); err != nil {
			r.logger.Warn("failed to stage commit index", "error", err)
		}
	}
	if err := r.logs.StoreLogs(plan.newEntries); err != nil {
		return fmt.Errorf("failed to store entries [%d, %d]: %w",
			plan.newEntries[0].Index, plan.newEntries[len(plan.newEntries)-1].Index, err)
	}
	first, last := plan.newEntries[0], plan.newEntries[len(plan.newEntries)-1]
	if r.hole.active() {
		r.hole = fillHole(r.hole, first.Index, last.Index)
		if !r.hole.active() {
			r.logger.Info("missing log entries received from the leader: the log is whole again", "up-to", last.Index)
		}
	}
	if last.Index >= lastIdx || plan.truncateFrom > 0 {
		r.tail.appendEntries(plan.newEntries)
		r.setLastLog(last.Index, last.Term)
	}

	// The newest configuration among the new entries takes effect now
	// (entries filling a hole may be older than the latest one).
	if len(confs) > 0 {
		c := r.configurations
		for i := len(plan.newEntries) - 1; i >= 0; i-- {
			e := plan.newEntries[i]
			if e.Index <= c.latestIndex && plan.truncateFrom == 0 {
				break
			}
			if e.Type == LogConfiguration || e.Type == LogAddPeerDeprecated || e.Type == LogRemovePeerDeprecated {
				// confs holds one per configuration entry of the request,
				// in order; the last is the newest.
				c.latest, c.latestIndex = confs[len(confs)-1], e.Index
				break
			}
		}
		r.setConfigurations(c)
	}
	return nil
}

// rescanLatestConfiguration finds the newest configuration at or below
// upto after a truncation removed the latest one.
func (r *Raft) rescanLatestConfiguration(upto uint64) {
	c := r.configurations
	c.latest, c.latestIndex = c.committed, c.committedIndex
	for index := c.committedIndex + 1; index <= upto; index++ {
		e, err := r.entryAt(index)
		if err != nil {
			continue
		}
		if e.Type == LogConfiguration {
			if conf, err := decodeConfiguration(e.Data); err == nil {
				c.latest, c.latestIndex = conf, index
			}
		}
	}
	r.setConfigurations(c)
}

// voteInputFor gathers what decideVote needs. It reads the stored vote.
func (r *Raft) voteInputFor() (voteInput, error) {
	lastIdx, lastTerm := r.getLastLog()
	in := voteInput{
		currentTerm:  r.getCurrentTerm(),
		lastLogIndex: lastIdx,
		lastLogTerm:  lastTerm,
		latest:       r.configurations.latest,
	}
	in.knownLeaderAddr, _ = r.LeaderWithID()
	// A leader is live while it has been heard from within a heartbeat
	// timeout (Raft thesis §4.2.3). hashicorp/raft counts it until the
	// follower's own timer fires, up to two timeouts later, which makes
	// the first candidate after a leader failure lose to a voter that has
	// not noticed yet and wait out an election timeout.
	if in.knownLeaderAddr != "" && r.now().Sub(r.LastContact()) >= r.config().HeartbeatTimeout {
		in.knownLeaderAddr = ""
	}
	if r.State() == Leader {
		in.knownLeaderAddr = r.localAddr
	}
	in.starting = r.now().Sub(r.started) < r.config().HeartbeatTimeout
	var err error
	in.lastVoteTerm, err = r.stable.GetUint64(keyLastVoteTerm)
	if err != nil && !isNotFound(err) {
		return in, fmt.Errorf("failed to get last vote term: %w", err)
	}
	in.lastVoteCandAddr, err = r.stable.Get(keyLastVoteCand)
	if err != nil && !isNotFound(err) {
		return in, fmt.Errorf("failed to get last vote candidate: %w", err)
	}
	return in, nil
}

// requestVote handles a RequestVote on the main loop: decide, persist, then
// reply.
func (r *Raft) requestVote(rpc RPC, req *RequestVoteRequest) {
	defer metrics.MeasureSince([]string{"raft", "rpc", "requestVote"}, time.Now())
	r.observe(*req)
	resp := &RequestVoteResponse{RPCHeader: r.getRPCHeader(), Term: r.getCurrentTerm()}
	if r.protocolVersion < 2 {
		resp.Peers = encodePeers(r.configurations.latest, r.trans)
	}
	in, err := r.voteInputFor()
	if err != nil {
		r.logger.Error("cannot decide vote", "error", err)
		rpc.Respond(resp, err)
		return
	}
	candAddr := r.leaderAddrOf(&req.RPCHeader, req.Candidate)
	d := decideVote(in, voteRequest{
		term:               req.Term,
		candidateID:        ServerID(req.ID),
		candidateAddr:      candAddr,
		lastLogIndex:       req.LastLogIndex,
		lastLogTerm:        req.LastLogTerm,
		leadershipTransfer: req.LeadershipTransfer,
	})
	if d.adoptTerm > r.getCurrentTerm() {
		r.logger.Debug("lost leadership because received a requestVote with a newer term")
		if !r.stepDownTo(d.adoptTerm) {
			rpc.Respond(resp, ErrRaftShutdown)
			return
		}
		r.setLeader("", "")
	}
	resp.Term = r.getCurrentTerm()
	r.logVoteDecision(false, d, in, candAddr, req.Term, req.LastLogIndex, req.LastLogTerm)
	if d.grant {
		if err := r.persistVote(req.Term, r.trans.EncodePeer(ServerID(req.ID), candAddr)); err != nil {
			r.logger.Error("failed to persist vote", "error", err)
			rpc.Respond(resp, err)
			return
		}
		resp.Granted = true
		r.setLastContact()
	}
	rpc.Respond(resp, nil)
}

// voteLog holds hashicorp/raft's messages for refused votes ([0]) and
// pre-votes ([1]), written out so that a grep of the source finds them.
var voteLog = [2]struct{ leader, notVoter, lastTerm, lastIndex, stale, starting string }{
	{
		leader:    "rejecting vote request since we have a leader",
		notVoter:  "rejecting vote request since node is not a voter",
		lastTerm:  "rejecting vote request since our last term is greater",
		lastIndex: "rejecting vote request since our last index is greater",
		stale:     "rejecting vote request with an older term",
		starting:  "rejecting vote request since this node started less than a heartbeat timeout ago",
	},
	{
		leader:    "rejecting pre-vote request since we have a leader",
		notVoter:  "rejecting pre-vote request since node is not a voter",
		lastTerm:  "rejecting pre-vote request since our last term is greater",
		lastIndex: "rejecting pre-vote request since our last index is greater",
		stale:     "rejecting pre-vote request with an older term",
		starting:  "rejecting pre-vote request since this node started less than a heartbeat timeout ago",
	},
}

// logVoteDecision writes the line hashicorp/raft writes for a vote or
// pre-vote decision, with its level and keys; a grant logs nothing there,
// and a stale term only a debug line here.
func (r *Raft) logVoteDecision(preVote bool, d voteDecision, in voteInput, cand ServerAddress, term, lastIndex, lastTerm uint64) {
	msgs := voteLog[0]
	if preVote {
		msgs = voteLog[1]
	}
	switch d.why {
	case whyLeaderKnown:
		leaderAddr, leaderID := r.LeaderWithID()
		r.logger.Warn(msgs.leader, "from", cand, "leader", leaderAddr, "leader-id", string(leaderID))
	case whyNotVoter:
		r.logger.Warn(msgs.notVoter, "from", cand)
	case whyVotedForOther, whyVotedForCandidate:
		r.logger.Info("duplicate requestVote for same term", "term", term)
		if d.why == whyVotedForCandidate {
			r.logger.Warn("duplicate requestVote from", "candidate", cand)
		}
	case whyLastTermGreater:
		r.logger.Warn(msgs.lastTerm, "candidate", cand, "last-term", in.lastLogTerm, "last-candidate-term", lastTerm)
	case whyLastIndexGreater:
		r.logger.Warn(msgs.lastIndex, "candidate", cand, "last-index", in.lastLogIndex, "last-candidate-index", lastIndex)
	case whyStaleTerm:
		r.logger.Debug(msgs.stale, "candidate", cand, "term", term, "current-term", in.currentTerm)
	case whyStarting:
		r.logger.Debug(msgs.starting, "candidate", cand, "term", term)
	}
}

// requestPreVote handles a RequestPreVote: it changes nothing, durable or
// not (granting does not even refresh leader contact, hashicorp #609).
func (r *Raft) requestPreVote(rpc RPC, req *RequestPreVoteRequest) {
	defer metrics.MeasureSince([]string{"raft", "rpc", "requestPreVote"}, time.Now())
	r.observe(*req)
	resp := &RequestPreVoteResponse{RPCHeader: r.getRPCHeader(), Term: r.getCurrentTerm()}
	in, err := r.voteInputFor()
	if err != nil {
		rpc.Respond(resp, err)
		return
	}
	d := decidePreVote(in, voteRequest{
		term:          req.Term,
		candidateID:   ServerID(req.ID),
		candidateAddr: r.leaderAddrOf(&req.RPCHeader, nil),
		lastLogIndex:  req.LastLogIndex,
		lastLogTerm:   req.LastLogTerm,
	})
	resp.Term = d.replyTerm
	resp.Granted = d.grant
	r.logVoteDecision(true, d, in, r.leaderAddrOf(&req.RPCHeader, nil), req.Term, req.LastLogIndex, req.LastLogTerm)
	if d.grant && req.Term > in.currentTerm {
		r.logger.Debug("received a requestPreVote with a newer term, grant the pre-vote")
	}
	rpc.Respond(resp, nil)
}

// installSnapshot handles an InstallSnapshot on the main loop.
func (r *Raft) installSnapshot(rpc RPC, req *InstallSnapshotRequest) {
	defer metrics.MeasureSince([]string{"raft", "rpc", "installSnapshot"}, time.Now())
	resp := &InstallSnapshotResponse{Term: r.getCurrentTerm(), Success: false}
	var rpcErr error
	defer func() {
		// Leave the stream aligned for transports that need it.
		if rpc.Reader != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(rpc.Reader, max(req.Size, 0)))
		}
		rpc.Respond(resp, rpcErr)
	}()

	if req.SnapshotVersion < SnapshotVersionMin || req.SnapshotVersion > SnapshotVersionMax {
		rpcErr = fmt.Errorf("unsupported snapshot version %d", req.SnapshotVersion)
		return
	}
	if req.Term < r.getCurrentTerm() {
		r.logger.Info("ignoring installSnapshot request with older term than current term",
			"request-term", req.Term, "current-term", r.getCurrentTerm())
		return
	}
	if req.Term > r.getCurrentTerm() || r.State() != Follower {
		if !r.stepDownTo(req.Term) {
			return
		}
		resp.Term = req.Term
	}
	r.setLeaderFrom(&req.RPCHeader, req.Leader)

	var conf Configuration
	var confIndex uint64
	var err error
	if req.SnapshotVersion > 0 {
		conf, err = decodeConfiguration(req.Configuration)
		confIndex = req.ConfigurationIndex
	} else {
		conf, err = decodePeers(req.Peers, r.trans)
		confIndex = req.LastLogIndex
	}
	if err != nil {
		r.logger.Error("rejecting snapshot with a bad configuration", "error", err)
		rpcErr = err
		return
	}
	if req.Size < 0 || rpc.Reader == nil {
		rpcErr = fmt.Errorf("snapshot has no data (size %d)", req.Size)
		return
	}
	if snapshotAlreadyApplied(req.LastLogIndex, r.fsmDispatched) {
		// A delayed or duplicated request: the FSM has been handed every
		// entry the snapshot holds, and more. Restoring it would roll the
		// FSM back to the snapshot while the entries after it stay counted
		// as handed over, so they would never be applied again.
		r.logger.Info("ignoring a snapshot the FSM is already past",
			"snapshot-index", req.LastLogIndex, "dispatched-index", r.fsmDispatched)
		resp.Success = true
		r.setLastContact()
		return
	}

	sink, err := r.snapshots.Create(SnapshotVersionMax, req.LastLogIndex, req.LastLogTerm, conf, confIndex, r.trans)
	if err != nil {
		r.logger.Error("failed to create snapshot to install", "error", err)
		rpcErr = fmt.Errorf("failed to create snapshot to install: %w", err)
		return
	}
	counted := &byteCounter{r: io.LimitReader(rpc.Reader, req.Size)}
	progress := startProgressLog(r.logger, msgTransferProgress, counted, req.Size)
	n, err := io.Copy(sink, counted)
	progress.end()
	if err != nil {
		_ = sink.Cancel()
		r.logger.Error("failed to copy snapshot", "error", err)
		rpcErr = fmt.Errorf("failed to copy snapshot: %w", err)
		return
	}
	if n != req.Size {
		_ = sink.Cancel()
		r.logger.Error("failed to receive whole snapshot", "received", hclog.Fmt("%d / %d", n, req.Size))
		rpcErr = fmt.Errorf("failed to receive whole snapshot: %d/%d bytes: short read", n, req.Size)
		return
	}
	if err := sink.Close(); err != nil {
		r.logger.Error("failed to finalize snapshot", "error", err)
		rpcErr = fmt.Errorf("failed to finalize snapshot: %w", err)
		return
	}
	r.logger.Info("copied to local snapshot", "bytes", n)

	if err := r.restoreFSM(sink.ID()); err != nil {
		r.logger.Error("failed to restore snapshot", "error", err)
		rpcErr = err
		return
	}

	r.adoptSnapshot(req.LastLogIndex, req.LastLogTerm, conf, confIndex)
	r.logger.Info("Installed remote snapshot")
	resp.Success = true
	r.setLastContact()
}

// restoreFSM has the FSM goroutine restore the snapshot with the given ID,
// after every entry handed to it before.
func (r *Raft) restoreFSM(id string) error {
	f := &restoreFuture{ID: id}
	f.init()
	f.shutdownCh = r.shutdownCh
	select {
	case r.fsmMutateCh <- f:
	case <-r.shutdownCh:
		return ErrRaftShutdown
	}
	return f.Error()
}

// adoptSnapshot makes an installed snapshot the base of the log: it keeps
// the entries after the snapshot only if the log holds the snapshot's last
// entry with the same term, and otherwise discards the whole log (Raft
// Figure 13; hashicorp/raft #697 kept a conflicting log).
func (r *Raft) adoptSnapshot(index, term uint64, conf Configuration, confIndex uint64) {
	lastIdx, lastTerm := r.getLastLog()
	existing, ok := r.termAt(index)
	keep := ok && existing == term && !isMonotonic(r.logs) && lastIdx > index
	if hadHole := r.hole.active(); hadHole {
		if index <= r.hole.to {
			// The snapshot ends inside the hole, before the log this
			// node kept: keep all of it (entries it may have
			// acknowledged; a conflict among them is found by the next
			// AppendEntries).
			keep = lastIdx > index
			r.hole = fillHole(r.hole, 0, index)
		} else {
			r.hole = logHole{}
		}
		if !r.hole.active() {
			r.logger.Info("the installed snapshot closes the log hole", "index", index)
		}
	}
	first, err := r.logs.FirstIndex()
	if err != nil {
		r.logger.Error("failed to get first log index", "error", err)
	}
	if keep {
		if first > 0 && first <= index {
			if err := r.logs.DeleteRange(first, index); err != nil {
				r.logger.Error("failed to compact logs", "error", err)
			}
		}
	} else {
		if first > 0 && lastIdx >= first {
			if err := r.logs.DeleteRange(first, lastIdx); err != nil {
				r.logger.Error("failed to clear log", "error", err)
			}
		}
		r.tail.reset()
		lastIdx, lastTerm = index, term
	}
	r.setLastSnapshot(index, term)
	r.setLastLog(lastIdx, lastTerm)
	r.fsmDispatched = max(r.fsmDispatched, index)
	r.setCommitIndex(max(r.getCommitIndex(), index))
	c := configurations{committed: conf, committedIndex: confIndex, latest: conf, latestIndex: confIndex}
	if keep && r.configurations.latestIndex > index {
		c.latest, c.latestIndex = r.configurations.latest, r.configurations.latestIndex
	}
	r.setConfigurations(c)
}

// timeoutNow starts an election at once, as a leadership transfer.
func (r *Raft) timeoutNow(rpc RPC, req *TimeoutNowRequest) {
	if !hasVote(r.configurations.latest, r.localID) {
		rpc.Respond(nil, fmt.Errorf("%w: cannot take leadership", ErrNotVoter))
		return
	}
	if r.hole.active() {
		rpc.Respond(nil, fmt.Errorf("cannot take leadership: log entries %d to %d are missing", r.hole.from, r.hole.to))
		return
	}
	r.setLeader("", "")
	r.transition(Candidate)
	r.candidateByTransfer = true
	rpc.Respond(&TimeoutNowResponse{}, nil)
}

// applyCommitted hands the entries up to index to the FSM goroutine in
// batches of at most MaxAppendEntries. futures are the leader's futures for
// some of those entries, in index order; the other entries are read from the
// tail or the store.
func (r *Raft) applyCommitted(index uint64, futures []*logFuture) {
	r.dispatchCommitted(index, futures, true)
}

// dispatchCommitted is applyCommitted; with wait false it stops instead of
// waiting when the FSM's queue is full, leaving the rest for a later call
// (the follower's loop calls again when the FSM signals fsmSpaceCh), so a
// follower whose FSM lags keeps answering its leader.
func (r *Raft) dispatchCommitted(index uint64, futures []*logFuture, wait bool) {
	if len(r.stranded) > 0 {
		// Futures a failed read left behind come first (lower indexes).
		futures = append(r.stranded, futures...)
		r.stranded = nil
	}
	// strand keeps the futures not handed over for the next call (or for
	// shutdown): apply futures wait on nothing but their answer.
	strand := func() {
		for len(futures) > 0 && futures[0].log.Index <= r.fsmDispatched {
			futures = futures[1:]
		}
		if len(futures) > 0 {
			r.stranded = append([]*logFuture(nil), futures...)
		}
	}
	if index <= r.fsmDispatched {
		strand()
		return
	}
	batchMax := uint64(r.config().MaxAppendEntries)
	for r.fsmDispatched < index {
		n := min(index-r.fsmDispatched, batchMax)
		cb := commitBatchPool.Get().(*commitBatch)
		batch := slices.Grow(cb.tuples[:0], int(n))
		for idx := r.fsmDispatched + 1; idx <= r.fsmDispatched+n; idx++ {
			for len(futures) > 0 && futures[0].log.Index < idx {
				futures = futures[1:]
			}
			if len(futures) > 0 && futures[0].log.Index == idx {
				batch = append(batch, commitTuple{log: &futures[0].log, future: futures[0]})
				continue
			}
			l, err := r.entryAt(idx)
			if err != nil {
				// Leave it for the next commit; never hand the FSM a gap.
				r.logger.Error("failed to get committed entry", "index", idx, "error", err)
				break
			}
			batch = append(batch, commitTuple{log: l})
		}
		cb.tuples = batch
		if len(batch) == 0 {
			cb.release()
			strand()
			return
		}
		// The FSM goroutine owns the batch once sent (and recycles it).
		last, size := batch[len(batch)-1].log.Index, uint64(len(batch))
		if !wait {
			select {
			case r.fsmMutateCh <- cb:
				r.fsmDispatched = last
				if size < n {
					strand()
					return
				}
				continue
			default:
				// Full: the entries are read again later; their futures
				// (if any) wait in stranded.
				cb.release()
				strand()
				return
			}
		}
		select {
		case r.fsmMutateCh <- cb:
			r.fsmDispatched = last
		case <-r.shutdownCh:
			for _, t := range batch {
				if t.future != nil {
					t.future.respond(ErrRaftShutdown)
				}
			}
			for _, f := range futures {
				f.respond(ErrRaftShutdown) // not reached by this call's batches
			}
			return
		}
		if size < n {
			strand()
			return
		}
	}
}
