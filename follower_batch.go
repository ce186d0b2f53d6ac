package raft

import "bytes"

// maxMergedEntries bounds the entries of one merged AppendEntries, and so
// of one StoreLogs on a follower.
const maxMergedEntries = 4096

// canMerge reports whether next continues cur so that the two can be
// handled as one request: both carry entries, come from the same leader in
// the same term, and next's previous entry is cur's last entry. Handling
// the merged request gives the same log as handling the two in turn, and
// its success answers both truthfully (the follower's log then matches the
// leader's through the last entry of each).
func canMerge(cur, next *AppendEntriesRequest) bool {
	if len(cur.Entries) == 0 || len(next.Entries) == 0 || len(cur.Entries)+len(next.Entries) > maxMergedEntries {
		return false
	}
	last := cur.Entries[len(cur.Entries)-1]
	return last != nil &&
		next.Term == cur.Term &&
		next.PrevLogEntry == last.Index && next.PrevLogTerm == last.Term &&
		next.ProtocolVersion == cur.ProtocolVersion &&
		bytes.Equal(next.ID, cur.ID) && bytes.Equal(next.Addr, cur.Addr) &&
		bytes.Equal(next.Leader, cur.Leader)
}

// processFollowerRPC handles one request on a follower. An AppendEntries
// with entries is merged with the AppendEntries already waiting in more
// that continue it (a pipelining leader sends many back to back), so their
// entries reach the log store in one StoreLogs: one disk write instead of
// one per request. Each merged request gets the merged answer. The first
// waiting request that cannot be merged is handled after them, in order.
func (r *Raft) processFollowerRPC(rpc RPC, more <-chan RPC) {
	first, ok := rpc.Command.(*AppendEntriesRequest)
	if !ok || len(first.Entries) == 0 || rpc.Reader != nil {
		r.processRPC(rpc)
		return
	}
	stampEntries(stageFollowerLoop, first.Entries)
	batch := r.mergeBuf[:0]
	batch = append(batch, rpc)
	merged := first
	var after RPC
	hasAfter := false
collect:
	for {
		select {
		case next := <-more:
			req, ok := next.Command.(*AppendEntriesRequest)
			if !ok || next.Reader != nil || !canMerge(merged, req) {
				after, hasAfter = next, true
				break collect
			}
			if merged == first {
				m := *first
				m.Entries = append(make([]*Log, 0, len(first.Entries)+len(req.Entries)), first.Entries...)
				merged = &m
			}
			stampEntries(stageFollowerLoop, req.Entries)
			merged.Entries = append(merged.Entries, req.Entries...)
			merged.LeaderCommitIndex = max(merged.LeaderCommitIndex, req.LeaderCommitIndex)
			batch = append(batch, next)
		default:
			break collect
		}
	}
	if len(batch) == 1 {
		r.processRPC(rpc)
	} else {
		if r.mergeResp == nil {
			r.mergeResp = make(chan RPCResponse, 1)
		}
		ch := r.mergeResp
		r.processRPC(RPC{Command: merged, RespChan: ch})
		resp := <-ch
		for i := range batch {
			batch[i].Respond(resp.Response, resp.Error)
		}
	}
	clear(batch)
	r.mergeBuf = batch[:0]
	if hasAfter {
		r.processRPC(after)
	}
}
