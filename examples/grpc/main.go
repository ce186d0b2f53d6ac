// Command grpc is a first Raft over gRPC, built on this library: three
// nodes in one process, each with an ID, a gRPC server on loopback and
// clients to its peers (grpctransport), elect a leader, replicate
// commands through an apply loop, lose the leader and elect again,
// printing each step with the term and the votes behind it.
//
//	cd examples/grpc && go run .
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft"
	transport "github.com/seed48a2b68f/raft/grpctransport"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// counter is the state machine: how many commands it has applied, and
// the last one.
type counter struct {
	mu   sync.Mutex
	n    int
	last string
}

func (c *counter) Apply(l *raft.Log) interface{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	c.last = string(l.Data)
	return c.n
}

func (c *counter) Snapshot() (raft.FSMSnapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return state{N: c.n, Last: c.last}, nil
}

func (c *counter) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s state
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return err
	}
	c.mu.Lock()
	c.n, c.last = s.N, s.Last
	c.mu.Unlock()
	return nil
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// state is the counter's snapshot.
type state struct {
	N    int
	Last string
}

func (s state) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (state) Release() {}

// node is one server: its ID, gRPC server, transport and Raft.
type node struct {
	id      raft.ServerID
	addr    raft.ServerAddress
	server  *grpc.Server
	manager *transport.Manager
	raft    *raft.Raft
	fsm     *counter
	votes   chan raft.Observation
}

func start(id raft.ServerID, l net.Listener, peers raft.Configuration) *node {
	n := &node{id: id, addr: raft.ServerAddress(l.Addr().String()), fsm: &counter{}, votes: make(chan raft.Observation, 64)}
	// Clients to the peers: one gRPC connection per peer, made on first use.
	n.manager = transport.New(n.addr, []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())})
	// The node's own gRPC server carries Raft (and could carry the
	// application's API beside it).
	n.server = grpc.NewServer(grpc.MaxRecvMsgSize(32 << 20))
	n.manager.Register(n.server)
	go n.server.Serve(l)

	conf := raft.DefaultConfig()
	conf.LocalID = id
	// The election timeout: a follower that hears nothing for this long
	// stands for election.
	conf.HeartbeatTimeout, conf.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
	conf.LeaderLeaseTimeout = 250 * time.Millisecond
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	store := raft.NewInmemStore()
	snaps := raft.NewInmemSnapshotStore()
	if err := raft.BootstrapCluster(conf, store, store, snaps, n.manager.Transport(), peers); err != nil {
		log.Fatal(err)
	}
	r, err := raft.NewRaft(conf, n.fsm, store, store, snaps, n.manager.Transport())
	if err != nil {
		log.Fatal(err)
	}
	n.raft = r
	// Watch the vote requests this node receives.
	r.RegisterObserver(raft.NewObserver(n.votes, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.RequestVoteRequest)
		return ok
	}))
	return n
}

func (n *node) stop() {
	_ = n.raft.Shutdown().Error()
	n.server.Stop()
	_ = n.manager.Close()
}

func waitLeader(nodes []*node) *node {
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for _, n := range nodes {
			if n.raft.State() == raft.Leader {
				return n
			}
		}
	}
	log.Fatal("no leader elected")
	return nil
}

// votesFor drains the vote requests the given nodes saw and returns who
// asked in term.
func votesFor(nodes []*node, term uint64) map[string]bool {
	asked := map[string]bool{}
	for _, n := range nodes {
		for {
			select {
			case o := <-n.votes:
				if req := o.Data.(raft.RequestVoteRequest); req.Term == term {
					asked[string(n.id)] = true
				}
				continue
			default:
			}
			break
		}
	}
	return asked
}

func replicate(leader *node, nodes []*node, prefix string, count, want int) {
	for i := 0; i < count; i++ {
		if err := leader.raft.Apply([]byte(fmt.Sprintf("%s-%d", prefix, i)), 5*time.Second).Error(); err != nil {
			log.Fatalf("apply through %s: %v", leader.id, err)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		done := true
		for _, n := range nodes {
			done = done && n.fsm.count() >= want
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			log.Fatal("the followers did not apply the commands")
		}
	}
}

func main() {
	var ls []net.Listener
	var peers raft.Configuration
	for i := 1; i <= 3; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		ls = append(ls, l)
		peers.Servers = append(peers.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprintf("n%d", i)),
			Address: raft.ServerAddress(l.Addr().String())})
	}
	var nodes []*node
	for i, l := range ls {
		nodes = append(nodes, start(peers.Servers[i].ID, l, peers))
	}
	fmt.Printf("1. started 3 nodes, each with a gRPC server: %s %s, %s %s, %s %s\n",
		nodes[0].id, nodes[0].addr, nodes[1].id, nodes[1].addr, nodes[2].id, nodes[2].addr)

	leader := waitLeader(nodes)
	term := leader.raft.CurrentTerm()
	fmt.Printf("2. election over gRPC: %s leads in term %d (vote requests of that term seen by %v)\n",
		leader.id, term, keys(votesFor(nodes, term)))

	replicate(leader, nodes, "a", 10, 10)
	fmt.Printf("3. replicated: 10 commands applied on every node (commit index %d)\n", leader.raft.CommitIndex())

	leader.stop()
	fmt.Printf("4. stopped the leader %s\n", leader.id)
	var rest []*node
	for _, n := range nodes {
		if n != leader {
			rest = append(rest, n)
		}
	}
	next := waitLeader(rest)
	fmt.Printf("5. elected again: %s leads in term %d (was term %d)\n", next.id, next.raft.CurrentTerm(), term)

	replicate(next, rest, "b", 10, 20)
	fmt.Printf("6. replicated: 10 more commands applied on both survivors (20 each)\n")

	for _, n := range rest {
		n.stop()
	}
	fmt.Println("ok")
	os.Exit(0)
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
