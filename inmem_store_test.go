package raft

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestInmemStoreMatchesAMap drives the store's dense and sparse paths with
// a seeded random mix of appends, overwrites, far indexes and deletions,
// and compares every read with a plain map.
func TestInmemStoreMatchesAMap(t *testing.T) {
	// Small chunks put chunk boundaries everywhere; the default is what
	// runs.
	for _, chunk := range []int{1, 3, 64, inmemChunk} {
		t.Run(fmt.Sprintf("chunk=%d", chunk), func(t *testing.T) { testInmemStoreMatchesAMap(t, chunk) })
	}
}

func testInmemStoreMatchesAMap(t *testing.T, chunk int) {
	rng := rand.New(rand.NewPCG(11, 12))
	s := NewInmemStore()
	s.chunk = chunk
	model := map[uint64]uint64{} // index -> term
	low, high := uint64(0), uint64(0)
	next := uint64(1)
	for step := 0; step < 20000; step++ {
		switch op := rng.IntN(10); {
		case op < 5: // append a run
			n := 1 + rng.IntN(8)
			var logs []*Log
			for k := 0; k < n; k++ {
				logs = append(logs, &Log{Index: next, Term: uint64(step)})
				model[next] = uint64(step)
				next++
			}
			if err := s.StoreLogs(logs); err != nil {
				t.Fatal(err)
			}
		case op < 6: // overwrite or fill somewhere
			idx := 1 + rng.Uint64N(next+50)
			if err := s.StoreLog(&Log{Index: idx, Term: uint64(step)}); err != nil {
				t.Fatal(err)
			}
			model[idx] = uint64(step)
		case op < 7: // far away
			idx := next + 1000 + rng.Uint64N(1<<20)
			if err := s.StoreLog(&Log{Index: idx, Term: uint64(step)}); err != nil {
				t.Fatal(err)
			}
			model[idx] = uint64(step)
		case op < 9: // compaction from the front
			if low > 0 {
				to := low + rng.Uint64N(20)
				if err := s.DeleteRange(low, to); err != nil {
					t.Fatal(err)
				}
				for k := range model {
					if k >= low && k <= to {
						delete(model, k)
					}
				}
			}
		default: // truncate a suffix
			from := 1 + rng.Uint64N(next+1)
			if err := s.DeleteRange(from, high); err != nil {
				t.Fatal(err)
			}
			for k := range model {
				if k >= from && k <= high {
					delete(model, k)
				}
			}
			if from <= next {
				next = max(from, 1)
			}
		}
		low, _ = s.FirstIndex()
		high, _ = s.LastIndex()
		for probe := 0; probe < 5; probe++ {
			idx := rng.Uint64N(next + 100)
			if probe == 0 && len(model) > 0 {
				for k := range model {
					idx = k
					break
				}
			}
			var l Log
			err := s.GetLog(idx, &l)
			term, ok := model[idx]
			switch {
			case ok && (err != nil || l.Term != term || l.Index != idx):
				t.Fatalf("step %d: GetLog(%d) = %+v, %v; want term %d", step, idx, l, err, term)
			case !ok && !errors.Is(err, ErrLogNotFound):
				t.Fatalf("step %d: GetLog(%d) = %+v, %v; want not found", step, idx, l, err)
			}
		}
	}
}

// TestInmemStoreGrowsWithoutCopying: appending to a long log allocates one
// chunk now and then and never copies what is stored. A store that kept
// one slice copied it all whenever it grew, a pause proportional to the
// log (about 50 ms at a million entries under the garbage collector) that
// hit every node at the same index.
func TestInmemStoreGrowsWithoutCopying(t *testing.T) {
	s := NewInmemStore()
	const n = 5 * inmemChunk
	for idx := uint64(1); idx <= n; idx++ {
		if err := s.StoreLog(&Log{Index: idx}); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.dense) != 5 || s.denseLen != n {
		t.Fatalf("%d chunks holding %d entries, want 5 holding %d", len(s.dense), s.denseLen, n)
	}
	first := &s.dense[0][0]
	logs := []*Log{{Index: n + 1}}
	allocs := testing.AllocsPerRun(inmemChunk, func() {
		logs[0] = &Log{Index: logs[0].Index}
		if err := s.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
		logs[0].Index++
	})
	// One Log per run, plus one chunk (and the chunk list now and then)
	// per inmemChunk runs.
	if allocs > 1.01 {
		t.Fatalf("%.3f allocations per append, want about 1", allocs)
	}
	if &s.dense[0][0] != first {
		t.Fatal("the first chunk moved: stored entries were copied")
	}
	// 6*inmemChunk+1 entries now (AllocsPerRun runs once more to warm up),
	// in 7 chunks. Compaction from the front frees whole chunks.
	if err := s.DeleteRange(1, 2*inmemChunk+10); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.FirstIndex(); got != 2*inmemChunk+11 {
		t.Fatalf("first index %d after compaction, want %d", got, 2*inmemChunk+11)
	}
	if s.denseOff != 10 || len(s.dense) != 5 {
		t.Fatalf("after compaction: offset %d in %d chunks, want 10 in 5", s.denseOff, len(s.dense))
	}
	var l Log
	if err := s.GetLog(2*inmemChunk+11, &l); err != nil || l.Index != 2*inmemChunk+11 {
		t.Fatalf("GetLog after compaction: %v, %d", err, l.Index)
	}
}

// TestInmemStoreZeroValueAppends: a store not made by NewInmemStore still
// keeps consecutive entries (the chunk size falls back to the default
// rather than dividing by zero).
func TestInmemStoreZeroValueAppends(t *testing.T) {
	var s InmemStore
	if err := s.StoreLogs([]*Log{{Index: 1, Term: 1}, {Index: 2, Term: 1}}); err != nil {
		t.Fatal(err)
	}
	var l Log
	if err := s.GetLog(2, &l); err != nil || l.Index != 2 {
		t.Fatalf("GetLog(2): %v, %d", err, l.Index)
	}
}
