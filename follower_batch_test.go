package raft

import (
	"testing"
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
