// Package rafttest builds clusters of raft nodes on the in-memory transport
// and stores, for tests. It uses only the public API of the raft package, and
// it works inside testing/synctest: waits poll with time.Sleep, which runs on
// the bubble's virtual clock, and every node gets a seeded random source so a
// run can be repeated.
//
// Inside a bubble, the clock moves only when every goroutine is durably
// blocked; a goroutine waiting on a sync.Mutex is not. Do not hold a mutex
// across cluster operations (Stop, Restart, waits) while another goroutine
// waits for it; use a channel as the lock instead. A client loop that never
// waits on a timer also keeps the clock still: let it sleep a little.
package rafttest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	raft "github.com/seed48a2b68f/raft"
)

// Node is one member of a test cluster with its stores.
type Node struct {
	ID        raft.ServerID
	Addr      raft.ServerAddress
	Raft      *raft.Raft
	FSM       raft.FSM
	Store     *raft.InmemStore
	Logs      raft.LogStore    // Store, or what WithStores wrapped it in
	Stable    raft.StableStore // Store, or what WithStores wrapped it in
	Snapshots *raft.InmemSnapshotStore
	Trans     *raft.InmemTransport
	Config    *raft.Config
}

// Recorder returns the node's FSM as a *FSM, or nil if the cluster uses a
// custom FSM.
func (n *Node) Recorder() *FSM {
	f, _ := n.FSM.(*FSM)
	return f
}

// Cluster is a set of nodes connected through in-memory transports.
type Cluster struct {
	t       testing.TB
	opts    options
	Nodes   []*Node
	cut     map[raft.ServerAddress]bool
	links   map[[2]raft.ServerAddress]bool // cut links, both directions
	stopped map[raft.ServerID]bool
}

type options struct {
	seed      uint64
	bootstrap bool
	confFn    func(*raft.Config)
	fsmFn     func() raft.FSM
	storeFn   func(raft.ServerID, *raft.InmemStore) (raft.LogStore, raft.StableStore)
	logOutput io.Writer
}

// Option changes how a cluster is built.
type Option func(*options)

// WithSeed seeds the nodes' timer jitter (node i gets seed+i).
func WithSeed(seed uint64) Option { return func(o *options) { o.seed = seed } }

// WithConfig lets the test adjust every node's Config.
func WithConfig(fn func(*raft.Config)) Option { return func(o *options) { o.confFn = fn } }

// WithFSM replaces the recording FSM.
func WithFSM(fn func() raft.FSM) Option { return func(o *options) { o.fsmFn = fn } }

// WithStores wraps each node's InmemStore, for example to inject failures.
func WithStores(fn func(id raft.ServerID, s *raft.InmemStore) (raft.LogStore, raft.StableStore)) Option {
	return func(o *options) { o.storeFn = fn }
}

// WithoutBootstrap leaves the nodes without a configuration.
func WithoutBootstrap() Option { return func(o *options) { o.bootstrap = false } }

// WithLogOutput sends the nodes' logs to w (default: discarded, or stderr
// when RAFTTEST_LOG is set).
func WithLogOutput(w io.Writer) Option { return func(o *options) { o.logOutput = w } }

// Config returns the configuration rafttest uses: fast timeouts for tests
// (50ms heartbeat, election and lease; 5ms commit timeout).
func Config(id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	c.HeartbeatTimeout = 50 * time.Millisecond
	c.ElectionTimeout = 50 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

// NewCluster starts n nodes, connects them all to each other and, unless
// WithoutBootstrap is given, bootstraps them with all n as voters. The
// cluster shuts down when the test ends.
func NewCluster(t testing.TB, n int, opts ...Option) *Cluster {
	t.Helper()
	o := options{seed: 1, bootstrap: true}
	for _, fn := range opts {
		fn(&o)
	}
	if o.logOutput == nil {
		o.logOutput = io.Discard
		if os.Getenv("RAFTTEST_LOG") != "" {
			o.logOutput = os.Stderr
		}
	}
	c := &Cluster{t: t, opts: o, cut: make(map[raft.ServerAddress]bool),
		links: make(map[[2]raft.ServerAddress]bool), stopped: make(map[raft.ServerID]bool)}
	for i := 0; i < n; i++ {
		c.Nodes = append(c.Nodes, c.newNode(i))
	}
	c.connectAll()
	if o.bootstrap {
		var conf raft.Configuration
		for _, node := range c.Nodes {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: node.ID, Address: node.Addr})
		}
		for _, node := range c.Nodes {
			if err := raft.BootstrapCluster(node.Config, node.Logs, node.Stable, node.Snapshots, node.Trans, conf); err != nil {
				t.Fatalf("rafttest: bootstrap %s: %v", node.ID, err)
			}
		}
	}
	for _, node := range c.Nodes {
		c.start(node)
	}
	t.Cleanup(c.Shutdown)
	return c
}

func (c *Cluster) newNode(i int) *Node {
	id := raft.ServerID(fmt.Sprintf("node%d", i))
	addr, trans := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("addr%d", i)))
	conf := Config(id)
	conf.RandomSeed = c.opts.seed*1000 + uint64(i) + 1
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: string(id), Output: c.opts.logOutput, Level: hclog.Debug})
	if c.opts.confFn != nil {
		c.opts.confFn(conf)
	}
	var fsm raft.FSM = NewFSM()
	if c.opts.fsmFn != nil {
		fsm = c.opts.fsmFn()
	}
	store := raft.NewInmemStore()
	var logs raft.LogStore = store
	var stable raft.StableStore = store
	if c.opts.storeFn != nil {
		logs, stable = c.opts.storeFn(id, store)
	}
	return &Node{
		ID: id, Addr: addr, FSM: fsm, Store: store, Logs: logs, Stable: stable,
		Snapshots: raft.NewInmemSnapshotStore(), Trans: trans, Config: conf,
	}
}

func (c *Cluster) start(node *Node) {
	r, err := raft.NewRaft(node.Config, node.FSM, node.Logs, node.Stable, node.Snapshots, node.Trans)
	if err != nil {
		c.t.Fatalf("rafttest: NewRaft %s: %v", node.ID, err)
	}
	node.Raft = r
	delete(c.stopped, node.ID)
}

// AddNode creates a new node that is connected to the others but not part
// of the configuration and not bootstrapped; add it with AddVoter or
// AddNonvoter.
func (c *Cluster) AddNode() *Node {
	node := c.newNode(len(c.Nodes))
	c.Nodes = append(c.Nodes, node)
	c.connectAll()
	c.start(node)
	return node
}

// connectAll connects every pair of nodes that is not cut.
func (c *Cluster) connectAll() {
	for _, a := range c.Nodes {
		for _, b := range c.Nodes {
			if a == b {
				continue
			}
			if c.cut[a.Addr] != c.cut[b.Addr] || c.links[[2]raft.ServerAddress{a.Addr, b.Addr}] {
				a.Trans.Disconnect(b.Addr)
				continue
			}
			a.Trans.Connect(b.Addr, b.Trans)
		}
	}
}

// Partition cuts the given nodes off from the rest; they can still reach
// each other.
func (c *Cluster) Partition(nodes ...*Node) {
	for _, n := range nodes {
		c.cut[n.Addr] = true
	}
	c.connectAll()
}

// Cut breaks the link between a and b in both directions, leaving their
// other links alone (for partial partitions).
func (c *Cluster) Cut(a, b *Node) {
	c.links[[2]raft.ServerAddress{a.Addr, b.Addr}] = true
	c.links[[2]raft.ServerAddress{b.Addr, a.Addr}] = true
	c.connectAll()
}

// Heal reconnects every node.
func (c *Cluster) Heal() {
	clear(c.cut)
	clear(c.links)
	c.connectAll()
}

// Node returns the node with the given ID, or nil.
func (c *Cluster) Node(id raft.ServerID) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Others returns every node but the given ones.
func (c *Cluster) Others(not ...*Node) []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		skip := false
		for _, x := range not {
			skip = skip || n == x
		}
		if !skip {
			out = append(out, n)
		}
	}
	return out
}

// Running returns the nodes that have not been stopped.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if !c.stopped[n.ID] {
			out = append(out, n)
		}
	}
	return out
}

// Leaders returns the running nodes that believe they lead.
func (c *Cluster) Leaders() []*Node {
	var out []*Node
	for _, n := range c.Running() {
		if n.Raft.State() == raft.Leader {
			out = append(out, n)
		}
	}
	return out
}

// Followers returns the running nodes in the follower state.
func (c *Cluster) Followers() []*Node {
	var out []*Node
	for _, n := range c.Running() {
		if n.Raft.State() == raft.Follower {
			out = append(out, n)
		}
	}
	return out
}

// WaitFor polls cond every millisecond (of the bubble's clock inside
// synctest) until it holds, and fails the test after timeout.
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("rafttest: timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// WaitLeader waits until exactly one running node among those given (all
// running nodes if none) leads and the others know it, and returns it.
func (c *Cluster) WaitLeader(among ...*Node) *Node {
	c.t.Helper()
	if len(among) == 0 {
		among = c.Running()
	}
	var leader *Node
	c.WaitFor(10*time.Second, "a leader", func() bool {
		leader = nil
		for _, n := range among {
			if n.Raft.State() == raft.Leader {
				if leader != nil {
					return false
				}
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range among {
			if _, id := n.Raft.LeaderWithID(); n != leader && id != leader.ID &&
				hasVoter(leader, n.ID) {
				return false
			}
		}
		return true
	})
	return leader
}

func hasVoter(leader *Node, id raft.ServerID) bool {
	f := leader.Raft.GetConfiguration()
	if f.Error() != nil {
		return false
	}
	for _, s := range f.Configuration().Servers {
		if s.ID == id {
			return s.Suffrage == raft.Voter
		}
	}
	return false
}

// ApplyN applies n commands "<prefix>-<i>" through the leader and waits for
// each; it fails the test on an error.
func (c *Cluster) ApplyN(leader *Node, prefix string, n int) {
	c.t.Helper()
	futures := make([]raft.ApplyFuture, n)
	for i := range futures {
		futures[i] = leader.Raft.Apply([]byte(fmt.Sprintf("%s-%d", prefix, i)), time.Second)
	}
	for i, f := range futures {
		if err := f.Error(); err != nil {
			c.t.Fatalf("rafttest: apply %d on %s: %v", i, leader.ID, err)
		}
	}
}

// WaitApplied waits until every given node (all running nodes if none) has
// applied at least n commands.
func (c *Cluster) WaitApplied(n int, nodes ...*Node) {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.Running()
	}
	c.WaitFor(10*time.Second, fmt.Sprintf("%d commands applied", n), func() bool {
		for _, node := range nodes {
			if node.Recorder().Len() < n {
				return false
			}
		}
		return true
	})
}

// CheckConsistent waits until the running nodes have the same last index
// and applied index, then checks that their logs hold the same entries
// (index, term, type, data) from the highest first index on, and that their
// FSMs applied the same commands.
func (c *Cluster) CheckConsistent() {
	c.t.Helper()
	nodes := c.Running()
	c.WaitFor(10*time.Second, "logs to converge", func() bool {
		last := nodes[0].Raft.LastIndex()
		applied := nodes[0].Raft.AppliedIndex()
		for _, n := range nodes[1:] {
			if n.Raft.LastIndex() != last || n.Raft.AppliedIndex() != applied {
				return false
			}
		}
		return applied == last
	})
	var first uint64
	for _, n := range nodes {
		fi, err := n.Store.FirstIndex()
		if err != nil {
			c.t.Fatalf("rafttest: %s FirstIndex: %v", n.ID, err)
		}
		first = max(first, fi)
	}
	last := nodes[0].Raft.LastIndex()
	for idx := max(first, 1); idx <= last; idx++ {
		var want raft.Log
		haveWant := nodes[0].Store.GetLog(idx, &want) == nil
		for _, n := range nodes[1:] {
			var got raft.Log
			haveGot := n.Store.GetLog(idx, &got) == nil
			if haveGot != haveWant {
				continue // compacted on one side
			}
			if haveGot && (got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data)) {
				c.t.Fatalf("rafttest: log mismatch at %d: %s has %d/%v/%q, %s has %d/%v/%q", idx,
					nodes[0].ID, want.Term, want.Type, want.Data, n.ID, got.Term, got.Type, got.Data)
			}
		}
	}
	if nodes[0].Recorder() == nil {
		return
	}
	want := nodes[0].Recorder().Logs()
	for _, n := range nodes[1:] {
		got := n.Recorder().Logs()
		if len(got) != len(want) {
			c.t.Fatalf("rafttest: %s applied %d commands, %s applied %d", nodes[0].ID, len(want), n.ID, len(got))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				c.t.Fatalf("rafttest: command %d differs: %s has %q, %s has %q", i, nodes[0].ID, want[i], n.ID, got[i])
			}
		}
	}
}

// Stop shuts a node down, keeping its stores so it can be restarted.
func (c *Cluster) Stop(n *Node) {
	c.t.Helper()
	if c.stopped[n.ID] {
		return
	}
	if err := n.Raft.Shutdown().Error(); err != nil {
		c.t.Fatalf("rafttest: shutdown %s: %v", n.ID, err)
	}
	c.stopped[n.ID] = true
	for _, other := range c.Nodes {
		other.Trans.Disconnect(n.Addr)
	}
}

// Restart starts a stopped node again from its stores, with a fresh FSM and
// transport.
func (c *Cluster) Restart(n *Node) {
	c.t.Helper()
	if !c.stopped[n.ID] {
		c.Stop(n)
	}
	n.Addr, n.Trans = raft.NewInmemTransport(n.Addr)
	if c.opts.fsmFn != nil {
		n.FSM = c.opts.fsmFn()
	} else {
		n.FSM = NewFSM()
	}
	c.connectAll()
	c.start(n)
}

// Shutdown stops every node and waits for their goroutines.
func (c *Cluster) Shutdown() {
	for _, n := range c.Nodes {
		if c.stopped[n.ID] || n.Raft == nil {
			continue
		}
		_ = n.Raft.Shutdown().Error()
		c.stopped[n.ID] = true
	}
}
