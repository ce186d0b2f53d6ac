package raftboltdb

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/internal/logcodec"
	"github.com/seed48a2b68f/raft/storetest"
	"go.etcd.io/bbolt"
)

func TestConformanceJournal(t *testing.T) {
	for _, c := range []struct {
		size  int64
		files int
	}{{0, 0}, {300, 0}, {300, 2}} {
		t.Run(fmt.Sprintf("size=%d,files=%d", c.size, c.files), func(t *testing.T) {
			storetest.Run(t, storetest.Factory{
				Open: func(t *testing.T, dir string) storetest.Store {
					s := mustOpen(t, Options{Path: filepath.Join(dir, "raft.db"), Journal: true, JournalSize: c.size, JournalFiles: c.files})
					return s
				},
				Persistent: true,
			})
		})
	}
}

// crash drops the store the way a killed process would: file handles
// closed, nothing checkpointed, the journal left as it is on disk.
// A background checkpoint that is running is let finish first.
func crash(t *testing.T, b *BoltStore) {
	t.Helper()
	if b.j != nil {
		settle(b)
		b.j.closeFiles()
	}
	if err := b.conn.Close(); err != nil {
		t.Fatal(err)
	}
}

// settle waits for a background checkpoint, and the preparation of a
// spare file, to end.
func settle(b *BoltStore) {
	b.j.wmu.Lock()
	_ = b.j.waitCheckpoint()
	b.j.waitSpare()
	b.j.wmu.Unlock()
}

// activeFile is the journal file being written.
func activeFile(b *BoltStore) *jfile { return b.j.active() }

func logAt(idx, term uint64, data string) *raft.Log {
	return &raft.Log{Index: idx, Term: term, Type: raft.LogCommand, Data: []byte(data)}
}

func mustStoreLogs(t *testing.T, s *BoltStore, logs ...*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
}

func wantLog(t *testing.T, s *BoltStore, idx, term uint64, data string) {
	t.Helper()
	var l raft.Log
	if err := s.GetLog(idx, &l); err != nil {
		t.Fatalf("GetLog(%d): %v", idx, err)
	}
	if l.Index != idx || l.Term != term || string(l.Data) != data {
		t.Fatalf("GetLog(%d) = index %d term %d data %q, want term %d data %q", idx, l.Index, l.Term, l.Data, term, data)
	}
}

func wantBounds(t *testing.T, s *BoltStore, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if f != first || l != last {
		t.Fatalf("bounds %d..%d, want %d..%d", f, l, first, last)
	}
}

func journalExists(t *testing.T, dbPath string) bool {
	t.Helper()
	return journalFiles(t, dbPath) > 0
}

// TestJournalWritesSkipTheDatabase pins the point of journal mode: a
// StoreLogs changes nothing in the database file until a checkpoint.
func TestJournalWritesSkipTheDatabase(t *testing.T) {
	s := openTemp(t, Options{Journal: true})
	st := s.conn.Stats()
	before := st.TxStats.GetWrite()
	for i := uint64(1); i <= 50; i++ {
		mustStoreLogs(t, s, logAt(i, 1, "x"))
	}
	st = s.conn.Stats()
	if after := st.TxStats.GetWrite(); after != before {
		t.Fatalf("%d page writes to the database for journaled entries", after-before)
	}
	wantBounds(t, s, 1, 50)
	wantLog(t, s, 17, 1, "x")
}

func TestJournalReplayAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true})
	mustStoreLogs(t, s, logAt(1, 1, "a"), logAt(2, 1, "b"))
	if err := s.StageCommitIndex(2); err != nil {
		t.Fatal(err)
	}
	mustStoreLogs(t, s, logAt(3, 2, "c"))
	crash(t, s)

	// A plain open (no Journal) replays the journal into the database and
	// removes it.
	s, err := NewBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	wantBounds(t, s, 1, 3)
	wantLog(t, s, 1, 1, "a")
	wantLog(t, s, 3, 2, "c")
	if ci, err := s.GetCommitIndex(); err != nil || ci != 2 {
		t.Fatalf("commit index %d, %v; want 2", ci, err)
	}
	if journalExists(t, path) {
		t.Fatal("a plain open left the journal behind")
	}
	if v := rawValue(t, s, dbLogs, key(3)); v == nil {
		t.Fatal("entry 3 is not in the database file after the replay")
	}
	s.Close()
}

func TestJournalCloseLeavesACompleteDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true})
	for i := uint64(1); i <= 100; i++ {
		mustStoreLogs(t, s, logAt(i, 3, fmt.Sprint(i)))
	}
	if err := s.StageCommitIndex(99); err != nil {
		t.Fatal(err)
	}
	mustStoreLogs(t, s, logAt(101, 3, "101"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if journalExists(t, path) {
		t.Fatal("Close left the journal behind")
	}
	// Read the file as raft-boltdb would: bbolt and the two buckets only.
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(dbLogs).Stats().KeyN; n != 101 {
			return fmt.Errorf("%d entries in the logs bucket, want 101", n)
		}
		v := tx.Bucket(dbLogs).Get(key(57))
		var l raft.Log
		if err := decodeReference(v, &l); err != nil {
			return err
		}
		if l.Index != 57 || string(l.Data) != "57" {
			return fmt.Errorf("entry 57 reads as %+v", l)
		}
		if ci := tx.Bucket(dbConf).Get(keyCommitIndex); binary.BigEndian.Uint64(ci) != 99 {
			return fmt.Errorf("commit index %x, want 99", ci)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestJournalTornTailDropped: a final record cut short (the process died
// inside an unacknowledged write) ends the journal; what came before is
// replayed.
func TestJournalTornTailDropped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true})
	mustStoreLogs(t, s, logAt(1, 1, "a"))
	mustStoreLogs(t, s, logAt(2, 1, "b"))
	tornAt := activeFile(s).off
	mustStoreLogs(t, s, logAt(3, 1, strings.Repeat("c", 100)))
	end := activeFile(s).off
	jpath := activeFile(s).path
	crash(t, s)

	// Keep the first half of the last record; zeros follow, as in the
	// preallocated file.
	f, err := os.OpenFile(jpath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	mid := tornAt + (end-tornAt)/2
	if _, err := f.WriteAt(make([]byte, end-mid), mid); err != nil {
		t.Fatal(err)
	}
	f.Close()

	s = openTemp(t, Options{Path: path, Journal: true})
	wantBounds(t, s, 1, 2)
	wantLog(t, s, 2, 1, "b")
	mustStoreLogs(t, s, logAt(3, 2, "new"))
	wantLog(t, s, 3, 2, "new")
}

// TestJournalStaleRecordsIgnored: a journal file that starts over keeps
// the records of its previous generation further on; a replay must stop at
// the first of them. Entries are written again after a conflict so that
// stale records hold other values for the same indexes.
func TestJournalStaleRecordsIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	opts := Options{Path: path, Journal: true, JournalSize: 300, JournalFiles: 3}
	s := mustOpen(t, opts)
	for i := uint64(1); i <= 40; i++ {
		mustStoreLogs(t, s, logAt(i, 1, fmt.Sprintf("old%02d", i)))
	}
	// A follower replacing a conflicting suffix with entries of the same
	// size, so that records of both terms line up in the reused files.
	if err := s.DeleteRange(21, 40); err != nil {
		t.Fatal(err)
	}
	for i := uint64(21); i <= 30; i++ {
		mustStoreLogs(t, s, logAt(i, 2, fmt.Sprintf("new%02d", i)))
	}
	if s.j.nextGen < 8 {
		t.Fatalf("only %d generations: no file was reused, the test no longer sets up its case", s.j.nextGen-1)
	}
	crash(t, s)

	s = openTemp(t, opts)
	wantBounds(t, s, 1, 30)
	wantLog(t, s, 20, 1, "old20")
	wantLog(t, s, 21, 2, "new21")
	wantLog(t, s, 30, 2, "new30")
	var l raft.Log
	if err := s.GetLog(31, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(31) after the replay: %v, want not found", err)
	}
}

// TestJournalDeletedSuffixStaysDeleted: a conflicting suffix that a
// follower deletes and only partly writes again must not come back after a
// crash; a replay that brought entries 6..8 back would hand the FSM
// entries of a deposed leader. The deletion is a record in the journal.
func TestJournalDeletedSuffixStaysDeleted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true})
	for i := uint64(1); i <= 8; i++ {
		mustStoreLogs(t, s, logAt(i, 1, "x"))
	}
	if err := s.DeleteRange(5, 8); err != nil {
		t.Fatal(err)
	}
	mustStoreLogs(t, s, logAt(5, 2, "y"))
	wantBounds(t, s, 1, 5)
	crash(t, s)

	s = openTemp(t, Options{Path: path, Journal: true})
	wantBounds(t, s, 1, 5)
	wantLog(t, s, 5, 2, "y")
	var l raft.Log
	if err := s.GetLog(6, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(6): %v, want not found", err)
	}
}

// TestJournalMalformedRecordIsAnError: a record whose checksum holds but
// whose contents do not parse is not a torn write; opening fails with an
// error naming the journal rather than guessing.
func TestJournalMalformedRecordIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true})
	gen, jpath := activeFile(s).gen, activeFile(s).path
	crash(t, s)
	payload := []byte{0, 0, 0, 0, 9} // no flags, 9 entries, no bytes for them
	rec := make([]byte, recordHeaderSize, recordHeaderSize+len(payload))
	rec = append(rec, payload...)
	binary.BigEndian.PutUint32(rec[0:], uint32(len(payload)))
	binary.BigEndian.PutUint64(rec[8:], gen)
	binary.BigEndian.PutUint32(rec[4:], recordCRC(rec[8:16], payload))
	f, err := os.OpenFile(jpath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(rec, journalHeaderSize); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = New(Options{Path: path, Journal: true})
	if err == nil || !strings.Contains(err.Error(), journalSuffix) || !strings.Contains(err.Error(), "9 entries") {
		t.Fatalf("open with a malformed record: %v", err)
	}
}

func TestJournalReadOnlyOpenSeesJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true})
	mustStoreLogs(t, s, logAt(1, 1, "a"), logAt(2, 1, "b"))
	crash(t, s)
	ro := openTemp(t, Options{Path: path, BoltOptions: &bbolt.Options{ReadOnly: true}})
	wantBounds(t, ro, 1, 2)
	wantLog(t, ro, 2, 1, "b")
	if err := ro.StoreLogs([]*raft.Log{logAt(3, 1, "c")}); err == nil {
		t.Fatal("a read-only store took a write")
	}
	ro.Close()
	if !journalExists(t, path) {
		t.Fatal("a read-only open removed the journal")
	}
}

// TestJournalCheckpointsWhenFull: with a small journal, entries move into
// the database as it fills, and the store reads the same throughout.
func TestJournalCheckpointsWhenFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true, JournalSize: 1024, JournalFiles: 2})
	for i := uint64(1); i <= 200; i++ {
		mustStoreLogs(t, s, logAt(i, 1, fmt.Sprint(i)))
	}
	settle(s)
	first, last := s.j.bounds()
	if first <= 1 || last != 200 {
		t.Fatalf("pending %d..%d: no checkpoint happened", first, last)
	}
	if v := rawValue(t, s, dbLogs, key(1)); v == nil {
		t.Fatal("entry 1 never reached the database")
	}
	wantBounds(t, s, 1, 200)
	for i := uint64(1); i <= 200; i++ {
		wantLog(t, s, i, 1, fmt.Sprint(i))
	}
	// Compaction from the front does not touch the pending entries, unless
	// its deletion record did not fit the active file: then the journal
	// rotated and, the ring being full, moved the oldest file's entries
	// into the database (the fill point is random).
	gen := s.j.nextGen
	if err := s.DeleteRange(1, first-1); err != nil {
		t.Fatal(err)
	}
	if f, l := s.j.bounds(); s.j.nextGen == gen && (f != first || l != last) {
		t.Fatalf("pending %d..%d after compacting below them, want %d..%d", f, l, first, last)
	}
	wantBounds(t, s, first, 200)
	crash(t, s)
	s = openTemp(t, Options{Path: path, Journal: true, JournalSize: 1024, JournalFiles: 2})
	wantBounds(t, s, first, 200)
	wantLog(t, s, 200, 1, "200")
}

// TestJournalNoGapDuringCheckpoint reads beside a writer that checkpoints
// often: every index up to a LastIndex the reader has seen must be there.
// A reader that looked in the database before the pending entries could
// miss an entry moving from one to the other.
func TestJournalNoGapDuringCheckpoint(t *testing.T) {
	s := openTemp(t, Options{Journal: true, JournalSize: 600, JournalFiles: 2, NoSync: true})
	const n = 3000
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var l raft.Log
			for !done.Load() {
				last, err := s.LastIndex()
				if err != nil {
					errs <- err
					return
				}
				for i := max(last, 5) - 4; i <= last; i++ {
					if err := s.GetLog(i, &l); err != nil {
						errs <- fmt.Errorf("GetLog(%d) with last index %d: %w", i, last, err)
						return
					}
				}
			}
		}()
	}
	for i := uint64(1); i <= n; i++ {
		if err := s.StoreLogs([]*raft.Log{logAt(i, 1, "v")}); err != nil {
			t.Fatal(err)
		}
	}
	done.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestJournalBrokenAfterFailedWrite: once a journal write fails, later
// writes fail too rather than claiming durability the kernel may not
// give; a reopen replays what is durable.
func TestJournalBrokenAfterFailedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true})
	mustStoreLogs(t, s, logAt(1, 1, "a"))
	// Make the next write fail: a read-only handle in place of the file.
	good := activeFile(s).f
	ro, err := os.Open(activeFile(s).path)
	if err != nil {
		t.Fatal(err)
	}
	activeFile(s).f = ro
	if err := s.StoreLogs([]*raft.Log{logAt(2, 1, "b")}); err == nil {
		t.Fatal("write to a read-only journal handle succeeded")
	}
	activeFile(s).f = good
	ro.Close()
	if err := s.StoreLogs([]*raft.Log{logAt(2, 1, "b")}); !errors.Is(err, errJournalBroken) {
		t.Fatalf("write after a failed one: %v", err)
	}
	// Close reports the earlier failure (nothing is lost: the write that
	// failed was refused) and leaves the journal for the next open.
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "next open") {
		t.Fatalf("Close after a failed write: %v, want the earlier failure", err)
	}
	if !journalExists(t, path) {
		t.Fatal("Close removed a journal it could not checkpoint")
	}
	s = openTemp(t, Options{Path: path, Journal: true})
	wantBounds(t, s, 1, 1)
	wantLog(t, s, 1, 1, "a")
}

// FuzzJournalLoad opens a database beside an arbitrary journal file: it
// must never panic, and a successful open gives a consistent store.
func FuzzJournalLoad(f *testing.F) {
	dir := f.TempDir()
	seedPath := filepath.Join(dir, "seed.db")
	s, err := New(Options{Path: seedPath, Journal: true})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{logAt(1, 1, "a"), logAt(2, 1, "b")}); err != nil {
		f.Fatal(err)
	}
	if err := s.StageCommitIndex(1); err != nil {
		f.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{logAt(3, 2, "c")}); err != nil {
		f.Fatal(err)
	}
	// A deletion record, and an entry written again after it.
	if err := s.DeleteRange(3, 3); err != nil {
		f.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{logAt(3, 3, "d")}); err != nil {
		f.Fatal(err)
	}
	end := activeFile(s).off
	s.j.closeFiles()
	s.conn.Close()
	data, err := os.ReadFile(seedPath + journalSuffix)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[:end])
	f.Add(data[:journalHeaderSize])
	f.Add([]byte(journalMagic))
	f.Add([]byte{})
	path := filepath.Join(dir, "fuzz.journal")
	f.Fuzz(func(t *testing.T, journal []byte) {
		if err := os.WriteFile(path, journal, 0o600); err != nil {
			t.Fatal(err)
		}
		jf := &jfile{path: path, set: newPendingSet()}
		var err error
		if jf.f, err = os.Open(path); err != nil {
			t.Fatal(err)
		}
		defer jf.f.Close()
		if _, err := readJournalFile(jf, nil, nil); err != nil {
			return
		}
		j := jf.set
		if (j.first == 0) != (j.live() == 0) || j.first > j.last {
			t.Fatalf("pending bounds %d..%d with %d entries", j.first, j.last, j.live())
		}
		if jf.off < journalHeaderSize || jf.off > int64(len(journal)) && jf.off != journalHeaderSize {
			t.Fatalf("replay ended at offset %d of %d bytes", jf.off, len(journal))
		}
		for pos, e := range j.ents {
			if !j.newest(pos) {
				continue
			}
			var l raft.Log
			if err := logcodec.Decode(journal[e.off:e.end()], &l); err != nil {
				t.Fatalf("pending entry %d does not decode: %v", e.index, err)
			}
			if l.Index != e.index || e.index < j.first || e.index > j.last {
				t.Fatalf("pending entry filed as %d holds %d (bounds %d..%d)", e.index, l.Index, j.first, j.last)
			}
		}
	})
}

// decodeReference decodes an entry the way raft-boltdb v2 does.
func decodeReference(v []byte, l *raft.Log) error {
	h := codec.MsgpackHandle{}
	return codec.NewDecoderBytes(v, &h).Decode(l)
}

// TestJournalBothFilesReplayOldestFirst: a crash while the full file's
// background checkpoint has not finished leaves records in both files; the
// replay must apply the sealed file's before the active file's, or an
// entry rewritten after the switch would come back with its old value.
func TestJournalBothFilesReplayOldestFirst(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	// A file counts as full somewhere past two thirds of its size: 800
	// bytes leave room for the three records after the switch, so no
	// second switch waits for the blocked checkpoint.
	s := mustOpen(t, Options{Path: path, Journal: true, JournalSize: 800, JournalFiles: 2})
	mustStoreLogs(t, s, logAt(1, 1, "a"))
	mustStoreLogs(t, s, logAt(2, 1, "old"))
	// Hold the database's writer lock so the background checkpoint cannot
	// move the sealed file's entries into it.
	tx, err := s.conn.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	sealedPath := activeFile(s).path
	for i := 0; activeFile(s).path == sealedPath; i++ {
		if i > 50 {
			t.Fatal("the journal never switched files")
		}
		mustStoreLogs(t, s, logAt(2, 1, strings.Repeat("o", 60)))
	}
	// Entry 2 rewritten in the new file (a store may replace an entry).
	mustStoreLogs(t, s, logAt(2, 2, "new"))
	mustStoreLogs(t, s, logAt(3, 2, "c"))
	// The crash: the database and the journal files as they are now (the
	// blocked checkpoint has written nothing) are copied aside; then the
	// checkpoint is let go and the store closes, and the copy reopens.
	crashed := filepath.Join(t.TempDir(), "raft.db")
	names := []string{path}
	for _, jf := range s.j.ring {
		names = append(names, jf.path)
	}
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(crashed+strings.TrimPrefix(name, path), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(crashed + strings.TrimPrefix(sealedPath, path))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("old")) {
		t.Fatal("the sealed file does not hold the old value: the test no longer sets up its case")
	}

	s = openTemp(t, Options{Path: crashed, Journal: true, JournalSize: 400})
	wantBounds(t, s, 1, 3)
	wantLog(t, s, 1, 1, "a")
	wantLog(t, s, 2, 2, "new")
	wantLog(t, s, 3, 2, "c")
}

// TestJournalWritesContinueDuringCheckpoint: while the database is busy
// (its writer lock held), writes still complete until both files are
// full; the full file's entries reach the database once it is free.
func TestJournalWritesContinueDuringCheckpoint(t *testing.T) {
	s := openTemp(t, Options{Journal: true, JournalSize: 1 << 10, JournalFiles: 2})
	tx, err := s.conn.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	sealedPath := activeFile(s).path
	i := uint64(1)
	for ; activeFile(s).path == sealedPath; i++ {
		mustStoreLogs(t, s, logAt(i, 1, "x"))
	}
	// The background checkpoint is blocked; the next writes go on.
	for k := 0; k < 5; k++ {
		mustStoreLogs(t, s, logAt(i, 1, "y"))
		i++
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	settle(s)
	if v := rawValue(t, s, dbLogs, key(1)); v == nil {
		t.Fatal("the sealed file's entries did not reach the database")
	}
	wantBounds(t, s, 1, i-1)
}

// TestJournalCheckpointInChunks: a pending set larger than one checkpoint
// transaction reaches the database whole, with its commit index.
func TestJournalCheckpointInChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true, JournalSize: 8 << 20})
	const n = 3 * checkpointChunkBytes / 1024
	big := strings.Repeat("v", 1024)
	for i := uint64(1); i <= n; i++ {
		mustStoreLogs(t, s, logAt(i, 1, big))
	}
	if err := s.StageCommitIndex(n - 1); err != nil {
		t.Fatal(err)
	}
	mustStoreLogs(t, s, logAt(n+1, 1, big))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, Options{Path: path})
	wantBounds(t, s, 1, n+1)
	for _, i := range []uint64{1, n / 3, n / 2, n, n + 1} {
		if v := rawValue(t, s, dbLogs, key(i)); v == nil {
			t.Fatalf("entry %d is not in the database", i)
		}
	}
	if ci, err := s.GetCommitIndex(); err != nil || ci != n-1 {
		t.Fatalf("commit index %d, %v; want %d", ci, err, n-1)
	}
}

// TestStoreFillsPages: the log's leaf pages are filled (entries arrive in
// index order, so a page is never inserted into after it splits), in a
// journal's checkpoint and in a plain StoreLogs: fewer bytes per entry to
// write and sync. At bbolt's default fill, or the 0.9 the checkpoint used
// before, pages of 1 KiB entries are at most 90% used.
func TestStoreFillsPages(t *testing.T) {
	// Three 1 KiB entries fill 80% of a plain database's 4 KiB page (a
	// fourth does not fit; half-full pages hold two, 53%); fifteen fill a
	// journal-mode database's 16 KiB page (at 0.9, thirteen: 89%).
	for _, c := range []struct {
		journal bool
		minUsed float64
	}{{true, 0.95}, {false, 0.75}} {
		t.Run(fmt.Sprintf("journal=%v", c.journal), func(t *testing.T) {
			testStoreFillsPages(t, c.journal, c.minUsed)
		})
	}
}

func testStoreFillsPages(t *testing.T, journal bool, minUsed float64) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: journal, JournalSize: 8 << 20})
	const n = 3000
	big := strings.Repeat("v", 1024)
	for i := uint64(1); i <= n; i += 100 {
		var logs []*raft.Log
		for k := i; k < i+100; k++ {
			logs = append(logs, logAt(k, 1, big))
		}
		mustStoreLogs(t, s, logs...)
	}
	if err := s.Close(); err != nil { // in journal mode, moves everything into the database
		t.Fatal(err)
	}
	s = openTemp(t, Options{Path: path})
	var st bbolt.BucketStats
	if err := s.conn.View(func(tx *bbolt.Tx) error {
		st = tx.Bucket(dbLogs).Stats()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if st.KeyN != n {
		t.Fatalf("%d entries in the database, want %d", st.KeyN, n)
	}
	// The last page of each transaction may be part full.
	if used := float64(st.LeafInuse) / float64(st.LeafAlloc); used < minUsed {
		t.Fatalf("leaf pages %.1f%% used (%d of %d bytes in %d pages), want at least %.0f%%",
			100*used, st.LeafInuse, st.LeafAlloc, st.LeafPageN, 100*minUsed)
	}
}

// TestJournalPageSize: a database created in journal mode gets larger pages
// (fewer writes per checkpoint); one created earlier keeps its own page size
// when opened in journal mode, with its entries, and either opens without
// journal mode afterwards.
func TestJournalPageSize(t *testing.T) {
	dir := t.TempDir()
	pageSize := func(s *BoltStore) int { return s.conn.Info().PageSize }

	fresh := filepath.Join(dir, "fresh.db")
	s := openTemp(t, Options{Path: fresh, Journal: true})
	if got := pageSize(s); got != journalPageSize {
		t.Fatalf("new journal-mode database: page size %d, want %d", got, journalPageSize)
	}
	mustStoreLogs(t, s, logAt(1, 1, "a"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, Options{Path: fresh})
	if got := pageSize(s); got != journalPageSize {
		t.Fatalf("reopened without journal mode: page size %d, want %d", got, journalPageSize)
	}
	wantLog(t, s, 1, 1, "a")

	old := filepath.Join(dir, "old.db")
	s = openTemp(t, Options{Path: old})
	defaultSize := pageSize(s)
	if defaultSize == journalPageSize {
		t.Fatalf("plain database already has the journal page size %d", defaultSize)
	}
	mustStoreLogs(t, s, logAt(1, 1, "b"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, Options{Path: old, Journal: true})
	if got := pageSize(s); got != defaultSize {
		t.Fatalf("existing database in journal mode: page size %d, want its own %d", got, defaultSize)
	}
	wantLog(t, s, 1, 1, "b")
	mustStoreLogs(t, s, logAt(2, 1, "c"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTemp(t, Options{Path: old})
	wantLog(t, s, 2, 1, "c")
}

// TestPendingSetLookup: a set of consecutive entries finds them by offset
// (no map); an index written again or a gap switches it to the map, after
// which every index still finds its newest value and older values are
// marked superseded for the checkpoint.
func TestPendingSetLookup(t *testing.T) {
	if n := unsafe.Sizeof(pendingEntry{}); n != 16 {
		t.Fatalf("an index entry takes %d bytes, want 16 (a full ring of small entries holds millions)", n)
	}
	p := newPendingSet()
	var file []byte // what the entries' offsets point into
	put := func(idx uint64, v string) {
		off := int64(len(file))
		file = append(file, v...)
		p.put(idx, off, int64(len(file)))
	}
	want := func(idx uint64, v string) {
		t.Helper()
		pos, ok := p.lookup(idx)
		if v == "" {
			if ok {
				t.Fatalf("index %d found at %d, want absent", idx, pos)
			}
			return
		}
		if !ok {
			t.Fatalf("index %d not found, want %q", idx, v)
		}
		e := p.ents[pos]
		if got := string(file[e.off:e.end()]); got != v || !p.newest(pos) {
			t.Fatalf("index %d: %q (newest %v), want %q", idx, got, p.newest(pos), v)
		}
	}
	put(5, "a")
	put(6, "b")
	put(7, "c")
	if !p.dense || len(p.latest) != 0 {
		t.Fatal("consecutive entries built the map")
	}
	want(4, "")
	want(5, "a")
	want(7, "c")
	want(8, "")

	put(6, "B") // written again
	if p.dense {
		t.Fatal("a rewritten index left the set dense")
	}
	want(5, "a")
	want(6, "B")
	want(7, "c")
	if p.newest(1) {
		t.Fatal("the superseded value of index 6 still counts as newest")
	}
	put(10, "d") // a gap
	want(10, "d")
	want(9, "")
	if p.first != 5 || p.last != 10 {
		t.Fatalf("bounds %d-%d, want 5-10", p.first, p.last)
	}

	p.reset()
	if !p.dense || len(p.latest) != 0 {
		t.Fatal("reset did not make the set dense again")
	}
	put(3, "x")
	want(3, "x")
	put(5, "y") // a gap right away
	want(5, "y")
	want(4, "")
}

// journalFiles counts the journal files beside the database.
func journalFiles(t *testing.T, dbPath string) int {
	t.Helper()
	names, err := os.ReadDir(filepath.Dir(dbPath))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, de := range names {
		if journalNum(de.Name(), filepath.Base(dbPath)) != 0 {
			n++
		}
	}
	return n
}

// TestJournalCompactionReusesFiles pins the journal as the log's home: a
// log that compaction keeps shorter than the ring lives in the journal
// files only, which compaction frees for reuse. Nothing reaches the
// database, and the number of files stays bounded.
func TestJournalCompactionReusesFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	opts := Options{Path: path, Journal: true, JournalSize: 2 << 10, JournalFiles: 4}
	s := openTemp(t, opts)
	const trailing = 20
	for i := uint64(1); i <= 2000; i++ {
		mustStoreLogs(t, s, logAt(i, 1, fmt.Sprintf("v%d", i)))
		if i%50 == 0 {
			// A snapshot at i, then compaction up to i-trailing.
			if err := s.DeleteRange(1, i-trailing); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := journalFiles(t, path); n > 4 {
		t.Fatalf("%d journal files, want at most 4", n)
	}
	if s.j.nextGen < 20 {
		t.Fatalf("only %d generations: the files were not reused", s.j.nextGen-1)
	}
	if v := rawValue(t, s, dbLogs, key(2000-trailing-10)); v != nil {
		t.Fatal("a live entry reached the database: it was written twice")
	}
	if first, _ := s.j.bounds(); first != 2000-trailing+1 {
		t.Fatalf("journal holds entries from %d, want %d", first, 2000-trailing+1)
	}
	wantBounds(t, s, 2000-trailing+1, 2000)
	wantLog(t, s, 1990, 1, "v1990")
	crash(t, s)
	s = openTemp(t, opts)
	wantBounds(t, s, 2000-trailing+1, 2000)
	wantLog(t, s, 1990, 1, "v1990")
}

// TestJournalFullRingCheckpointsOldest: without compaction the ring fills;
// then the oldest file's entries move into the database, one file ahead of
// the writer, and the number of files stays at the limit.
func TestJournalFullRingCheckpointsOldest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	opts := Options{Path: path, Journal: true, JournalSize: 1 << 10, JournalFiles: 3}
	s := openTemp(t, opts)
	for i := uint64(1); i <= 500; i++ {
		mustStoreLogs(t, s, logAt(i, 1, fmt.Sprint(i)))
	}
	settle(s)
	if n := journalFiles(t, path); n != 3 {
		t.Fatalf("%d journal files, want 3", n)
	}
	first, _ := s.j.bounds()
	if first <= 1 || rawValue(t, s, dbLogs, key(first-1)) == nil {
		t.Fatalf("journal from %d, and entry %d not in the database", first, first-1)
	}
	wantBounds(t, s, 1, 500)
	for i := uint64(1); i <= 500; i += 7 {
		wantLog(t, s, i, 1, fmt.Sprint(i))
	}
	crash(t, s)
	s = openTemp(t, opts)
	wantBounds(t, s, 1, 500)
	wantLog(t, s, 499, 1, "499")
}

// TestJournalReadOnlyHidesReplayedDeletion: a crash between a deletion's
// record and its transaction leaves the database holding the deleted
// entries; a read-only open, which cannot write, must still not show them
// (nor count them in FirstIndex and LastIndex), and the next writable open
// deletes them.
func TestJournalReadOnlyHidesReplayedDeletion(t *testing.T) {
	// j is the first entry in the journal, n the last written; the
	// database holds 1..j-1 (j is 25 to 40).
	cases := []struct {
		name   string
		lo, hi func(j, n uint64) uint64
	}{
		{"middle", func(j, n uint64) uint64 { return 6 }, func(j, n uint64) uint64 { return n - 3 }},
		{"prefix", func(j, n uint64) uint64 { return 1 }, func(j, n uint64) uint64 { return n - 3 }},
		{"suffix", func(j, n uint64) uint64 { return j - 5 }, func(j, n uint64) uint64 { return n }},
		{"all", func(j, n uint64) uint64 { return 1 }, func(j, n uint64) uint64 { return n }},
		{"database only", func(j, n uint64) uint64 { return 2 }, func(j, n uint64) uint64 { return j - 3 }},
		{"journal only", func(j, n uint64) uint64 { return n - 1 }, func(j, n uint64) uint64 { return n }},
		{"past the end", func(j, n uint64) uint64 { return n - 5 }, func(j, n uint64) uint64 { return n + 50 }},
		{"one entry", func(j, n uint64) uint64 { return 2 }, func(j, n uint64) uint64 { return 2 }},
		{"unbounded", func(j, n uint64) uint64 { return 1 }, func(j, n uint64) uint64 { return math.MaxUint64 }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "raft.db")
			opts := Options{Path: path, Journal: true, JournalSize: 4 << 10, JournalFiles: 2}
			s := mustOpen(t, opts)
			n := uint64(0)
			for first := activeFile(s); activeFile(s) == first; {
				n++
				mustStoreLogs(t, s, logAt(n, 1, fmt.Sprint(n)))
			}
			j := n
			for range 20 {
				n++
				mustStoreLogs(t, s, logAt(n, 1, fmt.Sprint(n)))
			}
			settle(s)
			if first, last := s.j.bounds(); first != j || last != n || rawValue(t, s, dbLogs, key(j-1)) == nil || j < 12 {
				t.Fatalf("journal %d..%d, database up to %d: the test no longer sets up its case", first, last, j-1)
			}
			lo, hi := c.lo(j, n), c.hi(j, n)
			// The deletion's record, then the crash before its transaction.
			s.j.wmu.Lock()
			rec := s.j.encodeDelete(s.j.active().gen, lo, hi)
			if err := s.makeRoom(rec); err != nil {
				t.Fatal(err)
			}
			if err := s.j.waitCheckpoint(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.j.append(rec); err != nil {
				t.Fatal(err)
			}
			s.j.wmu.Unlock()
			crash(t, s)

			var first, last uint64
			for i := uint64(1); i <= n; i++ {
				if i < lo || i > hi {
					first, last = cmp.Or(first, i), i
				}
			}
			check := func(s *BoltStore) {
				t.Helper()
				wantBounds(t, s, first, last)
				var l raft.Log
				for i := uint64(1); i <= n; i++ {
					err := s.GetLog(i, &l)
					if i >= lo && i <= hi {
						if !errors.Is(err, raft.ErrLogNotFound) {
							t.Fatalf("GetLog(%d) = %v, want not found", i, err)
						}
					} else if err != nil || string(l.Data) != fmt.Sprint(i) {
						t.Fatalf("GetLog(%d) = %q, %v", i, l.Data, err)
					}
				}
			}
			ro := openTemp(t, Options{Path: path, BoltOptions: &bbolt.Options{ReadOnly: true}})
			check(ro)
			ro.Close()
			s = openTemp(t, opts)
			check(s)
			if lo <= 2 && hi >= 2 && rawValue(t, s, dbLogs, key(2)) != nil {
				t.Fatal("the writable open did not delete entry 2 from the database")
			}
		})
	}
}

// TestPendingSetDeleteRange checks deletions against a map, over random
// writes, rewrites and deletions of prefixes, suffixes and middles.
func TestPendingSetDeleteRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for round := 0; round < 200; round++ {
		p := newPendingSet()
		model := map[uint64]int64{}
		next := uint64(1 + rng.IntN(5))
		var off int64
		for op := 0; op < 60; op++ {
			switch r := rng.IntN(10); {
			case r < 6: // append, sometimes rewriting back a bit
				if rng.IntN(8) == 0 && next > 3 {
					next -= uint64(1 + rng.IntN(3))
				}
				off += 10
				p.put(next, off, off+5)
				model[next] = off
				next++
			default:
				lo := uint64(rng.IntN(int(next) + 2))
				hi := lo + uint64(rng.IntN(8))
				if rng.IntN(4) == 0 {
					hi = math.MaxUint64
				}
				lo = max(lo, 1)
				p.deleteRange(lo, hi)
				for k := range model {
					if k >= lo && k <= hi {
						delete(model, k)
					}
				}
			}
			if p.live() != len(model) {
				t.Fatalf("round %d op %d: %d live, model has %d", round, op, p.live(), len(model))
			}
			var first, last uint64
			for k := range model {
				if first == 0 || k < first {
					first = k
				}
				last = max(last, k)
			}
			if p.first != first || p.last != last {
				t.Fatalf("round %d op %d: bounds %d..%d, model %d..%d", round, op, p.first, p.last, first, last)
			}
			for k := uint64(0); k <= next+1; k++ {
				pos, ok := p.lookup(k)
				want, in := model[k]
				if ok != in || ok && (int64(p.ents[pos].off) != want || !p.newest(pos)) {
					t.Fatalf("round %d op %d: lookup(%d) = %v at %d, model %v at %d", round, op, k, ok, pos, in, want)
				}
			}
			n := 0
			for pos := range p.ents {
				if p.newest(pos) {
					n++
				}
			}
			if n != len(model) {
				t.Fatalf("round %d op %d: %d entries count as newest, want %d", round, op, n, len(model))
			}
		}
	}
}

// TestJournalMatchesAModel runs random writes, rewrites, deletions of
// prefixes, suffixes and middles, and crashes, on small journals of a few
// files (so that files rotate, are reused, fill the ring and are
// checkpointed), and after every step compares the store, and every
// reopened store, with a map.
func TestJournalMatchesAModel(t *testing.T) {
	for seed := uint64(1); seed <= 12; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			path := filepath.Join(t.TempDir(), "raft.db")
			opts := Options{Path: path, Journal: true, JournalSize: int64(600 + rng.IntN(3000)), JournalFiles: 2 + rng.IntN(4), NoSync: true}
			s := openTemp(t, opts)
			model := map[uint64]string{}
			next := uint64(1)
			verify := func(s *BoltStore, step int) {
				t.Helper()
				var first, last uint64
				for k := range model {
					if first == 0 || k < first {
						first = k
					}
					last = max(last, k)
				}
				f, err1 := s.FirstIndex()
				l, err2 := s.LastIndex()
				if err1 != nil || err2 != nil || f != first || l != last {
					t.Fatalf("step %d: bounds %d..%d (%v, %v), model %d..%d", step, f, l, err1, err2, first, last)
				}
				var lg raft.Log
				for i := max(first, 1) - 1; i <= last+1; i++ {
					err := s.GetLog(i, &lg)
					want, ok := model[i]
					if !ok {
						if !errors.Is(err, raft.ErrLogNotFound) {
							t.Fatalf("step %d: GetLog(%d) = %v, want not found", step, i, err)
						}
						continue
					}
					if err != nil || string(lg.Data) != want {
						t.Fatalf("step %d: GetLog(%d) = %q, %v; want %q", step, i, lg.Data, err, want)
					}
				}
			}
			gens := 0 // journal files started, over every open
			for step := 0; step < 1500; step++ {
				switch r := rng.IntN(100); {
				case r < 75: // a batch at the end, sometimes over a few old ones
					if rng.IntN(6) == 0 && next > 4 {
						next -= uint64(1 + rng.IntN(3))
					}
					var batch []*raft.Log
					for range 1 + rng.IntN(4) {
						v := fmt.Sprintf("%d-%d-%s", next, step, strings.Repeat("p", rng.IntN(60)))
						batch = append(batch, logAt(next, uint64(step), v))
						model[next] = v
						next++
					}
					mustStoreLogs(t, s, batch...)
				case r < 85: // compaction of a prefix
					if next > 10 {
						hi := uint64(rng.IntN(int(next) - 5))
						if err := s.DeleteRange(1, hi); err != nil {
							t.Fatal(err)
						}
						for k := range model {
							if k <= hi {
								delete(model, k)
							}
						}
					}
				case r < 95: // a conflicting suffix, or any range
					lo := uint64(1 + rng.IntN(int(next)))
					hi := lo + uint64(rng.IntN(10))
					if r < 90 {
						hi = next
						next = max(lo, 1)
					}
					if err := s.DeleteRange(lo, hi); err != nil {
						t.Fatal(err)
					}
					for k := range model {
						if k >= lo && k <= hi {
							delete(model, k)
						}
					}
				case r < 98: // a crash
					gens += int(s.j.nextGen - 1)
					crash(t, s)
					if rng.IntN(3) == 0 {
						ro := openTemp(t, Options{Path: path, BoltOptions: &bbolt.Options{ReadOnly: true}})
						verify(ro, step)
						ro.Close()
					}
					s = openTemp(t, opts)
				default: // a clean close
					gens += int(s.j.nextGen - 1)
					if err := s.Close(); err != nil {
						t.Fatal(err)
					}
					if journalExists(t, path) {
						t.Fatal("Close left the journal")
					}
					s = openTemp(t, opts)
				}
				verify(s, step)
			}
			gens += int(s.j.nextGen - 1)
			if gens < 100 {
				t.Fatalf("only %d journal files started: the test no longer rotates files", gens)
			}
		})
	}
}

// TestJournalConcurrentCompaction runs what raft runs at once: the main
// loop appending, the snapshot goroutine compacting the front, and readers,
// on a small ring that rotates, reuses and checkpoints files all the time.
// A reader must find every entry it asks for unless a compaction may have
// removed it since (a reader that falls far behind the writer).
func TestJournalConcurrentCompaction(t *testing.T) {
	s := openTemp(t, Options{Journal: true, JournalSize: 2 << 10, JournalFiles: 3, NoSync: true})
	const n, keep = 4000, 200
	var last, compacted atomic.Uint64 // compacted: the highest index a compaction may have removed
	var done atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	wg.Add(1)
	go func() { // the snapshot goroutine
		defer wg.Done()
		for !done.Load() {
			l := last.Load()
			if l > keep {
				first, err := s.FirstIndex()
				if err == nil && first <= l-keep {
					compacted.Store(l - keep)
					err = s.DeleteRange(first, l-keep)
				}
				if err != nil {
					errs <- fmt.Errorf("compaction: %w", err)
					return
				}
			}
			runtime.Gosched() // let the writer run between compactions
		}
	}()
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var l raft.Log
			for !done.Load() {
				hi := last.Load()
				for i := max(hi, 20) - 19; i <= hi; i++ {
					if err := s.GetLog(i, &l); err != nil || l.Index != i {
						if i <= compacted.Load() {
							continue // the reader fell behind a compaction
						}
						errs <- fmt.Errorf("GetLog(%d) with %d written: index %d, %w", i, hi, l.Index, err)
						return
					}
				}
			}
		}()
	}
	for i := uint64(1); i <= n; i++ {
		if err := s.StoreLogs([]*raft.Log{logAt(i, 1, fmt.Sprintf("v%d", i))}); err != nil {
			t.Errorf("StoreLogs(%d): %v", i, err) // the others stop before the store closes
			break
		}
		last.Store(i)
	}
	done.Store(true)
	wg.Wait()
	if t.Failed() {
		return
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	first, err := s.FirstIndex()
	if err != nil || first > n-keep+1 || first < 2 {
		t.Fatalf("first index %d (%v) after compacting up to about %d", first, err, n-keep)
	}
	wantBounds(t, s, first, n)
	for i := first; i <= n; i++ {
		wantLog(t, s, i, 1, fmt.Sprintf("v%d", i))
	}
}

// TestJournalRefusesOversizedFile: a journal file larger than this package
// writes (its offsets would not fit the index) is an error naming it, not
// a 3 GiB read.
func TestJournalRefusesOversizedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true})
	mustStoreLogs(t, s, logAt(1, 1, "a"))
	crash(t, s)
	if err := os.Truncate(path+journalSuffix, maxJournalFile+1); err != nil {
		t.Fatal(err) // sparse: no disk space used
	}
	_, err := New(Options{Path: path, Journal: true})
	if err == nil || !strings.Contains(err.Error(), journalSuffix) || !strings.Contains(err.Error(), "more than this package ever writes") {
		t.Fatalf("open beside a 3 GiB journal file: %v", err)
	}
}
