package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testNode starts a node in this process on free loopback ports.
func testNode(t *testing.T, id string, bootstrap bool, join string) *node {
	t.Helper()
	return testNodeWith(t, baseConfig(t, id, bootstrap, join))
}

// baseConfig is a node's configuration on free loopback ports with a
// fresh data directory.
func baseConfig(t *testing.T, id string, bootstrap bool, join string) nodeConfig {
	return nodeConfig{id: id, raftAddr: "127.0.0.1:0", httpAddr: "127.0.0.1:0", dataDir: t.TempDir(),
		bootstrap: bootstrap, join: join}
}

// testNodeWith starts a node with short timeouts; close it with n.close
// (or let the test's cleanup do it).
func testNodeWith(t *testing.T, cfg nodeConfig) *node {
	t.Helper()
	cfg.heartbeat, cfg.election, cfg.snapshotThreshold, cfg.logLevel = 200*time.Millisecond, 200*time.Millisecond, 8192, "warn"
	if cfg.httpReadTimeout == 0 {
		cfg.httpReadTimeout = 30 * time.Second
	}
	cfg.httpWriteTimeout, cfg.httpIdleTimeout = time.Minute, time.Minute
	if cfg.httpMaxConns == 0 {
		cfg.httpMaxConns = 1024
	}
	n, err := startNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.close(); err != nil {
			t.Errorf("closing %s: %v", cfg.id, err)
		}
	})
	return n
}

type reply struct {
	code   int
	header http.Header
	body   string
}

func call(t *testing.T, method, addr, path string, body []byte) reply {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, string(b)}
}

// callRetry is call, repeated while the answer is a 503 that says nothing
// was done (no leader known, leadership changing): tests that are not about
// leadership tolerate an election that a loaded machine brings about.
func callRetry(t *testing.T, method, addr, path string, body []byte) reply {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := call(t, method, addr, path, body)
		if r.code != http.StatusServiceUnavailable || r.header.Get(headerOutcome) != "" || time.Now().After(deadline) {
			return r
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// putRetry writes a key, again while the answer is a 503 or a write of
// unknown outcome (writing the same value twice is harmless): for tests
// that are not about leadership, as callRetry.
func putRetry(c *kvClient, addr, key string, value []byte) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := c.put(addr, key, value)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// getRetry is a linearizable read, again while the answer is a 503.
func getRetry(c *kvClient, addr, key string) ([]byte, error) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		v, err := c.get(addr, key)
		if !errors.Is(err, errUnavailable) || time.Now().After(deadline) {
			return v, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitLeader(t *testing.T, n *node) {
	t.Helper()
	if err := waitFor(10*time.Second, n.cfg.id+" to lead with its address published", func() bool {
		return n.raft.State().String() == "Leader" && n.fsm.member(n.cfg.id) != ""
	}); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPSingleNode(t *testing.T) {
	n := testNode(t, "n1", true, "")
	waitLeader(t, n)
	addr := n.cfg.httpAddr

	if r := call(t, "PUT", addr, "/kv/a/b%20c", []byte("hello")); r.code != 204 || r.header.Get(headerIndex) == "" {
		t.Fatalf("PUT: %d %q (index %q)", r.code, r.body, r.header.Get(headerIndex))
	}
	if r := call(t, "GET", addr, "/kv/a/b%20c", nil); r.code != 200 || r.body != "hello" {
		t.Fatalf("GET: %d %q", r.code, r.body)
	}
	if r := call(t, "GET", addr, "/kv/a/b%20c?stale", nil); r.code != 200 || r.body != "hello" {
		t.Fatalf("stale GET: %d %q", r.code, r.body)
	}
	if r := call(t, "DELETE", addr, "/kv/a/b%20c", nil); r.code != 204 {
		t.Fatalf("DELETE: %d %q", r.code, r.body)
	}
	if r := call(t, "GET", addr, "/kv/a/b%20c", nil); r.code != 404 {
		t.Fatalf("GET after DELETE: %d %q", r.code, r.body)
	}

	// Bad input gets a 4xx with a message, and changes nothing.
	for _, tc := range []struct {
		method, path string
		body         []byte
		code         int
		msg          string
	}{
		{"PUT", "/kv/", []byte("x"), 400, "empty"},
		{"PUT", "/kv/" + strings.Repeat("k", maxKeyLen+1), []byte("x"), 400, "at most"},
		{"PUT", "/kv/bell%07", []byte("x"), 400, "control character"},
		{"PUT", "/kv/bad%ff", []byte("x"), 400, "UTF-8"},
		{"PUT", "/kv/big", make([]byte, maxValueLen+1), 413, "at most"},
		{"POST", "/join", []byte("{"), 400, "bad body"},
		{"POST", "/join", []byte(`{"id":"x"}`), 400, "raft_addr"},
		{"DELETE", "/members/nobody", nil, 404, "not a member"},
		{"POST", "/leader/transfer?id=nobody", nil, 400, "not a voter"},
	} {
		r := call(t, tc.method, addr, tc.path, tc.body)
		if r.code != tc.code || !strings.Contains(r.body, tc.msg) {
			t.Errorf("%s %.40s: %d %q, want %d with %q", tc.method, tc.path, r.code, r.body, tc.code, tc.msg)
		}
	}
	if _, found := n.fsm.get("big"); found {
		t.Fatal("an oversized value was stored")
	}

	r := call(t, "GET", addr, "/status", nil)
	var st status
	if err := json.Unmarshal([]byte(r.body), &st); err != nil || r.code != 200 {
		t.Fatalf("status: %d %q: %v", r.code, r.body, err)
	}
	if st.State != "Leader" || st.Leader == nil || st.Leader.ID != "n1" || st.Leader.HTTPAddr != addr ||
		len(st.Configuration) != 1 || st.AppliedIndex < 3 || st.CommitIndex < st.AppliedIndex {
		t.Fatalf("status: %+v", st)
	}

	if r := call(t, "POST", addr, "/snapshot", nil); r.code != 200 || !strings.Contains(r.body, `"index"`) {
		t.Fatalf("snapshot: %d %q", r.code, r.body)
	}
	r = call(t, "GET", addr, "/metrics", nil)
	if r.code != 200 || !strings.Contains(r.body, "# TYPE raftkv_raft_apply counter\nraftkv_raft_apply 3\n") ||
		!strings.Contains(r.body, "# TYPE raftkv_raft_commitTime summary") ||
		!strings.Contains(r.body, `raftkv_raft_commitTime{quantile="0.99"}`) ||
		!strings.Contains(r.body, "# TYPE go_goroutines gauge") ||
		!strings.Contains(r.body, "# TYPE process_resident_memory_bytes gauge") {
		t.Fatalf("metrics: %d\n%s", r.code, r.body)
	}
}

// A node that knows no leader answers writes and linearizable reads with
// 503 and Retry-After, and still serves stale reads and its status.
func TestHTTPNoLeader(t *testing.T) {
	n := testNode(t, "lonely", false, "")
	addr := n.cfg.httpAddr
	for _, req := range [][2]string{{"PUT", "/kv/x"}, {"GET", "/kv/x"}, {"DELETE", "/kv/x"}, {"POST", "/leader/transfer"}} {
		r := call(t, req[0], addr, req[1], []byte("v"))
		if r.code != 503 || r.header.Get("Retry-After") == "" || r.header.Get(headerOutcome) != "" {
			t.Errorf("%s %s without a leader: %d %q (Retry-After %q, outcome %q)", req[0], req[1], r.code, r.body,
				r.header.Get("Retry-After"), r.header.Get(headerOutcome))
		}
	}
	if r := call(t, "GET", addr, "/kv/x?stale", nil); r.code != 404 {
		t.Fatalf("stale read: %d %q", r.code, r.body)
	}
	if r := call(t, "POST", addr, "/snapshot", nil); r.code != 409 {
		t.Fatalf("snapshot with nothing applied: %d %q", r.code, r.body)
	}
	if r := call(t, "GET", addr, "/status", nil); r.code != 200 || !strings.Contains(r.body, `"state": "Follower"`) {
		t.Fatalf("status: %d %q", r.code, r.body)
	}
}

// testCluster3 starts n1 (bootstrapping) and n2, n3 joining through it,
// and waits until all three know the leader and each other.
func testCluster3(t *testing.T) (n1, n2, n3 *node) {
	t.Helper()
	n1 = testNode(t, "n1", true, "")
	waitLeader(t, n1)
	n2 = testNode(t, "n2", false, n1.cfg.httpAddr)
	n3 = testNode(t, "n3", false, n1.cfg.httpAddr)
	procs := []*proc{{id: "n1", httpAddr: n1.cfg.httpAddr}, {id: "n2", httpAddr: n2.cfg.httpAddr}, {id: "n3", httpAddr: n3.cfg.httpAddr}}
	if _, err := newKVClient().waitReady(15*time.Second, procs); err != nil {
		t.Fatal(err)
	}
	return n1, n2, n3
}

// Three nodes in this process: two join through the first; writes and
// reads sent to followers are forwarded to the leader; a removed member
// leaves the configuration; a transfer moves leadership.
func TestHTTPClusterForwarding(t *testing.T) {
	n1, n2, n3 := testCluster3(t)
	c := newKVClient()
	for i, n := range []*node{n2, n3, n2} {
		if err := putRetry(c, n.cfg.httpAddr, "k", []byte{byte('a' + i)}); err != nil {
			t.Fatalf("write through follower %s: %v", n.cfg.id, err)
		}
	}
	if got, err := getRetry(c, n3.cfg.httpAddr, "k"); err != nil || string(got) != "c" {
		t.Fatalf("linearizable read through a follower: %q, %v", got, err)
	}

	// The leader's view of its peers (if load moved leadership, whoever
	// leads now).
	var st status
	if err := waitFor(10*time.Second, "a leader's view of both peers", func() bool {
		for _, n := range []*node{n1, n2, n3} {
			if n.raft.State().String() == "Leader" {
				st = n.status()
				return len(st.Peers) == 2
			}
		}
		return false
	}); err != nil {
		t.Fatal(err)
	}
	for id, p := range st.Peers {
		if p.MatchIndex == 0 {
			t.Fatalf("leader's view of %s: %+v", id, p)
		}
	}

	if r := callRetry(t, "POST", n2.cfg.httpAddr, "/leader/transfer?id=n3", nil); r.code != 200 {
		t.Fatalf("transfer through a follower: %d %q", r.code, r.body)
	}
	if err := waitFor(10*time.Second, "n3 to lead", func() bool { return n3.raft.State().String() == "Leader" }); err != nil {
		t.Fatal(err)
	}
	if r := callRetry(t, "DELETE", n1.cfg.httpAddr, "/members/n2", nil); r.code != 200 {
		t.Fatalf("remove through a follower: %d %q", r.code, r.body)
	}
	if err := waitFor(10*time.Second, "n2 to be forgotten", func() bool { return n1.fsm.member("n2") == "" }); err != nil {
		t.Fatal(err)
	}
	if err := putRetry(c, n1.cfg.httpAddr, "after", []byte("x")); err != nil {
		t.Fatalf("write after the removal: %v", err)
	}
}

// A backup taken with GET /backup, restored with POST /restore, brings the
// state back to the backup's; a body that is not a backup changes nothing.
func TestBackupAndRestore(t *testing.T) {
	n := testNode(t, "n1", true, "")
	waitLeader(t, n)
	addr := n.cfg.httpAddr
	c := newKVClient()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.put(addr, "a", []byte("1")))
	backup := call(t, "GET", addr, "/backup", nil)
	if backup.code != 200 || backup.header.Get(headerIndex) == "" {
		t.Fatalf("backup: %d %q", backup.code, backup.body)
	}
	must(c.put(addr, "a", []byte("2")))
	must(c.put(addr, "b", []byte("3")))
	if r := call(t, "POST", addr, "/restore", []byte("garbage")); r.code != 400 {
		t.Fatalf("restoring garbage: %d %q", r.code, r.body)
	}
	if v, err := c.get(addr, "b"); err != nil || string(v) != "3" {
		t.Fatalf("after a refused restore: b = %q, %v", v, err)
	}
	if r := call(t, "POST", addr, "/restore", []byte(backup.body)); r.code != 200 {
		t.Fatalf("restore: %d %q", r.code, r.body)
	}
	if v, err := c.get(addr, "a"); err != nil || string(v) != "1" {
		t.Fatalf("after the restore: a = %q, %v", v, err)
	}
	if _, err := c.get(addr, "b"); !errors.Is(err, errNotFound) {
		t.Fatalf("after the restore: b: %v, want not found", err)
	}
	must(c.put(addr, "c", []byte("4"))) // the restored cluster takes writes
}

// Losing quorum: two of three nodes are gone for good. peers.json in the
// survivor's data directory naming only itself makes it a cluster of one
// with its data, and is renamed so that it applies once.
func TestRecoverLostQuorumWithPeersJSON(t *testing.T) {
	n1, n2, n3 := testCluster3(t)
	c := newKVClient()
	if err := c.put(n2.cfg.httpAddr, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	cfg := n1.cfg
	cfg.raftAddr = string(n1.trans.LocalAddr())
	cfg.bootstrap = false
	for _, n := range []*node{n2, n3, n1} {
		if err := n.close(); err != nil {
			t.Fatal(err)
		}
	}
	peers := fmt.Sprintf(`[{"id": "n1", "address": %q, "non_voter": false}]`, cfg.raftAddr)
	if err := os.WriteFile(filepath.Join(cfg.dataDir, "peers.json"), []byte(peers), 0o644); err != nil {
		t.Fatal(err)
	}
	r := testNodeWith(t, cfg)
	waitLeader(t, r)
	if v, err := c.get(r.cfg.httpAddr, "k"); err != nil || string(v) != "v" {
		t.Fatalf("after recovery: k = %q, %v", v, err)
	}
	if err := c.put(r.cfg.httpAddr, "after", []byte("x")); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.dataDir, "peers.json.applied")); err != nil {
		t.Fatalf("peers.json was not set aside: %v", err)
	}
}
