package raft

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft/internal/testcerts"
)

// The certificate helpers live in internal/testcerts, shared with
// grpctransport's tests.
type testCA = testcerts.CA

func newTestCA(t *testing.T, name string) *testCA { return testcerts.NewCA(t, name) }

func mutualTLS(ca *testCA, cert *tls.Certificate) *tls.Config { return testcerts.MutualTLS(ca, cert) }

func newTestTLSTransport(t *testing.T, cfg *tls.Config, logs *syncBuffer) *NetworkTransport {
	t.Helper()
	logger := hclog.NewNullLogger()
	if logs != nil {
		logger = hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug})
	}
	trans, err := NewTLSTransportWithConfig("127.0.0.1:0", nil, cfg, &NetworkTransportConfig{MaxPool: 2, Timeout: 2 * time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trans.Close() })
	return trans
}

// A cluster with mutual TLS elects and replicates; a node whose certificate
// comes from another CA, or that has none, can neither send an RPC that is
// heard nor receive the cluster's entries after being added.
func TestTLSTransportMutualAuth(t *testing.T) {
	ca := newTestCA(t, "cluster CA")
	logs := &syncBuffer{}
	i := 0
	nodes, _ := startNetCluster(t, 3, func() *NetworkTransport {
		i++
		cert := ca.Issue(t, "node")
		var l *syncBuffer
		if i == 1 {
			l = logs
		}
		return newTestTLSTransport(t, mutualTLS(ca, &cert), l)
	})
	for i := 0; i < 20; i++ {
		applyOnLeader(t, nodes, []byte("x"), time.Second)
	}
	waitAllApplied(t, nodes)

	// A rogue node: a certificate from another CA (that it trusts for its
	// own side), and a node with no certificate at all.
	rogueCA := newTestCA(t, "rogue CA")
	rogueCert := rogueCA.Issue(t, "rogue")
	rogue := newTestTLSTransport(t, mutualTLS(rogueCA, &rogueCert), nil)
	noCertCfg := mutualTLS(ca, nil)
	noCert := newTestTLSTransport(t, noCertCfg, nil)

	term := currentLeader(t, nodes).r.CurrentTerm()
	for name, trans := range map[string]*NetworkTransport{"foreign CA": rogue, "no certificate": noCert} {
		for _, n := range nodes {
			var resp RequestVoteResponse
			err := trans.RequestVote(n.conf.LocalID, n.trans.LocalAddr(),
				&RequestVoteRequest{RPCHeader: RPCHeader{ProtocolVersion: 3, ID: []byte("rogue"), Addr: []byte(trans.LocalAddr())},
					Term: term + 100, LastLogIndex: 1 << 40, LastLogTerm: term + 99}, &resp)
			if err == nil {
				t.Fatalf("%s: a RequestVote to %s got through: %+v", name, n.conf.LocalID, resp)
			}
		}
	}
	// Had a RequestVote got through, its node would have moved to the
	// rogue's term (term+100). An election of the cluster's own, which a
	// loaded machine may bring about, moves the term by a few only.
	for _, n := range nodes {
		if got := n.r.CurrentTerm(); got >= term+100 {
			t.Fatalf("%s moved from term %d to the rogue's %d after rejected RPCs", n.conf.LocalID, term, got)
		}
	}

	// Added as a non-voter, the rogue node never gets an entry: the leader
	// refuses its certificate when dialing it.
	rogueStore := NewInmemStore()
	rogueConf := DefaultConfig()
	rogueConf.LocalID = ServerID(rogue.LocalAddr())
	rogueConf.Logger = hclog.NewNullLogger()
	rogueRaft, err := NewRaft(rogueConf, &nopFSM{}, rogueStore, rogueStore, NewInmemSnapshotStore(), rogue)
	if err != nil {
		t.Fatal(err)
	}
	defer rogueRaft.Shutdown()
	for try := 0; ; try++ {
		err := currentLeader(t, nodes).r.AddNonvoter(rogueConf.LocalID, rogue.LocalAddr(), 0, 5*time.Second).Error()
		if err == nil {
			break
		}
		if !leaderMoved(err) || try == 20 {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		applyOnLeader(t, nodes, []byte("y"), time.Second)
	}
	waitAllApplied(t, nodes)
	if last, _ := rogueStore.LastIndex(); last != 0 {
		t.Fatalf("the rogue node received entries up to %d", last)
	}
	if !strings.Contains(logs.String(), "TLS handshake failed") {
		t.Fatalf("no log line about the refused handshakes:\n%s", logs.String())
	}
}

func TestTLSTransportNeedsConfig(t *testing.T) {
	if _, err := NewTLSTransport("127.0.0.1:0", nil, nil, 1, time.Second, nil); err != errNoTLSConfig {
		t.Fatalf("err = %v, want errNoTLSConfig", err)
	}
	if _, err := NewTLSStreamLayer("0.0.0.0:0", nil, &tls.Config{}); err != errNotAdvertisable {
		t.Fatalf("err = %v, want errNotAdvertisable", err)
	}
}
