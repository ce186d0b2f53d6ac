package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"maps"
	"testing"

	"github.com/seed48a2b68f/raft"
)

func applyAll(s *kvStore, cmds ...[]byte) []interface{} {
	logs := make([]*raft.Log, len(cmds))
	for i, c := range cmds {
		logs[i] = &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: c}
	}
	return s.ApplyBatch(logs)
}

func TestFSMApply(t *testing.T) {
	s := newKVStore()
	changed := s.changedCh()
	out := applyAll(s,
		encodeCommand(opPut, "a", []byte("1")),
		encodeCommand(opPut, "b", []byte("2")),
		encodeCommand(opDelete, "a", nil),
		encodeCommand(opMember, "n1", []byte("127.0.0.1:8001")),
		[]byte{9, 0},               // unknown operation
		[]byte{opPut, 200, 1, 'x'}, // key length beyond the command
		[]byte{opPut},
	)
	select {
	case <-changed:
	default:
		t.Fatal("applying a batch did not signal waiters")
	}
	for i, want := range []bool{false, false, false, false, true, true, true} {
		if _, isErr := out[i].(error); isErr != want {
			t.Errorf("response %d = %v, want an error: %v", i, out[i], want)
		}
	}
	if _, ok := s.get("a"); ok {
		t.Error("deleted key still present")
	}
	if v, _ := s.get("b"); string(v) != "2" || s.member("n1") != "127.0.0.1:8001" {
		t.Errorf("state after apply: b=%q n1=%q", v, s.member("n1"))
	}
}

type bufSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (b *bufSink) ID() string                  { return "test" }
func (b *bufSink) Cancel() error               { b.cancelled = true; return nil }
func (b *bufSink) Close() error                { b.closed = true; return nil }
func (b *bufSink) Write(p []byte) (int, error) { return b.Buffer.Write(p) }

func snapshotBytes(t *testing.T, s *kvStore) []byte {
	t.Helper()
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v (closed %v)", err, sink.closed)
	}
	return sink.Bytes()
}

func TestFSMSnapshotRoundTrip(t *testing.T) {
	s := newKVStore()
	applyAll(s, encodeCommand(opPut, "a", []byte("1")), encodeCommand(opPut, "empty", nil),
		encodeCommand(opPut, "big", bytes.Repeat([]byte{7}, 70000)), encodeCommand(opMember, "n1", []byte("h:1")))
	b := snapshotBytes(t, s)
	r := newKVStore()
	if err := r.Restore(io.NopCloser(bytes.NewReader(b))); err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(s.data, r.data, bytes.Equal) || !maps.Equal(s.members, r.members) {
		t.Fatalf("restored state differs: %d keys, members %v", len(r.data), r.members)
	}
}

// Every truncation and a hostile length are errors that leave the state
// as it was, never a panic or a huge allocation.
func TestFSMCorruptSnapshot(t *testing.T) {
	s := newKVStore()
	applyAll(s, encodeCommand(opPut, "a", []byte("1")), encodeCommand(opPut, "bb", []byte("22")),
		encodeCommand(opMember, "n1", []byte("h:1")))
	good := snapshotBytes(t, s)
	r := newKVStore()
	applyAll(r, encodeCommand(opPut, "keep", []byte("me")))
	for cut := 0; cut < len(good); cut++ {
		if err := r.Restore(io.NopCloser(bytes.NewReader(good[:cut]))); err == nil {
			t.Fatalf("a snapshot cut at %d of %d bytes restored", cut, len(good))
		}
	}
	hostile := append([]byte(snapshotMagic), 1)
	hostile = binary.AppendUvarint(hostile, 1<<40) // a key of a terabyte
	for _, b := range [][]byte{hostile, append(bytes.Clone(good), 0), []byte("not a snapshot at all")} {
		if err := r.Restore(io.NopCloser(bytes.NewReader(b))); err == nil {
			t.Fatalf("restored %q", b)
		}
	}
	if v, _ := r.get("keep"); string(v) != "me" || len(r.data) != 1 {
		t.Fatalf("a failed restore changed the state: %v", r.data)
	}
}

func FuzzReadSnapshot(f *testing.F) {
	s := newKVStore()
	applyAll(s, encodeCommand(opPut, "a", []byte("1")), encodeCommand(opMember, "n1", []byte("h:1")))
	snap, _ := s.Snapshot()
	var sink bufSink
	snap.Persist(&sink)
	f.Add(sink.Bytes())
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		data, members, err := readSnapshot(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		// Whatever reads back writes back to the same bytes' meaning.
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := writeSnapshot(w, data, members); err != nil || w.Flush() != nil {
			t.Fatal(err)
		}
		d2, m2, err := readSnapshot(bufio.NewReader(&out))
		if err != nil || !maps.EqualFunc(data, d2, bytes.Equal) || !maps.Equal(members, m2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(encodeCommand(opPut, "key", []byte("value")))
	f.Add([]byte{opDelete, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		op, key, value, err := decodeCommand(b)
		if err != nil {
			return
		}
		if len(key)+len(value) > len(b) {
			t.Fatalf("decoded %d bytes of key and value from %d", len(key)+len(value), len(b))
		}
		op2, key2, value2, err := decodeCommand(encodeCommand(op, key, value))
		if err != nil || op2 != op || key2 != key || !bytes.Equal(value2, value) {
			t.Fatalf("round trip of %d %q %q: %d %q %q, %v", op, key, value, op2, key2, value2, err)
		}
	})
}
