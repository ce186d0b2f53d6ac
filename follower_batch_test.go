package raft

import (
	"fmt"
	"testing"
	"time"
)

// countingLogStore counts StoreLogs calls and the entries they carry.
type countingLogStore struct {
	LogStore
	calls   int
	entries []int
}

func (c *countingLogStore) StoreLogs(logs []*Log) error {
	c.calls++
	c.entries = append(c.entries, len(logs))
	return c.LogStore.StoreLogs(logs)
}

func entriesFrom(from, to, term uint64) []*Log {
	var out []*Log
	for i := from; i <= to; i++ {
		out = append(out, &Log{Index: i, Term: term, Type: LogCommand, Data: []byte{byte(i)}})
	}
	return out
}

func appendReq(leader string, term, prev, prevTerm uint64, entries []*Log, commit uint64) *AppendEntriesRequest {
	return &AppendEntriesRequest{RPCHeader: header(leader), Term: term, PrevLogEntry: prev, PrevLogTerm: prevTerm,
		Entries: entries, LeaderCommitIndex: commit}
}

func TestCanMerge(t *testing.T) {
	base := appendReq("b", 2, 5, 1, entriesFrom(6, 8, 2), 5)
	cases := []struct {
		name string
		next *AppendEntriesRequest
		want bool
	}{
		{"continues", appendReq("b", 2, 8, 2, entriesFrom(9, 9, 2), 7), true},
		{"gap", appendReq("b", 2, 9, 2, entriesFrom(10, 10, 2), 7), false},
		{"overlap", appendReq("b", 2, 7, 2, entriesFrom(8, 9, 2), 7), false},
		{"previous term differs", appendReq("b", 2, 8, 1, entriesFrom(9, 9, 2), 7), false},
		{"newer term", appendReq("b", 3, 8, 2, entriesFrom(9, 9, 3), 7), false},
		{"other leader", appendReq("c", 2, 8, 2, entriesFrom(9, 9, 2), 7), false},
		{"heartbeat", appendReq("b", 2, 8, 2, nil, 7), false},
		{"too many entries", appendReq("b", 2, 8, 2, entriesFrom(9, 9+maxMergedEntries, 2), 7), false},
	}
	for _, c := range cases {
		if got := canMerge(base, c.next); got != c.want {
			t.Errorf("%s: canMerge = %v, want %v", c.name, got, c.want)
		}
	}
	if canMerge(appendReq("b", 2, 5, 1, nil, 5), appendReq("b", 2, 5, 1, entriesFrom(6, 6, 2), 5)) {
		t.Error("merged onto a request without entries")
	}
}

// TestFollowerMergesPipelinedAppends: three pipelined AppendEntries waiting
// together reach the log store in one StoreLogs, each is answered with
// success, and a request that cannot be merged is handled after them.
func TestFollowerMergesPipelinedAppends(t *testing.T) {
	var counter *countingLogStore
	r, store := newStoppedRaftWith(t, 5, func(s LogStore) LogStore {
		counter = &countingLogStore{LogStore: s}
		return counter
	})
	respCh := make([]chan RPCResponse, 4)
	rpcs := make([]RPC, 4)
	reqs := []interface{}{
		appendReq("b", 2, 5, 1, entriesFrom(6, 8, 2), 5),
		appendReq("b", 2, 8, 2, entriesFrom(9, 9, 2), 7),
		appendReq("b", 2, 9, 2, entriesFrom(10, 12, 2), 9),
		// Not a continuation (a retry of entry 12): handled on its own.
		appendReq("b", 2, 11, 2, entriesFrom(12, 12, 2), 9),
	}
	for i := range rpcs {
		respCh[i] = make(chan RPCResponse, 1)
		rpcs[i] = RPC{Command: reqs[i], RespChan: respCh[i]}
	}
	more := make(chan RPC, 3)
	for _, rpc := range rpcs[1:] {
		more <- rpc
	}
	r.processFollowerRPC(rpcs[0], more)

	// The retry finds entry 12 already there and stores nothing.
	if len(counter.entries) != 1 || counter.entries[0] != 7 {
		t.Fatalf("StoreLogs batches %v, want [7] (the three merged)", counter.entries)
	}
	for i, ch := range respCh {
		select {
		case resp := <-ch:
			ae, ok := resp.Response.(*AppendEntriesResponse)
			if resp.Error != nil || !ok || !ae.Success || ae.LastLog != 12 {
				t.Fatalf("request %d answered %+v, %v", i, resp.Response, resp.Error)
			}
		default:
			t.Fatalf("request %d not answered", i)
		}
	}
	if last, _ := store.LastIndex(); last != 12 {
		t.Fatalf("last index %d, want 12", last)
	}
	if got := r.getCommitIndex(); got != 9 {
		t.Fatalf("commit index %d, want 9 (the last merged request's)", got)
	}
}

// TestFollowerMergedAppendFailsTogether: when the first request of a merge
// does not match the log, every merged request is refused (the leader
// retries them), and nothing is stored.
func TestFollowerMergedAppendFailsTogether(t *testing.T) {
	var counter *countingLogStore
	r, store := newStoppedRaftWith(t, 5, func(s LogStore) LogStore {
		counter = &countingLogStore{LogStore: s}
		return counter
	})
	first := make(chan RPCResponse, 1)
	second := make(chan RPCResponse, 1)
	more := make(chan RPC, 1)
	more <- RPC{Command: appendReq("b", 2, 8, 2, entriesFrom(9, 9, 2), 5), RespChan: second}
	r.processFollowerRPC(RPC{Command: appendReq("b", 2, 7, 2, entriesFrom(8, 8, 2), 5), RespChan: first}, more)
	for i, ch := range []chan RPCResponse{first, second} {
		resp := <-ch
		if ae := resp.Response.(*AppendEntriesResponse); ae.Success {
			t.Fatalf("request %d succeeded on a log that lacks entry 7", i)
		}
	}
	if counter.calls != 0 {
		t.Fatalf("%d StoreLogs calls", counter.calls)
	}
	if last, _ := store.LastIndex(); last != 5 {
		t.Fatalf("last index %d, want 5", last)
	}
}

// TestFollowerKeepsAnsweringWhileFSMLags: with the FSM's queue full (no
// FSM goroutine runs here), a follower still answers AppendEntries and
// advances its commit index instead of blocking its main loop (which over
// the in-memory transport also carries heartbeats); the entries it could
// not hand over go to the FSM once there is room.
func TestFollowerKeepsAnsweringWhileFSMLags(t *testing.T) {
	r, _ := newStoppedRaft(t, 1)
	const n = 400 // far more batches than the FSM queue holds
	done := make(chan error, 1)
	go func() {
		for i := uint64(2); i <= n; i++ {
			resp := call(r, appendReq("b", 2, i-1, termOf(i-1), entriesFrom(i, i, 2), i), nil)
			if ae, ok := resp.Response.(*AppendEntriesResponse); !ok || !ae.Success {
				done <- fmt.Errorf("append %d refused: %+v %v", i, resp.Response, resp.Error)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the follower blocked on its full FSM queue")
	}
	if got := r.getCommitIndex(); got != n {
		t.Fatalf("commit index %d, want %d", got, n)
	}
	if r.fsmDispatched >= n {
		t.Fatalf("dispatched %d with a full FSM queue", r.fsmDispatched)
	}
	// The FSM catches up: drain its queue, then hand over the rest.
	var applied []uint64
	for r.fsmDispatched < n {
		for len(r.fsmMutateCh) > 0 {
			cb := (<-r.fsmMutateCh).(*commitBatch)
			for _, tu := range cb.tuples {
				applied = append(applied, tu.log.Index)
			}
		}
		r.dispatchCommitted(r.getCommitIndex(), nil, false)
	}
	for len(r.fsmMutateCh) > 0 {
		cb := (<-r.fsmMutateCh).(*commitBatch)
		for _, tu := range cb.tuples {
			applied = append(applied, tu.log.Index)
		}
	}
	for k, idx := range applied {
		if want := uint64(k) + applied[0]; idx != want {
			t.Fatalf("FSM got index %d at position %d, want %d (a gap or a repeat)", idx, k, want)
		}
	}
	if applied[len(applied)-1] != n {
		t.Fatalf("FSM got up to %d, want %d", applied[len(applied)-1], n)
	}
}

// termOf is the term of entry i in TestFollowerKeepsAnsweringWhileFSMLags:
// the bootstrap entry is term 1, the rest term 2.
func termOf(i uint64) uint64 {
	if i <= 1 {
		return 1
	}
	return 2
}

// TestVerifyRoundFollowsConfiguration: a VerifyLeader round that counted on
// voters since removed is re-stated against the latest configuration
// (fuzzy seed 1985: a round needing two acknowledgements out of four voters
// waited for ever once two of them were removed and one voter remained).
func TestVerifyRoundFollowsConfiguration(t *testing.T) {
	conf := func(voters ...ServerID) Configuration {
		var c Configuration
		for _, id := range voters {
			c.Servers = append(c.Servers, Server{Suffrage: Voter, ID: id, Address: ServerAddress(id)})
		}
		c.Servers = append(c.Servers, Server{Suffrage: Nonvoter, ID: "n1", Address: "n1"})
		return c
	}
	newRound := func() *verifyState {
		f := &verifyFuture{}
		f.init()
		return &verifyState{future: f, acks: map[ServerID]bool{}}
	}
	resolved := func(v *verifyState) bool {
		select {
		case <-v.future.done:
			return v.future.err == nil
		default:
			return false
		}
	}

	v := newRound()
	if ask := v.reconfigure(conf("n0", "n2", "n3", "n4"), "n3"); len(ask) != 3 || resolved(v) {
		t.Fatalf("four voters: asking %v, resolved %v", ask, resolved(v))
	}
	v.ack("n4", true)
	if resolved(v) {
		t.Fatal("resolved with one acknowledgement of the two needed")
	}
	// n0 and n2 removed: n4's acknowledgement is a quorum of {n3, n4}.
	if ask := v.reconfigure(conf("n3", "n4"), "n3"); ask != nil || !resolved(v) {
		t.Fatalf("after the removals: asking %v, resolved %v", ask, resolved(v))
	}

	// An acknowledgement from a server no longer a voter does not count.
	v = newRound()
	v.reconfigure(conf("n0", "n3", "n4"), "n3")
	v.ack("n0", true)
	if !resolved(v) {
		t.Fatal("n0's acknowledgement is a quorum of {n0, n3, n4}")
	}
	v = newRound()
	v.reconfigure(conf("n0", "n2", "n3", "n4"), "n3")
	v.ack("n0", true)
	if ask := v.reconfigure(conf("n2", "n3", "n4"), "n3"); resolved(v) || len(ask) != 2 {
		t.Fatalf("n0 removed: resolved %v, asking %v (want n2 and n4)", resolved(v), ask)
	}
}
