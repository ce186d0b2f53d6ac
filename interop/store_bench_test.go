package interop

import (
	"fmt"
	"path/filepath"
	"testing"

	hc "github.com/hashicorp/raft"
	boltdb "github.com/hashicorp/raft-boltdb/v2"
	ours "github.com/seed48a2b68f/raft"
	raftbolt "github.com/seed48a2b68f/raft/raftbolt"
)

// Store benchmarks, raft-boltdb v2 against raftbolt on the same machine in
// the same run:
//
//	cd interop && go test -run XXX -bench 'Store' -benchmem -count 5 .
//
// Sub-benchmarks are named lib=hashicorp and lib=ours so benchstat can
// compare them. Databases are synced as in production (NoSync false).

const benchPayload = 128

func hcBatch(start uint64, n int) []*hc.Log {
	out := make([]*hc.Log, n)
	for i := range out {
		out[i] = &hc.Log{Index: start + uint64(i), Term: 3, Type: hc.LogCommand, Data: make([]byte, benchPayload)}
	}
	return out
}

func ourBatch(start uint64, n int) []*ours.Log {
	out := make([]*ours.Log, n)
	for i := range out {
		out[i] = &ours.Log{Index: start + uint64(i), Term: 3, Type: ours.LogCommand, Data: make([]byte, benchPayload)}
	}
	return out
}

// storeOps is one library's store seen through the operations benchmarked.
type storeOps struct {
	storeLogs func(start uint64, n int) error
	getLog    func(idx uint64) error
	delete    func(min, max uint64) error
	close     func()
}

// openStoresCached puts each library's LogCache of size entries in front
// of its bolt store (none for size 0).
func openStoresCached(b *testing.B, size int) map[string]storeOps {
	b.Helper()
	hs, err := boltdb.NewBoltStore(filepath.Join(b.TempDir(), "hc.db"))
	if err != nil {
		b.Fatal(err)
	}
	os, err := raftbolt.NewBoltStore(filepath.Join(b.TempDir(), "ours.db"))
	if err != nil {
		b.Fatal(err)
	}
	var hl hc.LogStore = hs
	var ol ours.LogStore = os
	if size > 0 {
		if hl, err = hc.NewLogCache(size, hs); err != nil {
			b.Fatal(err)
		}
		if ol, err = ours.NewLogCache(size, os); err != nil {
			b.Fatal(err)
		}
	}
	return map[string]storeOps{
		"hashicorp": {
			storeLogs: func(start uint64, n int) error { return hl.StoreLogs(hcBatch(start, n)) },
			getLog:    func(idx uint64) error { var l hc.Log; return hl.GetLog(idx, &l) },
			delete:    hl.DeleteRange,
			close:     func() { hs.Close() },
		},
		"ours": {
			storeLogs: func(start uint64, n int) error { return ol.StoreLogs(ourBatch(start, n)) },
			getLog:    func(idx uint64) error { var l ours.Log; return ol.GetLog(idx, &l) },
			delete:    ol.DeleteRange,
			close:     func() { os.Close() },
		},
	}
}

func forEachLib(b *testing.B, fn func(b *testing.B, s storeOps)) {
	forEachLibCached(b, 0, fn)
}

func forEachLibCached(b *testing.B, size int, fn func(b *testing.B, s storeOps)) {
	for _, lib := range []string{"hashicorp", "ours"} {
		b.Run(fmt.Sprintf("lib=%s", lib), func(b *testing.B) {
			stores := openStoresCached(b, size)
			defer func() {
				for _, s := range stores {
					s.close()
				}
			}()
			fn(b, stores[lib])
		})
	}
}

// BenchmarkStoreLogs64 stores batches of 64 entries of 128 bytes, one
// transaction (and fsync) per batch.
func BenchmarkStoreLogs64(b *testing.B) {
	forEachLib(b, func(b *testing.B, s storeOps) {
		b.ReportAllocs()
		next := uint64(1)
		for b.Loop() {
			if err := s.storeLogs(next, 64); err != nil {
				b.Fatal(err)
			}
			next += 64
		}
	})
}

// BenchmarkStoreGetLog reads entries from a 10,000-entry log.
func BenchmarkStoreGetLog(b *testing.B) {
	benchGetLog(b, 0, func(i uint64) uint64 { return i%10000 + 1 })
}

// BenchmarkStoreGetLogCached reads recent entries (the last 512 of a
// 10,000-entry log) through each library's LogCache of 512 entries in front
// of its bolt store: the leader's replication reads.
func BenchmarkStoreGetLogCached(b *testing.B) {
	benchGetLog(b, 512, func(i uint64) uint64 { return 10000 - i%512 })
}

// benchGetLog fills a 10,000-entry log (through a LogCache of cache
// entries, none for 0) and reads the entries pick chooses.
func benchGetLog(b *testing.B, cache int, pick func(i uint64) uint64) {
	forEachLibCached(b, cache, func(b *testing.B, s storeOps) {
		for i := uint64(0); i < 10000; i += 500 {
			if err := s.storeLogs(i+1, 500); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		i := uint64(0)
		for b.Loop() {
			if err := s.getLog(pick(i)); err != nil {
				b.Fatal(err)
			}
			i += 7
		}
	})
}

// BenchmarkStoreDeleteRange deletes the oldest 64 entries of the log, as
// compaction does; each iteration first stores 64 new ones (not timed).
func BenchmarkStoreDeleteRange(b *testing.B) {
	forEachLib(b, func(b *testing.B, s storeOps) {
		if err := s.storeLogs(1, 1024); err != nil {
			b.Fatal(err)
		}
		first, next := uint64(1), uint64(1025)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			if err := s.storeLogs(next, 64); err != nil {
				b.Fatal(err)
			}
			next += 64
			b.StartTimer()
			if err := s.delete(first, first+63); err != nil {
				b.Fatal(err)
			}
			first += 64
		}
	})
}
