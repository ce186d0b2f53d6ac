package raft

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// The layout of a FileSnapshotStore, as hashicorp/raft has it:
// <base>/snapshots/<term>-<index>-<msec>/{meta.json,state.bin}, written under
// the same name with ".tmp" appended and renamed when complete.
const (
	fileSnapPermTest = "permTest"
	fileSnapDir      = "snapshots"
	fileSnapMeta     = "meta.json"
	fileSnapState    = "state.bin"
	fileSnapTmp      = ".tmp"
)

// crcTable is CRC-64 with the ECMA polynomial, what meta.json's CRC uses.
var crcTable = crc64.MakeTable(crc64.ECMA)

// FileSnapshotStore is a SnapshotStore on the local disk, in hashicorp/raft's
// layout: a snapshot directory written by either library opens in the other.
//
// A snapshot becomes visible only once complete: its state file is fsynced,
// its meta.json (with the size and CRC-64 of the state) written and fsynced,
// its directory renamed from the ".tmp" name and the parent directory
// fsynced. Incomplete (".tmp") directories left by a crash are skipped by
// List and removed by ReapSnapshots; snapshots whose meta.json cannot be read
// are skipped with a warning and left alone. Open checks the size and the
// CRC of the state file.
type FileSnapshotStore struct {
	path   string
	retain int
	logger hclog.Logger

	// noSync skips the fsyncs (tests only).
	noSync bool

	// mu guards writing, the temporary directories of sinks still open,
	// which ReapSnapshots must leave alone.
	mu      sync.Mutex
	writing map[string]bool
}

// FileSnapshotSink writes one snapshot of a FileSnapshotStore.
type FileSnapshotSink struct {
	store     *FileSnapshotStore
	logger    hclog.Logger
	dir       string
	parentDir string
	meta      fileSnapshotMeta

	stateFile *os.File
	stateHash hash.Hash64
	buffered  *bufio.Writer

	closed bool
}

// fileSnapshotMeta is meta.json: the snapshot's metadata and the CRC of its
// state file.
type fileSnapshotMeta struct {
	SnapshotMeta
	CRC []byte
}

// NewFileSnapshotStoreWithLogger returns a store keeping snapshots under
// <base>/snapshots (created if missing, and checked to be writable); after
// each new snapshot only the newest retain (at least 1) are kept.
func NewFileSnapshotStoreWithLogger(base string, retain int, logger hclog.Logger) (*FileSnapshotStore, error) {
	if retain < 1 {
		return nil, fmt.Errorf("must retain at least one snapshot")
	}
	if logger == nil {
		logger = hclog.New(&hclog.LoggerOptions{
			Name:   "snapshot",
			Output: hclog.DefaultOutput,
			Level:  hclog.DefaultLevel,
		})
	}
	path := filepath.Join(base, fileSnapDir)
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot path not accessible: %w", err)
	}
	store := &FileSnapshotStore{
		path:    path,
		retain:  retain,
		logger:  logger,
		writing: make(map[string]bool),
	}
	if err := store.testPermissions(); err != nil {
		return nil, fmt.Errorf("permissions test failed: %w", err)
	}
	return store, nil
}

// NewFileSnapshotStore is NewFileSnapshotStoreWithLogger with a logger
// writing to logOutput (os.Stderr when nil).
func NewFileSnapshotStore(base string, retain int, logOutput io.Writer) (*FileSnapshotStore, error) {
	if logOutput == nil {
		logOutput = os.Stderr
	}
	return NewFileSnapshotStoreWithLogger(base, retain, hclog.New(&hclog.LoggerOptions{
		Name:   "snapshot",
		Output: logOutput,
		Level:  hclog.DefaultLevel,
	}))
}

// testPermissions creates and removes a file in the snapshot directory.
func (f *FileSnapshotStore) testPermissions() error {
	path := filepath.Join(f.path, fileSnapPermTest)
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	return os.Remove(path)
}

// Create starts a new snapshot. Only version 1 is supported.
func (f *FileSnapshotStore) Create(version SnapshotVersion, index, term uint64,
	configuration Configuration, configurationIndex uint64, trans Transport) (SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("unsupported snapshot version %d", version)
	}
	name := snapshotName(term, index)
	path := filepath.Join(f.path, name+fileSnapTmp)
	f.logger.Info("creating new snapshot", "path", path)
	if err := os.MkdirAll(path, 0o755); err != nil {
		// hashicorp/raft's message, spelling and all: alerts match it.
		f.logger.Error("failed to make snapshot directly", "error", err)
		return nil, fmt.Errorf("create snapshot directory %s: %w", path, err)
	}
	f.mu.Lock()
	f.writing[name+fileSnapTmp] = true
	f.mu.Unlock()

	sink := &FileSnapshotSink{
		store:     f,
		logger:    f.logger,
		dir:       path,
		parentDir: f.path,
		meta: fileSnapshotMeta{
			SnapshotMeta: SnapshotMeta{
				Version:            version,
				ID:                 name,
				Index:              index,
				Term:               term,
				Peers:              encodePeers(configuration, trans),
				Configuration:      configuration,
				ConfigurationIndex: configurationIndex,
			},
		},
	}
	fail := func(what string, err error) (SnapshotSink, error) {
		f.logger.Error("failed to "+what, "path", path, "error", err)
		f.doneWriting(sink.dir)
		os.RemoveAll(path)
		return nil, fmt.Errorf("snapshot %s: %s: %w", name, what, err)
	}
	if err := sink.writeMeta(); err != nil {
		return fail("write metadata", err)
	}
	fh, err := os.Create(filepath.Join(path, fileSnapState))
	if err != nil {
		return fail("create state file", err)
	}
	sink.stateFile = fh
	sink.stateHash = crc64.New(crcTable)
	sink.buffered = bufio.NewWriterSize(io.MultiWriter(fh, sink.stateHash), 64<<10)
	return sink, nil
}

// doneWriting forgets a sink's temporary directory.
func (f *FileSnapshotStore) doneWriting(dir string) {
	f.mu.Lock()
	delete(f.writing, filepath.Base(dir))
	f.mu.Unlock()
}

// List returns the usable snapshots, newest first, at most retain of them.
func (f *FileSnapshotStore) List() ([]*SnapshotMeta, error) {
	snapshots, _, err := f.getSnapshots()
	if err != nil {
		f.logger.Error("failed to get snapshots", "error", err)
		return nil, err
	}
	var out []*SnapshotMeta
	for _, meta := range snapshots {
		out = append(out, &meta.SnapshotMeta)
		if len(out) == f.retain {
			break
		}
	}
	return out, nil
}

// getSnapshots returns the complete snapshots, newest first (by term, index,
// then ID), and the temporary directories of writes that never completed
// (none of an open sink).
func (f *FileSnapshotStore) getSnapshots() (good []*fileSnapshotMeta, bad []string, err error) {
	entries, err := os.ReadDir(f.path)
	if err != nil {
		return nil, nil, fmt.Errorf("scan snapshot directory %s: %w", f.path, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		if strings.HasSuffix(name, fileSnapTmp) {
			f.mu.Lock()
			inFlight := f.writing[name]
			f.mu.Unlock()
			if !inFlight {
				f.logger.Warn("found temporary snapshot", "name", name)
				bad = append(bad, name)
			}
			continue
		}
		meta, err := f.readMeta(name)
		if err != nil {
			// Left in place: it may be a transient error, and a
			// directory that completed its rename is not ours to
			// delete on a guess.
			f.logger.Warn("failed to read metadata", "name", name, "error", err)
			continue
		}
		if meta.Version < SnapshotVersionMin || meta.Version > SnapshotVersionMax {
			f.logger.Warn("snapshot version not supported", "name", name, "version", meta.Version)
			continue
		}
		good = append(good, meta)
	}
	sort.Slice(good, func(i, j int) bool {
		a, b := good[i], good[j]
		if a.Term != b.Term {
			return a.Term > b.Term
		}
		if a.Index != b.Index {
			return a.Index > b.Index
		}
		return a.ID > b.ID
	})
	return good, bad, nil
}

// readMeta reads and checks a snapshot's meta.json. The ID inside must be
// the directory's name (Open trusts it to find the state file).
func (f *FileSnapshotStore) readMeta(name string) (*fileSnapshotMeta, error) {
	path := filepath.Join(f.path, name, fileSnapMeta)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	meta := &fileSnapshotMeta{}
	if err := json.Unmarshal(data, meta); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if meta.ID != name {
		return nil, fmt.Errorf("%s: ID %q does not match its directory", path, meta.ID)
	}
	if meta.Size < 0 {
		return nil, fmt.Errorf("%s: negative size %d", path, meta.Size)
	}
	return meta, nil
}

// Open returns the snapshot's metadata and a reader of its state. It first
// checks the state file against the size and CRC-64 in meta.json, so a
// reader is only ever handed out for an intact snapshot; a mismatch is an
// error containing "CRC mismatch" (or the sizes) and the path.
func (f *FileSnapshotStore) Open(id string) (*SnapshotMeta, io.ReadCloser, error) {
	if id == "" || id != filepath.Base(id) || strings.HasSuffix(id, fileSnapTmp) {
		return nil, nil, fmt.Errorf("invalid snapshot ID %q", id)
	}
	meta, err := f.readMeta(id)
	if err != nil {
		f.logger.Error("failed to get meta data to open snapshot", "error", err)
		return nil, nil, err
	}
	statePath := filepath.Join(f.path, id, fileSnapState)
	fh, err := os.Open(statePath)
	if err != nil {
		f.logger.Error("failed to open state file", "error", err)
		return nil, nil, err
	}
	h := crc64.New(crcTable)
	n, err := io.Copy(h, fh)
	if err != nil {
		fh.Close()
		f.logger.Error("failed to read state file", "error", err)
		return nil, nil, fmt.Errorf("read %s: %w", statePath, err)
	}
	if n != meta.Size {
		fh.Close()
		f.logger.Error("state file has the wrong size", "path", statePath, "stored", meta.Size, "actual", n)
		return nil, nil, fmt.Errorf("%s: size %d, meta.json says %d", statePath, n, meta.Size)
	}
	if computed := h.Sum(nil); !bytes.Equal(meta.CRC, computed) {
		fh.Close()
		f.logger.Error("CRC checksum failed", "stored", meta.CRC, "computed", computed)
		return nil, nil, fmt.Errorf("%s: CRC mismatch", statePath)
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		fh.Close()
		return nil, nil, fmt.Errorf("seek %s: %w", statePath, err)
	}
	return &meta.SnapshotMeta, &bufferedFile{r: bufio.NewReaderSize(fh, 64<<10), f: fh}, nil
}

// bufferedFile is an open state file read through a buffer.
type bufferedFile struct {
	r *bufio.Reader
	f *os.File
}

func (b *bufferedFile) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *bufferedFile) Close() error { return b.f.Close() }

// ReapSnapshots removes the snapshots beyond the newest retain, and the
// temporary directories of writes that never completed. A directory whose
// meta.json cannot be read is skipped by List but never removed.
func (f *FileSnapshotStore) ReapSnapshots() error {
	good, bad, err := f.getSnapshots()
	if err != nil {
		f.logger.Error("failed to get snapshots", "error", err)
		return err
	}
	var reap []string
	for i := f.retain; i < len(good); i++ {
		reap = append(reap, good[i].ID)
	}
	reap = append(reap, bad...)
	for _, name := range reap {
		path := filepath.Join(f.path, name)
		f.logger.Info("reaping snapshot", "path", path)
		if err := os.RemoveAll(path); err != nil {
			f.logger.Error("failed to reap snapshot", "path", path, "error", err)
			return fmt.Errorf("reap snapshot %s: %w", path, err)
		}
	}
	return nil
}

// ID returns the ID of the snapshot, which Open takes once it is closed.
func (s *FileSnapshotSink) ID() string {
	return s.meta.ID
}

// Write appends to the state file (buffered).
func (s *FileSnapshotSink) Write(b []byte) (int, error) {
	if s.closed {
		return 0, errors.New("write to a closed snapshot sink")
	}
	return s.buffered.Write(b)
}

// Close completes the snapshot: state fsynced, meta.json with size and CRC
// written and fsynced, directory renamed into place, parent directory
// fsynced, old snapshots reaped. On an error the temporary directory is
// removed and the snapshot does not exist. Close after Close or Cancel does
// nothing.
func (s *FileSnapshotSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	defer s.store.doneWriting(s.dir)

	fail := func(what string, err error) error {
		s.logger.Error("failed to "+what, "path", s.dir, "error", err)
		if rmErr := os.RemoveAll(s.dir); rmErr != nil {
			s.logger.Error("failed to delete temporary snapshot directory", "path", s.dir, "error", rmErr)
		}
		return fmt.Errorf("snapshot %s: %s: %w", s.meta.ID, what, err)
	}
	if err := s.finalize(); err != nil {
		return fail("finalize snapshot", err)
	}
	if err := s.writeMeta(); err != nil {
		return fail("write metadata", err)
	}
	newPath := strings.TrimSuffix(s.dir, fileSnapTmp)
	if err := os.Rename(s.dir, newPath); err != nil {
		return fail("move snapshot into place", err)
	}
	if !s.store.noSync && runtime.GOOS != "windows" {
		if err := syncDir(s.parentDir); err != nil {
			s.logger.Error("failed syncing parent directory", "path", s.parentDir, "error", err)
			return fmt.Errorf("snapshot %s: sync %s: %w", s.meta.ID, s.parentDir, err)
		}
	}
	return s.store.ReapSnapshots()
}

// syncDir fsyncs a directory, making renames and creations in it durable.
func syncDir(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Cancel abandons the snapshot and removes its temporary directory.
func (s *FileSnapshotSink) Cancel() error {
	if s.closed {
		return nil
	}
	s.closed = true
	defer s.store.doneWriting(s.dir)
	s.stateFile.Close()
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("snapshot %s: remove %s: %w", s.meta.ID, s.dir, err)
	}
	return nil
}

// finalize flushes, fsyncs and closes the state file and records its size
// and CRC.
func (s *FileSnapshotSink) finalize() error {
	if err := s.buffered.Flush(); err != nil {
		s.stateFile.Close()
		return err
	}
	if !s.store.noSync {
		if err := s.stateFile.Sync(); err != nil {
			s.stateFile.Close()
			return err
		}
	}
	stat, statErr := s.stateFile.Stat()
	if err := s.stateFile.Close(); err != nil {
		return err
	}
	if statErr != nil {
		return statErr
	}
	s.meta.Size = stat.Size()
	s.meta.CRC = s.stateHash.Sum(nil)
	return nil
}

// writeMeta writes meta.json (one line of JSON) and fsyncs it.
func (s *FileSnapshotSink) writeMeta() error {
	data, err := json.Marshal(&s.meta)
	if err != nil {
		return err
	}
	fh, err := os.Create(filepath.Join(s.dir, fileSnapMeta))
	if err != nil {
		return err
	}
	if _, err := fh.Write(append(data, '\n')); err != nil {
		fh.Close()
		return err
	}
	if !s.store.noSync {
		if err := fh.Sync(); err != nil {
			fh.Close()
			return err
		}
	}
	return fh.Close()
}
