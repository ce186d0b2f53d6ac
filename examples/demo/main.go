// Command demo runs a 3-node cluster in one process on the in-memory
// transport and walks it through what a service does with Raft: election,
// replication, a partition that makes the leader step down, a snapshot and a
// new voter that catches up from it, a leadership transfer, the removal of a
// server, observers and Stats.
//
// It uses only the API that hashicorp/raft also has: replace the import path
// with github.com/hashicorp/raft and it builds and runs the same.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft"
)

// counter is the replicated state machine: a list of applied commands.
type counter struct {
	mu      sync.Mutex
	applied []string
}

func (c *counter) Apply(l *raft.Log) interface{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applied = append(c.applied, string(l.Data))
	return len(c.applied)
}

func (c *counter) Snapshot() (raft.FSMSnapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &counterSnapshot{append([]string(nil), c.applied...)}, nil
}

func (c *counter) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var applied []string
	if err := json.NewDecoder(rc).Decode(&applied); err != nil {
		return err
	}
	c.mu.Lock()
	c.applied = applied
	c.mu.Unlock()
	return nil
}

func (c *counter) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.applied)
}

type counterSnapshot struct{ applied []string }

func (s *counterSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s.applied); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *counterSnapshot) Release() {}

type node struct {
	id    raft.ServerID
	addr  raft.ServerAddress
	raft  *raft.Raft
	fsm   *counter
	trans *raft.InmemTransport
}

func newNode(i int) *node {
	id := raft.ServerID(fmt.Sprintf("node%d", i))
	addr, trans := raft.NewInmemTransport("")
	conf := raft.DefaultConfig()
	conf.LocalID = id
	conf.HeartbeatTimeout = 100 * time.Millisecond
	conf.ElectionTimeout = 100 * time.Millisecond
	conf.LeaderLeaseTimeout = 100 * time.Millisecond
	conf.CommitTimeout = 10 * time.Millisecond
	conf.TrailingLogs = 5
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: string(id), Level: hclog.Off, Output: os.Stderr})
	store := raft.NewInmemStore()
	fsm := &counter{}
	r, err := raft.NewRaft(conf, fsm, store, store, raft.NewInmemSnapshotStore(), trans)
	if err != nil {
		log.Fatalf("NewRaft: %v", err)
	}
	return &node{id: id, addr: addr, raft: r, fsm: fsm, trans: trans}
}

func connect(nodes []*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Connect(b.addr, b.trans)
			}
		}
	}
}

func waitLeader(nodes []*node) *node {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, n := range nodes {
			if n.raft.State() == raft.Leader {
				return n
			}
		}
	}
	log.Fatal("no leader elected")
	return nil
}

func waitFor(what string, cond func() bool) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	log.Fatalf("timed out waiting for %s", what)
}

func apply(leader *node, prefix string, n int) {
	for i := 0; i < n; i++ {
		if err := leader.raft.Apply([]byte(fmt.Sprintf("%s-%d", prefix, i)), time.Second).Error(); err != nil {
			log.Fatalf("apply: %v", err)
		}
	}
}

func others(nodes []*node, not *node) []*node {
	var out []*node
	for _, n := range nodes {
		if n != not {
			out = append(out, n)
		}
	}
	return out
}

func main() {
	log.SetFlags(0)
	nodes := []*node{newNode(0), newNode(1), newNode(2)}
	connect(nodes)

	// Observe leadership changes on every node.
	obsCh := make(chan raft.Observation, 256)
	observer := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	for _, n := range nodes {
		n.raft.RegisterObserver(observer)
	}

	var servers []raft.Server
	for _, n := range nodes {
		servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: n.id, Address: n.addr})
	}
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		log.Fatalf("bootstrap: %v", err)
	}

	leader := waitLeader(nodes)
	fmt.Printf("1. election: %s leads term %d\n", leader.id, leader.raft.CurrentTerm())

	apply(leader, "a", 100)
	waitFor("replication", func() bool {
		for _, n := range nodes {
			if n.fsm.len() != 100 {
				return false
			}
		}
		return true
	})
	fmt.Println("2. replication: 100 commands applied on all 3 nodes")

	// Partition the leader away: it cannot commit and steps down.
	old := leader
	for _, n := range others(nodes, old) {
		old.trans.Disconnect(n.addr)
		n.trans.Disconnect(old.addr)
	}
	err := old.raft.Apply([]byte("lost"), time.Second).Error()
	waitFor("step-down", func() bool { return old.raft.State() != raft.Leader })
	leader = waitLeader(others(nodes, old))
	fmt.Printf("3. partition: %s stepped down (apply said %q), %s leads term %d\n",
		old.id, err, leader.id, leader.raft.CurrentTerm())
	connect(nodes)
	apply(leader, "b", 20)

	// Snapshot, compact, and add a voter that catches up from the snapshot.
	if err := leader.raft.Snapshot().Error(); err != nil {
		log.Fatalf("snapshot: %v", err)
	}
	apply(leader, "c", 10)
	joiner := newNode(3)
	nodes = append(nodes, joiner)
	connect(nodes)
	if err := leader.raft.AddVoter(joiner.id, joiner.addr, 0, time.Second).Error(); err != nil {
		log.Fatalf("add voter: %v", err)
	}
	waitFor("catch-up", func() bool { return joiner.fsm.len() == 130 })
	fmt.Printf("4. snapshot + AddVoter: %s joined and applied %d commands\n", joiner.id, joiner.fsm.len())

	// Hand leadership over.
	from := leader
	if err := from.raft.LeadershipTransfer().Error(); err != nil {
		log.Fatalf("leadership transfer: %v", err)
	}
	waitFor("new leader", func() bool { l := waitLeader(nodes); return l != from })
	leader = waitLeader(nodes)
	fmt.Printf("5. leadership transfer: %s -> %s\n", from.id, leader.id)

	// Remove a follower.
	victim := others(nodes, leader)[0]
	if err := leader.raft.RemoveServer(victim.id, 0, time.Second).Error(); err != nil {
		log.Fatalf("remove server: %v", err)
	}
	cfg := leader.raft.GetConfiguration()
	if err := cfg.Error(); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("6. RemoveServer: %s removed, %d servers remain\n", victim.id, len(cfg.Configuration().Servers))

	observed := 0
	for len(obsCh) > 0 {
		<-obsCh
		observed++
	}
	fmt.Printf("7. observers: %d leader changes observed (%d dropped)\n", observed, observer.GetNumDropped())
	stats := leader.raft.Stats()
	fmt.Printf("8. stats: state=%s term=%s last_log_index=%s commit_index=%s applied_index=%s num_peers=%s\n",
		stats["state"], stats["term"], stats["last_log_index"], stats["commit_index"], stats["applied_index"], stats["num_peers"])

	for _, n := range nodes {
		if err := n.raft.Shutdown().Error(); err != nil {
			log.Fatalf("shutdown: %v", err)
		}
	}
	fmt.Println("ok")
}
