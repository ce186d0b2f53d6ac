package raftboltdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
	"github.com/seed48a2b68f/raft"
	"go.etcd.io/bbolt"

	"github.com/seed48a2b68f/raft/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T, dir string) storetest.Store {
			s, err := NewBoltStore(filepath.Join(dir, "raft.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Persistent: true,
	})
}

func TestConformanceNoSyncNewTime(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T, dir string) storetest.Store {
			return mustOpen(t, Options{Path: filepath.Join(dir, "raft.db"), NoSync: true, MsgpackUseNewTimeFormat: true})
		},
		Persistent: true,
	})
}

func openTemp(t *testing.T, o Options) *BoltStore {
	t.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "raft.db")
	}
	s := mustOpen(t, o)
	t.Cleanup(func() { s.Close() })
	return s
}

// mustOpen opens a store with no cleanup, for tests that crash it (see
// crash) or close it themselves.
func mustOpen(t *testing.T, o Options) *BoltStore {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawValue reads a bucket's value directly from the file.
func rawValue(t *testing.T, s *BoltStore, bucket, key []byte) []byte {
	t.Helper()
	var out []byte
	err := s.conn.View(func(tx *bbolt.Tx) error {
		out = append([]byte(nil), tx.Bucket(bucket).Get(key)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// referenceEncode is what raft-boltdb v2 writes for a log entry: go-msgpack/v2
// with TimeNotBuiltin unless the new time format is asked for.
func referenceEncode(t *testing.T, l *raft.Log, newTime bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	h := codec.MsgpackHandle{}
	h.TimeNotBuiltin = !newTime
	if err := codec.NewEncoder(&buf, &h).Encode(l); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func key(i uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, i)
}

// TestFileFormat checks the bytes in the file against raft-boltdb's format
// (reference §3.2): 8-byte big-endian keys in "logs", go-msgpack's encoding
// of the entry as the value, raw values in "conf", SetUint64 as 8 bytes.
func TestFileFormat(t *testing.T) {
	at := time.Date(2026, 11, 22, 8, 0, 0, 5, time.FixedZone("", -7*3600))
	logs := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte{0x81, 0xa7, 'S', 'e', 'r', 'v', 'e', 'r', 's', 0x90}},
		{Index: 2, Term: 2, Type: raft.LogNoop, AppendedAt: at},
		{Index: 300, Term: 2, Type: raft.LogCommand, Data: []byte("hello"), Extensions: []byte{1, 2}, AppendedAt: at.UTC()},
	}
	for _, newTime := range []bool{false, true} {
		s := openTemp(t, Options{MsgpackUseNewTimeFormat: newTime})
		if err := s.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
		for _, l := range logs {
			got := rawValue(t, s, dbLogs, key(l.Index))
			if want := referenceEncode(t, l, newTime); !bytes.Equal(got, want) {
				t.Errorf("newTime=%v entry %d stored as\n%x\nraft-boltdb writes\n%x", newTime, l.Index, got, want)
			}
		}
		if err := s.SetUint64([]byte("CurrentTerm"), 2); err != nil {
			t.Fatal(err)
		}
		if err := s.Set([]byte("LastVoteCand"), []byte("127.0.0.1:42033")); err != nil {
			t.Fatal(err)
		}
		if got := rawValue(t, s, dbConf, []byte("CurrentTerm")); !bytes.Equal(got, []byte{0, 0, 0, 0, 0, 0, 0, 2}) {
			t.Errorf("CurrentTerm stored as %x", got)
		}
		if got := rawValue(t, s, dbConf, []byte("LastVoteCand")); string(got) != "127.0.0.1:42033" {
			t.Errorf("LastVoteCand stored as %q", got)
		}
	}
}

// TestReadsReferenceEncodings puts values written by go-msgpack/v2 with
// either time format straight into the file and reads them with GetLog.
func TestReadsReferenceEncodings(t *testing.T) {
	s := openTemp(t, Options{})
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	want := &raft.Log{Index: 7, Term: 3, Type: raft.LogCommand, Data: []byte("x"), AppendedAt: at}
	for _, newTime := range []bool{false, true} {
		val := referenceEncode(t, want, newTime)
		if err := s.conn.Update(func(tx *bbolt.Tx) error { return tx.Bucket(dbLogs).Put(key(7), val) }); err != nil {
			t.Fatal(err)
		}
		var got raft.Log
		if err := s.GetLog(7, &got); err != nil {
			t.Fatalf("newTime=%v: %v", newTime, err)
		}
		if got.Index != 7 || got.Term != 3 || string(got.Data) != "x" || !got.AppendedAt.Equal(at) {
			t.Fatalf("newTime=%v: read %+v", newTime, got)
		}
	}
}

// TestCorruptValue: a damaged entry gives an error naming the index and the
// file, never a panic, and the other entries still read.
func TestCorruptValue(t *testing.T) {
	s := openTemp(t, Options{})
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 1, Data: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{{}, {0xc0}, {0x86, 0xa5}, {0xdf, 0xff, 0xff, 0xff, 0xff}, []byte("garbage")} {
		if err := s.conn.Update(func(tx *bbolt.Tx) error { return tx.Bucket(dbLogs).Put(key(1), bad) }); err != nil {
			t.Fatal(err)
		}
		var got raft.Log
		err := s.GetLog(1, &got)
		if err == nil || !strings.Contains(err.Error(), "log entry 1") || !strings.Contains(err.Error(), s.Path()) {
			t.Fatalf("GetLog of %x = %v; want an error naming entry 1 and the file", bad, err)
		}
		if errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("a corrupt entry must not read as missing: %v", err)
		}
	}
	var got raft.Log
	if err := s.GetLog(2, &got); err != nil || string(got.Data) != "b" {
		t.Fatalf("GetLog(2) = %+v, %v", got, err)
	}
	// A short uint64 in conf is an error, not a misread.
	if err := s.Set([]byte("CurrentTerm"), []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); err == nil {
		t.Fatal("GetUint64 of a 2-byte value succeeded")
	}
}

// TestReadOnlyAndClosed: a read-only open reads but does not write; a closed
// store returns errors.
func TestReadOnlyAndClosed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s, err := NewBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{{Index: 5, Term: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(&raft.Log{Index: 6, Term: 1}); err == nil {
		t.Fatal("StoreLog after Close succeeded")
	}
	var l raft.Log
	if err := s.GetLog(5, &l); err == nil {
		t.Fatal("GetLog after Close succeeded")
	}

	ro, err := New(Options{Path: path, BoltOptions: &bbolt.Options{ReadOnly: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if last, err := ro.LastIndex(); err != nil || last != 5 {
		t.Fatalf("LastIndex read-only = %d, %v", last, err)
	}
	if err := ro.StoreLog(&raft.Log{Index: 6, Term: 1}); err == nil {
		t.Fatal("StoreLog on a read-only store succeeded")
	}
}

// TestStagedCommitIndexWaitsForEntries: a staged commit index is written only
// together with entries, never on its own.
func TestStagedCommitIndexWaitsForEntries(t *testing.T) {
	s := openTemp(t, Options{})
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1}, {Index: 2, Term: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := s.StageCommitIndex(2); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(nil); err != nil {
		t.Fatal(err)
	}
	if ci, _ := s.GetCommitIndex(); ci != 0 {
		t.Fatalf("commit index %d written without entries", ci)
	}
	if err := s.StoreLog(&raft.Log{Index: 3, Term: 1}); err != nil {
		t.Fatal(err)
	}
	if ci, _ := s.GetCommitIndex(); ci != 2 {
		t.Fatalf("commit index = %d; want 2", ci)
	}
}

func TestMigrateToV2(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "v1.db")
	s, err := NewBoltStore(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 2, Data: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 2); err != nil {
		t.Fatal(err)
	}
	s.Close()

	dst := filepath.Join(dir, "v2.db")
	m, err := MigrateToV2(src, dst)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var l raft.Log
	if err := m.GetLog(2, &l); err != nil || string(l.Data) != "b" {
		t.Fatalf("migrated GetLog(2) = %+v, %v", l, err)
	}
	if v, err := m.GetUint64([]byte("CurrentTerm")); err != nil || v != 2 {
		t.Fatalf("migrated CurrentTerm = %d, %v", v, err)
	}
	if _, err := MigrateToV2(src, dst); err == nil {
		t.Fatal("migrating onto an existing file succeeded")
	}
}

func TestRunMetricsStops(t *testing.T) {
	s := openTemp(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.RunMetrics(ctx, time.Millisecond); close(done) }()
	if err := s.StoreLog(&raft.Log{Index: 1, Term: 1}); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
}

// A file that is not a bolt database (zeroed, truncated to a few bytes, a
// real database with its meta pages overwritten) is refused with an error
// naming it, never a panic.
func TestCorruptFile(t *testing.T) {
	good := filepath.Join(t.TempDir(), "raft.db")
	s, err := NewBoltStore(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	real, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	smashed := append([]byte(nil), real...)
	for i := 0; i < 2*4096 && i < len(smashed); i++ {
		smashed[i] ^= 0x5a
	}
	for name, data := range map[string][]byte{
		"zeroes":       make([]byte, 8192),
		"garbage":      []byte("garbage"),
		"smashed meta": smashed,
	} {
		path := filepath.Join(t.TempDir(), "raft.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := NewBoltStore(path)
		if err == nil {
			s.Close()
			t.Fatalf("%s: opened", name)
		}
		if !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: error %q does not name the file", name, err)
		}
	}
}

// newestMeta reads a closed bbolt file's page size and, from the meta page
// with the higher transaction id, its freelist page and the root page of
// its buckets.
func newestMeta(t *testing.T, path string) (pageSize int, freelist, root uint64) {
	t.Helper()
	f, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Page 0's meta starts after the 16-byte page header: magic, version,
	// page size, flags, root bucket (16 bytes), freelist, pgid, txid.
	pageSize = int(binary.LittleEndian.Uint32(f[16+8:]))
	best := uint64(0)
	for i := 0; i < 2; i++ {
		m := f[i*pageSize+16:]
		txid := binary.LittleEndian.Uint64(m[48:])
		if i == 0 || txid > best {
			best = txid
			root = binary.LittleEndian.Uint64(m[16:])
			freelist = binary.LittleEndian.Uint64(m[32:])
		}
	}
	return pageSize, freelist, root
}

// setPageFlags overwrites the type flags of page id in the file.
func setPageFlags(t *testing.T, path string, pageSize int, id uint64, flags uint16) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [2]byte
	binary.LittleEndian.PutUint16(b[:], flags)
	if _, err := f.WriteAt(b[:], int64(id)*int64(pageSize)+8); err != nil {
		t.Fatal(err)
	}
}

// A damaged database file gives errors wrapping ErrCorrupt and naming the
// file, never a panic: bbolt panics on a freelist page of the wrong type
// while opening, and on a bucket page of the wrong type while reading or
// writing (raft-boltdb lets both through). A migration from such a file
// fails the same way and leaves no destination behind.
func TestCorruptDatabaseIsAnError(t *testing.T) {
	const leafFlag, freelistFlag = 0x02, 0x10
	fill := func(t *testing.T, path string) (logsRoot uint64) {
		s, err := NewBoltStore(path)
		if err != nil {
			t.Fatal(err)
		}
		var logs []*raft.Log
		for i := uint64(1); i <= 200; i++ {
			logs = append(logs, &raft.Log{Index: i, Term: 1, Data: bytes.Repeat([]byte("x"), 1024)})
		}
		if err := s.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
		if err := s.conn.View(func(tx *bbolt.Tx) error {
			logsRoot = uint64(tx.Bucket(dbLogs).Root())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return logsRoot
	}
	wantCorrupt := func(t *testing.T, what string, err error, path string) {
		t.Helper()
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
			t.Fatalf("%s: got %v, want an error wrapping ErrCorrupt that names %s", what, err, path)
		}
	}

	t.Run("freelist", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "raft.db")
		fill(t, path)
		pageSize, freelist, _ := newestMeta(t, path)
		setPageFlags(t, path, pageSize, freelist, leafFlag)
		s, err := New(Options{Path: path})
		if err == nil {
			s.Close()
		}
		wantCorrupt(t, "New", err, path)
	})

	t.Run("buckets root", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "raft.db")
		fill(t, path)
		pageSize, _, root := newestMeta(t, path)
		setPageFlags(t, path, pageSize, root, freelistFlag)
		s, err := New(Options{Path: path}) // panics creating the buckets
		if err == nil {
			s.Close()
		}
		wantCorrupt(t, "New", err, path)
		// New closed the file after bbolt's panic: the migration's
		// read-only open does not wait for its lock.
		dest := filepath.Join(t.TempDir(), "v2.db")
		s, err = MigrateToV2(path, dest)
		if err == nil {
			s.Close()
		}
		wantCorrupt(t, "MigrateToV2", err, path)
		if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the failed migration left %s behind: %v", dest, err)
		}
	})

	t.Run("logs bucket", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "raft.db")
		root := fill(t, path)
		pageSize, _, _ := newestMeta(t, path)
		setPageFlags(t, path, pageSize, root, freelistFlag)
		s := openTemp(t, Options{Path: path})
		var l raft.Log
		wantCorrupt(t, "GetLog", s.GetLog(5, &l), path)
		// bbolt's First and Last do not check the page type (they may read
		// nonsense rather than panic); they must not panic here either.
		_, _ = s.FirstIndex()
		_, _ = s.LastIndex()
		wantCorrupt(t, "StoreLogs", s.StoreLogs([]*raft.Log{{Index: 201, Term: 1}}), path)
		wantCorrupt(t, "DeleteRange", s.DeleteRange(1, 10), path)
		// The conf bucket is intact and still usable.
		if err := s.SetUint64([]byte("k"), 7); err != nil {
			t.Fatal(err)
		}
		if v, err := s.GetUint64([]byte("k")); err != nil || v != 7 {
			t.Fatalf("GetUint64 = %d, %v", v, err)
		}
	})
}
