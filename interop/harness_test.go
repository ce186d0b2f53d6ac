package interop

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	hc "github.com/hashicorp/raft"
	ours "github.com/seed48a2b68f/raft"
)

// This file is the harness of the interop tests: nodes of either library
// behind one type, over real TCP through a stream layer that can cut a node
// off, with an FSM that records every command so tests can compare state.

const (
	heartbeat = 200 * time.Millisecond
	lease     = 100 * time.Millisecond
	// trailingLogs is small so that a snapshot compacts the log and a
	// follower that was away needs InstallSnapshot.
	trailingLogs = 10
)

func logger() hclog.Logger {
	level := hclog.Off
	if os.Getenv("INTEROP_LOG") != "" {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Level: level})
}

// ---------------------------------------------------------------------------
// FSM

// recorder is the state of the FSM: every command applied, in order.
type recorder struct {
	mu       sync.Mutex
	cmds     []string
	restores int
}

func (r *recorder) apply(data []byte) interface{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, string(data))
	return len(r.cmds)
}

func (r *recorder) state() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.cmds...)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.cmds)
}

// reset forgets the state, as an in-memory FSM does when its process
// restarts; raft rebuilds it from the snapshot and the log.
func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = nil
}

func (r *recorder) restoreCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.restores
}

func (r *recorder) restore(rc io.ReadCloser) error {
	defer rc.Close()
	var cmds []string
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		cmds = append(cmds, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = cmds
	r.restores++
	return nil
}

// persist writes a snapshot of cmds, one per line.
func persist(w io.Writer, cmds []string) error {
	for _, c := range cmds {
		if _, err := io.WriteString(w, c+"\n"); err != nil {
			return err
		}
	}
	return nil
}

type hcFSM struct{ *recorder }

func (f hcFSM) Apply(l *hc.Log) interface{}       { return f.apply(l.Data) }
func (f hcFSM) Snapshot() (hc.FSMSnapshot, error) { return hcSnap(f.state()), nil }
func (f hcFSM) Restore(rc io.ReadCloser) error    { return f.restore(rc) }

type hcSnap []string

func (s hcSnap) Persist(sink hc.SnapshotSink) error {
	if err := persist(sink, s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (s hcSnap) Release() {}

type ourFSM struct{ *recorder }

func (f ourFSM) Apply(l *ours.Log) interface{}       { return f.apply(l.Data) }
func (f ourFSM) Snapshot() (ours.FSMSnapshot, error) { return ourSnap(f.state()), nil }
func (f ourFSM) Restore(rc io.ReadCloser) error      { return f.restore(rc) }

type ourSnap []string

func (s ourSnap) Persist(sink ours.SnapshotSink) error {
	if err := persist(sink, s); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}
func (s ourSnap) Release() {}

// ---------------------------------------------------------------------------
// A stream layer that can cut a node off the network

type cutLayer struct {
	net.Listener
	cut   atomic.Bool
	mu    sync.Mutex
	conns []net.Conn
}

func (c *cutLayer) track(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns = append(c.conns, conn)
}

func (c *cutLayer) Accept() (net.Conn, error) {
	for {
		conn, err := c.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if c.cut.Load() {
			conn.Close()
			continue
		}
		c.track(conn)
		return conn, nil
	}
}

func (c *cutLayer) dial(address string, timeout time.Duration) (net.Conn, error) {
	if c.cut.Load() {
		return nil, errors.New("cut off")
	}
	conn, err := net.DialTimeout("tcp", address, timeout)
	if err == nil {
		c.track(conn)
	}
	return conn, err
}

// setCut cuts the node off (closing every connection it has) or heals it.
func (c *cutLayer) setCut(cut bool) {
	c.cut.Store(cut)
	if !cut {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

type hcLayer struct{ *cutLayer }

func (l hcLayer) Dial(a hc.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.dial(string(a), timeout)
}

type ourLayer struct{ *cutLayer }

func (l ourLayer) Dial(a ours.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.dial(string(a), timeout)
}

// ---------------------------------------------------------------------------
// Nodes

// node is one server of either library. Its stores and FSM survive stop and
// start, as a disk would.
type node struct {
	t     testing.TB
	id    string // also its address
	hashi bool
	fsm   *recorder
	layer *cutLayer

	hstore *hc.InmemStore
	hsnaps *hc.InmemSnapshotStore

	mu sync.Mutex // guards hr and or, which stop and start replace
	hr *hc.Raft

	ostore *ours.InmemStore
	osnaps *ours.InmemSnapshotStore
	or     *ours.Raft
}

// oursLeaseReads sets Config.LeaseReads on our nodes started while it is
// true (the read benchmark's lease mode; tests leave it false).
var oursLeaseReads bool

// rafts returns the running raft of the node (one of them is nil).
func (n *node) rafts() (*hc.Raft, *ours.Raft) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hr, n.or
}

func (n *node) String() string {
	lib := "ours"
	if n.hashi {
		lib = "hashicorp"
	}
	return fmt.Sprintf("%s(%s)", lib, n.id)
}

// newNode reserves an address for a node of the given library.
func newNode(t testing.TB, hashi bool) *node {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, id: l.Addr().String(), hashi: hashi, fsm: &recorder{}, layer: &cutLayer{Listener: l}}
	if hashi {
		n.hstore, n.hsnaps = hc.NewInmemStore(), hc.NewInmemSnapshotStore()
	} else {
		n.ostore, n.osnaps = ours.NewInmemStore(), ours.NewInmemSnapshotStore()
	}
	t.Cleanup(n.stop)
	return n
}

// start runs the node, bootstrapping it with servers when given.
func (n *node) start(servers []*node) {
	t := n.t
	t.Helper()
	if n.layer == nil {
		l, err := net.Listen("tcp", n.id)
		if err != nil {
			t.Fatalf("rebind %s: %v", n.id, err)
		}
		n.layer = &cutLayer{Listener: l}
	}
	n.fsm.reset()
	log := logger().Named(n.String())
	if n.hashi {
		trans := hc.NewNetworkTransportWithLogger(hcLayer{n.layer}, 3, time.Second, log)
		conf := hc.DefaultConfig()
		conf.LocalID = hc.ServerID(n.id)
		conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = heartbeat, heartbeat, lease
		conf.TrailingLogs, conf.SnapshotThreshold = trailingLogs, 1<<40
		conf.Logger = log
		if servers != nil {
			var cfg hc.Configuration
			for _, s := range servers {
				cfg.Servers = append(cfg.Servers, hc.Server{ID: hc.ServerID(s.id), Address: hc.ServerAddress(s.id)})
			}
			if err := hc.BootstrapCluster(conf, n.hstore, n.hstore, n.hsnaps, trans, cfg); err != nil {
				t.Fatal(err)
			}
		}
		r, err := hc.NewRaft(conf, hcFSM{n.fsm}, n.hstore, n.hstore, n.hsnaps, trans)
		if err != nil {
			t.Fatal(err)
		}
		n.mu.Lock()
		n.hr = r
		n.mu.Unlock()
		return
	}
	trans := ours.NewNetworkTransportWithLogger(ourLayer{n.layer}, 3, time.Second, log)
	conf := ours.DefaultConfig()
	conf.LocalID = ours.ServerID(n.id)
	conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = heartbeat, heartbeat, lease
	conf.TrailingLogs, conf.SnapshotThreshold = trailingLogs, 1<<40
	conf.Logger = log
	conf.LeaseReads = oursLeaseReads
	if servers != nil {
		var cfg ours.Configuration
		for _, s := range servers {
			cfg.Servers = append(cfg.Servers, ours.Server{ID: ours.ServerID(s.id), Address: ours.ServerAddress(s.id)})
		}
		if err := ours.BootstrapCluster(conf, n.ostore, n.ostore, n.osnaps, trans, cfg); err != nil {
			t.Fatal(err)
		}
	}
	r, err := ours.NewRaft(conf, ourFSM{n.fsm}, n.ostore, n.ostore, n.osnaps, trans)
	if err != nil {
		t.Fatal(err)
	}
	n.mu.Lock()
	n.or = r
	n.mu.Unlock()
}

// stop shuts the node down (closing its transport and listener); start
// brings it back on the same address with the same stores.
func (n *node) stop() {
	n.mu.Lock()
	h, o := n.hr, n.or
	n.hr, n.or = nil, nil
	n.mu.Unlock()
	if h != nil {
		_ = h.Shutdown().Error()
	}
	if o != nil {
		_ = o.Shutdown().Error()
	}
	if n.layer != nil {
		n.layer.Close()
		n.layer = nil
	}
}

func (n *node) running() bool {
	h, o := n.rafts()
	return h != nil || o != nil
}

func (n *node) isLeader() bool {
	h, o := n.rafts()
	switch {
	case h != nil:
		return h.State() == hc.Leader
	case o != nil:
		return o.State() == ours.Leader
	}
	return false
}

func (n *node) term() uint64 {
	h, o := n.rafts()
	if h != nil {
		return h.CurrentTerm()
	}
	return o.CurrentTerm()
}

func (n *node) apply(b []byte) error {
	h, o := n.rafts()
	if h != nil {
		return h.Apply(b, 2*time.Second).Error()
	}
	return o.Apply(b, 2*time.Second).Error()
}

func (n *node) transferTo(to *node) error {
	h, o := n.rafts()
	if h != nil {
		return h.LeadershipTransferToServer(hc.ServerID(to.id), hc.ServerAddress(to.id)).Error()
	}
	return o.LeadershipTransferToServer(ours.ServerID(to.id), ours.ServerAddress(to.id)).Error()
}

// snapshot takes a user snapshot, which also compacts the log down to
// trailingLogs entries.
func (n *node) snapshot() error {
	h, o := n.rafts()
	if h != nil {
		return h.Snapshot().Error()
	}
	return o.Snapshot().Error()
}

func (n *node) addVoter(m *node) error {
	h, o := n.rafts()
	if h != nil {
		return h.AddVoter(hc.ServerID(m.id), hc.ServerAddress(m.id), 0, 5*time.Second).Error()
	}
	return o.AddVoter(ours.ServerID(m.id), ours.ServerAddress(m.id), 0, 5*time.Second).Error()
}

func (n *node) removeServer(m *node) error {
	h, o := n.rafts()
	if h != nil {
		return h.RemoveServer(hc.ServerID(m.id), 0, 5*time.Second).Error()
	}
	return o.RemoveServer(ours.ServerID(m.id), 0, 5*time.Second).Error()
}

func (n *node) demote(m *node) error {
	h, o := n.rafts()
	if h != nil {
		return h.DemoteVoter(hc.ServerID(m.id), 0, 5*time.Second).Error()
	}
	return o.DemoteVoter(ours.ServerID(m.id), 0, 5*time.Second).Error()
}

// members returns the node's latest configuration as sorted "id:suffrage".
func (n *node) members() []string {
	h, o := n.rafts()
	var out []string
	if h != nil {
		f := h.GetConfiguration()
		if f.Error() != nil {
			return nil
		}
		for _, s := range f.Configuration().Servers {
			out = append(out, fmt.Sprintf("%s:%s", s.ID, s.Suffrage))
		}
	} else {
		f := o.GetConfiguration()
		if f.Error() != nil {
			return nil
		}
		for _, s := range f.Configuration().Servers {
			out = append(out, fmt.Sprintf("%s:%s", s.ID, s.Suffrage))
		}
	}
	sort.Strings(out)
	return out
}

// ---------------------------------------------------------------------------
// Clusters

// startCluster makes nodes of the given libraries (true = hashicorp) and
// starts them bootstrapped as one cluster.
func startCluster(t testing.TB, hashi ...bool) []*node {
	t.Helper()
	var nodes []*node
	for _, h := range hashi {
		nodes = append(nodes, newNode(t, h))
	}
	for _, n := range nodes {
		n.start(nodes)
	}
	return nodes
}

// eventually polls cond until it holds, failing after a generous bound.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func waitLeader(t testing.TB, nodes []*node) *node {
	t.Helper()
	var leader *node
	eventually(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.running() && n.isLeader() {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// leaderOf makes a node of the wanted library the leader, by transfer if
// needed, and returns it.
func leaderOf(t testing.TB, nodes []*node, hashi bool) *node {
	t.Helper()
	leader := waitLeader(t, nodes)
	if leader.hashi == hashi {
		return leader
	}
	for _, n := range nodes {
		if n.hashi == hashi && n.running() {
			if err := leader.transferTo(n); err != nil {
				t.Fatalf("transfer from %s to %s: %v", leader, n, err)
			}
			return waitLeader(t, []*node{n})
		}
	}
	t.Fatalf("no running node of hashicorp=%v", hashi)
	return nil
}

func applyN(t testing.TB, leader *node, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := leader.apply([]byte(fmt.Sprintf("%s-%d", prefix, i))); err != nil {
			t.Fatalf("apply on %s: %v", leader, err)
		}
	}
}

// waitSameState waits until every running node in nodes applied exactly
// the leader's commands, in the same order.
func waitSameState(t testing.TB, nodes []*node, leader *node) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		want := leader.fsm.state()
		same := true
		for _, n := range nodes {
			if n.running() && strings.Join(n.fsm.state(), ",") != strings.Join(want, ",") {
				same = false
			}
		}
		if same {
			return
		}
		if time.Now().After(deadline) {
			for _, n := range nodes {
				t.Errorf("%s applied %d commands, leader %s %d", n, n.fsm.count(), leader, len(want))
			}
			t.FailNow()
		}
	}
}
