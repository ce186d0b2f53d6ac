package main

// Defects found by running raftkv by hand as an operator would (issue 20),
// each with the test that failed before its fix.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// follower returns a node of the three that does not lead.
func follower(t *testing.T, nodes ...*node) *node {
	t.Helper()
	for _, n := range nodes {
		if n.raft.State().String() != "Leader" {
			return n
		}
	}
	t.Fatal("every node leads")
	return nil
}

func leaderOf(t *testing.T, nodes ...*node) *node {
	t.Helper()
	var l *node
	if err := waitFor(10*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.raft.State().String() == "Leader" {
				l = n
				return true
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	return l
}

// Defect 1: a join sent to a follower is forwarded with its body, so a node
// started with -join naming a follower joins.
func TestJoinThroughAFollower(t *testing.T) {
	n1, n2, n3 := testCluster3(t)
	f := follower(t, n1, n2, n3)
	n4 := testNode(t, "n4", false, f.cfg.httpAddr)
	procs := []*proc{{id: "n1", httpAddr: n1.cfg.httpAddr}, {id: "n2", httpAddr: n2.cfg.httpAddr},
		{id: "n3", httpAddr: n3.cfg.httpAddr}, {id: "n4", httpAddr: n4.cfg.httpAddr}}
	if _, err := newKVClient().waitReady(20*time.Second, procs); err != nil {
		t.Fatalf("n4 joining through follower %s: %v", f.cfg.id, err)
	}
}

// Defects 2 and 3: /join refuses what cannot be a server, names the field,
// and answers a request that can never succeed with a 4xx and no retry
// hint; the configuration is unchanged by every refusal.
func TestJoinRefusesWhatCannotBeAServer(t *testing.T) {
	n1, n2, n3 := testCluster3(t)
	l := leaderOf(t, n1, n2, n3)
	f := follower(t, n1, n2, n3)
	n2raft := string(n2.trans.LocalAddr())
	n3raft := string(n3.trans.LocalAddr())
	for _, tc := range []struct {
		name, body string
		code       int
		msg        string
	}{
		{"no port", `{"id":"x","raft_addr":"not-an-address","http_addr":"127.0.0.1:9"}`, 400, "bad raft_addr"},
		{"no host", `{"id":"x","raft_addr":":7001","http_addr":"127.0.0.1:9"}`, 400, "bad raft_addr"},
		{"port range", `{"id":"x","raft_addr":"127.0.0.1:99999","http_addr":"127.0.0.1:9"}`, 400, "bad raft_addr"},
		{"bad http", `{"id":"x","raft_addr":"127.0.0.1:9","http_addr":"nowhere"}`, 400, "bad http_addr"},
		{"empty id", `{"id":"","raft_addr":"127.0.0.1:9","http_addr":"127.0.0.1:9"}`, 400, "bad id"},
		{"trailing", `{"id":"x","raft_addr":"127.0.0.1:9","http_addr":"127.0.0.1:9"}garbage`, 400, "bad body"},
		{"unknown field", `{"id":"x","raftaddr":"127.0.0.1:9","http_addr":"127.0.0.1:9"}`, 400, "bad body"},
		{"moved without replace", fmt.Sprintf(`{"id":"n3","raft_addr":"127.0.0.1:9","http_addr":%q}`, n3.cfg.httpAddr), 409, "replace"},
		{"address of another", fmt.Sprintf(`{"id":"n9","raft_addr":%q,"http_addr":"127.0.0.1:9"}`, n2raft), 409, "address of member n2"},
	} {
		for _, via := range []*node{l, f} {
			r := callRetry(t, "POST", via.cfg.httpAddr, "/join", []byte(tc.body))
			if r.code != tc.code || !strings.Contains(r.body, tc.msg) {
				t.Errorf("%s via %s: %d %q, want %d with %q", tc.name, via.cfg.id, r.code, r.body, tc.code, tc.msg)
			}
			if r.header.Get("Retry-After") != "" || r.header.Get(headerOutcome) != "" {
				t.Errorf("%s via %s: a definite refusal carries Retry-After %q, outcome %q", tc.name, via.cfg.id,
					r.header.Get("Retry-After"), r.header.Get(headerOutcome))
			}
		}
	}
	st, err := newKVClient().status(l.cfg.httpAddr)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Configuration) != 3 {
		t.Fatalf("refused joins changed the configuration: %+v", st.Configuration)
	}
	for _, m := range st.Configuration {
		if m.ID == "n3" && m.RaftAddr != n3raft {
			t.Fatalf("n3 moved to %s without replace", m.RaftAddr)
		}
	}

	// The same join again is no change, and succeeds.
	same := fmt.Sprintf(`{"id":"n3","raft_addr":%q,"http_addr":%q}`, n3raft, n3.cfg.httpAddr)
	if r := callRetry(t, "POST", f.cfg.httpAddr, "/join", []byte(same)); r.code != 200 || !strings.Contains(r.body, `"already_member": true`) {
		t.Fatalf("repeating a join: %d %q", r.code, r.body)
	}
	// With replace, a member moves.
	moved := fmt.Sprintf(`{"id":"n3","raft_addr":"127.0.0.1:9","http_addr":%q,"replace":true}`, n3.cfg.httpAddr)
	if r := callRetry(t, "POST", f.cfg.httpAddr, "/join", []byte(moved)); r.code != 200 {
		t.Fatalf("replacing n3's address: %d %q", r.code, r.body)
	}
	st, _ = newKVClient().status(l.cfg.httpAddr)
	for _, m := range st.Configuration {
		if m.ID == "n3" && m.RaftAddr != "127.0.0.1:9" {
			t.Fatalf("n3 is at %s after a replace", m.RaftAddr)
		}
	}
}

// Defect 3: a transfer to the leader itself is a definite refusal.
func TestTransferToTheLeaderItselfIsRefused(t *testing.T) {
	n1, n2, n3 := testCluster3(t)
	var r reply
	for try := 0; try < 5; try++ {
		l := leaderOf(t, n1, n2, n3)
		r = callRetry(t, "POST", l.cfg.httpAddr, "/leader/transfer?id="+l.cfg.id, nil)
		if r.code == http.StatusConflict || l.raft.State().String() == "Leader" {
			break // answered by the leader itself, not forwarded after a change
		}
	}
	if r.code != http.StatusConflict || r.header.Get("Retry-After") != "" || r.header.Get(headerOutcome) != "" {
		t.Fatalf("transfer to the leader itself: %d %q (Retry-After %q, outcome %q)", r.code, r.body,
			r.header.Get("Retry-After"), r.header.Get(headerOutcome))
	}
}

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Defect 4: /restore streams the upload to a file: a 64 MiB upload does not
// make the node allocate anywhere near 64 MiB, and the file is gone after.
func TestRestoreStreamsTheUpload(t *testing.T) {
	n := testNode(t, "n1", true, "")
	waitLeader(t, n)
	const size = 64 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req, err := http.NewRequest("POST", "http://"+n.cfg.httpAddr+"/restore", io.LimitReader(zeros{}, size))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "not a usable backup") {
		t.Fatalf("restoring 64 MiB of zeros: %d %q", resp.StatusCode, body)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > size/4 {
		t.Fatalf("the node allocated %d MiB for a %d MiB upload", grew>>20, size>>20)
	}
	left, _ := filepath.Glob(filepath.Join(n.cfg.dataDir, "restore-*"))
	if len(left) != 0 {
		t.Fatalf("upload files left behind: %v", left)
	}
}

// Defect 5: bodies that trickle in are cut at the read timeout while the
// node keeps serving others.
func TestSlowBodiesAreCut(t *testing.T) {
	cfg := nodeConfig{id: "n1", raftAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dataDir: t.TempDir(), bootstrap: true,
		httpReadTimeout: time.Second}
	n := testNodeWith(t, cfg)
	waitLeader(t, n)
	const slow = 50
	var wg sync.WaitGroup
	closed := make(chan struct{}, slow)
	stop := make(chan struct{})
	var conns []net.Conn
	defer func() {
		close(stop)
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	for i := 0; i < slow; i++ {
		c, err := net.Dial("tcp", n.cfg.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "PUT /kv/slow%d HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", i)
		wg.Add(2)
		go func() { // a byte at a time, until the server hangs up
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
		go func() { // the connection ends when a read sees its end
			defer wg.Done()
			io.Copy(io.Discard, bufio.NewReader(c))
			closed <- struct{}{}
		}()
	}
	// The node keeps serving meanwhile.
	kv := newKVClient()
	for i := 0; i < 20; i++ {
		if err := kv.put(n.cfg.httpAddr, "fast", []byte{byte(i)}); err != nil {
			t.Fatalf("a write beside %d slow bodies: %v", slow, err)
		}
	}
	deadline := time.After(20 * time.Second) // 1 s read timeout, with room for a busy machine
	for i := 0; i < slow; i++ {
		select {
		case <-closed:
		case <-deadline:
			t.Fatalf("%d of %d trickling connections still open 20 s after they started (read timeout 1 s)", slow-i, slow)
		}
	}
	if v, err := kv.get(n.cfg.httpAddr, "fast"); err != nil || len(v) != 1 || v[0] != 19 {
		t.Fatalf("read after the slow bodies: %v, %v", v, err)
	}
	if _, found := n.fsm.get("slow0"); found {
		t.Fatal("a body cut short was stored")
	}
}

// The limit listener holds back connections beyond its limit until one
// closes.
func TestLimitListenerHoldsBackConnectionsBeyondTheLimit(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(inner, 2)
	defer ln.Close()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	a, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	third := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			third <- c
		}
		close(third)
	}()
	select {
	case <-third:
		t.Fatal("a third connection was accepted with the limit at 2")
	case <-time.After(100 * time.Millisecond):
	}
	a.Close()
	a.Close() // a second Close gives back nothing more
	select {
	case c, ok := <-third:
		if !ok {
			t.Fatal("Accept failed after a slot was freed")
		}
		c.Close()
	case <-time.After(10 * time.Second):
		t.Fatal("a freed slot did not let the third connection in")
	}
	if got := len(ln.slots); got != 1 {
		t.Fatalf("slots in use = %d, want 1 (b)", got)
	}
}

// Defect 6: a data directory refuses a node with another id.
func TestDataDirectoryKnowsItsOwner(t *testing.T) {
	dir := t.TempDir()
	cfg := nodeConfig{id: "n3", raftAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dataDir: dir, bootstrap: true}
	n := testNodeWith(t, cfg)
	waitLeader(t, n)
	if err := n.close(); err != nil {
		t.Fatal(err)
	}
	other := cfg
	other.id = "n4"
	other.heartbeat, other.election, other.snapshotThreshold, other.logLevel = time.Second, time.Second, 8192, "warn"
	other.httpReadTimeout, other.httpWriteTimeout, other.httpIdleTimeout, other.httpMaxConns = time.Second, time.Second, time.Second, 8
	if m, err := startNode(other); err == nil {
		m.close()
		t.Fatal("n3's data directory started as n4")
	} else if !strings.Contains(err.Error(), `belongs to node "n3"`) {
		t.Fatalf("starting n4 on n3's data: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, nodeIDFile)); err != nil || string(b) != "n3\n" {
		t.Fatalf("%s: %q, %v", nodeIDFile, b, err)
	}
	again := testNodeWith(t, cfg) // its own id still starts
	waitLeader(t, again)
}

// Defect 7: /leader/transfer names the new leader; a removed node says so
// with 410 instead of asking to retry for ever.
func TestTransferNamesTheNewLeaderAndRemovedNodeSaysSo(t *testing.T) {
	n1, n2, n3 := testCluster3(t)
	old := leaderOf(t, n1, n2, n3)
	r := callRetry(t, "POST", old.cfg.httpAddr, "/leader/transfer", nil)
	var out struct {
		Leader string `json:"leader"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); r.code != 200 || err != nil {
		t.Fatalf("transfer: %d %q", r.code, r.body)
	}
	if out.Leader == "" || out.Leader == old.cfg.id {
		t.Fatalf("transfer answered leader %q; %s was the old leader", out.Leader, old.cfg.id)
	}

	now := leaderOf(t, n1, n2, n3)
	gone := follower(t, n1, n2, n3)
	if r := callRetry(t, "DELETE", now.cfg.httpAddr, "/members/"+gone.cfg.id, nil); r.code != 200 {
		t.Fatalf("removing %s: %d %q", gone.cfg.id, r.code, r.body)
	}
	if err := waitFor(10*time.Second, gone.cfg.id+" to learn it was removed", gone.removed); err != nil {
		t.Fatal(err)
	}
	for _, req := range [][2]string{{"PUT", "/kv/x"}, {"GET", "/kv/x"}, {"POST", "/leader/transfer"}} {
		r := call(t, req[0], gone.cfg.httpAddr, req[1], []byte("v"))
		if r.code != http.StatusGone || r.header.Get("Retry-After") != "" || !strings.Contains(r.body, "removed") {
			t.Errorf("%s %s on a removed node: %d %q (Retry-After %q)", req[0], req[1], r.code, r.body, r.header.Get("Retry-After"))
		}
	}
	if r := call(t, "GET", gone.cfg.httpAddr, "/status", nil); r.code != 200 {
		t.Fatalf("status of a removed node: %d %q", r.code, r.body)
	}
}

// Defect 7: flags no node can run with are refused, naming the flag.
func TestBadFlagsAreRefused(t *testing.T) {
	base := []string{"-id", "n1", "-data", t.TempDir()}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-log-level", "bogus"}, "-log-level"},
		{[]string{"-journal-files", "-1"}, "-journal-files"},
		{[]string{"-journal-files", "1"}, "-journal-files"},
		{[]string{"-journal-file-size", "10"}, "-journal-file-size"},
		{[]string{"-journal-file-size", "4294967296"}, "-journal-file-size"},
		{[]string{"-snapshot-threshold", "0"}, "-snapshot-threshold"},
		{[]string{"-heartbeat-timeout", "0s"}, "-heartbeat-timeout"},
		{[]string{"-http-max-conns", "0"}, "-http-max-conns"},
	} {
		_, err := parseNodeFlags(append(append([]string{}, base...), tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: %v, want an error naming %s", tc.args, err, tc.msg)
		}
	}
	if _, err := parseNodeFlags(append(base, "-journal-file-size", "32768", "-journal-files", "3", "-log-level", "DEBUG")); err != nil {
		t.Fatalf("good flags refused: %v", err)
	}
}

// Reads are served by the node asked, not forwarded: a follower gets its
// read index from the leader over Raft and answers from its own state.
// ?consistency picks linearizable (the default), lease (needs -lease-reads)
// or stale; anything else is refused.
func TestReadsOnTheNodeAsked(t *testing.T) {
	n1, n2, n3 := testCluster3(t)
	kv := newKVClient()
	if err := putRetry(kv, n1.cfg.httpAddr, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	l := leaderOf(t, n1, n2, n3)
	f := follower(t, n1, n2, n3)
	before := l.raft.Stats()["reads_for_followers"]
	r := callRetry(t, "GET", f.cfg.httpAddr, "/kv/k", nil)
	if r.code != 200 || r.body != "v" || r.header.Get(headerIndex) == "" {
		t.Fatalf("linearizable read on a follower: %d %q (index %q)", r.code, r.body, r.header.Get(headerIndex))
	}
	if r.header.Get("X-Raftkv-Forwarded-By") != "" {
		t.Fatal("the read was forwarded")
	}
	if after := l.raft.Stats()["reads_for_followers"]; after == before && l.raft.State().String() == "Leader" {
		t.Fatalf("the follower's read did not ask the leader for its index (reads_for_followers %s)", after)
	}
	for _, tc := range []struct {
		query string
		code  int
	}{
		{"?consistency=linearizable", 200},
		{"?consistency=stale", 200},
		{"?stale", 200},
		{"?consistency=lease", 400},
		{"?consistency=eventual", 400},
	} {
		if r := callRetry(t, "GET", f.cfg.httpAddr, "/kv/k"+tc.query, nil); r.code != tc.code {
			t.Errorf("GET %s: %d %q, want %d", tc.query, r.code, r.body, tc.code)
		}
	}
}

// With -lease-reads a settled leader answers linearizable reads from its
// lease, and ?consistency=lease is accepted.
func TestLeaseReadsFlag(t *testing.T) {
	cfg := nodeConfig{id: "n1", raftAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dataDir: t.TempDir(), bootstrap: true, leaseReads: true}
	n := testNodeWith(t, cfg)
	waitLeader(t, n)
	if err := newKVClient().put(n.cfg.httpAddr, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	// The default stays a round of heartbeats (no clock assumption);
	// consistency=lease asks for the lease.
	for _, tc := range []struct{ q, counter string }{{"", "reads_by_round"}, {"?consistency=lease", "reads_by_lease"}} {
		before := n.raft.Stats()[tc.counter]
		if r := call(t, "GET", n.cfg.httpAddr, "/kv/k"+tc.q, nil); r.code != 200 || r.body != "v" {
			t.Fatalf("GET %s with -lease-reads: %d %q", tc.q, r.code, r.body)
		}
		if after := n.raft.Stats()[tc.counter]; after == before {
			t.Fatalf("GET %s: %s stayed %s", tc.q, tc.counter, after)
		}
	}
}
