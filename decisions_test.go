package raft

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/seed48a2b68f/raft/internal/nodeclock"
)

func threeVoters() Configuration {
	return Configuration{Servers: []Server{
		{Voter, "a", "addr-a"}, {Voter, "b", "addr-b"}, {Voter, "c", "addr-c"}, {Nonvoter, "n", "addr-n"},
	}}
}

func TestDecideVote(t *testing.T) {
	base := voteInput{currentTerm: 5, lastLogIndex: 10, lastLogTerm: 4, latest: threeVoters()}
	req := voteRequest{term: 6, candidateID: "b", candidateAddr: "addr-b", lastLogIndex: 10, lastLogTerm: 4}
	cases := []struct {
		name      string
		in        func(*voteInput)
		req       func(*voteRequest)
		grant     bool
		adoptTerm uint64
	}{
		{name: "up to date candidate in newer term", grant: true, adoptTerm: 6},
		{name: "stale term", req: func(r *voteRequest) { r.term = 4 }},
		{name: "same term, not yet voted", req: func(r *voteRequest) { r.term = 5 }, grant: true},
		{name: "candidate log term behind", req: func(r *voteRequest) { r.lastLogTerm = 3; r.lastLogIndex = 50 }, adoptTerm: 6},
		{name: "candidate log shorter in same term", req: func(r *voteRequest) { r.lastLogIndex = 9 }, adoptTerm: 6},
		{name: "candidate log newer term but shorter", req: func(r *voteRequest) { r.lastLogTerm = 5; r.lastLogIndex = 1 }, grant: true, adoptTerm: 6},
		{name: "already voted for another in this term",
			in: func(v *voteInput) { v.currentTerm = 6; v.lastVoteTerm = 6; v.lastVoteCandAddr = []byte("addr-c") }},
		{name: "already voted for this candidate",
			in:    func(v *voteInput) { v.currentTerm = 6; v.lastVoteTerm = 6; v.lastVoteCandAddr = []byte("addr-b") },
			grant: true},
		{name: "vote from an older term does not count",
			in:    func(v *voteInput) { v.lastVoteTerm = 5; v.lastVoteCandAddr = []byte("addr-c") },
			grant: true, adoptTerm: 6},
		{name: "known leader refuses and keeps its term",
			in: func(v *voteInput) { v.knownLeaderAddr = "addr-c" }},
		{name: "known leader yields to a leadership transfer",
			in: func(v *voteInput) { v.knownLeaderAddr = "addr-c" }, req: func(r *voteRequest) { r.leadershipTransfer = true },
			grant: true, adoptTerm: 6},
		{name: "candidate is the known leader", in: func(v *voteInput) { v.knownLeaderAddr = "addr-b" }, grant: true, adoptTerm: 6},
		// Within a heartbeat timeout of its start a voter refuses as if
		// the leader it may have acknowledged before restarting were live
		// (a read lease counts on it), except for a leadership transfer.
		{name: "voter just started refuses", in: func(v *voteInput) { v.starting = true }},
		{name: "voter just started yields to a leadership transfer",
			in: func(v *voteInput) { v.starting = true }, req: func(r *voteRequest) { r.leadershipTransfer = true },
			grant: true, adoptTerm: 6},
		// A candidate this voter does not know as a voter: refused without
		// the term when behind (a removed server), granted when up to date
		// (a promotion this voter has not received; found by fuzzy, seed 1898).
		{name: "unknown candidate with a log behind is refused and its term ignored",
			req: func(r *voteRequest) { r.candidateID = "z"; r.candidateAddr = "addr-z"; r.lastLogIndex = 9 }},
		{name: "unknown candidate with an up-to-date log is granted",
			req: func(r *voteRequest) { r.candidateID = "z"; r.candidateAddr = "addr-z" }, grant: true, adoptTerm: 6},
		{name: "non-voter candidate with a log behind is refused and its term ignored",
			req: func(r *voteRequest) { r.candidateID = "n"; r.candidateAddr = "addr-n"; r.lastLogTerm = 3 }},
		{name: "non-voter candidate with an up-to-date log is granted",
			req: func(r *voteRequest) { r.candidateID = "n"; r.candidateAddr = "addr-n"; r.lastLogIndex = 12 }, grant: true, adoptTerm: 6},
		// It may not have the entry that made it a voter yet (found by fuzzy, seed 416).
		// The voter is "a".
		{name: "voter missing from its own configuration still votes",
			in: func(v *voteInput) { v.latest = Configuration{Servers: threeVoters().Servers[1:]} }, grant: true, adoptTerm: 6},
		{name: "non-voter still votes",
			in: func(v *voteInput) {
				v.latest = threeVoters()
				v.latest.Servers[0].Suffrage = Nonvoter
			}, grant: true, adoptTerm: 6},
		{name: "empty configuration grants (joining node)", in: func(v *voteInput) { v.latest = Configuration{} }, grant: true, adoptTerm: 6},
		{name: "legacy candidate without ID", req: func(r *voteRequest) { r.candidateID = "" }, grant: true, adoptTerm: 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, rq := base, req
			if tc.in != nil {
				tc.in(&in)
			}
			if tc.req != nil {
				tc.req(&rq)
			}
			d := decideVote(in, rq)
			if d.grant != tc.grant || d.adoptTerm != tc.adoptTerm {
				t.Fatalf("decideVote = grant %v adopt %d (%s), want grant %v adopt %d",
					d.grant, d.adoptTerm, d.reason, tc.grant, tc.adoptTerm)
			}
		})
	}
}

func TestDecidePreVote(t *testing.T) {
	in := voteInput{currentTerm: 5, lastLogIndex: 10, lastLogTerm: 4, latest: threeVoters()}
	req := voteRequest{term: 6, candidateID: "b", candidateAddr: "addr-b", lastLogIndex: 10, lastLogTerm: 4}
	d := decidePreVote(in, req)
	if !d.grant || d.adoptTerm != 0 || d.replyTerm != 6 {
		t.Fatalf("pre-vote = %+v, want granted, no term change, reply term echoing 6", d)
	}
	// A voted-in-this-term voter still grants a pre-vote: nothing is cast.
	in.lastVoteTerm, in.lastVoteCandAddr = 6, []byte("addr-c")
	if d := decidePreVote(in, req); !d.grant {
		t.Fatalf("pre-vote refused because of a vote: %s", d.reason)
	}
	in.knownLeaderAddr = "addr-c"
	if d := decidePreVote(in, req); d.grant {
		t.Fatal("pre-vote granted while a leader is known")
	}
	in.knownLeaderAddr = ""
	req.lastLogIndex = 9
	if d := decidePreVote(in, req); d.grant {
		t.Fatal("pre-vote granted to a log that is behind")
	}
	req.lastLogIndex, req.term = 10, 4
	if d := decidePreVote(in, req); d.grant || d.replyTerm != 5 {
		t.Fatalf("stale pre-vote = %+v", d)
	}
}

func mapLookup(m map[uint64]uint64) termLookup {
	return func(i uint64) (uint64, bool) {
		t, ok := m[i]
		return t, ok
	}
}

func TestPlanAppend(t *testing.T) {
	log := map[uint64]uint64{1: 1, 2: 1, 3: 2, 4: 2}
	e := func(idx, term uint64) *Log { return &Log{Index: idx, Term: term} }
	// All new.
	p := planAppend([]*Log{e(5, 3), e(6, 3)}, 4, mapLookup(log), logHole{})
	if p.truncateFrom != 0 || len(p.newEntries) != 2 {
		t.Fatalf("new entries: %+v", p)
	}
	// Duplicates only: nothing to do (a delayed request must not truncate).
	p = planAppend([]*Log{e(2, 1), e(3, 2)}, 4, mapLookup(log), logHole{})
	if p.truncateFrom != 0 || len(p.newEntries) != 0 {
		t.Fatalf("duplicates: %+v", p)
	}
	// Conflict at 3: truncate from 3, store 3 and 4 onwards.
	p = planAppend([]*Log{e(2, 1), e(3, 3), e(4, 3), e(5, 3)}, 4, mapLookup(log), logHole{})
	if p.truncateFrom != 3 || len(p.newEntries) != 3 || p.newEntries[0].Index != 3 {
		t.Fatalf("conflict: %+v", p)
	}
}

// TestPlanAppendAcrossHole: entries that fall into a known hole are stored
// without truncating the (possibly acknowledged) entries after it; a real
// conflict after the hole still truncates.
func TestPlanAppendAcrossHole(t *testing.T) {
	log := map[uint64]uint64{10: 2, 11: 2, 12: 3}
	e := func(idx, term uint64) *Log { return &Log{Index: idx, Term: term} }
	hole := logHole{4, 9}
	p := planAppend([]*Log{e(4, 1), e(5, 1), e(6, 2)}, 12, mapLookup(log), hole)
	if p.truncateFrom != 0 || len(p.newEntries) != 3 {
		t.Fatalf("filling the hole: %+v", p)
	}
	p = planAppend([]*Log{e(8, 2), e(9, 2), e(10, 2), e(11, 2)}, 12, mapLookup(log), hole)
	if p.truncateFrom != 0 || len(p.newEntries) != 4 {
		t.Fatalf("filling up to matching entries: %+v", p)
	}
	p = planAppend([]*Log{e(9, 2), e(10, 2), e(11, 4), e(12, 4)}, 12, mapLookup(log), hole)
	if p.truncateFrom != 11 || len(p.newEntries) != 4 {
		t.Fatalf("conflict after the hole: %+v", p)
	}
	// Without the hole the same request would have truncated at 4.
	if p := planAppend([]*Log{e(4, 1)}, 12, mapLookup(log), logHole{}); p.truncateFrom != 4 {
		t.Fatalf("no hole: %+v", p)
	}
}

func TestFindAndFillLogHole(t *testing.T) {
	cases := []struct {
		restored, newest, first uint64
		want                    logHole
	}{
		{0, 0, 0, logHole{}},           // a new node
		{0, 0, 1, logHole{}},           // a log from the start
		{100, 100, 90, logHole{}},      // snapshot and log overlap
		{100, 100, 101, logHole{}},     // log right after the snapshot
		{50, 100, 91, logHole{51, 90}}, // newest corrupt, older ends before the log
		{0, 100, 91, logHole{1, 90}},   // no snapshot restores
		{50, 100, 0, logHole{51, 100}}, // empty log after a corrupt newest snapshot
		{100, 100, 0, logHole{}},       // empty log, snapshot fine
		{50, 100, 51, logHole{}},       // the log connects to the older snapshot
	}
	for _, c := range cases {
		if got := findLogHole(c.restored, c.newest, c.first); got != c.want {
			t.Errorf("findLogHole(%d, %d, %d) = %v; want %v", c.restored, c.newest, c.first, got, c.want)
		}
	}
	h := logHole{51, 90}
	if got := fillHole(h, 51, 60); got != (logHole{61, 90}) {
		t.Errorf("partial fill = %v", got)
	}
	if got := fillHole(h, 52, 60); got != h {
		t.Errorf("a fill that does not start at the hole must not move it: %v", got)
	}
	if got := fillHole(h, 40, 95); got != (logHole{}) {
		t.Errorf("covering fill = %v", got)
	}
	if got := fillHole(h, 0, 70); got != (logHole{71, 90}) {
		t.Errorf("snapshot inside the hole = %v", got)
	}
}

func TestFollowerCommitCapsAtVerifiedPrefix(t *testing.T) {
	// The follower holds a stale suffix beyond the request; the leader's
	// commit index must not commit it (hashicorp/raft caps by lastIndex).
	if got := followerCommit(2, 100, 4, 0); got != 4 {
		t.Fatalf("followerCommit = %d, want 4", got)
	}
	if got := followerCommit(2, 100, 4, 64); got != 68 {
		t.Fatalf("followerCommit = %d, want 68", got)
	}
	if got := followerCommit(10, 0, 0, 0); got != 10 {
		t.Fatalf("commit index went down: %d", got)
	}
	if got := followerCommit(10, 5, 20, 3); got != 10 {
		t.Fatalf("commit index went down: %d", got)
	}
}

func TestCheckPrev(t *testing.T) {
	log := map[uint64]uint64{1: 1, 2: 2}
	if !checkPrev(0, 0, mapLookup(log)) || !checkPrev(2, 2, mapLookup(log)) {
		t.Fatal("matching prev refused")
	}
	if checkPrev(2, 1, mapLookup(log)) || checkPrev(3, 2, mapLookup(log)) {
		t.Fatal("mismatching prev accepted")
	}
}

func TestNextIndexAfterReject(t *testing.T) {
	cases := []struct{ next, lastLog, want uint64 }{
		{10, 100, 9}, {10, 3, 4}, {1, 0, 1}, {2, 0, 1}, {0, 0, 1},
	}
	for _, c := range cases {
		if got := nextIndexAfterReject(c.next, c.lastLog); got != c.want {
			t.Errorf("nextIndexAfterReject(%d, %d) = %d, want %d", c.next, c.lastLog, got, c.want)
		}
	}
}

func TestQuorumMatchIndexAndCurrentTermRule(t *testing.T) {
	cases := []struct {
		m    []uint64
		want uint64
	}{
		{[]uint64{5}, 5}, {[]uint64{1, 5, 7}, 5}, {[]uint64{7, 1, 5}, 5}, {[]uint64{1, 2, 5, 7}, 2}, {[]uint64{9, 9, 1, 1, 1}, 1},
	}
	for _, c := range cases {
		if got := quorumMatchIndex(append([]uint64(nil), c.m...)); got != c.want {
			t.Errorf("quorumMatchIndex(%v) = %d, want %d", c.m, got, c.want)
		}
	}
	// An entry of an older term replicated on a majority is not committed
	// by counting replicas (Raft §5.4.2, Figure 8).
	if got := leaderCommit(3, 5, 6); got != 3 {
		t.Fatalf("committed an older-term entry: %d", got)
	}
	if got := leaderCommit(3, 6, 6); got != 6 {
		t.Fatalf("leaderCommit = %d, want 6", got)
	}
}

func TestKnownBug05_HeartbeatBackoffCappedAtHalfHeartbeatTimeout(t *testing.T) {
	hb := 1000 * time.Millisecond
	for f := uint64(0); f < 40; f++ {
		d := time.Duration(backoff(uint64(failureWait), f, maxFailureScale, uint64(hb/2)))
		if d > hb/2 {
			t.Fatalf("after %d failures the heartbeat backs off %v, above HeartbeatTimeout/2", f, d)
		}
	}
	if d := time.Duration(backoff(uint64(failureWait), 100, maxFailureScale, 0)); d != failureWait<<10 {
		t.Fatalf("uncapped replication backoff = %v, want %v", d, failureWait<<10)
	}
	if d := time.Duration(backoff(uint64(failureWait), 1, maxFailureScale, 0)); d != failureWait {
		t.Fatalf("first backoff = %v", d)
	}
}

func TestKnownBug09_CommitmentIgnoresOldReplicationSession(t *testing.T) {
	ch := make(chan struct{}, 1)
	c := newCommitment(ch, Configuration{Servers: []Server{{Voter, "a", "a"}, {Voter, "b", "b"}, {Voter, "c", "c"}}}, 1)
	c.setSession("b", 1)
	c.setSession("c", 2)
	c.match("a", 0, 10)
	// b was removed and re-added: its new session is 3. A late report from
	// session 1 claims index 10 and must not commit anything.
	c.setSession("b", 3)
	c.match("b", 1, 10)
	if got := c.getCommitIndex(); got != 0 {
		t.Fatalf("stale session moved the commit index to %d", got)
	}
	c.match("b", 3, 4)
	if got := c.getCommitIndex(); got != 4 {
		t.Fatalf("commit index = %d, want 4", got)
	}
}

func TestKnownBug10_NextIndexStaysAboveMatchIndex(t *testing.T) {
	ls := &leaderState{commitment: newCommitment(make(chan struct{}, 1), threeVoters(), 1)}
	s := newFollowerReplication(&Raft{clock: nodeclock.System{}}, ls, Server{Voter, "b", "addr-b"}, 11, 1)
	ls.commitment.setSession("b", 1)
	s.matched(10)
	// A stale rejection (for example a reply to an old probe) reports a
	// longer log than the match index: nextIndex must not drop below it.
	s.nextIndex = 11
	s.rejected(&AppendEntriesResponse{LastLog: 12, NoRetryBackoff: true})
	if s.nextIndex <= s.getMatchIndex() {
		t.Fatalf("nextIndex %d <= matchIndex %d", s.nextIndex, s.getMatchIndex())
	}
	s.matched(5)
	if s.getMatchIndex() != 10 {
		t.Fatalf("matchIndex went down to %d", s.getMatchIndex())
	}
}

func TestNextConfiguration(t *testing.T) {
	base := Configuration{Servers: []Server{{Voter, "a", "1"}, {Nonvoter, "b", "2"}, {Staging, "c", "3"}}}
	cases := []struct {
		name string
		req  configurationChangeRequest
		want []Server
	}{
		{"add new voter", configurationChangeRequest{command: AddVoter, serverID: "d", serverAddress: "4"},
			[]Server{{Voter, "a", "1"}, {Nonvoter, "b", "2"}, {Staging, "c", "3"}, {Voter, "d", "4"}}},
		{"add voter updates address", configurationChangeRequest{command: AddVoter, serverID: "a", serverAddress: "9"},
			[]Server{{Voter, "a", "9"}, {Nonvoter, "b", "2"}, {Staging, "c", "3"}}},
		{"add voter promotes nonvoter at once", configurationChangeRequest{command: AddVoter, serverID: "b", serverAddress: "2"},
			[]Server{{Voter, "a", "1"}, {Voter, "b", "2"}, {Staging, "c", "3"}}},
		{"add nonvoter never demotes", configurationChangeRequest{command: AddNonvoter, serverID: "a", serverAddress: "8"},
			[]Server{{Voter, "a", "8"}, {Nonvoter, "b", "2"}, {Staging, "c", "3"}}},
		{"add nonvoter new", configurationChangeRequest{command: AddNonvoter, serverID: "e", serverAddress: "5"},
			[]Server{{Voter, "a", "1"}, {Nonvoter, "b", "2"}, {Staging, "c", "3"}, {Nonvoter, "e", "5"}}},
		{"demote", configurationChangeRequest{command: DemoteVoter, serverID: "c"},
			[]Server{{Voter, "a", "1"}, {Nonvoter, "b", "2"}, {Nonvoter, "c", "3"}}},
		{"demote absent does nothing", configurationChangeRequest{command: DemoteVoter, serverID: "z"},
			[]Server{{Voter, "a", "1"}, {Nonvoter, "b", "2"}, {Staging, "c", "3"}}},
		{"remove", configurationChangeRequest{command: RemoveServer, serverID: "b"},
			[]Server{{Voter, "a", "1"}, {Staging, "c", "3"}}},
		{"promote staging", configurationChangeRequest{command: Promote, serverID: "c"},
			[]Server{{Voter, "a", "1"}, {Nonvoter, "b", "2"}, {Voter, "c", "3"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := nextConfiguration(base, 1, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Servers) != len(tc.want) {
				t.Fatalf("got %v, want %v", got.Servers, tc.want)
			}
			for i := range got.Servers {
				if got.Servers[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got.Servers, tc.want)
				}
			}
		})
	}
	if len(base.Servers) != 3 || base.Servers[0].Address != "1" {
		t.Fatalf("nextConfiguration modified its input: %v", base)
	}
	if _, err := nextConfiguration(base, 5, configurationChangeRequest{command: AddVoter, serverID: "d", serverAddress: "4", prevIndex: 4}); err == nil ||
		err.Error() != "configuration changed since 4 (latest is 5)" {
		t.Fatalf("prevIndex mismatch error = %v", err)
	}
	if _, err := nextConfiguration(base, 5, configurationChangeRequest{command: RemoveServer, serverID: "a"}); err == nil {
		t.Fatal("removing the last voter was allowed")
	}
	if _, err := nextConfiguration(base, 5, configurationChangeRequest{command: AddVoter, serverID: "d", serverAddress: "1"}); err == nil {
		t.Fatal("duplicate address was allowed")
	}
}

func TestCheckConfiguration(t *testing.T) {
	bad := []Configuration{
		{},
		{Servers: []Server{{Voter, "", "x"}}},
		{Servers: []Server{{Voter, "a", ""}}},
		{Servers: []Server{{Voter, "a", "x"}, {Voter, "a", "y"}}},
		{Servers: []Server{{Voter, "a", "x"}, {Voter, "b", "x"}}},
		{Servers: []Server{{Nonvoter, "a", "x"}}},
	}
	for _, c := range bad {
		if checkConfiguration(c) == nil {
			t.Errorf("checkConfiguration(%v) accepted a bad configuration", c)
		}
	}
	if err := checkConfiguration(threeVoters()); err != nil {
		t.Fatal(err)
	}
}

func TestEncodeConfigurationGolden(t *testing.T) {
	// reference §2.13: {Voter a b},{Nonvoter c d}.
	c := Configuration{Servers: []Server{{Voter, "a", "b"}, {Nonvoter, "c", "d"}}}
	const want = "81a7536572766572739283a741646472657373a162a24944a161a853756666726167650083a741646472657373a164a24944a163a8537566667261676501"
	got := hex.EncodeToString(EncodeConfiguration(c))
	if got != want {
		t.Fatalf("EncodeConfiguration = %s\nwant %s", got, want)
	}
	back := DecodeConfiguration(EncodeConfiguration(c))
	if len(back.Servers) != 2 || back.Servers[1] != c.Servers[1] {
		t.Fatalf("round trip = %v", back)
	}
	if _, err := decodeConfiguration([]byte{0xc1, 0xff}); err == nil {
		t.Fatal("garbage decoded without error")
	}
	if _, err := decodeConfiguration(nil); err == nil {
		t.Fatal("empty bytes decoded without error")
	}
	peers := hex.EncodeToString(encodePeers(Configuration{Servers: []Server{{Voter, "x", "10.0.0.1:8300"}, {Nonvoter, "y", "z"}}}, &InmemTransport{}))
	if peers != "91ad31302e302e302e313a38333030" {
		t.Fatalf("encodePeers = %s", peers)
	}
}

func TestLogTail(t *testing.T) {
	tl := newLogTail(4)
	mk := func(from, to, term uint64) []*Log {
		var out []*Log
		for i := from; i <= to; i++ {
			out = append(out, &Log{Index: i, Term: term})
		}
		return out
	}
	tl.appendEntries(mk(1, 5, 1))
	if l, ok := tl.get(3); !ok || l.Index != 3 {
		t.Fatal("get(3) failed")
	}
	// Replace a suffix.
	tl.appendEntries(mk(4, 6, 2))
	if l, _ := tl.get(4); l.Term != 2 {
		t.Fatal("suffix not replaced")
	}
	if tl.lastIndex() != 6 {
		t.Fatalf("lastIndex = %d", tl.lastIndex())
	}
	tl.truncateFrom(5)
	if _, ok := tl.get(5); ok || tl.lastIndex() != 4 {
		t.Fatal("truncate failed")
	}
	// A gap restarts the tail.
	tl.appendEntries(mk(10, 11, 3))
	if _, ok := tl.get(4); ok {
		t.Fatal("entry before a gap kept")
	}
	// Trimming keeps the newest entries.
	tl.appendEntries(mk(12, 30, 3))
	if _, ok := tl.get(30); !ok {
		t.Fatal("newest entry trimmed")
	}
	if _, ok := tl.get(10); ok {
		t.Fatal("tail not trimmed")
	}
}

func TestLogTailBoundsBytesButKeepsTheNewBatch(t *testing.T) {
	tl := newLogTail(1024)
	tl.maxBytes = 100
	big := func(idx uint64) *Log { return &Log{Index: idx, Term: 1, Data: make([]byte, 30)} }
	for i := uint64(1); i <= 10; i++ {
		tl.appendEntries([]*Log{big(i)})
		if tl.bytes > tl.maxBytes {
			t.Fatalf("after entry %d the tail holds %d bytes, budget %d", i, tl.bytes, tl.maxBytes)
		}
		if _, ok := tl.get(i); !ok {
			t.Fatalf("entry %d just appended is gone", i)
		}
	}
	if _, ok := tl.get(1); ok {
		t.Fatal("oldest entry kept beyond the byte budget")
	}
	// A batch larger than the whole budget is kept entire: it may not be in
	// the store yet.
	batch := []*Log{big(11), big(12), big(13), big(14), big(15)}
	tl.appendEntries(batch)
	for i := uint64(11); i <= 15; i++ {
		if _, ok := tl.get(i); !ok {
			t.Fatalf("entry %d of the new batch dropped", i)
		}
	}
	if tl.bytes != dataBytes(tl.entries) {
		t.Fatalf("byte count %d, entries hold %d", tl.bytes, dataBytes(tl.entries))
	}
	tl.truncateFrom(13)
	if tl.bytes != 60 {
		t.Fatalf("after truncation %d bytes, want 60", tl.bytes)
	}
}

func TestApplyQueueBoundsAndTimeout(t *testing.T) {
	q := newApplyQueue(2)
	shutdown := make(chan struct{})
	f := func() *logFuture { lf := &logFuture{}; lf.init(); return lf }
	if err := q.push(f(), 0, shutdown); err != nil {
		t.Fatal(err)
	}
	if err := q.push(f(), 0, shutdown); err != nil {
		t.Fatal(err)
	}
	if err := q.push(f(), time.Millisecond, shutdown); err != ErrEnqueueTimeout {
		t.Fatalf("push on a full queue = %v, want ErrEnqueueTimeout", err)
	}
	if got := q.take(1); len(got) != 1 {
		t.Fatalf("take(1) = %d items", len(got))
	}
	if err := q.push(f(), time.Millisecond, shutdown); err != nil {
		t.Fatalf("push after take = %v", err)
	}
	close(shutdown)
	if err := q.push(f(), 0, shutdown); err != ErrRaftShutdown {
		t.Fatalf("push after shutdown = %v", err)
	}
}

func TestElectionTallyCountsEachVoterOnce(t *testing.T) {
	tally := newElectionTally(threeVoters()) // three voters and a non-voter
	tally.grant("a")
	tally.grant("a")
	if tally.won() {
		t.Fatal("one voter counted twice made a quorum")
	}
	tally.grant("b")
	if !tally.won() {
		t.Fatal("two of three voters is a quorum")
	}
}

func TestHeartbeatRecheck(t *testing.T) {
	const hb = time.Second
	cases := []struct {
		since, timeout time.Duration
		wait           time.Duration
		expired        bool
	}{
		// Heard 300ms ago with a 1.5s timeout: check again 1.5s after that
		// contact, not 1.5s from now.
		{since: 300 * time.Millisecond, timeout: 1500 * time.Millisecond, wait: 1200 * time.Millisecond},
		{since: 0, timeout: hb, wait: hb},
		{since: hb - 1, timeout: hb, wait: 1},
		{since: hb, timeout: 1700 * time.Millisecond, wait: 1700 * time.Millisecond, expired: true},
		{since: 5 * hb, timeout: hb, wait: hb, expired: true},
	}
	for _, c := range cases {
		wait, expired := heartbeatRecheck(c.since, hb, c.timeout)
		if wait != c.wait || expired != c.expired {
			t.Errorf("heartbeatRecheck(%v, %v, %v) = %v, %v; want %v, %v", c.since, hb, c.timeout, wait, expired, c.wait, c.expired)
		}
		if wait <= 0 {
			t.Errorf("heartbeatRecheck(%v, %v, %v) waits %v", c.since, hb, c.timeout, wait)
		}
	}
}
