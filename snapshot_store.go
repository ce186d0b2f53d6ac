package raft

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// SnapshotMeta is for metadata of a snapshot.
type SnapshotMeta struct {
	// Version is the version number of the snapshot metadata. This does
	// not cover the application's data in the snapshot, that should be
	// versioned separately.
	Version SnapshotVersion

	// ID is opaque to the store, and is used for opening.
	ID string

	// Index and Term store when the snapshot was taken.
	Index uint64
	Term  uint64

	// Peers is deprecated and used to support version 0 snapshots, but will
	// be populated in version 1 snapshots as well to help with upgrades.
	Peers []byte

	// Configuration and ConfigurationIndex are present in version 1
	// snapshots and later.
	Configuration      Configuration
	ConfigurationIndex uint64

	// Size is the size of the snapshot in bytes.
	Size int64
}

// SnapshotStore interface is used to allow for flexible implementations of
// snapshot storage and retrieval. For example, a client could implement a
// shared state store such as S3, allowing new nodes to restore snapshots
// without streaming from the leader.
type SnapshotStore interface {
	// Create is used to begin a snapshot at a given index and term, and
	// with the given committed configuration. The version parameter
	// controls which snapshot version to create.
	Create(version SnapshotVersion, index, term uint64, configuration Configuration,
		configurationIndex uint64, trans Transport) (SnapshotSink, error)

	// List is used to list the available snapshots in the store. It should
	// return then in descending order, with the highest index first.
	List() ([]*SnapshotMeta, error)

	// Open takes a snapshot ID and provides a ReadCloser. Once close is
	// called it is assumed the snapshot is no longer needed.
	Open(id string) (*SnapshotMeta, io.ReadCloser, error)
}

// SnapshotSink is returned by StartSnapshot. The FSM will Write state to the
// sink and call Close on completion. On error, Cancel will be invoked.
type SnapshotSink interface {
	io.WriteCloser
	ID() string
	Cancel() error
}

// InmemSnapshotStore implements the SnapshotStore interface and retains only
// the most recent snapshot. A snapshot becomes visible to List and Open only
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

// Open wraps an io.ReadCloser around the snapshot contents.
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

// Write appends the given bytes to the snapshot contents.
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

// ID returns the ID of the SnapshotMeta.
func (s *InmemSnapshotSink) ID() string {
	return s.meta.ID
}

// Cancel discards the snapshot.
func (s *InmemSnapshotSink) Cancel() error {
	s.done = true
	return nil
}

// DiscardSnapshotStore is used to successfully snapshot while always
// discarding the snapshot. This is useful for when the log should be
// truncated but no snapshot should be retained. This should never be used
// for production use, and is only suitable for testing.
type DiscardSnapshotStore struct{}

// DiscardSnapshotSink is used to fulfill the SnapshotSink interface while
// always discarding the snapshot.
type DiscardSnapshotSink struct{}

// NewDiscardSnapshotStore is used to create a new DiscardSnapshotStore.
func NewDiscardSnapshotStore() *DiscardSnapshotStore {
	return &DiscardSnapshotStore{}
}

// Create returns a valid type implementing the SnapshotSink which always
// discards the snapshot.
func (d *DiscardSnapshotStore) Create(version SnapshotVersion, index, term uint64,
	configuration Configuration, configurationIndex uint64, trans Transport) (SnapshotSink, error) {
	return &DiscardSnapshotSink{}, nil
}

// List returns successfully with a nil for []*SnapshotMeta.
func (d *DiscardSnapshotStore) List() ([]*SnapshotMeta, error) {
	return nil, nil
}

// Open returns an error since the DiscardSnapshotStore does not support
// opening snapshots.
func (d *DiscardSnapshotStore) Open(id string) (*SnapshotMeta, io.ReadCloser, error) {
	return nil, nil, fmt.Errorf("open is not supported")
}

// Write returns successfully with the length of the input byte slice to
// satisfy the WriteCloser interface.
func (d *DiscardSnapshotSink) Write(b []byte) (int, error) {
	return len(b), nil
}

// Close returns a nil error.
func (d *DiscardSnapshotSink) Close() error {
	return nil
}

// ID returns "discard" for DiscardSnapshotSink.
func (d *DiscardSnapshotSink) ID() string {
	return "discard"
}

// Cancel returns successfully with a nil error.
func (d *DiscardSnapshotSink) Cancel() error {
	return nil
}

// CountingReader is an io.Reader that reports how many bytes it has read.
type CountingReader interface {
	io.Reader
	Count() int64
}

// ReadCloserWrapper allows access to an underlying ReadCloser from a
// wrapper.
type ReadCloserWrapper interface {
	io.ReadCloser
	WrappedReadCloser() io.ReadCloser
}
