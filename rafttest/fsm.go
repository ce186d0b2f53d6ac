package rafttest

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	raft "github.com/seed48a2b68f/raft"
)

// FSM is a state machine that records every command it applies. It is safe
// for concurrent use: tests read it while the node applies.
type FSM struct {
	mu        sync.Mutex
	logs      [][]byte
	lastIndex uint64
	lastTerm  uint64
	configs   []raft.Configuration
}

// NewFSM returns an empty recording FSM.
func NewFSM() *FSM { return &FSM{} }

// Apply records the command and returns the number of commands applied so
// far. It fails the run (panics) if entries arrive out of order, which would
// break the Raft state machine safety property.
func (f *FSM) Apply(l *raft.Log) interface{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Index <= f.lastIndex {
		panic(fmt.Sprintf("rafttest: FSM got index %d after %d", l.Index, f.lastIndex))
	}
	if l.Term < f.lastTerm {
		panic(fmt.Sprintf("rafttest: FSM got term %d after %d", l.Term, f.lastTerm))
	}
	f.lastIndex, f.lastTerm = l.Index, l.Term
	f.logs = append(f.logs, append([]byte(nil), l.Data...))
	return len(f.logs)
}

// StoreConfiguration records committed configurations (the FSM is a
// raft.ConfigurationStore).
func (f *FSM) StoreConfiguration(index uint64, c raft.Configuration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configs = append(f.configs, c)
}

// Configurations returns the committed configurations stored so far.
func (f *FSM) Configurations() []raft.Configuration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]raft.Configuration(nil), f.configs...)
}

// Logs returns a copy of the commands applied so far.
func (f *FSM) Logs() [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([][]byte, len(f.logs))
	copy(out, f.logs)
	return out
}

// Len returns the number of commands applied so far.
func (f *FSM) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.logs)
}

// fsmState is what a snapshot holds.
type fsmState struct {
	Logs      [][]byte
	LastIndex uint64
	LastTerm  uint64
}

// Snapshot captures the applied commands.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := fsmState{Logs: make([][]byte, len(f.logs)), LastIndex: f.lastIndex, LastTerm: f.lastTerm}
	copy(s.Logs, f.logs)
	return &fsmSnapshot{state: s}, nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s fsmState
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("rafttest: decode snapshot: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs, f.lastIndex, f.lastTerm = s.Logs, s.LastIndex, s.LastTerm
	return nil
}

type fsmSnapshot struct{ state fsmState }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(&s.state); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("rafttest: encode snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
