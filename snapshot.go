package raft

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hashicorp/go-metrics"
)

// snapshotName returns a snapshot ID of the form term-index-msec.
func snapshotName(term, index uint64) string {
	now := time.Now()
	msec := now.UnixNano() / int64(time.Millisecond)
	return fmt.Sprintf("%d-%d-%d", term, index, msec)
}

// runSnapshots is the snapshot goroutine: it takes the automatic snapshots
// (when SnapshotThreshold entries have piled up, checked at jittered
// SnapshotInterval) and the ones Raft.Snapshot asks for, beside the main
// loop and the FSM goroutine rather than in their way.
func (r *Raft) runSnapshots() {
	for {
		interval := r.config().SnapshotInterval
		timer := time.NewTimer(r.rng.jitter(interval))
		select {
		case <-timer.C:
			if !r.shouldSnapshot() {
				continue
			}
			if _, err := r.takeSnapshot(); err != nil && !errors.Is(err, ErrNothingNewToSnapshot) {
				r.logger.Error("failed to take snapshot", "error", err)
			}
		case future := <-r.userSnapshotCh:
			timer.Stop()
			id, err := r.takeSnapshot()
			if err != nil {
				r.logger.Error("failed to take snapshot", "error", err)
			} else {
				future.opener = func() (*SnapshotMeta, io.ReadCloser, error) {
					return r.snapshots.Open(id)
				}
			}
			future.respond(err)
		case <-r.shutdownCh:
			timer.Stop()
			return
		}
	}
}

// shouldSnapshot reports whether enough entries followed the last snapshot.
func (r *Raft) shouldSnapshot() bool {
	lastSnap, _ := r.getLastSnapshot()
	lastIdx, _ := r.getLastLog()
	return lastIdx-lastSnap >= r.config().SnapshotThreshold
}

// takeSnapshot snapshots the FSM, stores it and compacts the log; it runs
// on the snapshot goroutine only and returns the new snapshot's ID.
func (r *Raft) takeSnapshot() (string, error) {
	defer metrics.MeasureSince([]string{"raft", "snapshot", "takeSnapshot"}, time.Now())

	// Ask the FSM goroutine for a point-in-time snapshot.
	snapReq := &reqSnapshotFuture{}
	snapReq.init()
	snapReq.shutdownCh = r.shutdownCh
	select {
	case r.fsmSnapshotCh <- snapReq:
	case <-r.shutdownCh:
		return "", ErrRaftShutdown
	}
	if err := snapReq.Error(); err != nil {
		if !errors.Is(err, ErrNothingNewToSnapshot) {
			err = fmt.Errorf("failed to start snapshot: %w", err)
		}
		return "", err
	}
	defer snapReq.snapshot.Release()

	// The snapshot must carry the configuration committed as of its index.
	configReq := &configurationsFuture{}
	configReq.init()
	configReq.shutdownCh = r.shutdownCh
	if !r.ctl.push(configReq) {
		return "", ErrRaftShutdown
	}
	if err := configReq.Error(); err != nil {
		return "", err
	}
	committed := configReq.configurations.committed
	committedIndex := configReq.configurations.committedIndex
	if snapReq.index < committedIndex {
		return "", fmt.Errorf("cannot take snapshot now, wait until the configuration entry at %v has been applied (have applied %v)",
			committedIndex, snapReq.index)
	}

	r.logger.Info("starting snapshot up to", "index", snapReq.index)
	start := time.Now()
	sink, err := r.snapshots.Create(SnapshotVersionMax, snapReq.index, snapReq.term, committed, committedIndex, r.trans)
	if err != nil {
		return "", fmt.Errorf("failed to create snapshot: %w", err)
	}
	metrics.MeasureSince([]string{"raft", "snapshot", "create"}, start)

	start = time.Now()
	if err := snapReq.snapshot.Persist(sink); err != nil {
		_ = sink.Cancel()
		return "", fmt.Errorf("failed to persist snapshot: %w", err)
	}
	metrics.MeasureSince([]string{"raft", "snapshot", "persist"}, start)
	if err := sink.Close(); err != nil {
		return "", fmt.Errorf("failed to close snapshot: %w", err)
	}

	// A user Restore may have put a newer snapshot in place meanwhile; the
	// last snapshot never moves back.
	r.advanceLastSnapshot(snapReq.index, snapReq.term)
	if err := r.compactLogs(snapReq.index); err != nil {
		return "", err
	}
	r.logger.Info("snapshot complete up to", "index", snapReq.index)
	return sink.ID(), nil
}

// compactLogs deletes the entries up to snapIdx, keeping TrailingLogs
// entries behind the last index so slow followers can catch up from the log.
func (r *Raft) compactLogs(snapIdx uint64) error {
	defer metrics.MeasureSince([]string{"raft", "compactLogs"}, time.Now())
	minLog, err := r.logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("failed to get first log index: %w", err)
	}
	lastLogIdx, _ := r.getLastLog()
	trailing := r.config().TrailingLogs
	if lastLogIdx <= trailing {
		return nil
	}
	maxLog := min(snapIdx, lastLogIdx-trailing)
	if minLog == 0 || minLog > maxLog {
		r.logger.Info("no logs to truncate")
		return nil
	}
	r.logger.Info("compacting logs", "from", minLog, "to", maxLog)
	if err := r.logs.DeleteRange(minLog, maxLog); err != nil {
		return fmt.Errorf("log compaction failed: %w", err)
	}
	return nil
}
