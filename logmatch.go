package raft

// Pure decisions about log matching and commitment: no time, no locks, no
// I/O. Lookups are passed in as functions.

// termLookup returns the term of the entry at index, and false when the node
// does not hold that index.
type termLookup func(index uint64) (term uint64, ok bool)

// appendPlan says what a follower must do with an AppendEntries whose
// consistency check passed.
type appendPlan struct {
	// truncateFrom, when non-zero, is the first index of a conflicting
	// suffix that must be deleted before appending.
	truncateFrom uint64
	// newEntries is the suffix of the request's entries to store.
	newEntries []*Log
}

// planAppend compares the request's entries with the local log and returns
// which to store and where the local log conflicts (Raft Figure 2, receiver
// rules 3 and 4). Entries the node already holds with the same term are not
// stored again; the first entry whose term differs starts a truncation.
//
// hole is a range of indexes the node knows it lacks although it holds
// entries after it (see logHole): an entry there is missing, not
// conflicting, so it is stored without truncating what follows; entries
// after the hole are compared as usual.
func planAppend(entries []*Log, lastIndex uint64, termAt termLookup, hole logHole) appendPlan {
	for i, e := range entries {
		if e.Index > lastIndex {
			return appendPlan{newEntries: entries[i:]}
		}
		if hole.contains(e.Index) {
			plan := appendPlan{newEntries: entries[i:]}
			for _, f := range entries[i:] {
				if f.Index > lastIndex {
					break
				}
				if hole.contains(f.Index) {
					continue
				}
				if term, ok := termAt(f.Index); !ok || term != f.Term {
					plan.truncateFrom = f.Index
					break
				}
			}
			return plan
		}
		term, ok := termAt(e.Index)
		if !ok || term != e.Term {
			return appendPlan{truncateFrom: e.Index, newEntries: entries[i:]}
		}
	}
	return appendPlan{}
}

// logHole is a range of log indexes, from..to inclusive, that a node lacks
// although its log holds entries after them: what is left when the newest
// snapshot is corrupt and the older ones end before the log begins. The
// node keeps its log (entries it may have acknowledged) and fills the hole
// from the leader, by entries or by a snapshot. The zero value is no hole.
type logHole struct{ from, to uint64 }

func (h logHole) active() bool { return h.from != 0 }

func (h logHole) contains(index uint64) bool {
	return h.active() && index >= h.from && index <= h.to
}

// findLogHole returns the entries a restarting node lacks: those after the
// snapshot it could restore (restored, 0 for none) and before its log starts
// (firstLog, 0 for an empty log), or, with an empty log, up to the newest
// snapshot it knows of (newest, whose data may be unusable).
func findLogHole(restored, newest, firstLog uint64) logHole {
	switch {
	case firstLog > restored+1:
		return logHole{restored + 1, firstLog - 1}
	case firstLog == 0 && newest > restored:
		return logHole{restored + 1, newest}
	}
	return logHole{}
}

// fillHole returns the hole that remains after entries from..to were
// stored, or a snapshot up to to was installed (from 0).
func fillHole(h logHole, from, to uint64) logHole {
	if !h.active() || from > h.from || to < h.from {
		return h
	}
	if to >= h.to {
		return logHole{}
	}
	return logHole{to + 1, h.to}
}

// followerCommit returns the commit index a follower may adopt after a
// successful AppendEntries: the leader's commit, capped by the last entry
// this request proved matching (prevIndex + len(entries)). Capping by the
// node's own last index instead (as hashicorp/raft does) would commit stale
// entries past the verified prefix. It never lowers the commit index.
func followerCommit(current, leaderCommit, prevIndex uint64, numEntries int) uint64 {
	verified := prevIndex + uint64(numEntries)
	next := min(leaderCommit, verified)
	return max(current, next)
}

// checkPrev applies the consistency check of AppendEntries: the entry at
// prevIndex must exist with prevTerm. prevIndex 0 always matches.
func checkPrev(prevIndex, prevTerm uint64, termAt termLookup) bool {
	if prevIndex == 0 {
		return true
	}
	term, ok := termAt(prevIndex)
	return ok && term == prevTerm
}

// nextIndexAfterReject is where the leader resumes after a follower rejected
// an AppendEntries: one back, but no further than just past the follower's
// last entry, and never below 1.
func nextIndexAfterReject(nextIndex, followerLastLog uint64) uint64 {
	n := nextIndex - 1
	if followerLastLog+1 < n {
		n = followerLastLog + 1
	}
	if n < 1 || nextIndex == 0 {
		n = 1
	}
	return n
}

// quorumMatchIndex returns the highest index stored on a majority of the
// voters, given each voter's match index. The input is reordered.
func quorumMatchIndex(matches []uint64) uint64 {
	if len(matches) == 0 {
		return 0
	}
	// insertion sort: clusters are small
	for i := 1; i < len(matches); i++ {
		for j := i; j > 0 && matches[j] < matches[j-1]; j-- {
			matches[j], matches[j-1] = matches[j-1], matches[j]
		}
	}
	return matches[(len(matches)-1)/2]
}

// leaderCommit returns the leader's new commit index: the quorum match
// index, but only once it reaches an entry of the leader's own term
// (startIndex is the first index the leader appended; Raft §5.4.2). It never
// lowers the commit index.
func leaderCommit(current, quorumMatch, startIndex uint64) uint64 {
	if quorumMatch >= startIndex && quorumMatch > current {
		return quorumMatch
	}
	return current
}

// backoff returns how long to wait after failures consecutive failed RPCs:
// base doubled per failure after the first few, capped at limit.
func backoff(base uint64, failures, maxRound uint64, limit uint64) uint64 {
	power := min(failures, maxRound)
	if power > 2 {
		power -= 2
	} else {
		power = 0
	}
	d := base
	for ; power > 0; power-- {
		d *= 2
	}
	if limit > 0 && d > limit {
		d = limit
	}
	return d
}

// snapshotAlreadyApplied reports whether an InstallSnapshot ending at index
// brings nothing to a follower that has handed its FSM every committed entry
// up to dispatched. Committed prefixes are the same on every server, so the
// FSM already holds the snapshot's state; the follower answers success
// (it does hold everything up to index) and changes nothing. Restoring
// would lose the entries between index and dispatched from the FSM.
func snapshotAlreadyApplied(index, dispatched uint64) bool {
	return index <= dispatched
}
