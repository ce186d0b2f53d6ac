package raft

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestInmemStoreMatchesAMap drives the store's dense and sparse paths with
// a seeded random mix of appends, overwrites, far indexes and deletions,
// and compares every read with a plain map.
func TestInmemStoreMatchesAMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	s := NewInmemStore()
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
