package raft

import (
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-metrics"
)

// FSM is implemented by clients to make use of the replicated log.
type FSM interface {
	// Apply is called once a log entry is committed by a majority of the
	// cluster. It is called from one goroutine, in log order.
	//
	// Apply should apply the log to the FSM. Apply must be deterministic and
	// produce the same result on all peers in the cluster.
	//
	// The returned value is returned to the client as the ApplyFuture.Response.
	Apply(*Log) interface{}

	// Snapshot returns an FSMSnapshot used to: support log compaction, to
	// restore the FSM to a previous state, or to bring out-of-date followers
	// up to a recent log index.
	//
	// The Snapshot implementation should return quickly, because Apply can
	// not be called while Snapshot is running. Generally this means Snapshot
	// should only capture a pointer to the state, and any expensive IO
	// should happen as part of FSMSnapshot.Persist.
	//
	// Apply and Snapshot are always called from the same thread, but Apply
	// will be called concurrently with FSMSnapshot.Persist. This means the
	// FSM should be implemented to allow for concurrent updates while a
	// snapshot is happening.
	Snapshot() (FSMSnapshot, error)

	// Restore is used to restore an FSM from a snapshot. It is not called
	// concurrently with any other command. The FSM must discard all
	// previous state before restoring the snapshot.
	Restore(snapshot io.ReadCloser) error
}

// BatchingFSM extends the FSM interface to add an ApplyBatch function. This
// can optionally be implemented by clients to enable multiple logs to be
// applied to the FSM in batches. Up to MaxAppendEntries could be sent in a
// batch.
type BatchingFSM interface {
	// ApplyBatch is invoked once a batch of log entries has been committed
	// and are ready to be applied to the FSM. ApplyBatch will take in an
	// array of log entries. These log entries will be in the order they
	// were committed, will not have gaps, and could be of a few log types.
	// Clients should check the log type prior to attempting to decode the
	// data attached. Presently the LogCommand and LogConfiguration types
	// will be sent.
	//
	// The returned slice must be the same length as the input and each
	// response should correlate to the log at the same index of the input.
	ApplyBatch([]*Log) []interface{}

	FSM
}

// FSMSnapshot is returned by an FSM in response to a Snapshot. It must be
// safe to invoke FSMSnapshot methods with concurrent calls to Apply.
type FSMSnapshot interface {
	// Persist should dump all necessary state to the WriteCloser 'sink',
	// and call sink.Close() when finished or call sink.Cancel() on error.
	Persist(sink SnapshotSink) error

	// Release is invoked when we are finished with the snapshot.
	Release()
}

// ConfigurationStore provides an interface that can optionally be
// implemented by FSMs to store configuration updates made in the replicated
// log. In general this is only necessary for FSMs that mutate durable state
// directly instead of applying changes in memory and snapshotting
// periodically. By storing configuration changes, the persistent FSM state
// can behave as a complete snapshot, and be able to recover without an
// external snapshot just for persisting the raft configuration.
type ConfigurationStore interface {
	// ConfigurationStore is a superset of the FSM functionality
	FSM

	// StoreConfiguration is invoked once a log entry containing a
	// configuration change is committed. It takes the index at which the
	// configuration was written and the configuration value.
	StoreConfiguration(index uint64, configuration Configuration)
}

// commitTuple is a committed entry on its way to the FSM, with the future to
// answer (nil for entries this node did not originate).
type commitTuple struct {
	log    *Log
	future *logFuture
}

// runFSM is the only goroutine that touches the FSM. It applies committed
// entries in log order, takes FSM snapshots, and restores snapshots.
func (r *Raft) runFSM() {
	var lastIndex, lastTerm uint64
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
		r.appliedIndex.Store(lastIndex)
		if t.future != nil {
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
			if t.future != nil {
				t.future.response = resp
				t.future.respond(nil)
			}
		}
		r.appliedIndex.Store(lastIndex)
	}

	restore := func(req *restoreFuture) {
		meta, source, err := r.snapshots.Open(req.ID)
		if err != nil {
			req.respond(fmt.Errorf("failed to open snapshot %v: %w", req.ID, err))
			return
		}
		defer source.Close()
		if err := r.fsm.Restore(source); err != nil {
			req.respond(fmt.Errorf("failed to restore snapshot %v: %w", req.ID, err))
			return
		}
		lastIndex, lastTerm = meta.Index, meta.Term
		r.appliedIndex.Store(lastIndex)
		req.respond(nil)
	}

	snapshot := func(req *reqSnapshotFuture) {
		if lastIndex == 0 {
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
		select {
		case ptr := <-r.fsmMutateCh:
			switch req := ptr.(type) {
			case []commitTuple:
				applyBatch(req)
			case *restoreFuture:
				restore(req)
			default:
				panic(fmt.Errorf("bad type passed to fsmMutateCh: %#v", ptr))
			}
		case req := <-r.fsmSnapshotCh:
			snapshot(req)
		case <-r.shutdownCh:
			return
		}
	}
}
