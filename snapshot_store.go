package raft

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// SnapshotMeta describes a stored snapshot.
type SnapshotMeta struct {
	// Version is the format of this metadata (not of the application's
	// data, which the application versions itself).
	Version SnapshotVersion

	// ID names the snapshot within its store; pass it to Open.
	ID string

	// Index and Term are those of the last entry the snapshot covers.
	Index uint64
	Term  uint64

	// Peers is the membership in the encoding of version 0 snapshots;
	// still filled in for readers that only know that form.
	Peers []byte

	// Configuration is the membership at Index, written at
	// ConfigurationIndex (version 1 and later).
	Configuration      Configuration
	ConfigurationIndex uint64

	// Size is the length of the snapshot's data in bytes.
	Size int64
}

// SnapshotStore keeps snapshots. FileSnapshotStore keeps them on disk; an
// application may keep them anywhere (an object store, say).
type SnapshotStore interface {
	// Create starts a snapshot of the given format version covering the
	// log up to index and term, with the membership committed at that
	// point. The data is written to the returned sink.
	Create(version SnapshotVersion, index, term uint64, configuration Configuration,
		configurationIndex uint64, trans Transport) (SnapshotSink, error)

	// List returns the snapshots held, newest (highest index) first.
	List() ([]*SnapshotMeta, error)

	// Open returns a snapshot's metadata and a reader of its data; the
	// caller closes the reader when done.
	Open(id string) (*SnapshotMeta, io.ReadCloser, error)
}

// SnapshotSink receives one snapshot's data from FSMSnapshot.Persist. Close
// completes the snapshot; Cancel abandons it.
type SnapshotSink interface {
	io.WriteCloser
	ID() string
	Cancel() error
}

// InmemSnapshotStore is a SnapshotStore in memory that keeps only the
// newest snapshot. A snapshot becomes visible to List and Open only
// once its sink is closed (hashicorp/raft shows it from Create on, half
// written).
type InmemSnapshotStore struct {
	latest      *InmemSnapshotSink
	hasSnapshot bool
	sync.RWMutex
}

// InmemSnapshotSink implements SnapshotSink in memory.
type InmemSnapshotSink struct {
	store    *InmemSnapshotStore
	meta     SnapshotMeta
	contents *bytes.Buffer
	done     bool
}

// NewInmemSnapshotStore creates a blank new InmemSnapshotStore.
func NewInmemSnapshotStore() *InmemSnapshotStore {
	return &InmemSnapshotStore{
		latest: &InmemSnapshotSink{contents: &bytes.Buffer{}},
	}
}

// Create starts a new snapshot with the given parameters. Only version 1 is
// accepted.
func (m *InmemSnapshotStore) Create(version SnapshotVersion, index, term uint64,
	configuration Configuration, configurationIndex uint64, trans Transport) (SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("unsupported snapshot version %d", version)
	}
	return &InmemSnapshotSink{
		store: m,
		meta: SnapshotMeta{
			Version:            version,
			ID:                 snapshotName(term, index),
			Index:              index,
			Term:               term,
			Peers:              encodePeers(configuration, trans),
			Configuration:      configuration.Clone(),
			ConfigurationIndex: configurationIndex,
		},
		contents: &bytes.Buffer{},
	}, nil
}

// List returns the latest snapshot taken.
func (m *InmemSnapshotStore) List() ([]*SnapshotMeta, error) {
	m.RLock()
	defer m.RUnlock()
	if !m.hasSnapshot {
		return []*SnapshotMeta{}, nil
	}
	meta := m.latest.meta
	return []*SnapshotMeta{&meta}, nil
}

// Open returns a reader over the kept snapshot's bytes.
func (m *InmemSnapshotStore) Open(id string) (*SnapshotMeta, io.ReadCloser, error) {
	m.RLock()
	defer m.RUnlock()
	if !m.hasSnapshot || m.latest.meta.ID != id {
		return nil, nil, fmt.Errorf("[ERR] snapshot: failed to open snapshot id: %s", id)
	}
	// The contents are immutable once published; readers get their own
	// reader over them.
	meta := m.latest.meta
	return &meta, io.NopCloser(bytes.NewReader(m.latest.contents.Bytes())), nil
}

// Write adds p to the snapshot.
func (s *InmemSnapshotSink) Write(p []byte) (n int, err error) {
	if s.done {
		return 0, fmt.Errorf("snapshot sink is closed")
	}
	written, err := s.contents.Write(p)
	s.meta.Size += int64(written)
	return written, err
}

// Close publishes the snapshot as the store's latest, unless a newer one
// (higher term, or same term and higher index) was published meanwhile: an
// automatic snapshot finishing after a user Restore must not hide it.
func (s *InmemSnapshotSink) Close() error {
	if s.done {
		return nil
	}
	s.done = true
	if s.store == nil {
		return nil
	}
	s.store.Lock()
	defer s.store.Unlock()
	if s.store.hasSnapshot {
		cur := s.store.latest.meta
		if cur.Term > s.meta.Term || cur.Term == s.meta.Term && cur.Index > s.meta.Index {
			return nil
		}
	}
	s.store.latest = s
	s.store.hasSnapshot = true
	return nil
}

// ID is the snapshot's ID.
func (s *InmemSnapshotSink) ID() string {
	return s.meta.ID
}

// Cancel discards the snapshot.
func (s *InmemSnapshotSink) Cancel() error {
	s.done = true
	return nil
}

// DiscardSnapshotStore accepts snapshots and keeps nothing, so the log is
// compacted with nothing to restore from. For tests only.
type DiscardSnapshotStore struct{}

// DiscardSnapshotSink is the sink of DiscardSnapshotStore: it drops
// whatever is written.
type DiscardSnapshotSink struct{}

// NewDiscardSnapshotStore returns a DiscardSnapshotStore.
func NewDiscardSnapshotStore() *DiscardSnapshotStore {
	return &DiscardSnapshotStore{}
}

// Create returns a sink that drops the data.
func (d *DiscardSnapshotStore) Create(version SnapshotVersion, index, term uint64,
	configuration Configuration, configurationIndex uint64, trans Transport) (SnapshotSink, error) {
	return &DiscardSnapshotSink{}, nil
}

// List returns no snapshots.
func (d *DiscardSnapshotStore) List() ([]*SnapshotMeta, error) {
	return nil, nil
}

// Open always fails: nothing is kept.
func (d *DiscardSnapshotStore) Open(id string) (*SnapshotMeta, io.ReadCloser, error) {
	return nil, nil, fmt.Errorf("open is not supported")
}

// Write drops b and reports it written.
func (d *DiscardSnapshotSink) Write(b []byte) (int, error) {
	return len(b), nil
}

// Close does nothing.
func (d *DiscardSnapshotSink) Close() error {
	return nil
}

// ID is always "discard".
func (d *DiscardSnapshotSink) ID() string {
	return "discard"
}

// Cancel does nothing.
func (d *DiscardSnapshotSink) Cancel() error {
	return nil
}

// CountingReader is an io.Reader that reports how many bytes it has read.
type CountingReader interface {
	io.Reader
	Count() int64
}

// ReadCloserWrapper is a reader that wraps another and gives it back.
type ReadCloserWrapper interface {
	io.ReadCloser
	WrappedReadCloser() io.ReadCloser
}
