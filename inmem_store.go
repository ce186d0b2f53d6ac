package raft

import (
	"errors"
	"fmt"
	"sync"
)

// InmemStore is a LogStore and StableStore in memory, for tests: it keeps
// nothing across a restart of the process. Use raftbolt for a durable
// store.
type InmemStore struct {
	l         sync.RWMutex
	lowIndex  uint64
	highIndex uint64
	// Entries stored one after another (raft's way) live in the dense
	// range [denseBase, denseBase+denseLen), nil where deleted; any other
	// index goes to the sparse map. No index of the sparse map is ever
	// inside the dense range: the range grows only by an append, which
	// moves that index out of the map.
	//
	// The range is kept in fixed-size chunks, entry i at slot
	// denseOff+i-denseBase counted across them. One contiguous slice
	// would be copied whole each time it grew: with a million entries
	// that copy, under the garbage collector's write barriers and assist,
	// held a node's main loop for 50 ms, and every node of a cluster grew
	// at the same index (a leader lost its lease under load).
	dense     [][]*Log
	chunk     int // entries per chunk: inmemChunk (tests use small ones)
	denseOff  int // slots of dense[0] before denseBase
	denseLen  int
	denseBase uint64
	logs      map[uint64]*Log
	kv        map[string][]byte
	kvInt     map[string]uint64
}

// NewInmemStore returns an empty InmemStore (for tests).
func NewInmemStore() *InmemStore {
	return &InmemStore{
		chunk: inmemChunk,
		logs:  make(map[uint64]*Log),
		kv:    make(map[string][]byte),
		kvInt: make(map[string]uint64),
	}
}

// FirstIndex is part of LogStore.
func (i *InmemStore) FirstIndex() (uint64, error) {
	i.l.RLock()
	defer i.l.RUnlock()
	return i.lowIndex, nil
}

// LastIndex is part of LogStore.
func (i *InmemStore) LastIndex() (uint64, error) {
	i.l.RLock()
	defer i.l.RUnlock()
	return i.highIndex, nil
}

// GetLog implements the LogStore interface. A missing index gives
// ErrLogNotFound.
func (i *InmemStore) GetLog(index uint64, log *Log) error {
	i.l.RLock()
	defer i.l.RUnlock()
	l := i.lookup(index)
	if l == nil {
		return ErrLogNotFound
	}
	*log = *l
	return nil
}

// inmemChunk is the number of entries in one chunk of the dense range.
const inmemChunk = 4096

// inDense reports whether index is inside the dense range.
func (i *InmemStore) inDense(index uint64) bool {
	return index >= i.denseBase && index-i.denseBase < uint64(i.denseLen)
}

// slot returns the dense range's cell of index, which must be inside the
// range or the first index after it (with its chunk allocated).
func (i *InmemStore) slot(index uint64) **Log {
	p := i.denseOff + int(index-i.denseBase)
	return &i.dense[p/i.chunk][p%i.chunk]
}

// lookup returns the entry at index, or nil. The caller holds the lock.
func (i *InmemStore) lookup(index uint64) *Log {
	if i.inDense(index) {
		return *i.slot(index)
	}
	return i.logs[index]
}

// appendDense adds l after the dense range (starting one when empty).
func (i *InmemStore) appendDense(l *Log) {
	if i.chunk == 0 {
		i.chunk = inmemChunk // a store not made by NewInmemStore
	}
	if i.denseLen == 0 {
		i.dense, i.denseOff, i.denseBase = i.dense[:0], 0, l.Index
	}
	if p := i.denseOff + i.denseLen; p/i.chunk == len(i.dense) {
		i.dense = append(i.dense, make([]*Log, i.chunk))
	}
	i.denseLen++
	*i.slot(l.Index) = l
}

// put stores one entry. The caller holds the lock.
func (i *InmemStore) put(l *Log) {
	idx := l.Index
	switch {
	case i.denseLen == 0:
		i.appendDense(l)
	case i.inDense(idx):
		*i.slot(idx) = l
	case idx == i.denseBase+uint64(i.denseLen):
		i.appendDense(l)
	default:
		i.logs[idx] = l
		return
	}
	if len(i.logs) > 0 {
		delete(i.logs, idx)
	}
}

// trimDense drops deleted (nil) entries from both ends of the dense range
// and the chunks left empty.
func (i *InmemStore) trimDense() {
	for i.denseLen > 0 && *i.slot(i.denseBase) == nil {
		i.denseBase++
		i.denseLen--
		i.denseOff++
		if i.denseOff == i.chunk {
			i.dense[0] = nil
			i.dense = i.dense[1:]
			i.denseOff = 0
		}
	}
	for i.denseLen > 0 && *i.slot(i.denseBase + uint64(i.denseLen) - 1) == nil {
		i.denseLen--
	}
	if i.denseLen == 0 {
		clear(i.dense)
		i.dense, i.denseOff, i.denseBase = nil, 0, 0
		return
	}
	// Chunks past the last entry's.
	keep := (i.denseOff+i.denseLen-1)/i.chunk + 1
	clear(i.dense[keep:])
	i.dense = i.dense[:keep]
}

// StoreLog is part of LogStore.
func (i *InmemStore) StoreLog(log *Log) error {
	return i.StoreLogs([]*Log{log})
}

// StoreLogs implements the LogStore interface. It keeps the given pointers:
// callers must not change an entry after storing it.
func (i *InmemStore) StoreLogs(logs []*Log) error {
	i.l.Lock()
	defer i.l.Unlock()
	for _, l := range logs {
		if l == nil {
			return errors.New("nil log entry")
		}
		// Keep the pointer, as hashicorp/raft does: the library never
		// changes an entry once it is stored.
		i.put(l)
		if i.lowIndex == 0 || l.Index < i.lowIndex {
			i.lowIndex = l.Index
		}
		if l.Index > i.highIndex {
			i.highIndex = l.Index
		}
	}
	return nil
}

// DeleteRange is part of LogStore.
func (i *InmemStore) DeleteRange(min, max uint64) error {
	i.l.Lock()
	defer i.l.Unlock()
	if min == 0 {
		min = 1 // index 0 is never used
	}
	if min > max {
		return nil
	}
	if i.denseLen > 0 {
		end := i.denseBase + uint64(i.denseLen) - 1
		lo, hi := builtinMax(min, i.denseBase), builtinMin(max, end)
		for j := lo; j <= hi && lo <= hi; j++ {
			*i.slot(j) = nil
		}
		i.trimDense()
	}
	if max-min < uint64(len(i.logs)) {
		for j := min; j <= max; j++ {
			delete(i.logs, j)
		}
	} else {
		for j := range i.logs {
			if j >= min && j <= max {
				delete(i.logs, j)
			}
		}
	}
	if min <= i.lowIndex {
		i.lowIndex = max + 1
	}
	if max >= i.highIndex {
		i.highIndex = min - 1
	}
	if i.lowIndex > i.highIndex {
		i.lowIndex = 0
		i.highIndex = 0
	}
	return nil
}

// Set is part of StableStore.
func (i *InmemStore) Set(key []byte, val []byte) error {
	i.l.Lock()
	defer i.l.Unlock()
	i.kv[string(key)] = append([]byte(nil), val...)
	return nil
}

// Get implements the StableStore interface. A missing key gives an error
// whose text is "not found".
func (i *InmemStore) Get(key []byte) ([]byte, error) {
	i.l.RLock()
	defer i.l.RUnlock()
	val, ok := i.kv[string(key)]
	if !ok {
		return nil, errors.New(errTextNotFound)
	}
	return append([]byte(nil), val...), nil
}

// SetUint64 is part of StableStore.
func (i *InmemStore) SetUint64(key []byte, val uint64) error {
	i.l.Lock()
	defer i.l.Unlock()
	i.kvInt[string(key)] = val
	return nil
}

// GetUint64 implements the StableStore interface. A missing key gives
// (0, nil), as in hashicorp/raft.
func (i *InmemStore) GetUint64(key []byte) (uint64, error) {
	i.l.RLock()
	defer i.l.RUnlock()
	return i.kvInt[string(key)], nil
}

// InmemCommitTrackingStore is an InmemStore that also tracks the commit
// index, for Config.RestoreCommittedLogs in tests. As a durable store must, it
// makes a staged index visible only with the next StoreLogs.
type InmemCommitTrackingStore struct {
	*InmemStore
	mu          sync.RWMutex
	staged      uint64
	hasStaged   bool
	commitIndex uint64
}

// NewInmemCommitTrackingStore returns an empty InmemCommitTrackingStore
// (for tests).
func NewInmemCommitTrackingStore() *InmemCommitTrackingStore {
	return &InmemCommitTrackingStore{InmemStore: NewInmemStore()}
}

// StageCommitIndex records the commit index, to be written with the next
// StoreLogs.
func (i *InmemCommitTrackingStore) StageCommitIndex(index uint64) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.staged, i.hasStaged = index, true
	return nil
}

// StoreLogs stores the entries and, with them, a staged commit index.
func (i *InmemCommitTrackingStore) StoreLogs(logs []*Log) error {
	if len(logs) == 0 {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if err := i.InmemStore.StoreLogs(logs); err != nil {
		return err
	}
	if i.hasStaged {
		i.commitIndex, i.hasStaged = i.staged, false
	}
	return nil
}

// StoreLog stores one entry (and a staged commit index).
func (i *InmemCommitTrackingStore) StoreLog(log *Log) error {
	return i.StoreLogs([]*Log{log})
}

// GetCommitIndex returns the commit index written with the entries, never
// more than the last index.
func (i *InmemCommitTrackingStore) GetCommitIndex() (uint64, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	last, _ := i.InmemStore.LastIndex()
	return min(i.commitIndex, last), nil
}

// LogCache sits in front of a LogStore and keeps the most recently stored
// entries in memory (a ring of fixed capacity), so that replication reads
// of recent entries never reach the store.
type LogCache struct {
	store LogStore

	cache []*Log
	l     sync.RWMutex
}

// NewLogCache returns a LogCache of capacity entries over store.
func NewLogCache(capacity int, store LogStore) (*LogCache, error) {
	if capacity <= 0 {
		return nil, fmt.Errorf("capacity must be positive")
	}
	return &LogCache{store: store, cache: make([]*Log, capacity)}, nil
}

// IsMonotonic implements the MonotonicLogStore interface, passing through
// the wrapped store's answer.
func (c *LogCache) IsMonotonic() bool {
	return isMonotonic(c.store)
}

// GetLog returns the entry from the ring when it is there, else from the
// store.
func (c *LogCache) GetLog(idx uint64, log *Log) error {
	c.l.RLock()
	cached := c.cache[idx%uint64(len(c.cache))]
	c.l.RUnlock()
	if cached != nil && cached.Index == idx {
		*log = *cached
		return nil
	}
	return c.store.GetLog(idx, log)
}

// StoreLog stores one entry.
func (c *LogCache) StoreLog(log *Log) error {
	return c.StoreLogs([]*Log{log})
}

// StoreLogs stores the entries in the backend and, once that succeeded, in
// the ring.
func (c *LogCache) StoreLogs(logs []*Log) error {
	err := c.store.StoreLogs(logs)
	c.l.Lock()
	defer c.l.Unlock()
	if err != nil {
		// The store may hold some of them: forget what we had rather than
		// risk serving an entry that differs from the store.
		clear(c.cache)
		return err
	}
	for _, l := range logs {
		c.cache[l.Index%uint64(len(c.cache))] = l
	}
	return nil
}

// FirstIndex passes through to the store.
func (c *LogCache) FirstIndex() (uint64, error) {
	return c.store.FirstIndex()
}

// LastIndex passes through to the store.
func (c *LogCache) LastIndex() (uint64, error) {
	return c.store.LastIndex()
}

// DeleteRange clears the ring and deletes from the store.
func (c *LogCache) DeleteRange(min, max uint64) error {
	c.l.Lock()
	clear(c.cache)
	c.l.Unlock()
	return c.store.DeleteRange(min, max)
}

// builtinMin and builtinMax reach the builtins where DeleteRange's
// parameters shadow them.
func builtinMin(a, b uint64) uint64 { return min(a, b) }
func builtinMax(a, b uint64) uint64 { return max(a, b) }
