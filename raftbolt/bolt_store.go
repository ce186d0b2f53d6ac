// Package raftboltdb is a LogStore and StableStore for the raft library on a
// bbolt database (go.etcd.io/bbolt), with the API and the file format of
// hashicorp's raft-boltdb v2: a program that used
// github.com/hashicorp/raft-boltdb/v2 changes only its import path to
// github.com/seed48a2b68f/raft/raftbolt, and its existing database files open
// as they are (and the reverse).
//
// The file holds two buckets. "logs" maps the 8-byte big-endian log index to
// the msgpack encoding of the raft.Log; "conf" holds the StableStore's keys
// with raw values (SetUint64 writes 8 bytes big-endian). The store also
// implements raft.CommitTrackingLogStore, keeping the commit index under the
// conf key "CommitIndex", written in the same transaction as the entries.
//
// Log entries are encoded with the raft package's hand-written codec, which
// writes the same bytes as go-msgpack/v2 and reads every form go-msgpack
// reads, without reflection.
//
// With Options.Journal the log lives in a ring of journal files beside the
// database while the store is open (one fdatasync per StoreLogs instead of
// a bbolt commit), and Close moves it into the database; see
// Options.Journal for what that means after a crash. Without it (New with
// default options, NewBoltStore) every StoreLogs is one bbolt transaction,
// as in raft-boltdb.
package raftboltdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/go-metrics"
	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/internal/logcodec"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// dbFileMode is the mode of a database file this package creates.
const dbFileMode = 0o600

// journalInitialMmap is the database mapping in journal mode when
// BoltOptions does not set one (address space, not memory).
const journalInitialMmap = 256 << 20

// journalPageSize is the page size of a database created in journal mode.
// Checkpoints append entries in large transactions, and bbolt writes each
// dirty page with its own pwrite: larger pages mean fewer system calls.
// (An existing database keeps the page size it was created with; bbolt and
// boltdb read it from the file.)
const journalPageSize = 16 << 10

var (
	// Bucket names, as raft-boltdb has them.
	dbLogs = []byte("logs")
	dbConf = []byte("conf")

	// keyCommitIndex holds the commit index staged with StageCommitIndex.
	keyCommitIndex = []byte("CommitIndex")

	// ErrKeyNotFound is returned by Get and GetUint64 for a key that was
	// never set. Its text, "not found", is what raft looks for.
	ErrKeyNotFound = errors.New("not found")

	// errClosed is returned by every method after Close.
	errClosed = errors.New("raftbolt: store is closed")
)

// ErrCorrupt is wrapped by the error of any call that met a database file
// bbolt could not read: bbolt panics on a damaged page (a freelist or
// bucket page of the wrong type, counts past the page), and the store
// turns that panic into an error naming the file. After such an error from
// New the file stays open and locked until the process exits, since bbolt
// gave the store no handle to close.
var ErrCorrupt = errors.New("the database file is corrupt")

// catchCorrupt, deferred by a method that reads or writes through bbolt,
// turns a panic of bbolt into an error wrapping ErrCorrupt.
func catchCorrupt(path string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("raftbolt: %s: %w: %v", path, ErrCorrupt, p)
	}
}

// Metric keys, allocated once.
var (
	keyGetLog    = []string{"raft", "boltdb", "getLog"}
	keyStoreLogs = []string{"raft", "boltdb", "storeLogs"}
	keyBatchSize = []string{"raft", "boltdb", "logBatchSize"}
	keyPerBatch  = []string{"raft", "boltdb", "logsPerBatch"}
)

// BoltStore is a raft.LogStore, raft.StableStore and
// raft.CommitTrackingLogStore on one bbolt database file. It is safe for
// concurrent use; bbolt serialises writers and lets readers run beside them.
type BoltStore struct {
	// conn is the database handle.
	conn *bbolt.DB

	// path is the database file.
	path string

	// newTime writes AppendedAt in the msgpack timestamp form instead of
	// the legacy one (Options.MsgpackUseNewTimeFormat).
	newTime bool

	// wmu guards the write buffers, reused from one StoreLogs to the next
	// (bbolt holds the slices given to Put until the transaction commits).
	wmu  sync.Mutex
	vbuf []byte
	kbuf []byte

	// staged is the commit index given to StageCommitIndex and not yet
	// written; hasStaged says whether there is one.
	cmu       sync.Mutex
	staged    uint64
	hasStaged bool

	// j is the journal of Options.Journal, or of a journal found beside a
	// read-only database; nil otherwise.
	j        *journal
	readOnly bool
}

// Options configures New.
type Options struct {
	// Path is the database file. It is created (mode 0600) if missing.
	Path string

	// BoltOptions is passed to bbolt.Open (open timeout, read-only, ...).
	BoltOptions *bbolt.Options

	// NoSync skips the fsync after each write transaction. That is unsafe:
	// a machine crash can lose entries raft already acknowledged. Sync
	// forces one.
	NoSync bool

	// MsgpackUseNewTimeFormat writes Log.AppendedAt in msgpack's timestamp
	// form instead of the legacy MarshalBinary form that every raft version
	// reads. Decoding accepts both either way.
	MsgpackUseNewTimeFormat bool

	// Journal makes StoreLogs append its entries to a journal beside the
	// database with one fdatasync, instead of committing a bbolt
	// transaction (two fdatasyncs and the page writes). The journal is a
	// ring of files, Path + ".journal", Path + ".journal2" and so on, and
	// the log lives there while the store is open: GetLog reads entries
	// back from the files (memory holds only where each one is), and
	// compaction (DeleteRange of a prefix) frees whole files for reuse.
	// Only when all JournalFiles are in use does a background goroutine
	// move the oldest file's entries into the database. The durability
	// contract is unchanged: entries are durable when StoreLogs returns.
	//
	// Close moves every journaled entry into the database and removes the
	// journal, so that afterwards the database is a complete raft-boltdb
	// file; with a long log that takes a while (about a second per few
	// hundred MiB). After a crash the newest entries may be only in the
	// journal: open the database with this package (with or without
	// Journal; any open replays a journal it finds, and moves it into the
	// database) before handing the file to a program that uses
	// hashicorp's raft-boltdb, which does not know the journal and would
	// see a shorter log.
	Journal bool

	// In journal mode the database is mapped with 256 MiB of address space
	// from the start (unless BoltOptions sets InitialMmapSize), so that
	// checkpoints rarely remap it.
	//
	// JournalSize is the preallocated size in bytes of each journal file
	// (default 8 MiB, at most 1 GiB). A file counts as full at a point picked at random
	// between two thirds and all of it, so that the nodes of a cluster do
	// not move entries into their databases at the same moment.
	JournalSize int64

	// JournalFiles is the most journal files (default 32, at least 2): with
	// the default size, up to 256 MiB of log stays in the journal before
	// its oldest entries move into the database. Size it to hold the log
	// that snapshots leave (raft's TrailingLogs plus SnapshotThreshold
	// entries), and nothing is written twice. Files are created as needed;
	// while the ring may grow, one more is made ahead of need (written full
	// of zeros, so that syncs into it flush no file system metadata), and
	// removed by Close.
	JournalFiles int
}

func (o *Options) readOnly() bool {
	return o.BoltOptions != nil && o.BoltOptions.ReadOnly
}

// NewBoltStore opens (creating if needed) the database at path with default
// options.
func NewBoltStore(path string) (*BoltStore, error) {
	return New(Options{Path: path})
}

// New opens the database described by options. Unless it is opened
// read-only, the two buckets are created when missing. The error names the
// file; a file bbolt cannot read gives an error wrapping ErrCorrupt.
func New(options Options) (_ *BoltStore, err error) {
	var handle *bbolt.DB
	defer func() {
		if p := recover(); p != nil {
			if handle != nil {
				_ = handle.Close()
			}
			err = fmt.Errorf("raftbolt: open %s: %w: %v", options.Path, ErrCorrupt, p)
		}
	}()
	boltOptions := options.BoltOptions
	if options.Journal && (boltOptions == nil || boltOptions.InitialMmapSize == 0) {
		// A checkpoint is one large transaction; when it grows the file
		// past the mapping, bbolt remaps and first copies every node the
		// transaction touched to the heap. Map generously from the start.
		o := bbolt.DefaultOptions
		if boltOptions != nil {
			o = boltOptions
		}
		copied := *o
		copied.InitialMmapSize = journalInitialMmap
		if copied.PageSize == 0 {
			copied.PageSize = journalPageSize
		}
		boltOptions = &copied
	}
	handle, err = bbolt.Open(options.Path, dbFileMode, boltOptions)
	if err != nil {
		return nil, fmt.Errorf("raftbolt: open %s: %w", options.Path, err)
	}
	handle.NoSync = options.NoSync
	store := &BoltStore{
		conn:     handle,
		path:     options.Path,
		newTime:  options.MsgpackUseNewTimeFormat,
		readOnly: options.readOnly(),
	}
	if !options.readOnly() {
		if err := store.initialize(); err != nil {
			handle.Close()
			return nil, fmt.Errorf("raftbolt: create buckets in %s: %w", options.Path, err)
		}
	}
	if err := store.openJournal(options); err != nil {
		handle.Close()
		return nil, err
	}
	return store, nil
}

// initialize creates the buckets if they do not exist.
func (b *BoltStore) initialize() error {
	return b.conn.Update(func(tx *bbolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(dbLogs); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(dbConf)
		return err
	})
}

// Path returns the database file's path.
func (b *BoltStore) Path() string { return b.path }

// Stats returns bbolt's statistics for the database.
func (b *BoltStore) Stats() bbolt.Stats {
	return b.conn.Stats()
}

// Close closes the database. Calls after Close fail. In journal mode the
// journaled entries are first moved into the database and the journal is
// removed.
func (b *BoltStore) Close() error {
	var jerr error
	if b.j != nil {
		jerr = b.closeJournal()
	}
	return errors.Join(jerr, b.conn.Close())
}

// view runs fn in a read transaction on the named bucket. A bucket that is
// missing (a read-only open of a file raft never wrote) reads as empty.
func (b *BoltStore) view(bucket []byte, fn func(*bbolt.Bucket) error) (err error) {
	defer catchCorrupt(b.path, &err)
	tx, err := b.conn.Begin(false)
	if err != nil {
		return mapClosed(err)
	}
	defer tx.Rollback()
	return fn(tx.Bucket(bucket))
}

// mapClosed turns bbolt's "database not open" into an error naming us.
func mapClosed(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return fmt.Errorf("%w: %w", errClosed, err)
	}
	return err
}

// FirstIndex returns the lowest index in the log, 0 when it is empty.
func (b *BoltStore) FirstIndex() (uint64, error) {
	var pending uint64
	if b.j != nil {
		pending, _ = b.j.bounds()
	}
	idx, err := b.boundIndex(true)
	if err != nil || pending == 0 {
		return idx, err
	}
	if idx == 0 {
		return pending, nil
	}
	return min(idx, pending), nil
}

// LastIndex returns the highest index in the log, 0 when it is empty.
func (b *BoltStore) LastIndex() (uint64, error) {
	var pending uint64
	if b.j != nil {
		_, pending = b.j.bounds()
	}
	idx, err := b.boundIndex(false)
	if err != nil {
		return 0, err
	}
	return max(idx, pending), nil
}

// boundIndex returns the database's lowest (first) or highest index, 0
// when it holds none. Ranges that a replayed journal deleted from a
// read-only store are skipped.
func (b *BoltStore) boundIndex(first bool) (uint64, error) {
	var idx uint64
	err := b.view(dbLogs, func(bk *bbolt.Bucket) error {
		if bk == nil {
			return nil
		}
		c := bk.Cursor()
		var k []byte
		if first {
			k, _ = c.First()
		} else {
			k, _ = c.Last()
		}
		for k != nil && b.j != nil {
			s, hidden := b.j.isHidden(keyToIndex(k))
			if !hidden {
				break
			}
			var at [8]byte
			switch {
			case first && s.max == math.MaxUint64:
				k = nil
			case first:
				binary.BigEndian.PutUint64(at[:], s.max+1)
				k, _ = c.Seek(at[:])
			default:
				binary.BigEndian.PutUint64(at[:], s.min)
				c.Seek(at[:])
				k, _ = c.Prev()
			}
		}
		if k != nil {
			idx = keyToIndex(k)
		}
		return nil
	})
	return idx, err
}

// GetLog reads the entry at idx into log. A missing entry gives
// raft.ErrLogNotFound itself (hashicorp/raft compares with ==); an entry that
// cannot be decoded gives an error naming the index and the file. The
// entry's Data and Extensions are fresh memory the caller owns.
func (b *BoltStore) GetLog(idx uint64, log *raft.Log) error {
	defer metrics.MeasureSince(keyGetLog, time.Now())
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], idx)
	var val []byte
	if b.j != nil {
		// Pending entries first: a checkpoint commits them to the
		// database before it forgets them.
		var err error
		if val, err = b.j.get(idx); err != nil {
			return err
		}
		if val == nil {
			if _, hidden := b.j.isHidden(idx); hidden {
				return raft.ErrLogNotFound
			}
		}
	}
	if val == nil {
		err := b.view(dbLogs, func(bk *bbolt.Bucket) error {
			if bk != nil {
				if v := bk.Get(key[:]); v != nil {
					// bbolt's memory is valid only inside the transaction.
					val = append(make([]byte, 0, len(v)), v...)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if val == nil {
		return raft.ErrLogNotFound
	}
	if err := logcodec.Decode(val, log); err != nil {
		return fmt.Errorf("raftbolt: %s: log entry %d: %w", b.path, idx, err)
	}
	return nil
}

// StoreLog stores one entry.
func (b *BoltStore) StoreLog(log *raft.Log) error {
	return b.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores the entries in one transaction: after it returns without
// error they are all durable (unless NoSync), after an error none is. An
// entry already at an index is replaced. A commit index staged with
// StageCommitIndex is written in the same transaction.
func (b *BoltStore) StoreLogs(logs []*raft.Log) (err error) {
	defer catchCorrupt(b.path, &err)
	now := time.Now()
	for i, l := range logs {
		if l == nil {
			return fmt.Errorf("raftbolt: entry %d of %d is nil", i, len(logs))
		}
	}
	if len(logs) == 0 {
		// A staged commit index waits for entries: it must never be
		// written apart from them.
		return nil
	}
	b.cmu.Lock()
	staged, hasStaged := b.staged, b.hasStaged
	b.cmu.Unlock()

	if b.j != nil {
		if err := b.storeJournal(logs, staged, hasStaged); err != nil {
			return err
		}
		b.clearStaged(staged, hasStaged)
		metrics.AddSample(keyPerBatch, float32(len(logs)))
		metrics.MeasureSince(keyStoreLogs, now)
		return nil
	}

	b.wmu.Lock()
	defer b.wmu.Unlock()
	// Encode everything before the transaction starts, into buffers that
	// outlive it: bbolt keeps the slices until Commit.
	vbuf, kbuf := b.vbuf[:0], b.kbuf[:0]
	ends := make([]int, len(logs))
	for i, l := range logs {
		vbuf = logcodec.Encode(vbuf, l, b.newTime)
		ends[i] = len(vbuf)
		kbuf = binary.BigEndian.AppendUint64(kbuf, l.Index)
	}
	b.vbuf, b.kbuf = vbuf, kbuf

	tx, bk, err := b.beginLogs()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Raft appends in index order, so a page is not inserted into after it
	// splits: full pages take a third fewer bytes per entry than bbolt's
	// default half-full ones (three 1 KiB entries per 4 KiB page, not two).
	bk.FillPercent = 1.0
	start := 0
	for i := range logs {
		if err := bk.Put(kbuf[i*8:i*8+8], vbuf[start:ends[i]]); err != nil {
			return fmt.Errorf("raftbolt: %s: store entry %d: %w", b.path, logs[i].Index, err)
		}
		start = ends[i]
	}
	if hasStaged {
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], staged)
		if err := tx.Bucket(dbConf).Put(keyCommitIndex, v[:]); err != nil {
			return fmt.Errorf("raftbolt: %s: store commit index: %w", b.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("raftbolt: %s: commit: %w", b.path, err)
	}
	b.clearStaged(staged, hasStaged)
	if len(vbuf) > 64<<20 {
		// Do not keep a huge batch's buffer for ever.
		b.vbuf = nil
	}
	metrics.AddSample(keyPerBatch, float32(len(logs)))
	metrics.AddSample(keyBatchSize, float32(len(vbuf)))
	metrics.MeasureSince(keyStoreLogs, now)
	return nil
}

// clearStaged forgets a staged commit index that has been written, unless a
// newer one was staged meanwhile.
func (b *BoltStore) clearStaged(staged uint64, hasStaged bool) {
	if !hasStaged {
		return
	}
	b.cmu.Lock()
	if b.staged == staged {
		b.hasStaged = false
	}
	b.cmu.Unlock()
}

// DeleteRange deletes the entries from min to max inclusive, in one
// transaction. Indexes with no entry are skipped.
func (b *BoltStore) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	if b.j != nil {
		return b.deleteJournal(min, max)
	}
	return b.deleteFromDB(min, max)
}

// deleteFromDB deletes the entries from min to max from the database.
func (b *BoltStore) deleteFromDB(min, max uint64) (err error) {
	defer catchCorrupt(b.path, &err)
	var from [8]byte
	binary.BigEndian.PutUint64(from[:], min)
	tx, bk, err := b.beginLogs()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	c := bk.Cursor()
	for k, _ := c.Seek(from[:]); k != nil && keyToIndex(k) <= max; k, _ = c.Next() {
		if err := c.Delete(); err != nil {
			return fmt.Errorf("raftbolt: %s: delete entry %d: %w", b.path, keyToIndex(k), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("raftbolt: %s: commit: %w", b.path, err)
	}
	return nil
}

// Set stores val under key in the conf bucket.
func (b *BoltStore) Set(k, v []byte) (err error) {
	defer catchCorrupt(b.path, &err)
	err = b.conn.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(dbConf)
		if bk == nil {
			return errors.New("no conf bucket (opened read-only?)")
		}
		return bk.Put(k, v)
	})
	if err != nil {
		return fmt.Errorf("raftbolt: %s: set %q: %w", b.path, k, mapClosed(err))
	}
	return nil
}

// Get returns a copy of the value under key, or ErrKeyNotFound.
func (b *BoltStore) Get(k []byte) ([]byte, error) {
	var val []byte
	found := false
	err := b.view(dbConf, func(bk *bbolt.Bucket) error {
		if bk == nil {
			return nil
		}
		if v := bk.Get(k); v != nil {
			val = append([]byte(nil), v...)
			found = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrKeyNotFound
	}
	return val, nil
}

// SetUint64 stores val under key as 8 bytes big-endian.
func (b *BoltStore) SetUint64(key []byte, val uint64) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], val)
	return b.Set(key, v[:])
}

// GetUint64 returns the value under key, or 0 and ErrKeyNotFound. A value
// that is not 8 bytes long is reported as an error rather than misread.
func (b *BoltStore) GetUint64(key []byte) (uint64, error) {
	val, err := b.Get(key)
	if err != nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("raftbolt: %s: value of %q is %d bytes, want 8", b.path, key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}

// Sync fsyncs the database file, and the journal in journal mode. It is
// needed only with NoSync.
func (b *BoltStore) Sync() error {
	if b.j != nil {
		if err := b.syncJournal(); err != nil {
			return err
		}
	}
	return b.conn.Sync()
}

// StageCommitIndex records idx as committed; it is written atomically with
// the next StoreLogs (raft.CommitTrackingLogStore).
func (b *BoltStore) StageCommitIndex(idx uint64) error {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	b.staged, b.hasStaged = idx, true
	return nil
}

// GetCommitIndex returns the last commit index written, never more than the
// last index in the log; (0, nil) when none was written.
func (b *BoltStore) GetCommitIndex() (uint64, error) {
	if b.j != nil {
		if ci, ok := b.j.pendingCommit(); ok {
			last, err := b.LastIndex()
			if err != nil {
				return 0, err
			}
			return min(ci, last), nil
		}
	}
	val, err := b.Get(keyCommitIndex)
	if errors.Is(err, ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("raftbolt: %s: commit index is %d bytes, want 8", b.path, len(val))
	}
	ci := binary.BigEndian.Uint64(val)
	last, err := b.LastIndex()
	if err != nil {
		return 0, err
	}
	return min(ci, last), nil
}

// keyToIndex reads a log key. Keys are 8 bytes; a shorter one (never written
// by raft) reads as its big-endian value rather than panicking.
func keyToIndex(k []byte) uint64 {
	if len(k) == 8 {
		return binary.BigEndian.Uint64(k)
	}
	var v uint64
	for _, c := range k {
		v = v<<8 | uint64(c)
	}
	return v
}

// Interface checks.
var (
	_ raft.LogStore               = (*BoltStore)(nil)
	_ raft.StableStore            = (*BoltStore)(nil)
	_ raft.CommitTrackingLogStore = (*BoltStore)(nil)
)

// beginLogs starts a write transaction and returns it with the logs
// bucket; the caller rolls it back or commits it.
func (b *BoltStore) beginLogs() (*bbolt.Tx, *bbolt.Bucket, error) {
	tx, err := b.conn.Begin(true)
	if err != nil {
		return nil, nil, fmt.Errorf("raftbolt: %s: begin: %w", b.path, mapClosed(err))
	}
	bk := tx.Bucket(dbLogs)
	if bk == nil {
		_ = tx.Rollback()
		return nil, nil, fmt.Errorf("raftbolt: %s: no logs bucket (opened read-only?)", b.path)
	}
	return tx, bk, nil
}
