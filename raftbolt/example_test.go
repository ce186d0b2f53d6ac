package raftboltdb_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/seed48a2b68f/raft"
	raftboltdb "github.com/seed48a2b68f/raft/raftbolt"
)

// A store opened with NewBoltStore is raft-boltdb's file: the log and the
// stable state (term, vote) in one database. Hand it to raft.NewRaft as
// both the LogStore and the StableStore.
func ExampleNewBoltStore() {
	dir, err := os.MkdirTemp("", "raftbolt-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	if err := store.StoreLogs([]*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogCommand, Data: []byte("a")},
		{Index: 2, Term: 1, Type: raft.LogCommand, Data: []byte("b")},
	}); err != nil {
		log.Fatal(err)
	}
	if err := store.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		log.Fatal(err)
	}
	var l raft.Log
	if err := store.GetLog(2, &l); err != nil {
		log.Fatal(err)
	}
	first, _ := store.FirstIndex()
	last, _ := store.LastIndex()
	term, _ := store.GetUint64([]byte("CurrentTerm"))
	fmt.Printf("entries %d..%d, entry 2 holds %q, term %d\n", first, last, l.Data, term)
	// Output: entries 1..2, entry 2 holds "b", term 1
}

// Journal mode keeps the log in a ring of preallocated files beside the
// database while the store is open: one fdatasync per StoreLogs. After a
// crash the next open replays the journal; after Close the database alone
// is a complete raft-boltdb file.
func ExampleNew_journal() {
	dir, err := os.MkdirTemp("", "raftbolt-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "raft.db")

	store, err := raftboltdb.New(raftboltdb.Options{Path: path, Journal: true, JournalSize: 1 << 20, JournalFiles: 4})
	if err != nil {
		log.Fatal(err)
	}
	for i := uint64(1); i <= 100; i++ {
		if err := store.StoreLog(&raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: []byte("x")}); err != nil {
			log.Fatal(err)
		}
	}
	if err := store.DeleteRange(1, 90); err != nil { // compaction after a snapshot
		log.Fatal(err)
	}
	if err := store.Close(); err != nil {
		log.Fatal(err)
	}

	// Opened again without the journal, the database holds what was left.
	plain, err := raftboltdb.NewBoltStore(path)
	if err != nil {
		log.Fatal(err)
	}
	defer plain.Close()
	first, _ := plain.FirstIndex()
	last, _ := plain.LastIndex()
	fmt.Printf("entries %d..%d\n", first, last)
	// Output: entries 91..100
}

// MigrateToV2 copies a raft-boltdb v1 database (github.com/boltdb/bolt) into
// a new file, leaving the old one as it was, and returns the new store
// open. Here the "v1" file is one this package wrote: both share the file
// format.
func ExampleMigrateToV2() {
	dir, err := os.MkdirTemp("", "raftbolt-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	v1 := filepath.Join(dir, "raft-v1.db")
	old, err := raftboltdb.NewBoltStore(v1)
	if err != nil {
		log.Fatal(err)
	}
	if err := old.StoreLog(&raft.Log{Index: 7, Term: 3, Type: raft.LogCommand, Data: []byte("kept")}); err != nil {
		log.Fatal(err)
	}
	if err := old.Set([]byte("LastVoteCand"), []byte("node2")); err != nil {
		log.Fatal(err)
	}
	old.Close()

	store, err := raftboltdb.MigrateToV2(v1, filepath.Join(dir, "raft.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	var l raft.Log
	if err := store.GetLog(7, &l); err != nil {
		log.Fatal(err)
	}
	cand, _ := store.Get([]byte("LastVoteCand"))
	fmt.Printf("entry 7: %q, voted for %s\n", l.Data, cand)
	// Output: entry 7: "kept", voted for node2
}
