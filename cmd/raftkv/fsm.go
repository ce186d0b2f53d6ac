package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/seed48a2b68f/raft"
)

// Commands are one byte of operation, the key's length as a uvarint, the
// key, and the value (the rest).
const (
	opPut    byte = 1 // key = value
	opDelete byte = 2 // remove key
	opMember byte = 3 // key = server ID, value = its HTTP address
	opForget byte = 4 // forget the HTTP address of server key
)

// Limits on what a client may store; snapshots are read with the same
// bounds so that a corrupt length cannot make us allocate without limit.
const (
	maxKeyLen   = 512
	maxValueLen = 1 << 20
)

func encodeCommand(op byte, key string, value []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(key)+len(value))
	b = append(b, op)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	return append(b, value...)
}

func decodeCommand(b []byte) (op byte, key string, value []byte, err error) {
	if len(b) < 2 {
		return 0, "", nil, errors.New("command too short")
	}
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || n > uint64(len(b)-1-w) {
		return 0, "", nil, errors.New("command key length out of range")
	}
	rest := b[1+w:]
	return b[0], string(rest[:n]), rest[n:], nil
}

// kvStore is the replicated state machine: the keys and values, and the
// HTTP address of every member (so that any node can forward to the
// leader).
type kvStore struct {
	mu      sync.RWMutex
	data    map[string][]byte
	members map[string]string
	// changed is closed (and replaced) after every applied batch.
	changed chan struct{}
}

func newKVStore() *kvStore {
	return &kvStore{data: map[string][]byte{}, members: map[string]string{}, changed: make(chan struct{})}
}

// Apply applies one entry.
func (s *kvStore) Apply(l *raft.Log) interface{} {
	return s.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in order; a command that does not
// decode yields an error as its response (the entry is still consumed).
func (s *kvStore) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		op, key, value, err := decodeCommand(l.Data)
		if err != nil {
			out[i] = fmt.Errorf("entry %d: %w", l.Index, err)
			continue
		}
		switch op {
		case opPut:
			s.data[key] = append([]byte(nil), value...)
		case opDelete:
			delete(s.data, key)
		case opMember:
			s.members[key] = string(value)
		case opForget:
			delete(s.members, key)
		default:
			out[i] = fmt.Errorf("entry %d: unknown operation %d", l.Index, op)
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return out
}

func (s *kvStore) get(key string) ([]byte, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, ok := s.data[key]
	return v, ok
}

func (s *kvStore) member(id string) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.members[id]
}

// changedCh returns a channel closed at the next applied batch.
func (s *kvStore) changedCh() <-chan struct{} {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.changed
}

// Snapshot copies the maps; Persist writes them without holding the lock.
func (s *kvStore) Snapshot() (raft.FSMSnapshot, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	snap := &kvSnapshot{data: make(map[string][]byte, len(s.data)), members: make(map[string]string, len(s.members))}
	for k, v := range s.data {
		snap.data[k] = v // values are never modified in place
	}
	for k, v := range s.members {
		snap.members[k] = v
	}
	return snap, nil
}

// snapshotMagic starts every snapshot this program writes.
const snapshotMagic = "raftkv1\n"

// Restore replaces the state with a snapshot's; a malformed snapshot is an
// error and leaves the state as it was.
func (s *kvStore) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	data, members, err := readSnapshot(bufio.NewReader(rc))
	if err != nil {
		return fmt.Errorf("raftkv: restoring snapshot: %w", err)
	}
	s.mu.Lock()
	s.data, s.members = data, members
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

type kvSnapshot struct {
	data    map[string][]byte
	members map[string]string
}

func (k *kvSnapshot) Persist(sink raft.SnapshotSink) error {
	w := bufio.NewWriter(sink)
	err := writeSnapshot(w, k.data, k.members)
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("raftkv: writing snapshot: %w", err)
	}
	return sink.Close()
}

func (k *kvSnapshot) Release() {}

// The snapshot format: the magic, then the number of keys, each key and
// value as uvarint length and bytes, then the number of members, each ID
// and address the same way.
func writeSnapshot(w *bufio.Writer, data map[string][]byte, members map[string]string) error {
	var buf [binary.MaxVarintLen64]byte
	put := func(b []byte) {
		w.Write(buf[:binary.PutUvarint(buf[:], uint64(len(b)))])
		w.Write(b)
	}
	w.WriteString(snapshotMagic)
	w.Write(buf[:binary.PutUvarint(buf[:], uint64(len(data)))])
	for k, v := range data {
		put([]byte(k))
		put(v)
	}
	w.Write(buf[:binary.PutUvarint(buf[:], uint64(len(members)))])
	for id, addr := range members {
		put([]byte(id))
		put([]byte(addr))
	}
	_, err := w.Write(nil) // the first write error, if any, sticks
	return err
}

// readSnapshot reads a whole snapshot into maps.
func readSnapshot(r *bufio.Reader) (map[string][]byte, map[string]string, error) {
	data, members := map[string][]byte{}, map[string]string{}
	err := scanSnapshot(r, func(k string, v []byte) { data[k] = bytes.Clone(v) },
		func(id, addr string) { members[id] = addr })
	if err != nil {
		return nil, nil, err
	}
	return data, members, nil
}

// checkSnapshot reads a snapshot through and reports how many keys it
// holds, keeping none of it: memory stays at one value however large the
// snapshot is.
func checkSnapshot(r *bufio.Reader) (keys int, err error) {
	err = scanSnapshot(r, func(string, []byte) { keys++ }, func(string, string) {})
	return keys, err
}

// scanSnapshot walks a snapshot, calling key for each key and value (the
// value is valid only during the call) and member for each member, and
// fails on anything that is not exactly a snapshot: a wrong magic, a field
// above its limit, a truncation or trailing bytes.
func scanSnapshot(r *bufio.Reader, key func(k string, v []byte), member func(id, addr string)) error {
	magic := make([]byte, len(snapshotMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapshotMagic {
		return errors.New("not a raftkv snapshot")
	}
	count := func(what string) (uint64, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return 0, fmt.Errorf("reading the number of %s: %w", what, err)
		}
		return n, nil
	}
	var scratch []byte
	field := func(limit int) ([]byte, error) {
		n, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, err
		}
		if n > uint64(limit) {
			return nil, fmt.Errorf("length %d above the limit %d", n, limit)
		}
		if uint64(cap(scratch)) < n {
			scratch = make([]byte, n)
		}
		b := scratch[:n]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	n, err := count("keys")
	if err != nil {
		return err
	}
	for i := uint64(0); i < n; i++ {
		k, err := field(maxKeyLen)
		if err != nil {
			return fmt.Errorf("key %d of %d: %w", i, n, err)
		}
		ks := string(k)
		v, err := field(maxValueLen)
		if err != nil {
			return fmt.Errorf("value of key %q: %w", ks, err)
		}
		key(ks, v)
	}
	if n, err = count("members"); err != nil {
		return err
	}
	for i := uint64(0); i < n; i++ {
		id, err := field(maxKeyLen)
		if err != nil {
			return fmt.Errorf("member %d of %d: %w", i, n, err)
		}
		ids := string(id)
		addr, err := field(maxKeyLen)
		if err != nil {
			return fmt.Errorf("address of member %q: %w", ids, err)
		}
		member(ids, string(addr))
	}
	if _, err := r.ReadByte(); err != io.EOF {
		return errors.New("trailing bytes after the last member")
	}
	return nil
}
