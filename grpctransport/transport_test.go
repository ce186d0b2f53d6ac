package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/internal/testcerts"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// fsm records applied commands.
type fsm struct {
	mu   sync.Mutex
	logs []string
}

func (f *fsm) Apply(l *raft.Log) interface{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, string(l.Data))
	return nil
}

func (f *fsm) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.logs)
}

func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &snap{append([]string(nil), f.logs...)}, nil
}

func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = nil
	for i := 0; i < len(b); {
		n := int(b[i])<<8 | int(b[i+1])
		f.logs = append(f.logs, string(b[i+2:i+2+n]))
		i += 2 + n
	}
	return nil
}

type snap struct{ logs []string }

func (s *snap) Persist(sink raft.SnapshotSink) error {
	for _, l := range s.logs {
		if _, err := sink.Write(append([]byte{byte(len(l) >> 8), byte(len(l))}, l...)); err != nil {
			_ = sink.Cancel()
			return err
		}
	}
	return sink.Close()
}

func (s *snap) Release() {}

// node is one Raft node served by its own gRPC server on loopback.
type node struct {
	id    raft.ServerID
	addr  raft.ServerAddress
	srv   *grpc.Server
	m     *Manager
	r     *raft.Raft
	fsm   *fsm
	store *raft.InmemStore
	snaps *raft.InmemSnapshotStore
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// plain is the dial option of the tests without TLS.
var plain = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}

// startNode serves a Manager on l and starts Raft on it.
func startNode(t *testing.T, id string, l net.Listener, bootstrap *raft.Configuration) *node {
	t.Helper()
	return startNodeWith(t, id, l, bootstrap, nil, plain)
}

// startNodeWith is startNode with the gRPC server's options and the
// Manager's dial options.
func startNodeWith(t *testing.T, id string, l net.Listener, bootstrap *raft.Configuration, serverOpts []grpc.ServerOption, dialOpts []grpc.DialOption) *node {
	t.Helper()
	n := &node{id: raft.ServerID(id), addr: raft.ServerAddress(l.Addr().String()), fsm: &fsm{},
		store: raft.NewInmemStore(), snaps: raft.NewInmemSnapshotStore()}
	n.serve(t, l, serverOpts, dialOpts, bootstrap)
	return n
}

// serve starts n's Manager and gRPC server on l and its Raft on n's
// stores, bootstrapping it when bootstrap is given.
func (n *node) serve(t *testing.T, l net.Listener, serverOpts []grpc.ServerOption, dialOpts []grpc.DialOption, bootstrap *raft.Configuration) {
	t.Helper()
	n.m = New(n.addr, dialOpts)
	n.srv = grpc.NewServer(serverOpts...)
	n.m.Register(n.srv)
	go n.srv.Serve(l)
	conf := raft.DefaultConfig()
	conf.LocalID = n.id
	conf.HeartbeatTimeout, conf.ElectionTimeout = 300*time.Millisecond, 300*time.Millisecond
	conf.LeaderLeaseTimeout, conf.CommitTimeout = 150*time.Millisecond, 5*time.Millisecond
	conf.TrailingLogs, conf.SnapshotThreshold = 10, 1<<30
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: string(n.id), Output: io.Discard})
	if bootstrap != nil {
		if err := raft.BootstrapCluster(conf, n.store, n.store, n.snaps, n.m.Transport(), *bootstrap); err != nil {
			t.Fatal(err)
		}
	}
	r, err := raft.NewRaft(conf, n.fsm, n.store, n.store, n.snaps, n.m.Transport())
	if err != nil {
		t.Fatal(err)
	}
	n.r = r
	t.Cleanup(n.stop)
}

func (n *node) stop() {
	_ = n.r.Shutdown().Error()
	n.srv.Stop()
	_ = n.m.Close()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func cluster(t *testing.T, size int) []*node {
	t.Helper()
	return clusterWith(t, size, func(int) ([]grpc.ServerOption, []grpc.DialOption) { return nil, plain })
}

// clusterWith starts size nodes, each with the options opts gives it.
func clusterWith(t *testing.T, size int, opts func(i int) ([]grpc.ServerOption, []grpc.DialOption)) []*node {
	t.Helper()
	var ls []net.Listener
	var conf raft.Configuration
	for i := 0; i < size; i++ {
		l := listen(t)
		ls = append(ls, l)
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprintf("n%d", i)),
			Address: raft.ServerAddress(l.Addr().String())})
	}
	var nodes []*node
	for i, l := range ls {
		so, do := opts(i)
		nodes = append(nodes, startNodeWith(t, fmt.Sprintf("n%d", i), l, &conf, so, do))
	}
	return nodes
}

func leaderOf(t *testing.T, nodes []*node) *node {
	t.Helper()
	var leader *node
	waitFor(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.r.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// applyAll applies n commands through whichever node leads, again when a
// leader change refused one (a test not about leadership tolerates it).
func applyAll(t *testing.T, nodes []*node, prefix string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		for attempt := 0; ; attempt++ {
			err := leaderOf(t, nodes).r.Apply([]byte(fmt.Sprintf("%s-%d", prefix, i)), 5*time.Second).Error()
			if err == nil {
				break
			}
			if attempt > 20 {
				t.Fatalf("apply %d: %v", i, err)
			}
		}
	}
}

// Three nodes over gRPC elect a leader and replicate; a fourth joins from a
// snapshot streamed by InstallSnapshot; the pipeline carries the entries.
func TestClusterOverGRPC(t *testing.T) {
	nodes := cluster(t, 3)
	applyAll(t, nodes, "a", 200)
	for _, n := range nodes {
		waitFor(t, string(n.id)+" to apply 200", func() bool { return n.fsm.count() >= 200 })
	}
	leader := leaderOf(t, nodes)
	if err := leader.r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	applyAll(t, nodes, "b", 50)

	l := listen(t)
	late := startNode(t, "late", l, nil)
	leader = leaderOf(t, nodes)
	if err := leader.r.AddVoter(late.id, late.addr, 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the late node to catch up from the snapshot", func() bool { return late.fsm.count() >= 250 })
	if metas, err := late.snaps.List(); err != nil || len(metas) == 0 {
		t.Fatalf("the late node installed no snapshot (%v)", err)
	}
	applyAll(t, append(nodes, late), "c", 20)
	waitFor(t, "everyone at 270", func() bool {
		for _, n := range append(nodes, late) {
			if n.fsm.count() < 270 {
				return false
			}
		}
		return true
	})
}

// Heartbeats go to the heartbeat handler, not through the consumer
// channel, and other requests through the channel.
func TestHeartbeatFastPath(t *testing.T) {
	l := listen(t)
	m := New(raft.ServerAddress(l.Addr().String()), nil)
	srv := grpc.NewServer()
	m.Register(srv)
	go srv.Serve(l)
	defer srv.Stop()
	defer m.Close()
	trans := m.Transport()
	var got int
	var mu sync.Mutex
	trans.SetHeartbeatHandler(func(rpc raft.RPC) {
		mu.Lock()
		got++
		mu.Unlock()
		rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
	})
	client := New("client", plain)
	defer client.Close()
	var resp raft.AppendEntriesResponse
	hb := &raft.AppendEntriesRequest{Term: 7, Leader: []byte("client")}
	if err := client.Transport().AppendEntries("s", m.localAddress, hb, &resp); err != nil {
		t.Fatal(err)
	}
	if mu.Lock(); got != 1 || resp.Term != 7 || !resp.Success {
		t.Fatalf("heartbeat handler calls %d, answer %+v", got, resp)
	}
	mu.Unlock()
	// A request with entries goes to the consumer.
	go func() {
		rpc := <-trans.Consumer()
		rpc.Respond(&raft.AppendEntriesResponse{Term: 7, LastLog: 3}, nil)
	}()
	full := &raft.AppendEntriesRequest{Term: 7, Leader: []byte("client"), PrevLogEntry: 2, Entries: []*raft.Log{{Index: 3, Term: 7}}}
	if err := client.Transport().AppendEntries("s", m.localAddress, full, &resp); err != nil || resp.LastLog != 3 {
		t.Fatalf("AppendEntries through the consumer: %+v %v", resp, err)
	}
	// An error from the handler comes back as the error.
	go func() {
		rpc := <-trans.Consumer()
		rpc.Respond(nil, fmt.Errorf("refused for a test"))
	}()
	if err := client.Transport().RequestVote("s", m.localAddress, &raft.RequestVoteRequest{Term: 8}, &raft.RequestVoteResponse{}); err == nil || err.Error() != "refused for a test" {
		t.Fatalf("handler error came back as %v", err)
	}
}

// Shutting everything down leaves no goroutine of the transport running.
func TestShutdownLeavesNothingRunning(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		nodes := cluster(t, 3)
		applyAll(t, nodes, "z", 20)
		for _, n := range nodes {
			n.stop()
		}
	}()
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before+2 })
}

// Over gRPC, too, followers of this library read through the leader
// (ReadIndex) and the cluster takes joint changes: the capabilities travel
// in the extension field, which Jille's decoder would skip.
func TestFollowerReadsAndJointChangesOverGRPC(t *testing.T) {
	nodes := cluster(t, 3)
	applyAll(t, nodes, "a", 10)
	leader := leaderOf(t, nodes)
	follower := aFollower(nodes, leader)
	waitFor(t, "the follower to know its leader", func() bool { _, id := follower.r.LeaderWithID(); return id == leader.id })
	f := follower.r.ReadIndex(5 * time.Second)
	if err := f.Error(); err != nil || f.Index() < 10 {
		t.Fatalf("ReadIndex on a follower over gRPC: index %d, %v", f.Index(), err)
	}

	// Swap a follower for a new node in one joint change.
	late := startNode(t, "late", listen(t), nil)
	var next raft.Configuration
	for _, n := range nodes {
		if n != follower {
			next.Servers = append(next.Servers, raft.Server{Suffrage: raft.Voter, ID: n.id, Address: n.addr})
		}
	}
	next.Servers = append(next.Servers, raft.Server{Suffrage: raft.Voter, ID: late.id, Address: late.addr})
	if err := leaderOf(t, nodes).r.ChangeConfiguration(next, 0, 5*time.Second).Error(); err != nil {
		t.Fatalf("ChangeConfiguration over gRPC: %v", err)
	}
	waitFor(t, "the new node to apply", func() bool { return late.fsm.count() >= 10 })
}

// Mutual TLS through gRPC's credentials: a cluster whose nodes present
// certificates of one CA works, and a stranger with a certificate of
// another CA is refused before anything reaches Raft.
func TestMutualTLS(t *testing.T) {
	ca := testcerts.NewCA(t, "cluster CA")
	tlsFor := func(cert tls.Certificate) ([]grpc.ServerOption, []grpc.DialOption) {
		conf := testcerts.MutualTLS(ca, &cert)
		return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(conf))},
			[]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(conf))}
	}
	nodes := clusterWith(t, 3, func(i int) ([]grpc.ServerOption, []grpc.DialOption) {
		return tlsFor(ca.Issue(t, fmt.Sprintf("n%d", i)))
	})
	applyAll(t, nodes, "tls", 20)

	other := testcerts.NewCA(t, "stranger CA")
	strangerCert := other.Issue(t, "stranger")
	stranger := New("stranger", []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: ca.Pool, Certificates: []tls.Certificate{strangerCert}, MinVersion: tls.VersionTLS12}))})
	defer stranger.Close()
	term := nodes[0].r.CurrentTerm()
	err := stranger.Transport().RequestVote("n0", nodes[0].addr, &raft.RequestVoteRequest{Term: term + 100,
		Candidate: []byte("stranger"), LastLogIndex: 1 << 40, LastLogTerm: term + 99}, &raft.RequestVoteResponse{})
	if err == nil {
		t.Fatal("a stranger's certificate was accepted")
	}
	if got := nodes[0].r.CurrentTerm(); got > term+50 {
		t.Fatalf("the stranger's vote request reached Raft: term %d -> %d", term, got)
	}
	// Without any certificate, the same.
	bare := New("bare", []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(
		&tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}))})
	defer bare.Close()
	if err := bare.Transport().TimeoutNow("n0", nodes[0].addr, &raft.TimeoutNowRequest{}, &raft.TimeoutNowResponse{}); err == nil {
		t.Fatal("a client without a certificate was accepted")
	}
}

// A message over the receiving server's size limit fails with an error
// that says which limit to raise; with the limit raised it goes through.
func TestMessageSizeLimit(t *testing.T) {
	serve := func(opts ...grpc.ServerOption) (*Manager, func()) {
		l := listen(t)
		m := New(raft.ServerAddress(l.Addr().String()), nil)
		srv := grpc.NewServer(opts...)
		m.Register(srv)
		go srv.Serve(l)
		go func() {
			for rpc := range m.rpcChan {
				rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
			}
		}()
		return m, func() { srv.Stop(); m.Close(); close(m.rpcChan) }
	}
	big := &raft.AppendEntriesRequest{Term: 1, Leader: []byte("x"), PrevLogEntry: 1,
		Entries: []*raft.Log{{Index: 2, Term: 1, Data: make([]byte, 5<<20)}}}
	client := New("client", plain)
	defer client.Close()

	small, stop := serve()
	err := client.Transport().AppendEntries("s", small.localAddress, big, &raft.AppendEntriesResponse{})
	stop()
	if err == nil || !strings.Contains(err.Error(), "MaxRecvMsgSize") {
		t.Fatalf("a 5 MiB entry to a server with gRPC's default limit: %v", err)
	}
	large, stop := serve(grpc.MaxRecvMsgSize(64 << 20))
	defer stop()
	var resp raft.AppendEntriesResponse
	if err := client.Transport().AppendEntries("s", large.localAddress, big, &resp); err != nil || !resp.Success {
		t.Fatalf("a 5 MiB entry with the limit raised: %+v %v", resp, err)
	}
}

// rawMessage sends bytes as they are, whatever the method expects.
type rawMessage []byte

func (m *rawMessage) Reset()                   { *m = nil }
func (m *rawMessage) String() string           { return fmt.Sprintf("%x", []byte(*m)) }
func (*rawMessage) ProtoMessage()              {}
func (m *rawMessage) Marshal() ([]byte, error) { return *m, nil }
func (m *rawMessage) Unmarshal(b []byte) error { *m = append((*m)[:0], b...); return nil }

// Hostile peers: garbage on the port (not even HTTP/2) closes that
// connection, and malformed messages get an error without reaching Raft;
// the node keeps serving.
func TestHostilePeers(t *testing.T) {
	nodes := cluster(t, 3)
	applyAll(t, nodes, "before", 5)
	target := nodes[0]

	// Not HTTP/2 at all.
	c, err := net.Dial("tcp", string(target.addr))
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("GET / HTTP/1.0\r\n\r\n" + strings.Repeat("\xff", 4096)))
	if _, err := io.ReadAll(c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("the garbage connection was not closed: %v", err)
	}
	c.Close()

	// Well-framed gRPC carrying malformed messages.
	conn, err := grpc.NewClient("passthrough:///"+string(target.addr), plain...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	term := target.r.CurrentTerm()
	for _, bad := range []string{"\x0a", "\x0a\xff\xff", "\x10\x80", "\x32\x02\x18\x09", "\x12\x05"} {
		for _, method := range []string{methodAppendEntries, methodRequestVote, methodRequestPreVote, methodTimeoutNow} {
			in, out := rawMessage(bad), rawMessage(nil)
			if err := conn.Invoke(context.Background(), method, &in, &out); err == nil {
				t.Errorf("%s with %x: accepted", method, bad)
			}
		}
	}
	if target.r.CurrentTerm() != term {
		t.Fatalf("malformed messages changed the term %d -> %d", term, target.r.CurrentTerm())
	}
	// Slow: connections that send half the HTTP/2 preface and stall, and
	// a stream that starts an InstallSnapshot and sends nothing more, hold
	// nothing up; the node keeps serving while they hang.
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", string(target.addr))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("PRI * HTTP/2.0\r\n"))
	}
	applyAll(t, nodes, "while-stalled", 5)

	// Oversize: gRPC's own limit (4 MiB by default here) refuses it.
	huge := rawMessage(make([]byte, 5<<20))
	if err := conn.Invoke(context.Background(), methodAppendEntries, &huge, &rawMessage{}); err == nil {
		t.Error("a 5 MiB message was accepted by a server with the default limit")
	}
	applyAll(t, nodes, "after", 5)
}

// A heartbeat never waits behind a large AppendEntries: each call is a
// stream of its own on the connection, and heartbeats go to the heartbeat
// handler, so one is answered while a 20 MiB request is still being
// handled.
func TestHeartbeatDoesNotWaitBehindALargeAppend(t *testing.T) {
	l := listen(t)
	m := New(raft.ServerAddress(l.Addr().String()), nil)
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	m.Register(srv)
	go srv.Serve(l)
	defer srv.Stop()
	defer m.Close()
	trans := m.Transport()
	trans.SetHeartbeatHandler(func(rpc raft.RPC) { rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil) })
	release := make(chan struct{})
	got := make(chan struct{})
	go func() {
		rpc := <-trans.Consumer()
		close(got)
		<-release // the large request stays unanswered
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	}()
	client := New("client", plain)
	defer client.Close()
	large := &raft.AppendEntriesRequest{Term: 1, Leader: []byte("c"), PrevLogEntry: 1,
		Entries: []*raft.Log{{Index: 2, Term: 1, Data: make([]byte, 20<<20)}}}
	done := make(chan error, 1)
	go func() {
		done <- client.Transport().AppendEntries("s", m.localAddress, large, &raft.AppendEntriesResponse{})
	}()
	<-got
	var resp raft.AppendEntriesResponse
	if err := client.Transport().AppendEntries("s", m.localAddress, &raft.AppendEntriesRequest{Term: 1, Leader: []byte("c")}, &resp); err != nil || !resp.Success {
		t.Fatalf("heartbeat while a large request is pending: %+v %v", resp, err)
	}
	select {
	case err := <-done:
		t.Fatalf("the large request finished before its answer was released: %v", err)
	default:
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A dead peer does not block the others (with one of three stopped,
// writes still commit), and once it comes back on the same address it is
// reached again: gRPC reconnects with back-off, and the node catches up.
func TestDeadPeerDoesNotBlockAndIsReachedAgain(t *testing.T) {
	nodes := cluster(t, 3)
	applyAll(t, nodes, "a", 10)
	leader := leaderOf(t, nodes)
	var victim *node
	var live []*node
	for _, n := range nodes {
		if n != leader && victim == nil {
			victim = n
		} else {
			live = append(live, n)
		}
	}
	victim.stop()
	applyAll(t, live, "b", 50)
	// The same address, its stores kept: a restarted process.
	l, err := net.Listen("tcp", string(victim.addr))
	if err != nil {
		t.Fatalf("rebinding %s: %v", victim.addr, err)
	}
	back := restartNode(t, victim, l)
	waitFor(t, "the restarted node to catch up", func() bool { return back.fsm.count() >= 60 })
}

// restartNode starts Raft again from old's stores on l, with a new
// Manager and gRPC server.
func restartNode(t *testing.T, old *node, l net.Listener) *node {
	t.Helper()
	n := &node{id: old.id, addr: old.addr, fsm: &fsm{}, store: old.store, snaps: old.snaps}
	n.serve(t, l, nil, plain, nil)
	return n
}

// A sender that starts an InstallSnapshot and then stalls does not hold
// the follower's main loop (which reads the snapshot) beyond the chunk
// timeout: the follower goes on applying the leader's entries.
func TestStalledSnapshotStreamTimesOut(t *testing.T) {
	nodes := cluster(t, 3)
	applyAll(t, nodes, "a", 5)
	leader := leaderOf(t, nodes)
	follower := aFollower(nodes, leader)
	follower.m.chunkTimeout = 500 * time.Millisecond
	conn, err := grpc.NewClient("passthrough:///"+string(follower.addr), plain...)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stalled, err := conn.NewStream(ctx, &serviceDesc.Streams[1], methodInstallSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	// The leader's term and ID: the follower takes it as its leader's and
	// starts reading the snapshot on its main loop.
	first := &installSnapshotRequest{req: &raft.InstallSnapshotRequest{
		RPCHeader:       raft.RPCHeader{ProtocolVersion: 3, ID: []byte(leader.id), Addr: []byte(leader.addr)},
		SnapshotVersion: 1, Term: leader.r.CurrentTerm(), Leader: []byte(leader.addr),
		LastLogIndex: 1 << 30, LastLogTerm: leader.r.CurrentTerm(), Size: 1 << 20}, first: true}
	if err := stalled.SendMsg(first); err != nil {
		t.Fatal(err)
	}
	before := follower.fsm.count()
	applyAll(t, nodes, "b", 5)
	waitFor(t, "the follower to apply past the stalled snapshot", func() bool { return follower.fsm.count() >= before+5 })
}

// aFollower returns a node of nodes other than leader.
func aFollower(nodes []*node, leader *node) *node {
	for _, n := range nodes {
		if n != leader {
			return n
		}
	}
	return nil
}

// The application's unary interceptors see each call with its real method
// path.
func TestInterceptorSeesTheMethod(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	record := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		mu.Lock()
		seen = append(seen, info.FullMethod)
		mu.Unlock()
		return h(ctx, req)
	}
	l := listen(t)
	m := New(raft.ServerAddress(l.Addr().String()), nil)
	srv := grpc.NewServer(grpc.UnaryInterceptor(record))
	m.Register(srv)
	go srv.Serve(l)
	defer srv.Stop()
	defer m.Close()
	go func() {
		rpc := <-m.Transport().Consumer()
		rpc.Respond(&raft.RequestVoteResponse{Term: 1}, nil)
	}()
	client := New("client", plain)
	defer client.Close()
	if err := client.Transport().RequestVote("s", m.localAddress, &raft.RequestVoteRequest{Term: 1}, &raft.RequestVoteResponse{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "/RaftTransport/RequestVote" {
		t.Fatalf("interceptor saw %v", seen)
	}
}
