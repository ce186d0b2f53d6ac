package interop

import (
	"errors"
	"strings"
	"testing"
	"time"

	ours "github.com/seed48a2b68f/raft"
)

// ourServers builds a configuration of voters for the given nodes.
func ourServers(nodes ...*node) ours.Configuration {
	var c ours.Configuration
	for _, n := range nodes {
		c.Servers = append(c.Servers, ours.Server{Suffrage: ours.Voter, ID: ours.ServerID(n.id), Address: ours.ServerAddress(n.id)})
	}
	return c
}

// noJointConfiguration fails the test if any node's latest configuration
// is joint: hashicorp/raft nodes must never be sent one.
func noJointConfiguration(t *testing.T, nodes []*node) {
	t.Helper()
	for _, n := range nodes {
		if !n.running() {
			continue
		}
		for _, m := range n.members() {
			if strings.Contains(m, "Joint") || strings.HasSuffix(m, ":ServerSuffrage") {
				t.Fatalf("%s holds a joint configuration: %v", n, n.members())
			}
		}
	}
}

// Joint consensus in mixed clusters: a joint configuration is never written
// while a member of the old or the new configuration may be a hashicorp/raft
// node; the leader learns its followers' capabilities from their answers
// (which hashicorp nodes send without them) and asks a new server with a
// heartbeat. Among our nodes over TCP, the same change goes through.
func TestMixedJointConsensus(t *testing.T) {
	t.Run("hashicorp member", func(t *testing.T) {
		nodes := startCluster(t, false, false, true)
		leader := leaderOf(t, nodes, false)
		applyN(t, leader, "a", 5)
		waitSameState(t, nodes, leader)
		extra := newNode(t, false)
		extra.start(nil)
		refusedThenOneAtATime(t, nodes, leader, extra)
	})

	t.Run("hashicorp newcomer", func(t *testing.T) {
		nodes := startCluster(t, false, false, false)
		leader := waitLeader(t, nodes)
		applyN(t, leader, "a", 5)
		newcomer := newNode(t, true)
		newcomer.start(nil)
		refusedThenOneAtATime(t, nodes, leader, newcomer)
	})

	t.Run("ours only over TCP", func(t *testing.T) {
		nodes := startCluster(t, false, false, false)
		leader := waitLeader(t, nodes)
		applyN(t, leader, "a", 5)
		d, e := newNode(t, false), newNode(t, false)
		d.start(nil)
		e.start(nil)
		// Replace the two followers by d and e in one change.
		next := ourServers(leader, d, e)
		_, r := leader.rafts()
		f := r.ChangeConfiguration(next, 0, 5*time.Second)
		if err := f.Error(); err != nil {
			t.Fatalf("ChangeConfiguration among our nodes: %v", err)
		}
		if got := r.GetConfiguration(); got.Index() != f.Index() || len(got.Configuration().Servers) != 3 {
			t.Fatalf("configuration %+v at %d, want next at %d", got.Configuration(), got.Index(), f.Index())
		}
		applyN(t, leader, "b", 5)
		waitSameState(t, []*node{leader, d, e}, leader)
	})
}

// refusedThenOneAtATime checks that our leader refuses to add extra to nodes
// in one ChangeConfiguration (a hashicorp node is among them), writing
// nothing and keeping its leadership, that AddVoter adds it, and that no
// node ever holds a joint configuration.
func refusedThenOneAtATime(t *testing.T, nodes []*node, leader, extra *node) {
	t.Helper()
	_, r := leader.rafts()
	before := r.GetConfiguration().Index()
	next := ourServers(append(nodes, extra)...)
	if err := r.ChangeConfiguration(next, 0, 5*time.Second).Error(); !errors.Is(err, ours.ErrJointConsensusUnsupported) {
		t.Fatalf("ChangeConfiguration with a hashicorp node among %v: %v, want ErrJointConsensusUnsupported", next.Servers, err)
	}
	if after := r.GetConfiguration().Index(); after != before {
		t.Fatalf("a refused change wrote a configuration: index %d -> %d", before, after)
	}
	if !leader.isLeader() {
		t.Fatal("the refused change (or its probe) cost the leader its leadership")
	}
	if err := leader.addVoter(extra); err != nil {
		t.Fatalf("AddVoter after the refusal: %v", err)
	}
	applyN(t, leader, "b", 5)
	waitSameState(t, append(nodes, extra), leader)
	noJointConfiguration(t, append(nodes, extra))
}
