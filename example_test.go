package raft_test

import (
	"fmt"
	"io"
	"sync"
	"time"

	raft "github.com/seed48a2b68f/raft"
)

// kv is a tiny FSM: it counts the commands it applied.
type kv struct {
	mu sync.Mutex
	n  int
}

func (k *kv) Apply(l *raft.Log) interface{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.n++
	return k.n
}
func (k *kv) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("not supported") }
func (k *kv) Restore(io.ReadCloser) error         { return nil }

// Example embeds a single-node cluster: bootstrap it, wait for it to lead,
// and apply a command through a future.
func Example() {
	conf := raft.DefaultConfig()
	conf.LocalID = "node1"
	conf.LogLevel = "OFF"
	store := raft.NewInmemStore() // use raftbolt for a durable store
	snaps := raft.NewInmemSnapshotStore()
	addr, trans := raft.NewInmemTransport("node1")

	configuration := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}
	if err := raft.BootstrapCluster(conf, store, store, snaps, trans, configuration); err != nil {
		panic(err)
	}
	r, err := raft.NewRaft(conf, &kv{}, store, store, snaps, trans)
	if err != nil {
		panic(err)
	}
	defer func() { _ = r.Shutdown().Error() }()

	for r.State() != raft.Leader {
		time.Sleep(10 * time.Millisecond)
	}
	f := r.Apply([]byte("hello"), time.Second)
	if err := f.Error(); err != nil {
		panic(err)
	}
	fmt.Println("applied at index", f.Index(), "response", f.Response())
	// Output: applied at index 3 response 1
}
