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
	// starting: the voter started less than a heartbeat timeout ago. It
	// may have acknowledged a leader just before a restart, so it refuses
	// votes as if that leader were still live (a leader's read lease
	// counts on it).
	starting bool
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
	why       voteWhy
}

// voteWhy is the rule that decided a vote, for the log line hashicorp/raft
// writes in each case.
type voteWhy uint8

const (
	whyGranted           voteWhy = iota
	whyLeaderKnown               // a live leader other than the candidate is known
	whyStaleTerm                 // the request's term is behind ours
	whyNotVoter                  // the candidate is no voter here and its log is behind
	whyVotedForCandidate         // granted again: already voted for it in this term
	whyVotedForOther             // already voted for another in this term
	whyLastTermGreater           // our last entry's term is newer
	whyLastIndexGreater          // same last term, our log is longer
	whyStarting                  // the voter started within a heartbeat timeout
)

// logUpToDate reports whether a log ending at (index, term) is at least as
// up to date as one ending at (ourIndex, ourTerm) (Raft §5.4.1).
func logUpToDate(term, index, ourTerm, ourIndex uint64) bool {
	if term != ourTerm {
		return term > ourTerm
	}
	return index >= ourIndex
}

// decideVote decides a RequestVote. It gives hashicorp/raft's answers
// except in two cases where hashicorp can leave a cluster without a leader
// for good, both about configurations the voter has not caught up with:
//
//   - The voter's own suffrage is not checked. A node added back may not
//     have the entry that re-added it, while the candidate holding that
//     entry counts it as a voter; refusing would wait for a leader that
//     only its vote can make (found by fuzzy, seed 416).
//   - A candidate the voter does not know as a voter is granted when its
//     log is at least as up to date (see decide).
//
// Safety never rests on the voter's configuration: a candidate counts votes
// against its own.
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
	if in.knownLeaderAddr != "" && in.knownLeaderAddr != req.candidateAddr && !req.leadershipTransfer {
		d.reason, d.why = "a leader is known", whyLeaderKnown
		return d
	}
	if in.starting && in.knownLeaderAddr == "" && !req.leadershipTransfer {
		d.reason, d.why = "started less than a heartbeat timeout ago", whyStarting
		return d
	}
	if req.term < in.currentTerm {
		d.reason, d.why = "stale term", whyStaleTerm
		return d
	}
	upToDate := logUpToDate(req.lastLogTerm, req.lastLogIndex, in.lastLogTerm, in.lastLogIndex)
	// A candidate this node does not know as a voter is refused, without
	// adopting its term, unless its log is at least as up to date: a
	// removed server (whose log lacks its removal) cannot disturb anyone,
	// while a server whose promotion this node has not received yet can
	// still be elected. hashicorp/raft refuses such candidates whatever
	// their log, which can leave a cluster leaderless for good: the only
	// candidates with the newest configuration are refused by voters that
	// lack it (found by fuzzy, seed 1898).
	if req.candidateID != "" && len(in.latest.Servers) > 0 && !hasVote(in.latest, req.candidateID) && !upToDate {
		d.reason, d.why = "candidate is not a voter here and its log is behind", whyNotVoter
		return d
	}
	if req.term > in.currentTerm {
		d.replyTerm = req.term
		if !preVote {
			d.adoptTerm = req.term
		}
	}
	if !preVote && in.lastVoteTerm == req.term && len(in.lastVoteCandAddr) > 0 {
		if string(in.lastVoteCandAddr) == string(req.candidateAddr) {
			d.grant, d.reason, d.why = true, "already voted for this candidate", whyVotedForCandidate
		} else {
			d.reason, d.why = "already voted in this term", whyVotedForOther
		}
		return d
	}
	if !upToDate {
		d.reason, d.why = "candidate log is behind", whyLastIndexGreater
		if in.lastLogTerm > req.lastLogTerm {
			d.why = whyLastTermGreater
		}
		return d
	}
	d.grant, d.reason = true, "granted"
	return d
}

// electionTally counts votes for one election round under the candidate's
// latest configuration: a majority of its voters, or, when it is joint, a
// majority of each half.
type electionTally struct {
	conf    Configuration
	granted map[ServerID]bool
	refused map[ServerID]bool // refusals counted (pre-vote rounds only)
}

func newElectionTally(c Configuration) *electionTally {
	return &electionTally{conf: c, granted: make(map[ServerID]bool)}
}

// grant records a granted vote from id; a voter counts once.
func (t *electionTally) grant(id ServerID) {
	t.granted[id] = true
}

// refuse records a refusal from id; a voter counts once.
func (t *electionTally) refuse(id ServerID) {
	if t.refused == nil {
		t.refused = make(map[ServerID]bool)
	}
	if !t.granted[id] {
		t.refused[id] = true
	}
}

// won reports whether the granted votes make the quorum.
func (t *electionTally) won() bool {
	return jointAgreed(t.conf, func(id ServerID) bool { return t.granted[id] })
}

// lost reports whether refusals alone make a majority of some half (of
// the voters, when not joint), hashicorp/raft's test for a failed
// pre-vote campaign: the election can no longer be won.
func (t *electionTally) lost() bool {
	oldVoters, newVoters := jointHalves(t.conf)
	refused := func(id ServerID) bool { return t.refused[id] }
	return majorityOf(oldVoters, refused) || majorityOf(newVoters, refused)
}

// counts returns the granted and refused votes and the votes needed (for a
// joint configuration: of the larger half's majority), for the log lines.
func (t *electionTally) counts() (granted, refused, needed int) {
	oldVoters, newVoters := jointHalves(t.conf)
	return len(t.granted), len(t.refused), max(len(oldVoters), len(newVoters))/2 + 1
}
