// Command autopilot runs a 3-node cluster in one process on the in-memory
// transport with autopilot on its leader: a new server joins as a nonvoter
// and is promoted once stable, and a server that dies is removed.
//
// It uses only the API that hashicorp/raft and hashicorp/raft-autopilot also
// have: replace the import paths with github.com/hashicorp/raft and
// github.com/hashicorp/raft-autopilot and it builds and runs the same
// (.ci/hashicorp-autopilot.sh does, and compares the steps).
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/autopilot"
)

type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) interface{}         { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error      { return rc.Close() }

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}

type node struct {
	id    raft.ServerID
	addr  raft.ServerAddress
	trans *raft.InmemTransport
	r     *raft.Raft
	alive bool
}

// cluster is the application: it knows its servers and whether they are
// alive, and tells autopilot.
type cluster struct {
	mu    sync.Mutex
	nodes []*node
}

func (c *cluster) AutopilotConfig() *autopilot.Config {
	return &autopilot.Config{
		CleanupDeadServers:      true,
		LastContactThreshold:    time.Second,
		MaxTrailingLogs:         100,
		ServerStabilizationTime: time.Second,
	}
}

func (c *cluster) NotifyState(*autopilot.State) {}

func (c *cluster) KnownServers() map[raft.ServerID]*autopilot.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[raft.ServerID]*autopilot.Server{}
	for _, n := range c.nodes {
		status := autopilot.NodeAlive
		if !n.alive {
			status = autopilot.NodeFailed
		}
		out[n.id] = &autopilot.Server{ID: n.id, Name: string(n.id), Address: n.addr, NodeStatus: status,
			NodeType: autopilot.NodeVoter}
	}
	return out
}

func (c *cluster) FetchServerStats(_ context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[raft.ServerID]*autopilot.ServerStats{}
	for _, n := range c.nodes {
		if _, ok := servers[n.id]; !ok || !n.alive {
			continue
		}
		st := n.r.Stats()
		s := &autopilot.ServerStats{}
		s.LastTerm, _ = strconv.ParseUint(st["last_log_term"], 10, 64)
		s.LastIndex, _ = strconv.ParseUint(st["last_log_index"], 10, 64)
		if d, err := time.ParseDuration(st["last_contact"]); err == nil {
			s.LastContact = d
		} else if st["last_contact"] == "never" {
			s.LastContact = -1
		}
		out[n.id] = s
	}
	return out
}

func (c *cluster) RemoveFailedServer(s *autopilot.Server) {
	go func() {
		if l := c.leader(); l != nil {
			_ = l.r.RemoveServer(s.ID, 0, 0).Error()
		}
	}()
}

func (c *cluster) leader() *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.alive && n.r.State() == raft.Leader {
			return n
		}
	}
	return nil
}

func (c *cluster) start(i int, bootstrap *raft.Configuration) *node {
	n := &node{id: raft.ServerID(fmt.Sprintf("n%d", i)), alive: true}
	n.addr, n.trans = raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("addr%d", i)))
	c.mu.Lock()
	for _, m := range c.nodes {
		m.trans.Connect(n.addr, n.trans)
		n.trans.Connect(m.addr, m.trans)
	}
	c.mu.Unlock()
	conf := raft.DefaultConfig()
	conf.LocalID = n.id
	conf.HeartbeatTimeout, conf.ElectionTimeout = 200*time.Millisecond, 200*time.Millisecond
	conf.LeaderLeaseTimeout, conf.CommitTimeout = 100*time.Millisecond, 5*time.Millisecond
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	store := raft.NewInmemStore()
	snaps := raft.NewInmemSnapshotStore()
	if bootstrap != nil {
		if err := raft.BootstrapCluster(conf, store, store, snaps, n.trans, *bootstrap); err != nil {
			log.Fatal(err)
		}
	}
	r, err := raft.NewRaft(conf, nopFSM{}, store, store, snaps, n.trans)
	if err != nil {
		log.Fatal(err)
	}
	n.r = r
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	return n
}

func suffrageOf(r *raft.Raft, id raft.ServerID) string {
	for _, s := range r.GetConfiguration().Configuration().Servers {
		if s.ID == id {
			return s.Suffrage.String()
		}
	}
	return "absent"
}

func waitFor(what string, cond func() bool) {
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			log.Fatalf("timed out waiting for %s", what)
		}
	}
}

func main() {
	c := &cluster{}
	var boot raft.Configuration
	for i := 0; i < 3; i++ {
		id := raft.ServerID(fmt.Sprintf("n%d", i))
		boot.Servers = append(boot.Servers, raft.Server{Suffrage: raft.Voter, ID: id, Address: raft.ServerAddress(fmt.Sprintf("addr%d", i))})
	}
	for i := 0; i < 3; i++ {
		c.start(i, &boot)
	}
	waitFor("a leader", func() bool { return c.leader() != nil })
	l := c.leader()
	fmt.Printf("1. leader elected: %s\n", l.id)

	ap := autopilot.New(l.r, c,
		autopilot.WithUpdateInterval(100*time.Millisecond),
		autopilot.WithReconcileInterval(200*time.Millisecond),
		autopilot.WithLogger(hclog.New(&hclog.LoggerOptions{Output: io.Discard})))
	ap.Start(context.Background())
	fmt.Println("2. autopilot started on the leader")

	n3 := c.start(3, nil)
	if err := ap.AddServer(&autopilot.Server{ID: n3.id, Address: n3.addr, NodeStatus: autopilot.NodeAlive}); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("3. new server joins: %s is %s\n", n3.id, suffrageOf(l.r, n3.id))

	waitFor("the promotion", func() bool { return suffrageOf(l.r, n3.id) == "Voter" })
	fmt.Printf("4. promoted once stable: %s is %s\n", n3.id, suffrageOf(l.r, n3.id))

	var dead *node
	c.mu.Lock()
	for _, n := range c.nodes {
		if n != l && n != n3 {
			dead = n
			break
		}
	}
	dead.alive = false
	c.mu.Unlock()
	_ = dead.r.Shutdown().Error()
	waitFor("the dead server removed", func() bool { return suffrageOf(l.r, dead.id) == "absent" })
	fmt.Printf("5. dead server removed: %s is %s\n", dead.id, suffrageOf(l.r, dead.id))

	waitFor("a healthy state", func() bool {
		st := ap.GetState()
		return st.Healthy && len(st.Voters) == 3
	})
	st := ap.GetState()
	fmt.Printf("6. state: healthy with %d voters, failure tolerance %d\n", len(st.Voters), st.FailureTolerance)

	<-ap.Stop()
	for _, n := range c.nodes {
		if n.alive {
			_ = n.r.Shutdown().Error()
		}
	}
	fmt.Println("ok")
	os.Exit(0)
}
