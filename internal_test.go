package raft

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

// nopFSM counts applied commands.
type nopFSM struct{ n int }

func (f *nopFSM) Apply(*Log) interface{}         { f.n++; return f.n }
func (f *nopFSM) Snapshot() (FSMSnapshot, error) { return nil, errors.New("no snapshots") }
func (f *nopFSM) Restore(rc io.ReadCloser) error { return rc.Close() }

// newStoppedRaft builds a node without its goroutines: handlers can be
// called directly from the test goroutine, as the main loop would.
// The node is "a" in a configuration of a, b, c, with entries 2..last of
// term 1 after the bootstrap entry.
func newStoppedRaft(t *testing.T, last uint64) (*Raft, *InmemStore) {
	t.Helper()
	return newStoppedRaftWith(t, last, nil)
}

// newStoppedRaftWith is newStoppedRaft with the node's log store wrapped
// by wrap (when not nil).
func newStoppedRaftWith(t *testing.T, last uint64, wrap func(LogStore) LogStore) (*Raft, *InmemStore) {
	t.Helper()
	conf := DefaultConfig()
	conf.LocalID = "a"
	conf.skipStartup = true
	conf.Logger = hclog.NewNullLogger()
	store := NewInmemStore()
	snaps := NewInmemSnapshotStore()
	_, trans := NewInmemTransport("addr-a")
	c := Configuration{Servers: []Server{{Voter, "a", "addr-a"}, {Voter, "b", "addr-b"}, {Voter, "c", "addr-c"}}}
	if err := BootstrapCluster(conf, store, store, snaps, trans, c); err != nil {
		t.Fatal(err)
	}
	for i := uint64(2); i <= last; i++ {
		if err := store.StoreLog(&Log{Index: i, Term: 1, Type: LogCommand, Data: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	var logs LogStore = store
	if wrap != nil {
		logs = wrap(store)
	}
	r, err := NewRaft(conf, &nopFSM{}, logs, store, snaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	// A node that has run for a while: past its voting quiet period.
	r.started = r.started.Add(-time.Hour)
	t.Cleanup(func() { r.Shutdown() })
	return r, store
}

// call runs one RPC through the main loop's dispatcher.
func call(r *Raft, cmd interface{}, data []byte) RPCResponse {
	ch := make(chan RPCResponse, 1)
	rpc := RPC{Command: cmd, RespChan: ch}
	if data != nil {
		rpc.Reader = bytes.NewReader(data)
	}
	r.processRPC(rpc)
	return <-ch
}

func header(id string) RPCHeader {
	return RPCHeader{ProtocolVersion: 3, ID: []byte(id), Addr: []byte("addr-" + id)}
}

func TestKnownBug01_HeartbeatOffTheLoopNeverChangesTerm(t *testing.T) {
	r, _ := newStoppedRaft(t, 3)
	if r.getCurrentTerm() != 1 {
		t.Fatalf("term = %d", r.getCurrentTerm())
	}
	// A heartbeat from a newer term is not answered off the loop...
	hb := &AppendEntriesRequest{RPCHeader: header("b"), Term: 5, Leader: []byte("addr-b")}
	ch := make(chan RPCResponse, 1)
	r.processHeartbeat(RPC{Command: hb, RespChan: ch})
	if r.getCurrentTerm() != 1 {
		t.Fatalf("the fast path changed the term to %d", r.getCurrentTerm())
	}
	select {
	case resp := <-ch:
		t.Fatalf("the fast path answered a newer-term heartbeat: %+v", resp)
	default:
	}
	// ...it is queued for the main loop, which adopts the term.
	item, _, ok := r.ctl.next()
	rpc, isRPC := item.(RPC)
	if !ok || !isRPC {
		t.Fatalf("heartbeat was not forwarded to the main loop: %v %T", ok, item)
	}
	r.processRPC(rpc)
	resp := <-ch
	if !resp.Response.(*AppendEntriesResponse).Success || r.getCurrentTerm() != 5 {
		t.Fatalf("main loop: %+v, term %d", resp, r.getCurrentTerm())
	}
	// A heartbeat of the current term is answered on the fast path.
	hb = &AppendEntriesRequest{RPCHeader: header("b"), Term: 5, Leader: []byte("addr-b")}
	r.processHeartbeat(RPC{Command: hb, RespChan: ch})
	select {
	case resp := <-ch:
		if !resp.Response.(*AppendEntriesResponse).Success {
			t.Fatalf("current-term heartbeat refused: %+v", resp)
		}
	default:
		t.Fatal("current-term heartbeat not answered on the fast path")
	}
	// A candidate never answers on the fast path.
	r.transition(Candidate)
	if r.answerHeartbeat(RPC{Command: hb, RespChan: ch}, hb) {
		t.Fatal("a candidate answered a heartbeat off the loop")
	}
}

func TestKnownBug12_InstallSnapshotDiscardsConflictingLog(t *testing.T) {
	install := func(t *testing.T, r *Raft, index, term uint64) {
		t.Helper()
		go r.runFSM()
		req := &InstallSnapshotRequest{
			RPCHeader: header("b"), SnapshotVersion: 1, Term: 2, Leader: []byte("addr-b"),
			LastLogIndex: index, LastLogTerm: term, Size: 3,
			Configuration: EncodeConfiguration(Configuration{Servers: []Server{
				{Voter, "a", "addr-a"}, {Voter, "b", "addr-b"}, {Voter, "c", "addr-c"}}}),
			ConfigurationIndex: 1,
		}
		resp := call(r, req, []byte("abc"))
		if resp.Error != nil || !resp.Response.(*InstallSnapshotResponse).Success {
			t.Fatalf("install failed: %+v", resp)
		}
	}
	t.Run("conflict clears the log", func(t *testing.T) {
		r, store := newStoppedRaft(t, 10)
		install(t, r, 5, 2) // entry 5 has term 1 here
		if last, _ := store.LastIndex(); last != 0 {
			t.Fatalf("conflicting entries kept: store last index %d", last)
		}
		if got := r.LastIndex(); got != 5 {
			t.Fatalf("LastIndex = %d, want 5", got)
		}
		// The next AppendEntries after the snapshot is accepted.
		ae := &AppendEntriesRequest{RPCHeader: header("b"), Term: 2, PrevLogEntry: 5, PrevLogTerm: 2,
			Entries: []*Log{{Index: 6, Term: 2, Type: LogCommand}}, LeaderCommitIndex: 6}
		if resp := call(r, ae, nil); !resp.Response.(*AppendEntriesResponse).Success {
			t.Fatalf("append after snapshot refused: %+v", resp.Response)
		}
	})
	t.Run("matching entry keeps the rest", func(t *testing.T) {
		r, store := newStoppedRaft(t, 10)
		install(t, r, 5, 1)
		if last, _ := store.LastIndex(); last != 10 {
			t.Fatalf("store last index %d, want 10", last)
		}
		if first, _ := store.FirstIndex(); first != 6 {
			t.Fatalf("store first index %d, want 6", first)
		}
		if got := r.LastIndex(); got != 10 {
			t.Fatalf("LastIndex = %d, want 10", got)
		}
	})
}

func TestKnownBug16_MembershipChangeWaitsForCommittedEntryOfTerm(t *testing.T) {
	r, _ := newStoppedRaft(t, 3)
	r.leaderState = &leaderState{startIndex: 10}
	r.setCommitIndex(9)
	if r.configurationChangeChIfStable() != nil {
		t.Fatal("membership change accepted before an entry of the leader's term committed")
	}
	r.setCommitIndex(10)
	c := r.configurations
	c.committed, c.committedIndex = c.latest, c.latestIndex
	r.setConfigurations(c)
	if r.configurationChangeChIfStable() == nil {
		t.Fatal("membership change refused once stable")
	}
	c.latestIndex++
	r.setConfigurations(c)
	if r.configurationChangeChIfStable() != nil {
		t.Fatal("second membership change accepted while one is uncommitted")
	}

	// A joint configuration, even committed, holds every other change
	// until the final one is written and commits; so does a
	// ChangeConfiguration waiting for its capability probe.
	c.committedIndex = c.latestIndex
	c.latest = Configuration{Servers: []Server{{JointOutgoing, "a", "a"}, {JointIncoming, "b", "b"}}}
	c.committed = c.latest
	r.setConfigurations(c)
	if r.configurationChangeChIfStable() != nil {
		t.Fatal("membership change accepted while the configuration is joint")
	}
	c.latest, c.committed = Configuration{Servers: []Server{{Voter, "a", "a"}}}, Configuration{Servers: []Server{{Voter, "a", "a"}}}
	r.setConfigurations(c)
	r.leaderState.jointProbe = &configurationChangeFuture{}
	if r.configurationChangeChIfStable() != nil {
		t.Fatal("membership change accepted while a joint change waits for its probe")
	}
	r.leaderState.jointProbe = nil
	if r.configurationChangeChIfStable() == nil {
		t.Fatal("membership change refused once stable again")
	}
}

func TestFollowerDoesNotCommitStaleSuffix(t *testing.T) {
	// Entries 2..10 are from term 1 and may be stale; the leader proves
	// only the prefix up to 3 and says its commit index is 8.
	r, _ := newStoppedRaft(t, 10)
	ae := &AppendEntriesRequest{RPCHeader: header("b"), Term: 2, PrevLogEntry: 3, PrevLogTerm: 1,
		Entries: []*Log{}, LeaderCommitIndex: 8}
	if resp := call(r, ae, nil); !resp.Response.(*AppendEntriesResponse).Success {
		t.Fatalf("append refused: %+v", resp.Response)
	}
	if got := r.getCommitIndex(); got != 3 {
		t.Fatalf("commit index = %d, want 3 (the verified prefix)", got)
	}
}

type junkRequest struct{ RPCHeader }

func (j *junkRequest) GetRPCHeader() RPCHeader { return j.RPCHeader }

func TestBadInputGetsErrorsNotPanics(t *testing.T) {
	cfgEntry := func(data []byte) *Log { return &Log{Index: 11, Term: 2, Type: LogConfiguration, Data: data} }
	cases := []struct {
		name string
		cmd  interface{}
		data []byte
		want string
	}{
		{"no header", "junk", nil, "RPC does not have a header"},
		{"old protocol", &AppendEntriesRequest{RPCHeader: RPCHeader{ProtocolVersion: 1}, Term: 2}, nil,
			"operation not supported with current protocol version"},
		{"unknown command", &junkRequest{header("b")}, nil, "unexpected command"},
		{"unknown log type", &AppendEntriesRequest{RPCHeader: header("b"), Term: 2, PrevLogEntry: 10, PrevLogTerm: 1,
			Entries: []*Log{{Index: 11, Term: 2, Type: LogType(9)}}}, nil, "unknown log type 9"},
		{"undecodable configuration entry", &AppendEntriesRequest{RPCHeader: header("b"), Term: 2, PrevLogEntry: 10, PrevLogTerm: 1,
			Entries: []*Log{cfgEntry([]byte{0xc1, 0x00})}}, nil, "failed to decode configuration"},
		{"empty configuration entry", &AppendEntriesRequest{RPCHeader: header("b"), Term: 2, PrevLogEntry: 10, PrevLogTerm: 1,
			Entries: []*Log{cfgEntry(nil)}}, nil, "empty configuration"},
		{"nil entry", &AppendEntriesRequest{RPCHeader: header("b"), Term: 2, PrevLogEntry: 10, PrevLogTerm: 1,
			Entries: []*Log{nil}}, nil, "is nil"},
		{"gap in entries", &AppendEntriesRequest{RPCHeader: header("b"), Term: 2, PrevLogEntry: 10, PrevLogTerm: 1,
			Entries: []*Log{{Index: 12, Term: 2}}}, nil, "want 11"},
		{"entry term above leader term", &AppendEntriesRequest{RPCHeader: header("b"), Term: 2, PrevLogEntry: 10, PrevLogTerm: 1,
			Entries: []*Log{{Index: 11, Term: 7}}}, nil, "above the leader's term"},
		{"bad snapshot configuration", &InstallSnapshotRequest{RPCHeader: header("b"), SnapshotVersion: 1, Term: 2,
			LastLogIndex: 20, LastLogTerm: 2, Configuration: []byte{0x92, 0xff}, Size: 1}, []byte("x"), "failed to decode configuration"},
		{"empty snapshot configuration", &InstallSnapshotRequest{RPCHeader: header("b"), SnapshotVersion: 1, Term: 2,
			LastLogIndex: 20, LastLogTerm: 2, Size: 1}, []byte("x"), "empty configuration"},
		{"unknown snapshot version", &InstallSnapshotRequest{RPCHeader: header("b"), SnapshotVersion: 7, Term: 2, Size: 1},
			[]byte("x"), "unsupported snapshot version 7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, store := newStoppedRaft(t, 10)
			resp := call(r, tc.cmd, tc.data)
			if resp.Error == nil || !strings.Contains(resp.Error.Error(), tc.want) {
				t.Fatalf("error = %v, want one containing %q", resp.Error, tc.want)
			}
			if last, _ := store.LastIndex(); last != 10 {
				t.Fatalf("bad input changed the log: last index %d", last)
			}
		})
	}
}

func TestAppendEntriesNeverOverwritesCommitted(t *testing.T) {
	r, store := newStoppedRaft(t, 10)
	r.setCommitIndex(8)
	ae := &AppendEntriesRequest{RPCHeader: header("b"), Term: 2, PrevLogEntry: 4, PrevLogTerm: 1,
		Entries: []*Log{{Index: 5, Term: 2, Type: LogCommand}}}
	resp := call(r, ae, nil)
	if resp.Error == nil || resp.Response.(*AppendEntriesResponse).Success {
		t.Fatalf("overwrite of a committed entry accepted: %+v", resp)
	}
	var l Log
	if err := store.GetLog(5, &l); err != nil || l.Term != 1 {
		t.Fatalf("committed entry 5 changed: %+v %v", l, err)
	}
}

// verifyBeforeFirstCommit starts a VerifyLeader (read false) or ReadIndex
// (read true) round on a single-voter leader of a term starting at index 10
// whose commit index is still 9, checks that it waits, then commits index
// 10 and returns the round's future.
func verifyBeforeFirstCommit(t *testing.T, read bool) *verifyFuture {
	t.Helper()
	r, _ := newStoppedRaft(t, 3)
	ls := &leaderState{startIndex: 10, replState: map[ServerID]*followerReplication{}}
	r.leaderState = ls
	r.setCommitIndex(9)
	// A single voter: only the first commit of the term holds it back.
	c := r.configurations
	c.latest = Configuration{Servers: []Server{{Voter, "a", "addr-a"}}}
	r.setConfigurations(c)
	f := &verifyFuture{read: read}
	f.init()
	r.verifyLeader(f)
	if f.responded.Load() || len(ls.deferredVerifies) != 1 {
		t.Fatal("the round went ahead before the leader's first commit")
	}
	ls.commitCh = make(chan struct{}, 1)
	ls.commitment = newCommitment(ls.commitCh, c.latest, 10)
	ls.commitment.match("a", 0, 10)
	r.leaderCommit()
	return f
}

func TestKnownBug20_VerifyLeaderWaitsForFirstCommitOfTerm(t *testing.T) {
	if err := verifyBeforeFirstCommit(t, false).Error(); err != nil {
		t.Fatalf("VerifyLeader after the first commit = %v", err)
	}
}

// Granting a pre-vote changes nothing: not the term, not the vote, and not
// the time of last leader contact (hashicorp #609).
func TestPreVoteGrantChangesNothing(t *testing.T) {
	r, store := newStoppedRaft(t, 3)
	req := &RequestPreVoteRequest{RPCHeader: header("b"), Term: 2, LastLogIndex: 3, LastLogTerm: 1}
	resp := call(r, req, nil)
	if resp.Error != nil || !resp.Response.(*RequestPreVoteResponse).Granted {
		t.Fatalf("pre-vote = %+v", resp)
	}
	if !r.LastContact().IsZero() {
		t.Fatal("granting a pre-vote refreshed leader contact")
	}
	if r.getCurrentTerm() != 1 {
		t.Fatalf("term = %d", r.getCurrentTerm())
	}
	if _, err := store.Get(keyLastVoteCand); err == nil {
		t.Fatal("a pre-vote was recorded as a vote")
	}
}

// A voter refuses other candidates while it has heard from its leader within
// a heartbeat timeout, and no longer: the first candidate after a leader
// failure must not be refused by a voter whose own timer has not fired yet
// (it would wait out an election timeout; Raft thesis §4.2.3).
func TestVoteCountsLeaderLiveOnlyWithinHeartbeatTimeout(t *testing.T) {
	r, _ := newStoppedRaft(t, 3)
	r.setLeader("addr-b", "b")
	r.setLastContact()
	req := voteRequest{term: 2, candidateID: "c", candidateAddr: "addr-c", lastLogIndex: 3, lastLogTerm: 1}
	in, err := r.voteInputFor()
	if err != nil {
		t.Fatal(err)
	}
	if in.knownLeaderAddr != "addr-b" || decidePreVote(in, req).grant {
		t.Fatalf("leader heard from just now: known leader %q, pre-vote %+v", in.knownLeaderAddr, decidePreVote(in, req))
	}
	r.lastContactLock.Lock()
	r.lastContact = time.Now().Add(-r.config().HeartbeatTimeout)
	r.lastContactLock.Unlock()
	if in, err = r.voteInputFor(); err != nil {
		t.Fatal(err)
	}
	if in.knownLeaderAddr != "" || !decidePreVote(in, req).grant {
		t.Fatalf("leader silent for a heartbeat timeout: known leader %q, pre-vote %+v", in.knownLeaderAddr, decidePreVote(in, req))
	}
	// A leader never counts another as live.
	r.transition(Leader)
	if in, _ = r.voteInputFor(); in.knownLeaderAddr != "addr-a" {
		t.Fatalf("leader's known leader = %q, want itself", in.knownLeaderAddr)
	}
}

// termHook is a StableStore that calls onTerm when the current term is
// written.
type termHook struct {
	StableStore
	onTerm func(uint64)
}

func (h *termHook) SetUint64(key []byte, val uint64) error {
	if bytes.Equal(key, keyCurrentTerm) {
		h.onTerm(val)
	}
	return h.StableStore.SetUint64(key, val)
}

// A leader that sees a higher term stops being leader before its term
// moves: a reader of State and then CurrentTerm (the chaos test's election
// safety check, or a user's monitoring) saw "leader of term 3" from a node
// that had led term 2, beside the real leader of term 3.
func TestStepDownLeavesLeadershipBeforeTheTermMoves(t *testing.T) {
	r, store := newStoppedRaft(t, 3)
	r.transition(Leader)
	var stateAtTerm RaftState = Leader
	r.stable = &termHook{StableStore: store, onTerm: func(uint64) { stateAtTerm = r.State() }}
	if !r.stepDownTo(r.getCurrentTerm() + 1) {
		t.Fatal("step down failed")
	}
	if stateAtTerm != Follower {
		t.Fatalf("state %v while the new term was written, want Follower", stateAtTerm)
	}
	if r.State() != Follower || r.getCurrentTerm() != 2 {
		t.Fatalf("after the step down: %v in term %d", r.State(), r.getCurrentTerm())
	}
}

// Bug 20 for ReadIndex: on a leader that has not committed an entry of its
// term, the read waits; once it has, the read index is that commit, not an
// older one.
func TestKnownBug20_ReadIndexWaitsForFirstCommitOfTerm(t *testing.T) {
	f := verifyBeforeFirstCommit(t, true)
	if err := f.Error(); err != nil || f.Index() != 10 {
		t.Fatalf("ReadIndex after the first commit = %d, %v; want 10", f.Index(), err)
	}
}

// appliedWaiters wakes exactly the waiters whose index was reached, also
// one added after the index was published.
func TestAppliedWaiters(t *testing.T) {
	var w appliedWaiters
	var applied atomic.Uint64
	a, b := w.wait(5, &applied), w.wait(7, &applied)
	applied.Store(5)
	w.advance(5)
	select {
	case <-a:
	default:
		t.Fatal("the waiter for 5 was not woken at 5")
	}
	select {
	case <-b:
		t.Fatal("the waiter for 7 was woken at 5")
	default:
	}
	select {
	case <-w.wait(3, &applied):
	default:
		t.Fatal("a waiter for an index already applied waits")
	}
	applied.Store(9)
	w.advance(9)
	<-b
	if w.n.Load() != 0 || len(w.waiters) != 0 {
		t.Fatalf("%d waiters left (count %d)", len(w.waiters), w.n.Load())
	}
}

// leaseStart: the newest send time a quorum acknowledged, the leader
// counting with now.
func TestLeaseStart(t *testing.T) {
	for _, tc := range []struct {
		acks   []int64
		self   bool
		quorum int
		want   int64
		ok     bool
	}{
		{[]int64{50, 70}, true, 2, 70, true}, // self (100) and the newest ack
		{[]int64{50, 70, 90, 0}, true, 3, 70, true},
		{[]int64{0, 0}, true, 2, 0, false}, // nobody acknowledged
		{[]int64{50, 0}, true, 2, 50, true},
		{[]int64{50, 70}, false, 2, 50, true}, // a leader that is no voter
		{[]int64{50}, false, 2, 0, false},
	} {
		got, ok := leaseStart(tc.acks, tc.self, tc.quorum, 100)
		if got != tc.want || ok != tc.ok {
			t.Errorf("leaseStart(%v, self %v, quorum %d) = %d, %v; want %d, %v", tc.acks, tc.self, tc.quorum, got, ok, tc.want, tc.ok)
		}
	}
}

// The lease rule's conditions, each of which alone refuses the lease.
func TestLeaseHoldsRule(t *testing.T) {
	r, _ := newStoppedRaft(t, 3)
	conf := r.config()
	conf.LeaseReads = true
	conf.HeartbeatTimeout = time.Second
	r.conf.Store(&conf)
	c := r.configurations
	c.committed, c.committedIndex = c.latest, c.latestIndex
	r.setConfigurations(c)
	r.setCommitIndex(10)
	now := int64(time.Since(r.started))
	newLS := func() *leaderState {
		ls := &leaderState{startIndex: 10, replState: map[ServerID]*followerReplication{}}
		for _, id := range []ServerID{"b", "c"} {
			s := &followerReplication{}
			s.leaseAck.Store(now - int64(100*time.Millisecond))
			ls.replState[id] = s
		}
		return ls
	}
	cases := []struct {
		name   string
		change func(ls *leaderState)
		want   bool
	}{
		{"fresh acknowledgements", func(*leaderState) {}, true},
		{"no entry of the term committed", func(ls *leaderState) { ls.startIndex = 11 }, false},
		{"a transfer runs", func(ls *leaderState) { ls.transferInProgress = true }, false},
		{"acknowledged only before the floor", func(ls *leaderState) { ls.leaseFloor = now }, false},
		{"acknowledgements older than the lease", func(ls *leaderState) {
			for _, s := range ls.replState {
				s.leaseAck.Store(now - int64(time.Second))
			}
		}, false},
		{"one voter acknowledged: still a quorum with the leader", func(ls *leaderState) { ls.replState["c"].leaseAck.Store(0) }, true},
		{"no voter acknowledged", func(ls *leaderState) {
			for _, s := range ls.replState {
				s.leaseAck.Store(0)
			}
		}, false},
	}
	for _, tc := range cases {
		ls := newLS()
		tc.change(ls)
		r.leaderState = ls
		r.publishLeaseView()
		if got := r.leaseHolds(ReadDefault); got != tc.want {
			t.Errorf("%s: leaseHolds = %v, want %v", tc.name, got, tc.want)
		}
	}
	// An uncommitted configuration change refuses it too.
	r.leaderState = newLS()
	c = r.configurations
	c.latestIndex++
	r.setConfigurations(c)
	r.publishLeaseView()
	if r.leaseHolds(ReadDefault) {
		t.Error("lease held with a configuration change uncommitted")
	}
	c.committedIndex = c.latestIndex
	r.setConfigurations(c)
	r.publishLeaseView()
	if !r.leaseHolds(ReadDefault) {
		t.Error("no lease once the configuration committed")
	}
	if r.leaseHolds(ReadByRound) {
		t.Error("lease used for a read that asked for a round")
	}
	conf.LeaseReads = false
	r.conf.Store(&conf)
	if r.leaseHolds(ReadDefault) {
		t.Error("lease held with LeaseReads off")
	}
	if !r.leaseHolds(ReadByLease) {
		t.Error("no lease for a read that asked for it, with LeaseReads off")
	}
}

// Appending a configuration leaves no lease view published until it
// commits: the fast path must not answer from a lease meanwhile.
func TestConfigurationAppendUnpublishesTheLease(t *testing.T) {
	r, _ := newStoppedRaft(t, 3)
	conf := r.config()
	conf.LeaseReads = true
	r.conf.Store(&conf)
	c := r.configurations
	c.committed, c.committedIndex = c.latest, c.latestIndex
	r.setConfigurations(c)
	ls := &leaderState{term: 1, startIndex: 1, replState: map[ServerID]*followerReplication{},
		commitment: newCommitment(make(chan struct{}, 1), c.latest, 1), stopCh: make(chan struct{})}
	r.leaderState = ls
	r.publishLeaseView()
	if r.leaseViewPtr.Load() == nil {
		t.Fatal("no view published for a settled leader")
	}
	f := &configurationChangeFuture{req: configurationChangeRequest{command: AddNonvoter, serverID: "d", serverAddress: "addr-d"}}
	f.init()
	r.appendConfigurationEntry(f)
	if r.configurations.latestIndex == r.configurations.committedIndex {
		t.Fatal("the configuration was not appended")
	}
	if r.leaseViewPtr.Load() != nil {
		t.Fatal("a lease view is published while a configuration change is uncommitted")
	}
}

// Reads waiting together on a follower go to the leader with the one
// choice that satisfies them all.
func TestBatchConsistency(t *testing.T) {
	batch := func(cs ...ReadConsistency) []*verifyFuture {
		var out []*verifyFuture
		for _, c := range cs {
			out = append(out, &verifyFuture{read: true, consistency: c})
		}
		return out
	}
	for _, tc := range []struct {
		in   []ReadConsistency
		want ReadConsistency
	}{
		{[]ReadConsistency{ReadByLease}, ReadByLease},
		{[]ReadConsistency{ReadDefault, ReadDefault}, ReadDefault},
		{[]ReadConsistency{ReadByLease, ReadByLease, ReadByLease}, ReadByLease},
		{[]ReadConsistency{ReadByLease, ReadDefault}, ReadByRound},
		{[]ReadConsistency{ReadDefault, ReadByLease, ReadDefault}, ReadByRound},
		{[]ReadConsistency{ReadByLease, ReadByRound}, ReadByRound},
	} {
		if got := batchConsistency(batch(tc.in...)); got != tc.want {
			t.Errorf("batchConsistency(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// A read round is held back, still open to calls, while the round before
// it is unanswered, and starts, closed to later calls, once that one is
// answered; calls on the leader share rounds instead of making one each.
func TestReadRoundHeldUntilThePreviousIsAnswered(t *testing.T) {
	r, _ := newStoppedRaft(t, 10)
	c := r.configurations
	c.committed, c.committedIndex = c.latest, c.latestIndex
	r.setConfigurations(c)
	r.setCommitIndex(10)
	r.leaderState = &leaderState{startIndex: 10, replState: map[ServerID]*followerReplication{}}
	start := func() *verifyFuture {
		t.Helper()
		item, _, ok := r.ctl.next()
		f, isRound := item.(*verifyFuture)
		if !ok || !isRound {
			t.Fatalf("control queue gave %v (%T), want a read round", item, item)
		}
		r.startReadRound(f)
		return f
	}

	first := r.joinReadRound(ReadByRound, 1)
	if r.joinReadRound(ReadByRound, 1) != first {
		t.Fatal("a second call before the main loop took the round did not join it")
	}
	start()
	if first.readers != 2 || first.index != 10 || r.leaderState.lastRound == nil {
		t.Fatalf("first round: %d readers, index %d; want 2 at 10, started", first.readers, first.index)
	}

	second := r.joinReadRound(ReadByRound, 1)
	if second == first {
		t.Fatal("a call after the round was taken joined it")
	}
	start()
	if r.leaderState.heldRound != second {
		t.Fatal("a round started while the one before it was unanswered")
	}
	r.setCommitIndex(12) // what the held round will read
	if r.joinReadRound(ReadByRound, 1) != second {
		t.Fatal("a call did not join the held round")
	}

	first.respond(nil)
	r.leaderControl(nil, sigRoundAnswered)
	if r.leaderState.heldRound != nil || second.takenAt.Load() == 0 {
		t.Fatal("the held round did not start once the one before it was answered")
	}
	if second.readers != 2 || second.index != 12 {
		t.Fatalf("second round: %d readers, index %d; want 2 at 12", second.readers, second.index)
	}
	if r.joinReadRound(ReadByRound, 1) == second {
		t.Fatal("a call joined a round already started")
	}
	// Leadership ends: the rounds still waiting are answered.
	third := r.readRounds.next.Load()
	r.leaderState.heldRound = third
	r.leaderState.stopCh = make(chan struct{})
	r.leaveLeader()
	for i, f := range []*verifyFuture{second, third} {
		if err := f.Error(); err != ErrLeadershipLost {
			t.Fatalf("round %d after leadership ended: %v, want ErrLeadershipLost", i+2, err)
		}
	}
}

// A follower answers with its capabilities only a leader that advertised
// its own: a hashicorp/raft leader's AppendEntries gets hashicorp's
// answer, byte for byte.
func TestFollowerAnswersCapabilitiesOnlyToOurLeaders(t *testing.T) {
	for _, leaderCaps := range []uint64{0, ourCapabilities} {
		r, _ := newStoppedRaft(t, 1)
		respCh := make(chan RPCResponse, 1)
		req := &AppendEntriesRequest{RPCHeader: RPCHeader{ProtocolVersion: ProtocolVersionMax, ID: []byte("b"), Addr: []byte("addr-b")},
			Term: 5, Leader: []byte("addr-b"), PrevLogEntry: 1, PrevLogTerm: 1, capabilities: leaderCaps}
		r.appendEntries(RPC{Command: req, RespChan: respCh}, req)
		resp := (<-respCh).Response.(*AppendEntriesResponse)
		want := ourCapabilities
		if leaderCaps == 0 {
			want = 0 // a hashicorp leader: hashicorp's answer
		}
		if resp.capabilities != want {
			t.Fatalf("leader capabilities %d: answered %d, want %d", leaderCaps, resp.capabilities, want)
		}
		if !resp.Success {
			t.Fatalf("heartbeat-like AppendEntries refused: %+v", resp)
		}
	}
}
