package raftboltdb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fillUntilRotation stores entries from *next on until the journal writes
// to another file than before, and returns that file.
func fillUntilRotation(t *testing.T, s *BoltStore, next *uint64) *jfile {
	t.Helper()
	before := activeFile(s)
	for i := 0; activeFile(s) == before; i++ {
		if i > 10000 {
			t.Fatal("the journal never moved to another file")
		}
		mustStoreLogs(t, s, logAt(*next, 1, strings.Repeat("x", 100)))
		*next++
	}
	return activeFile(s)
}

// TestJournalSpareFileTakesTheNextTurn: with syncs on, a new journal
// prepares the next new file in the background, full size and without a
// header, and the ring's next new file is that file. Without syncs nothing
// is prepared.
func TestJournalSpareFileTakesTheNextTurn(t *testing.T) {
	const size = 8 << 10
	s := openTemp(t, Options{Journal: true, JournalSize: size, JournalFiles: 4})
	settle(s)
	spare := s.j.spare
	if spare == nil {
		t.Fatal("no spare file was prepared")
	}
	data, err := os.ReadFile(spare.path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != size || strings.Trim(string(data), "\x00") != "" {
		t.Fatalf("spare file: %d bytes, not all zeros; want %d zeros", len(data), size)
	}
	if _, ok := headerGen(data); ok {
		t.Fatal("the spare file has a header before it joined the ring")
	}
	next := uint64(1)
	if got := fillUntilRotation(t, s, &next); got != spare {
		t.Fatalf("the ring's next file is %s, want the spare %s", got.path, spare.path)
	}
	wantBounds(t, s, 1, next-1)

	quiet := openTemp(t, Options{Journal: true, JournalSize: size, JournalFiles: 4, NoSync: true})
	next = 1
	fillUntilRotation(t, quiet, &next)
	settle(quiet)
	if quiet.j.spare != nil || quiet.j.spareNum != 0 {
		t.Fatal("a spare file was prepared without syncs")
	}
}

// TestJournalSpareFileNeverOutlivesItsUse: the spare is gone once the ring
// is full (the ring takes no more new files), and after Close no journal
// file is left beside the database, spare included.
func TestJournalSpareFileNeverOutlivesItsUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := mustOpen(t, Options{Path: path, Journal: true, JournalSize: 2 << 10, JournalFiles: 3})
	next := uint64(1)
	for len(s.j.ring) < 3 {
		fillUntilRotation(t, s, &next)
	}
	fillUntilRotation(t, s, &next)
	settle(s)
	if s.j.spare != nil {
		t.Fatal("the full ring kept a spare file")
	}
	if n := journalFiles(t, path); n != 3 {
		t.Fatalf("%d journal files beside the database, want the ring's 3", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = mustOpen(t, Options{Path: path, Journal: true, JournalSize: 2 << 10, JournalFiles: 3})
	settle(s)
	if s.j.spare == nil {
		t.Fatal("no spare file was prepared")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := journalFiles(t, path); n != 0 {
		t.Fatalf("%d journal files left after Close, want none", n)
	}
	wantDB(t, path, next-1)
}

// TestJournalCrashLeavesASpareFile: a crash leaves the spare, zeros with
// no header; the next open treats it as holding nothing and loses no entry.
func TestJournalCrashLeavesASpareFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	opts := Options{Path: path, Journal: true, JournalSize: 4 << 10, JournalFiles: 8}
	s := mustOpen(t, opts)
	next := uint64(1)
	fillUntilRotation(t, s, &next)
	mustStoreLogs(t, s, logAt(next, 2, "last"))
	settle(s)
	if s.j.spare == nil {
		t.Fatal("no spare file to leave behind: the test no longer sets up its case")
	}
	sparePath := s.j.spare.path
	crash(t, s)
	if _, err := os.Stat(sparePath); err != nil {
		t.Fatalf("the crash did not leave the spare file: %v", err)
	}

	s = openTemp(t, opts)
	wantBounds(t, s, 1, next)
	wantLog(t, s, 1, 1, strings.Repeat("x", 100))
	wantLog(t, s, next, 2, "last")
	next++
	fillUntilRotation(t, s, &next)
	wantBounds(t, s, 1, next-1)
}

// wantDB opens the closed database without a journal and checks that it
// holds entries 1..last.
func wantDB(t *testing.T, path string, last uint64) {
	t.Helper()
	s := openTemp(t, Options{Path: path})
	wantBounds(t, s, 1, last)
	for i := uint64(1); i <= last; i += max(1, last/7) {
		wantLog(t, s, i, 1, strings.Repeat("x", 100))
	}
}

// TestJournalFullRingDropsTheSpare: when the writer made a new file itself
// (the preparation had not ended in time) and that filled the ring, the
// spare that was prepared meanwhile is removed at the next rotation.
func TestJournalFullRingDropsTheSpare(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	s := openTemp(t, Options{Path: path, Journal: true, JournalSize: 2 << 10, JournalFiles: 2})
	settle(s)
	if s.j.spare == nil {
		t.Fatal("no spare file was prepared")
	}
	sparePath := s.j.spare.path
	// The writer's own new file, as when the preparation runs late.
	s.j.wmu.Lock()
	jf, err := s.j.createFile()
	if err == nil {
		s.j.mu.Lock()
		s.j.ring = append(s.j.ring, jf)
		s.j.mu.Unlock()
	}
	s.j.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if jf.path == sparePath {
		t.Fatal("the writer's file took the spare's name")
	}
	next := uint64(1)
	fillUntilRotation(t, s, &next)
	settle(s)
	if s.j.spare != nil {
		t.Fatal("the full ring kept its spare")
	}
	if _, err := os.Stat(sparePath); !os.IsNotExist(err) {
		t.Fatalf("the spare file is still there: %v", err)
	}
	if n := journalFiles(t, path); n != 2 {
		t.Fatalf("%d journal files, want the ring's 2", n)
	}
}
