package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"
)

// withAutopilot starts a node with autopilot on, acting quickly.
func withAutopilot(t *testing.T, id string, bootstrap bool, join string) *node {
	t.Helper()
	cfg := baseConfig(t, id, bootstrap, join)
	cfg.autopilot = autopilotFlags{
		enabled: true, cleanupDeadServers: true, maxTrailingLogs: 250, stabilization: time.Second,
		deadAfter: time.Second, updateInterval: 100 * time.Millisecond, reconcileInterval: 200 * time.Millisecond,
	}
	return testNodeWith(t, cfg)
}

// suffrageOn returns id's suffrage in addr's configuration ("" if absent).
func suffrageOn(t *testing.T, addr, id string) string {
	t.Helper()
	var st status
	r := call(t, "GET", addr, "/status", nil)
	if r.code != http.StatusOK || json.Unmarshal([]byte(r.body), &st) != nil {
		return ""
	}
	for _, m := range st.Configuration {
		if m.ID == id {
			return m.Suffrage
		}
	}
	return ""
}

// autopilotState is the part of GET /autopilot the tests read.
type autopilotState struct {
	Healthy          bool
	FailureTolerance int
	Leader           string
	Voters           []string
}

func getAutopilot(t *testing.T, addr string) (autopilotState, int) {
	t.Helper()
	var st autopilotState
	r := callRetry(t, "GET", addr, "/autopilot", nil)
	if r.code == http.StatusOK {
		if err := json.Unmarshal([]byte(r.body), &st); err != nil {
			t.Fatalf("GET /autopilot: %v: %s", err, r.body)
		}
	}
	return st, r.code
}

// With autopilot, a node that joins is a nonvoter until it has been healthy
// for the stabilization time, then a voter; GET /autopilot shows the
// leader's state (through a follower too); a member that stops answering
// is removed once -autopilot-dead-after has passed, when cleanup is on.
func TestAutopilotPromotesJoiningNodes(t *testing.T) {
	n1 := withAutopilot(t, "n1", true, "")
	if err := waitFor(10*time.Second, "n1 to lead", func() bool { return n1.raft.State().String() == "Leader" }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // autopilot has run longer than the stabilization time

	n2 := withAutopilot(t, "n2", false, n1.cfg.httpAddr)
	var first string // n2's suffrage when first seen in the configuration
	if err := waitFor(10*time.Second, "n2 in the configuration", func() bool {
		first = suffrageOn(t, n1.cfg.httpAddr, "n2")
		return first != ""
	}); err != nil {
		t.Fatal(err)
	}
	if first != "Nonvoter" {
		t.Fatalf("n2 joined as %q, want a nonvoter until it is stable", first)
	}
	if err := waitFor(20*time.Second, "n2 promoted", func() bool { return suffrageOn(t, n1.cfg.httpAddr, "n2") == "Voter" }); err != nil {
		t.Fatalf("%v; autopilot: %s", err, call(t, "GET", n1.cfg.httpAddr, "/autopilot", nil).body)
	}
	n3 := withAutopilot(t, "n3", false, n2.cfg.httpAddr) // through a follower
	if err := waitFor(20*time.Second, "n3 promoted", func() bool { return suffrageOn(t, n1.cfg.httpAddr, "n3") == "Voter" }); err != nil {
		t.Fatal(err)
	}
	var st autopilotState
	if err := waitFor(10*time.Second, "a healthy state of three voters", func() bool {
		var code int
		st, code = getAutopilot(t, n3.cfg.httpAddr) // a follower forwards it
		return code == http.StatusOK && st.Healthy && len(st.Voters) == 3
	}); err != nil {
		t.Fatalf("%v; last state %+v", err, st)
	}
	if st.Leader != "n1" || st.FailureTolerance != 1 {
		t.Fatalf("state: leader %q, failure tolerance %d; want n1, 1", st.Leader, st.FailureTolerance)
	}

	// n3 stops answering: removed after -autopilot-dead-after.
	if err := n3.close(); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(20*time.Second, "n3 removed", func() bool { return suffrageOn(t, n1.cfg.httpAddr, "n3") == "" }); err != nil {
		t.Fatal(err)
	}
	if s := suffrageOn(t, n1.cfg.httpAddr, "n2"); s != "Voter" {
		t.Fatalf("n2 is %q after n3's removal", s)
	}
}

// Without autopilot, GET /autopilot says it is off, and joins make voters
// at once (as before autopilot).
func TestAutopilotOff(t *testing.T) {
	n1 := testNode(t, "n1", true, "")
	if r := callRetry(t, "GET", n1.cfg.httpAddr, "/autopilot", nil); r.code != http.StatusNotFound {
		t.Fatalf("GET /autopilot with autopilot off: %d %s", r.code, r.body)
	}
}
