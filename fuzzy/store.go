package fuzzy

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	raft "github.com/seed48a2b68f/raft"
)

// errCrashed is what a crashed node's store answers.
var errCrashed = errors.New("fuzzy: the node has crashed")

// diskStore is a node's log and stable store with the failure modes of a
// disk: writes can be slow, and a crash keeps exactly the writes that had
// completed. A write still in flight when the node crashes (waiting on the
// slow disk: not yet synced) is lost, as an unsynced write is when power
// fails; a write that returned is kept.
type diskStore struct {
	inner *raft.InmemStore
	// lock: writers hold it shared while they check crashed and write,
	// crash holds it exclusively while it copies what survives.
	lock    sync.RWMutex
	crashed atomic.Bool
	latency atomic.Int64 // nanoseconds each write waits first
}

func newDiskStore(inner *raft.InmemStore) *diskStore { return &diskStore{inner: inner} }

// setLatency makes every write wait d first (0: a fast disk).
func (d *diskStore) setLatency(l time.Duration) { d.latency.Store(int64(l)) }

// write waits for the disk, then runs fn unless the node crashed meanwhile.
func (d *diskStore) write(fn func() error) error {
	if l := d.latency.Load(); l > 0 {
		time.Sleep(time.Duration(l))
	}
	d.lock.RLock()
	defer d.lock.RUnlock()
	if d.crashed.Load() {
		return errCrashed
	}
	return fn()
}

// crash stops all further writes and returns a new store holding what had
// been written: the disk the node restarts from.
func (d *diskStore) crash() (*raft.InmemStore, error) {
	d.lock.Lock()
	defer d.lock.Unlock()
	d.crashed.Store(true)
	out := raft.NewInmemStore()
	first, err := d.inner.FirstIndex()
	if err != nil {
		return nil, err
	}
	last, err := d.inner.LastIndex()
	if err != nil {
		return nil, err
	}
	if last > 0 {
		var logs []*raft.Log
		for i := first; i <= last; i++ {
			l := new(raft.Log)
			if err := d.inner.GetLog(i, l); err != nil {
				if errors.Is(err, raft.ErrLogNotFound) {
					// A user Restore on a store that is not monotonic
					// leaves a gap in the log, as hashicorp's does.
					continue
				}
				return nil, fmt.Errorf("fuzzy: copy entry %d: %w", i, err)
			}
			logs = append(logs, l)
		}
		if err := out.StoreLogs(logs); err != nil {
			return nil, err
		}
	}
	for _, key := range []string{"CurrentTerm", "LastVoteTerm"} {
		v, err := d.inner.GetUint64([]byte(key))
		if err == nil {
			if err := out.SetUint64([]byte(key), v); err != nil {
				return nil, err
			}
		}
	}
	if v, err := d.inner.Get([]byte("LastVoteCand")); err == nil && v != nil {
		if err := out.Set([]byte("LastVoteCand"), v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (d *diskStore) FirstIndex() (uint64, error)        { return d.inner.FirstIndex() }
func (d *diskStore) LastIndex() (uint64, error)         { return d.inner.LastIndex() }
func (d *diskStore) GetLog(i uint64, l *raft.Log) error { return d.inner.GetLog(i, l) }
func (d *diskStore) StoreLog(l *raft.Log) error         { return d.StoreLogs([]*raft.Log{l}) }
func (d *diskStore) StoreLogs(logs []*raft.Log) error {
	return d.write(func() error { return d.inner.StoreLogs(logs) })
}
func (d *diskStore) DeleteRange(lo, hi uint64) error {
	return d.write(func() error { return d.inner.DeleteRange(lo, hi) })
}
func (d *diskStore) Set(k, v []byte) error {
	return d.write(func() error { return d.inner.Set(k, v) })
}
func (d *diskStore) Get(k []byte) ([]byte, error) { return d.inner.Get(k) }
func (d *diskStore) SetUint64(k []byte, v uint64) error {
	return d.write(func() error { return d.inner.SetUint64(k, v) })
}
func (d *diskStore) GetUint64(k []byte) (uint64, error) { return d.inner.GetUint64(k) }
