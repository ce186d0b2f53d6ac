package raft

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/go-metrics"
)

// FSM is the application's state machine, which the replicated log drives.
// Its methods are called from a single goroutine, never concurrently with
// one another.
type FSM interface {
	// Apply applies one committed entry, in log order. It must be
	// deterministic: every server applies the same entries and must reach
	// the same state. Its return value becomes ApplyFuture.Response on the
	// server that took the Apply call.
	Apply(*Log) interface{}

	// Snapshot captures the state for a snapshot (for compacting the log,
	// and for followers too far behind for the log). Apply waits while it
	// runs, so it should only take what Persist will need (a copy-on-write
	// reference, say) and leave the writing to FSMSnapshot.Persist, which
	// runs while Apply goes on.
	Snapshot() (FSMSnapshot, error)

	// Restore replaces the whole state with a snapshot's; nothing of the
	// state before it may remain. Nothing else runs on the FSM meanwhile.
	Restore(snapshot io.ReadCloser) error
}

// BatchingFSM is an FSM that can take several committed entries at once
// (up to MaxAppendEntries). The library then calls ApplyBatch instead of
// Apply.
type BatchingFSM interface {
	// ApplyBatch applies committed entries in log order, without gaps. The
	// batch can hold command and configuration entries; look at each
	// entry's Type before decoding its Data. It returns one response per
	// entry, at the same position.
	ApplyBatch([]*Log) []interface{}

	FSM
}

// FSMSnapshot is a state captured by FSM.Snapshot. Its methods may run while
// Apply runs.
type FSMSnapshot interface {
	// Persist writes the captured state to sink, then closes it; on an
	// error it calls sink.Cancel instead.
	Persist(sink SnapshotSink) error

	// Release is called once the snapshot is no longer needed.
	Release()
}

// ConfigurationStore is an FSM that also wants every committed
// configuration, with its index. An FSM that keeps its state durably
// itself (rather than in memory plus snapshots) can then recover the
// membership from its own state.
type ConfigurationStore interface {
	FSM

	// StoreConfiguration is called, in log order with Apply, for each
	// committed configuration entry.
	StoreConfiguration(index uint64, configuration Configuration)
}

// commitTuple is a committed entry on its way to the FSM, with the future to
// answer (nil for entries this node did not originate).
type commitTuple struct {
	log    *Log
	future *logFuture
}

// commitBatch is what applyCommitted hands the FSM goroutine: a pointer, so
// that the channel send does not box a slice, recycled through
// commitBatchPool once applied.
type commitBatch struct {
	tuples []commitTuple
}

var commitBatchPool = sync.Pool{New: func() any { return new(commitBatch) }}

// release returns the batch to the pool without holding on to its entries.
func (b *commitBatch) release() {
	if cap(b.tuples) > 4096 {
		return
	}
	clear(b.tuples)
	b.tuples = b.tuples[:0]
	commitBatchPool.Put(b)
}

// fsmSawEntry reports whether applying an entry of type t gives the FSM
// something to snapshot, by hashicorp/raft's rule: commands and barriers
// do, configurations do when the FSM batches or stores configurations,
// no-ops never do. So a node that has applied only its bootstrap
// configuration and a leader's no-op has nothing to snapshot.
func fsmSawEntry(t LogType, batching, configStore bool) bool {
	switch t {
	case LogCommand, LogBarrier:
		return true
	case LogConfiguration:
		return batching || configStore
	}
	return false
}

// runFSM is the only goroutine that touches the FSM. It applies committed
// entries in log order, takes FSM snapshots, and restores snapshots.
func (r *Raft) runFSM() {
	var lastIndex, lastTerm uint64
	// seen: the FSM has been given an entry that counts (fsmSawEntry) or
	// a snapshot. Before that Snapshot fails with ErrNothingNewToSnapshot,
	// as in hashicorp/raft; after it, a snapshot is taken at the last
	// applied entry, whatever its type.
	seen := false
	batchingFSM, batching := r.fsm.(BatchingFSM)
	configStore, hasConfigStore := r.fsm.(ConfigurationStore)
	pv := r.protocolVersion

	applySingle := func(t commitTuple) {
		var resp interface{}
		switch t.log.Type {
		case LogCommand:
			resp = r.fsm.Apply(t.log)
		case LogConfiguration:
			if hasConfigStore && pv > 2 {
				if c, err := decodeConfiguration(t.log.Data); err == nil {
					configStore.StoreConfiguration(t.log.Index, c)
				} else {
					r.logger.Error("skipping undecodable configuration entry", "index", t.log.Index, "error", err)
				}
			}
		}
		lastIndex, lastTerm = t.log.Index, t.log.Term
		seen = seen || fsmSawEntry(t.log.Type, false, hasConfigStore)
		r.appliedIndex.Store(lastIndex)
		r.applied.advance(lastIndex)
		if t.future != nil {
			stampRange(stageApplied, lastIndex, lastIndex)
			t.future.response = resp
			t.future.respond(nil)
		}
	}

	applyBatch := func(tuples []commitTuple) {
		if !batching {
			start := time.Now()
			for _, t := range tuples {
				applySingle(t)
			}
			metrics.MeasureSince(keyFSMApply, start)
			return
		}
		// Hand commands (and, above protocol 2, configurations) to
		// ApplyBatch in one call; everything else only moves the index.
		logs := make([]*Log, 0, len(tuples))
		for _, t := range tuples {
			if t.log.Type == LogCommand || (t.log.Type == LogConfiguration && pv > 2) {
				logs = append(logs, t.log)
			}
		}
		var resps []interface{}
		if len(logs) > 0 {
			start := time.Now()
			resps = batchingFSM.ApplyBatch(logs)
			metrics.MeasureSince(keyFSMApplyBatch, start)
			if len(resps) != len(logs) {
				r.logger.Error("BatchingFSM.ApplyBatch returned the wrong number of responses",
					"want", len(logs), "got", len(resps))
			}
		}
		j := 0
		for _, t := range tuples {
			var resp interface{}
			if t.log.Type == LogCommand || (t.log.Type == LogConfiguration && pv > 2) {
				if j < len(resps) {
					resp = resps[j]
				}
				j++
			}
			lastIndex, lastTerm = t.log.Index, t.log.Term
			seen = seen || fsmSawEntry(t.log.Type, true, hasConfigStore)
			if t.future != nil {
				stampRange(stageApplied, lastIndex, lastIndex)
				t.future.response = resp
				t.future.respond(nil)
			}
		}
		r.appliedIndex.Store(lastIndex)
		r.applied.advance(lastIndex)
	}

	restore := func(req *restoreFuture) {
		meta, source, err := r.snapshots.Open(req.ID)
		if err != nil {
			req.respond(fmt.Errorf("failed to open snapshot %v: %w", req.ID, err))
			return
		}
		defer source.Close()
		if err := restoreWithProgress(r.logger, r.fsm, source, meta.Size); err != nil {
			req.respond(fmt.Errorf("failed to restore snapshot %v: %w", req.ID, err))
			return
		}
		lastIndex, lastTerm = meta.Index, meta.Term
		seen = true
		r.appliedIndex.Store(lastIndex)
		r.applied.advance(lastIndex)
		req.respond(nil)
	}

	snapshot := func(req *reqSnapshotFuture) {
		if !seen {
			req.respond(ErrNothingNewToSnapshot)
			return
		}
		start := time.Now()
		snap, err := r.fsm.Snapshot()
		metrics.MeasureSince([]string{"raft", "fsm", "snapshot"}, start)
		req.index, req.term, req.snapshot = lastIndex, lastTerm, snap
		req.respond(err)
	}

	// Start from what NewRaft restored.
	lastIndex = r.appliedIndex.Load()
	lastTerm = r.startupAppliedTerm

	for {
		// Shutdown comes first: a select picks at random among ready
		// cases, so without this check a node shutting down would go on
		// applying queued batches for a while, as many or as few as chance
		// has it.
		select {
		case <-r.shutdownCh:
			r.drainFSMOnShutdown()
			return
		default:
		}
		select {
		case ptr := <-r.fsmMutateCh:
			switch req := ptr.(type) {
			case *commitBatch:
				applyBatch(req.tuples)
				req.release()
				asyncNotify(r.fsmSpaceCh)
			case *restoreFuture:
				restore(req)
			default:
				panic(fmt.Errorf("bad type passed to fsmMutateCh: %#v", ptr))
			}
		case req := <-r.fsmSnapshotCh:
			snapshot(req)
		case <-r.shutdownCh:
			r.drainFSMOnShutdown()
			return
		}
	}
}

// drainFSMOnShutdown answers, once the main loop has ended and nothing more
// is sent, what is still queued for the FSM: apply futures wait on nothing
// else.
func (r *Raft) drainFSMOnShutdown() {
	<-r.mainLoopDone
	for {
		select {
		case ptr := <-r.fsmMutateCh:
			switch req := ptr.(type) {
			case *commitBatch:
				for _, t := range req.tuples {
					if t.future != nil {
						t.future.respond(ErrRaftShutdown)
					}
				}
				req.release()
			case *restoreFuture:
				req.respond(ErrRaftShutdown)
			}
		default:
			return
		}
	}
}
