// Package storetest is a conformance suite for raft.LogStore and
// raft.StableStore implementations: what the raft library relies on from a
// store, written as tests. Run it on your own store from a test:
//
//	func TestMyStore(t *testing.T) {
//		storetest.Run(t, storetest.Factory{
//			Open: func(t *testing.T, dir string) storetest.Store {
//				s, err := mystore.Open(filepath.Join(dir, "raft.db"))
//				if err != nil {
//					t.Fatal(err)
//				}
//				return s
//			},
//			Persistent: true,
//		})
//	}
//
// The suite covers ordering, gaps, DeleteRange at its edges, missing keys
// reported the way hashicorp/raft expects (raft.ErrLogNotFound; an error
// whose text is "not found"), large values, every field of an entry,
// concurrent readers beside a writer, the commit index of a
// raft.CommitTrackingLogStore and, for a persistent store, everything
// surviving a close and reopen.
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/seed48a2b68f/raft"
)

// Store is what the suite tests: a log store and a stable store in one
// value, as raft-boltdb and raft.InmemStore are. Wrap separate stores in a
// struct embedding both.
type Store interface {
	raft.LogStore
	raft.StableStore
}

// Factory opens the store under test.
type Factory struct {
	// Open returns a store over dir. Each subtest starts with an empty
	// directory; in the reopen tests Open is called again with the same
	// directory after the previous store was closed, and must find what
	// that store wrote. A store that is an io.Closer is closed by the
	// suite at the end of each subtest (and before a reopen).
	Open func(t *testing.T, dir string) Store

	// Persistent says the store keeps its data across Close and Open on
	// the same directory; the reopen tests run only then.
	Persistent bool
}

// Run runs every conformance test as a subtest of t.
func Run(t *testing.T, f Factory) {
	t.Helper()
	if f.Open == nil {
		t.Fatal("storetest: Factory.Open is nil")
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"Empty", testEmpty},
		{"StoreAndGet", testStoreAndGet},
		{"AllFields", testAllFields},
		{"Ordering", testOrdering},
		{"Overwrite", testOverwrite},
		{"DeleteRangeEdges", testDeleteRangeEdges},
		{"GapAfterDeleteAll", testGapAfterDeleteAll},
		{"LargeValues", testLargeValues},
		{"StableKeys", testStableKeys},
		{"ConcurrentReaders", testConcurrentReaders},
		{"CommitIndex", testCommitIndex},
		{"Reopen", testReopen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &harness{f: f, dir: t.TempDir()}
			h.open(t)
			t.Cleanup(func() { h.close(t) })
			tc.fn(t, h)
		})
	}
}

// harness holds the store of one subtest.
type harness struct {
	f   Factory
	dir string
	s   Store
}

func (h *harness) open(t *testing.T) {
	t.Helper()
	h.s = h.f.Open(t, h.dir)
	if h.s == nil {
		t.Fatal("storetest: Factory.Open returned nil")
	}
}

func (h *harness) close(t *testing.T) {
	t.Helper()
	if c, ok := h.s.(interface{ Close() error }); ok && h.s != nil {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	h.s = nil
}

// reopen closes the store and opens a new one on the same directory.
func (h *harness) reopen(t *testing.T) {
	t.Helper()
	h.close(t)
	h.open(t)
}

// entry returns a distinctive entry for index i.
func entry(i uint64) *raft.Log {
	return &raft.Log{
		Index: i,
		Term:  i/10 + 1,
		Type:  raft.LogCommand,
		Data:  []byte(fmt.Sprintf("entry %d", i)),
	}
}

func entries(from, to uint64) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, entry(i))
	}
	return out
}

func mustStore(t *testing.T, s Store, logs []*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs [%d entries]: %v", len(logs), err)
	}
}

func mustDelete(t *testing.T, s Store, min, max uint64) {
	t.Helper()
	if err := s.DeleteRange(min, max); err != nil {
		t.Fatalf("DeleteRange(%d, %d): %v", min, max, err)
	}
}

// checkBounds asserts FirstIndex and LastIndex.
func checkBounds(t *testing.T, s Store, first, last uint64) {
	t.Helper()
	f, err := s.FirstIndex()
	if err != nil {
		t.Fatalf("FirstIndex: %v", err)
	}
	l, err := s.LastIndex()
	if err != nil {
		t.Fatalf("LastIndex: %v", err)
	}
	if f != first || l != last {
		t.Fatalf("FirstIndex, LastIndex = %d, %d; want %d, %d", f, l, first, last)
	}
}

// checkHas asserts that the entries from..to are present and equal entry(i).
func checkHas(t *testing.T, s Store, from, to uint64) {
	t.Helper()
	for i := from; i <= to; i++ {
		var got raft.Log
		if err := s.GetLog(i, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		checkEqual(t, &got, entry(i))
	}
}

// checkMissing asserts GetLog reports each index as not found.
func checkMissing(t *testing.T, s Store, idx ...uint64) {
	t.Helper()
	for _, i := range idx {
		var got raft.Log
		err := s.GetLog(i, &got)
		if !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) = %v; want raft.ErrLogNotFound", i, err)
		}
	}
}

func checkEqual(t *testing.T, got, want *raft.Log) {
	t.Helper()
	if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type ||
		!bytes.Equal(got.Data, want.Data) || !bytes.Equal(got.Extensions, want.Extensions) ||
		!got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("entry %d read back as %+v; want %+v", want.Index, got, want)
	}
}

func testEmpty(t *testing.T, h *harness) {
	checkBounds(t, h.s, 0, 0)
	checkMissing(t, h.s, 0, 1, 1<<63)
	mustDelete(t, h.s, 1, 100) // deleting nothing is not an error
	checkBounds(t, h.s, 0, 0)
}

func testStoreAndGet(t *testing.T, h *harness) {
	if err := h.s.StoreLog(entry(1)); err != nil {
		t.Fatalf("StoreLog: %v", err)
	}
	checkBounds(t, h.s, 1, 1)
	mustStore(t, h.s, entries(2, 10))
	checkBounds(t, h.s, 1, 10)
	checkHas(t, h.s, 1, 10)
	checkMissing(t, h.s, 0, 11)

}

func testAllFields(t *testing.T, h *harness) {
	at := time.Date(2026, 11, 22, 10, 30, 0, 123456789, time.FixedZone("X", 3600))
	want := []*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: []byte{0x81, 0xa1, 'x', 0x01}},
		{Index: 2, Term: 7, Type: raft.LogNoop},
		{Index: 3, Term: 7, Type: raft.LogCommand, Data: []byte("cmd"), Extensions: []byte("ext"), AppendedAt: at},
		{Index: 4, Term: 1<<64 - 1, Type: raft.LogBarrier, AppendedAt: at.UTC()},
		{Index: 5, Term: 8, Type: raft.LogType(255), Data: make([]byte, 256)},
	}
	mustStore(t, h.s, want)
	for _, w := range want {
		var got raft.Log
		if err := h.s.GetLog(w.Index, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", w.Index, err)
		}
		checkEqual(t, &got, w)
	}
}

func testOrdering(t *testing.T, h *harness) {
	// Indexes that sort differently as strings and as numbers, and a
	// batch not given in order.
	var batch []*raft.Log
	for _, i := range []uint64{256, 1, 255, 2, 65536, 257, 1 << 40} {
		batch = append(batch, entry(i))
	}
	mustStore(t, h.s, batch)
	checkBounds(t, h.s, 1, 1<<40)
	for _, l := range batch {
		checkHas(t, h.s, l.Index, l.Index)
	}
	checkMissing(t, h.s, 3, 254, 258, 65535)
}

func testOverwrite(t *testing.T, h *harness) {
	mustStore(t, h.s, entries(1, 5))
	repl := &raft.Log{Index: 4, Term: 99, Type: raft.LogCommand, Data: []byte("replaced")}
	mustStore(t, h.s, []*raft.Log{repl})
	var got raft.Log
	if err := h.s.GetLog(4, &got); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, &got, repl)
	checkHas(t, h.s, 5, 5)
	checkBounds(t, h.s, 1, 5)
}

func testDeleteRangeEdges(t *testing.T, h *harness) {
	mustStore(t, h.s, entries(1, 20))

	mustDelete(t, h.s, 1, 3) // a prefix: what compaction does
	checkBounds(t, h.s, 4, 20)
	checkMissing(t, h.s, 1, 2, 3)
	checkHas(t, h.s, 4, 20)

	mustDelete(t, h.s, 18, 20) // a suffix: what a conflict does
	checkBounds(t, h.s, 4, 17)
	checkMissing(t, h.s, 18, 19, 20)

	mustDelete(t, h.s, 10, 9) // min > max: nothing
	checkBounds(t, h.s, 4, 17)
	checkHas(t, h.s, 4, 17)

	mustDelete(t, h.s, 4, 4) // a single entry at the front
	checkBounds(t, h.s, 5, 17)
	mustDelete(t, h.s, 17, 17) // and at the back
	checkBounds(t, h.s, 5, 16)

	mustDelete(t, h.s, 0, 6) // min below the first index
	checkBounds(t, h.s, 7, 16)
	mustDelete(t, h.s, 15, 1<<64-1) // max far above the last
	checkBounds(t, h.s, 7, 14)
	checkHas(t, h.s, 7, 14)

	mustDelete(t, h.s, 1, 1<<64-1) // everything
	checkBounds(t, h.s, 0, 0)
	checkMissing(t, h.s, 7, 14)
}

func testGapAfterDeleteAll(t *testing.T, h *harness) {
	// After a snapshot install the log is emptied and restarts further on.
	mustStore(t, h.s, entries(1, 10))
	mustDelete(t, h.s, 1, 10)
	mustStore(t, h.s, entries(1000, 1005))
	checkBounds(t, h.s, 1000, 1005)
	checkHas(t, h.s, 1000, 1005)
	checkMissing(t, h.s, 1, 10, 999, 1006)
}

func testLargeValues(t *testing.T, h *harness) {
	big := make([]byte, 8<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	want := &raft.Log{Index: 1, Term: 1, Type: raft.LogCommand, Data: big, Extensions: big[:70000]}
	mustStore(t, h.s, []*raft.Log{want, entry(2)})
	var got raft.Log
	if err := h.s.GetLog(1, &got); err != nil {
		t.Fatal(err)
	}
	checkEqual(t, &got, want)
	checkHas(t, h.s, 2, 2)

	val := bytes.Repeat([]byte("v"), 1<<20)
	if err := h.s.Set([]byte("big"), val); err != nil {
		t.Fatal(err)
	}
	gotVal, err := h.s.Get([]byte("big"))
	if err != nil || !bytes.Equal(gotVal, val) {
		t.Fatalf("Get(big) = %d bytes, %v; want %d bytes", len(gotVal), err, len(val))
	}
}

func testStableKeys(t *testing.T, h *harness) {
	s := h.s
	// Missing keys: raft compares the error text with "not found".
	if _, err := s.Get([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("Get(missing) error = %v; want text \"not found\"", err)
	}
	if v, err := s.GetUint64([]byte("LastVoteTerm")); v != 0 || (err != nil && err.Error() != "not found") {
		t.Fatalf("GetUint64(missing) = %d, %v; want 0 and nil or \"not found\"", v, err)
	}

	if err := s.SetUint64([]byte("CurrentTerm"), 1<<64-1); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 1<<64-1 {
		t.Fatalf("GetUint64 = %d, %v", v, err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 5); err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 5 {
		t.Fatalf("GetUint64 after overwrite = %d, %v; want 5", v, err)
	}

	// Binary keys and values; the value returned is the caller's to keep.
	key := []byte{0, 1, 0xff, 'k'}
	val := []byte{0, 0xfe, 'v', 0}
	if err := s.Set(key, val); err != nil {
		t.Fatal(err)
	}
	val[0] = 'X' // the store must have copied it
	got, err := s.Get(key)
	if err != nil || !bytes.Equal(got, []byte{0, 0xfe, 'v', 0}) {
		t.Fatalf("Get = %x, %v", got, err)
	}
	got[1] = 'Y'
	if again, _ := s.Get(key); !bytes.Equal(again, []byte{0, 0xfe, 'v', 0}) {
		t.Fatalf("the value Get returned aliases the store: now %x", again)
	}

	// An empty value is a value, not a missing key.
	if err := s.Set([]byte("empty"), []byte{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get([]byte("empty")); err != nil || len(got) != 0 {
		t.Fatalf("Get(empty) = %x, %v; want empty and no error", got, err)
	}
}

func testConcurrentReaders(t *testing.T, h *harness) {
	mustStore(t, h.s, entries(1, 10))
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var l raft.Log
				if err := h.s.GetLog(5, &l); err != nil {
					errc <- fmt.Errorf("GetLog(5) beside a writer: %w", err)
					return
				}
				if string(l.Data) != "entry 5" {
					errc <- fmt.Errorf("GetLog(5) beside a writer read %q", l.Data)
					return
				}
				if _, err := h.s.LastIndex(); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	for i := uint64(11); i <= 200; i += 10 {
		if err := h.s.StoreLogs(entries(i, i+9)); err != nil {
			t.Errorf("StoreLogs: %v", err)
			break
		}
	}
	close(stop)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	checkBounds(t, h.s, 1, 200)
}

func testCommitIndex(t *testing.T, h *harness) {
	ct, ok := h.s.(raft.CommitTrackingLogStore)
	if !ok {
		t.Skip("not a raft.CommitTrackingLogStore")
	}
	if ci, err := ct.GetCommitIndex(); err != nil || ci != 0 {
		t.Fatalf("GetCommitIndex on a new store = %d, %v; want 0, nil", ci, err)
	}
	mustStore(t, h.s, entries(1, 5))
	if err := ct.StageCommitIndex(4); err != nil {
		t.Fatal(err)
	}
	mustStore(t, h.s, entries(6, 8))
	if ci, err := ct.GetCommitIndex(); err != nil || ci != 4 {
		t.Fatalf("GetCommitIndex = %d, %v; want 4", ci, err)
	}
	// Never above the last index, even if staged so.
	if err := ct.StageCommitIndex(50); err != nil {
		t.Fatal(err)
	}
	mustStore(t, h.s, entries(9, 9))
	if ci, err := ct.GetCommitIndex(); err != nil || ci > 9 {
		t.Fatalf("GetCommitIndex = %d, %v; want at most the last index 9", ci, err)
	}
	if h.f.Persistent {
		if err := ct.StageCommitIndex(7); err != nil {
			t.Fatal(err)
		}
		mustStore(t, h.s, entries(10, 10))
		h.reopen(t)
		ct = h.s.(raft.CommitTrackingLogStore)
		if ci, err := ct.GetCommitIndex(); err != nil || ci != 7 {
			t.Fatalf("GetCommitIndex after reopen = %d, %v; want 7", ci, err)
		}
	}
}

func testReopen(t *testing.T, h *harness) {
	if !h.f.Persistent {
		t.Skip("not a persistent store")
	}
	mustStore(t, h.s, entries(1, 50))
	mustDelete(t, h.s, 1, 9)
	mustDelete(t, h.s, 46, 50)
	if err := h.s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Set([]byte("LastVoteCand"), []byte("10.0.0.1:8300")); err != nil {
		t.Fatal(err)
	}
	h.reopen(t)
	checkBounds(t, h.s, 10, 45)
	checkHas(t, h.s, 10, 45)
	checkMissing(t, h.s, 9, 46)
	if v, err := h.s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
		t.Fatalf("CurrentTerm after reopen = %d, %v", v, err)
	}
	if v, err := h.s.Get([]byte("LastVoteCand")); err != nil || string(v) != "10.0.0.1:8300" {
		t.Fatalf("LastVoteCand after reopen = %q, %v", v, err)
	}
	// And it keeps working after the reopen.
	mustStore(t, h.s, entries(46, 60))
	checkBounds(t, h.s, 10, 60)
	h.reopen(t)
	checkHas(t, h.s, 10, 60)
}
