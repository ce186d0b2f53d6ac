package raft

// This file holds the pure vote decisions: no time, no locks, no I/O. The
// main loop gathers a voteInput, calls decideVote or decidePreVote, persists
// what the decision says, and replies.

// voteInput is what a voter knows when a (pre-)vote request arrives.
type voteInput struct {
	currentTerm      uint64
	lastLogIndex     uint64
	lastLogTerm      uint64
	latest           Configuration // latest configuration, committed or not
	knownLeaderAddr  ServerAddress // "" when no live leader is known
	lastVoteTerm     uint64
	lastVoteCandAddr []byte
}

// voteRequest is the part of a RequestVote or RequestPreVote that matters.
type voteRequest struct {
	term               uint64
	candidateID        ServerID // "" for peers that predate IDs in headers
	candidateAddr      ServerAddress
	lastLogIndex       uint64
	lastLogTerm        uint64
	leadershipTransfer bool
}

// voteDecision is the outcome of a vote request.
type voteDecision struct {
	grant bool
	// adoptTerm, when above the voter's term, must be persisted (and the
	// voter must become a follower) before replying.
	adoptTerm uint64
	// replyTerm is the term to put into the response.
	replyTerm uint64
	reason    string
}

// logUpToDate reports whether a log ending at (index, term) is at least as
// up to date as one ending at (ourIndex, ourTerm) (Raft §5.4.1).
func logUpToDate(term, index, ourTerm, ourIndex uint64) bool {
	if term != ourTerm {
		return term > ourTerm
	}
	return index >= ourIndex
}

// membershipReject applies the checks shared by votes and pre-votes that do
// not depend on terms: the candidate must be in the voter's configuration
// (when it knows one), and a voter that knows a live leader refuses unless
// the election is a leadership transfer.
//
// The voter's own suffrage is deliberately not checked. A node that was
// added back may not have received the entry that re-added it yet, while
// the candidate (holding that entry) counts it as a voter; refusing would
// leave such a cluster without a leader for good, since only a leader can
// deliver the entry. Safety does not depend on it: the candidate counts
// votes against its own configuration. hashicorp/raft does the same.
func membershipReject(in voteInput, req voteRequest) string {
	if len(in.latest.Servers) > 0 && req.candidateID != "" && !inConfiguration(in.latest, req.candidateID) {
		return "candidate is not in the configuration"
	}
	if in.knownLeaderAddr != "" && in.knownLeaderAddr != req.candidateAddr && !req.leadershipTransfer {
		return "a leader is known"
	}
	return ""
}

// decideVote decides a RequestVote, in hashicorp/raft's order of checks, so
// that peers of both libraries see the same answers.
func decideVote(in voteInput, req voteRequest) voteDecision {
	return decide(in, req, false)
}

// decidePreVote decides a RequestPreVote. It never changes the voter's
// state: adoptTerm is always zero, and no earlier vote matters since nothing
// is cast. The reply carries the request's term when that is higher, as
// hashicorp/raft does.
func decidePreVote(in voteInput, req voteRequest) voteDecision {
	return decide(in, req, true)
}

func decide(in voteInput, req voteRequest, preVote bool) voteDecision {
	d := voteDecision{replyTerm: in.currentTerm}
	if r := membershipReject(in, req); r != "" {
		d.reason = r
		return d
	}
	if req.term < in.currentTerm {
		d.reason = "stale term"
		return d
	}
	if req.term > in.currentTerm {
		d.replyTerm = req.term
		if !preVote {
			d.adoptTerm = req.term
		}
	}
	if req.candidateID != "" && len(in.latest.Servers) > 0 && !hasVote(in.latest, req.candidateID) {
		d.reason = "candidate is not a voter"
		return d
	}
	if !preVote && in.lastVoteTerm == req.term && len(in.lastVoteCandAddr) > 0 {
		if string(in.lastVoteCandAddr) == string(req.candidateAddr) {
			d.grant, d.reason = true, "already voted for this candidate"
		} else {
			d.reason = "already voted in this term"
		}
		return d
	}
	if !logUpToDate(req.lastLogTerm, req.lastLogIndex, in.lastLogTerm, in.lastLogIndex) {
		d.reason = "candidate log is behind"
		return d
	}
	d.grant, d.reason = true, "granted"
	return d
}

// electionTally counts votes for one election round.
type electionTally struct {
	needed  int
	granted map[ServerID]bool
}

func newElectionTally(c Configuration) *electionTally {
	return &electionTally{needed: quorumSize(c), granted: make(map[ServerID]bool)}
}

// grant records a granted vote from id; a voter counts once.
func (t *electionTally) grant(id ServerID) {
	t.granted[id] = true
}

// won reports whether the tally has a quorum.
func (t *electionTally) won() bool { return len(t.granted) >= t.needed }
