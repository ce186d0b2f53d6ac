package autopilot_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/autopilot"
	"github.com/seed48a2b68f/raft/rafttest"
)

// app is a test application: it knows the cluster's nodes, says which are
// alive, fetches their statistics from their Raft nodes and removes failed
// servers through the leader.
type app struct {
	conf   autopilot.Config
	leader *raft.Raft // where failed servers are removed

	mu      sync.Mutex
	nodes   []*rafttest.Node
	status  map[raft.ServerID]autopilot.NodeStatus // absent: unknown to the app
	states  int
	removed []raft.ServerID
}

// newApp knows the cluster's nodes as they are now, all alive; add tells
// it of nodes added later.
func newApp(c *rafttest.Cluster, leader *rafttest.Node, conf autopilot.Config) *app {
	a := &app{conf: conf, leader: leader.Raft, status: map[raft.ServerID]autopilot.NodeStatus{}}
	for _, n := range c.Nodes {
		a.add(n)
	}
	return a
}

func (a *app) add(n *rafttest.Node) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.nodes = append(a.nodes, n)
	a.status[n.ID] = autopilot.NodeAlive
}

func (a *app) list() []*rafttest.Node {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*rafttest.Node(nil), a.nodes...)
}

func (a *app) set(id raft.ServerID, s autopilot.NodeStatus) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.status[id] = s
}

func (a *app) forget(id raft.ServerID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.status, id)
}

func (a *app) AutopilotConfig() *autopilot.Config { c := a.conf; return &c }

func (a *app) NotifyState(*autopilot.State) {
	a.mu.Lock()
	a.states++
	a.mu.Unlock()
}

func (a *app) KnownServers() map[raft.ServerID]*autopilot.Server {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[raft.ServerID]*autopilot.Server{}
	for _, n := range a.nodes {
		if s, ok := a.status[n.ID]; ok {
			out[n.ID] = &autopilot.Server{ID: n.ID, Name: string(n.ID), Address: n.Addr, NodeStatus: s, NodeType: autopilot.NodeVoter}
		}
	}
	return out
}

func (a *app) FetchServerStats(_ context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	out := map[raft.ServerID]*autopilot.ServerStats{}
	for _, n := range a.list() {
		if _, ok := servers[n.ID]; !ok || n.Raft.State() == raft.Shutdown {
			continue
		}
		st := n.Raft.Stats()
		s := &autopilot.ServerStats{}
		s.LastTerm, _ = strconv.ParseUint(st["last_log_term"], 10, 64)
		s.LastIndex, _ = strconv.ParseUint(st["last_log_index"], 10, 64)
		switch lc := st["last_contact"]; lc {
		case "never":
			s.LastContact = -1
		case "0":
		default:
			s.LastContact, _ = time.ParseDuration(lc)
		}
		out[n.ID] = s
	}
	return out
}

func (a *app) RemoveFailedServer(s *autopilot.Server) {
	a.mu.Lock()
	a.removed = append(a.removed, s.ID)
	a.mu.Unlock()
	go func() { _ = a.leader.RemoveServer(s.ID, 0, 0).Error() }()
}

func (a *app) removedIDs() []raft.ServerID {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]raft.ServerID(nil), a.removed...)
}

// suffrage returns id's suffrage in the leader's latest configuration, and
// whether it is there.
func suffrage(l *rafttest.Node, id raft.ServerID) (raft.ServerSuffrage, bool) {
	for _, s := range l.Raft.GetConfiguration().Configuration().Servers {
		if s.ID == id {
			return s.Suffrage, true
		}
	}
	return 0, false
}

func defaultConf() autopilot.Config {
	return autopilot.Config{
		CleanupDeadServers:      true,
		LastContactThreshold:    2 * time.Second,
		MaxTrailingLogs:         250,
		MinQuorum:               0,
		ServerStabilizationTime: 10 * time.Second,
	}
}

func options() []autopilot.Option {
	return []autopilot.Option{
		autopilot.WithUpdateInterval(500 * time.Millisecond),
		autopilot.WithReconcileInterval(time.Second),
		autopilot.WithLogger(nil),
	}
}

// inBubble runs f on an n-node cluster in a synctest bubble, with an
// autopilot started on the leader.
func inBubble(t *testing.T, n int, conf autopilot.Config, f func(t *testing.T, c *rafttest.Cluster, l *rafttest.Node, ap *autopilot.Autopilot, a *app), opts ...rafttest.Option) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		c := rafttest.NewCluster(t, n, append([]rafttest.Option{rafttest.WithSeed(7)}, opts...)...)
		l := c.WaitLeader()
		a := newApp(c, l, conf)
		ap := autopilot.New(l.Raft, a, options()...)
		ap.Start(context.Background())
		defer func() { <-ap.Stop() }()
		f(t, c, l, ap, a)
	})
}

// A new server joins as a nonvoter and is promoted once it has been
// healthy for ServerStabilizationTime, not before.
func TestPromotesAStableNonvoter(t *testing.T) {
	inBubble(t, 3, defaultConf(), func(t *testing.T, c *rafttest.Cluster, l *rafttest.Node, ap *autopilot.Autopilot, a *app) {
		time.Sleep(15 * time.Second) // autopilot has run longer than the stabilization time
		n := c.AddNode()
		a.add(n)
		if err := ap.AddServer(&autopilot.Server{ID: n.ID, Address: n.Addr, NodeStatus: autopilot.NodeAlive}); err != nil {
			t.Fatal(err)
		}
		if s, ok := suffrage(l, n.ID); !ok || s != raft.Nonvoter {
			t.Fatalf("AddServer made %s %v (present %v), want a nonvoter", n.ID, s, ok)
		}
		time.Sleep(5 * time.Second)
		if s, _ := suffrage(l, n.ID); s != raft.Nonvoter {
			t.Fatalf("%s is %v after 5 s, before the stabilization time", n.ID, s)
		}
		if h := ap.GetServerHealth(n.ID); h == nil || !h.Healthy {
			t.Fatalf("health of the caught-up nonvoter: %+v", h)
		}
		c.WaitFor(20*time.Second, "the promotion", func() bool {
			s, ok := suffrage(l, n.ID)
			return ok && s == raft.Voter && len(ap.GetState().Voters) == 4
		})
		st := ap.GetState()
		if st.Leader != l.ID || len(st.Voters) != 4 || st.Voters[0] != l.ID || !st.Healthy || st.FailureTolerance != 1 {
			t.Fatalf("state: leader %s voters %v healthy %v tolerance %d", st.Leader, st.Voters, st.Healthy, st.FailureTolerance)
		}
	})
}

// A server whose health keeps changing never becomes stable, so it is
// never promoted; once it holds steady it is.
func TestFlappingServerNotPromoted(t *testing.T) {
	conf := defaultConf()
	conf.CleanupDeadServers = false // a failed nonvoter would be removed
	inBubble(t, 3, conf, func(t *testing.T, c *rafttest.Cluster, l *rafttest.Node, ap *autopilot.Autopilot, a *app) {
		time.Sleep(15 * time.Second)
		n := c.AddNode()
		a.add(n)
		if err := ap.AddServer(&autopilot.Server{ID: n.ID, Address: n.Addr}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 30; i++ { // 60 s of flapping, 4 s up and 4 s down
			if i%4 < 2 {
				a.set(n.ID, autopilot.NodeAlive)
			} else {
				a.set(n.ID, autopilot.NodeFailed)
			}
			time.Sleep(2 * time.Second)
			if s, ok := suffrage(l, n.ID); !ok || s != raft.Nonvoter {
				t.Fatalf("flapping %s became %v (present %v)", n.ID, s, ok)
			}
		}
		a.set(n.ID, autopilot.NodeAlive)
		c.WaitFor(20*time.Second, "the promotion once steady", func() bool {
			s, ok := suffrage(l, n.ID)
			return ok && s == raft.Voter
		})
	})
}

// A dead voter is removed (through the application), and the cluster keeps
// its quorum.
func TestDeadServerRemoved(t *testing.T) {
	inBubble(t, 5, defaultConf(), func(t *testing.T, c *rafttest.Cluster, l *rafttest.Node, ap *autopilot.Autopilot, a *app) {
		dead := c.Others(l)[0]
		c.Stop(dead)
		a.set(dead.ID, autopilot.NodeFailed)
		c.WaitFor(30*time.Second, "the dead server removed", func() bool {
			_, ok := suffrage(l, dead.ID)
			return !ok
		})
		if got := a.removedIDs(); len(got) == 0 || got[0] != dead.ID {
			t.Fatalf("RemoveFailedServer calls: %v", got)
		}
		if h := ap.GetServerHealth(dead.ID); h != nil && h.Healthy {
			t.Fatal("the dead server was reported healthy")
		}
		c.ApplyN(l, "after", 5)
	})
}

// Never a removal that would lose quorum: with two of three voters
// failed, at most one is removed in a round, and with MinQuorum at the
// cluster's size none is.
func TestNeverRemovesAQuorum(t *testing.T) {
	t.Run("majority failed", func(t *testing.T) {
		inBubble(t, 3, defaultConf(), func(t *testing.T, c *rafttest.Cluster, l *rafttest.Node, ap *autopilot.Autopilot, a *app) {
			for _, n := range c.Others(l) {
				a.set(n.ID, autopilot.NodeFailed) // alive in Raft, failed to the app
			}
			time.Sleep(30 * time.Second)
			removed := a.removedIDs()
			seen := map[raft.ServerID]bool{}
			for _, id := range removed {
				seen[id] = true
			}
			if len(seen) > 1 {
				t.Fatalf("removed %v of 3 voters", removed)
			}
		})
	})
	t.Run("min quorum", func(t *testing.T) {
		conf := defaultConf()
		conf.MinQuorum = 3
		inBubble(t, 3, conf, func(t *testing.T, c *rafttest.Cluster, l *rafttest.Node, ap *autopilot.Autopilot, a *app) {
			a.set(c.Others(l)[0].ID, autopilot.NodeFailed)
			time.Sleep(30 * time.Second)
			if got := a.removedIDs(); len(got) != 0 {
				t.Fatalf("removed %v below MinQuorum 3", got)
			}
		})
	})
	t.Run("cleanup off", func(t *testing.T) {
		conf := defaultConf()
		conf.CleanupDeadServers = false
		inBubble(t, 5, conf, func(t *testing.T, c *rafttest.Cluster, l *rafttest.Node, ap *autopilot.Autopilot, a *app) {
			a.set(c.Others(l)[0].ID, autopilot.NodeFailed)
			time.Sleep(30 * time.Second)
			if got := a.removedIDs(); len(got) != 0 {
				t.Fatalf("removed %v with CleanupDeadServers off", got)
			}
		})
	})
}

// Servers the application no longer knows are removed by autopilot itself,
// two voters of five in one joint configuration change.
func TestStaleVotersRemovedInOneJointChange(t *testing.T) {
	inBubble(t, 5, defaultConf(), func(t *testing.T, c *rafttest.Cluster, l *rafttest.Node, ap *autopilot.Autopilot, a *app) {
		others := c.Others(l)
		a.forget(others[0].ID)
		a.forget(others[1].ID)
		before := l.Raft.LastIndex()
		c.WaitFor(30*time.Second, "the stale voters removed", func() bool {
			_, ok0 := suffrage(l, others[0].ID)
			_, ok1 := suffrage(l, others[1].ID)
			return !ok0 && !ok1
		})
		if kinds := configurationKinds(l, before); len(kinds) != 2 || kinds[0] != "joint" {
			t.Fatalf("configuration entries %v, want the two removals in one joint change (joint, then final)", kinds)
		}
	})
}

// demoter demotes the servers it is told to and promotes nobody.
type demoter struct {
	autopilot.StablePromoter
	demote, promote []raft.ServerID
}

func (d *demoter) CalculatePromotionsAndDemotions(*autopilot.Config, *autopilot.State) autopilot.RaftChanges {
	return autopilot.RaftChanges{Demotions: d.demote, Promotions: d.promote}
}

// A promoter's promotions and demotions of one round are one joint change.
func TestPromotionsAndDemotionsInOneJointChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := rafttest.NewCluster(t, 3, rafttest.WithSeed(7))
		l := c.WaitLeader()
		n := c.AddNode()
		if err := l.Raft.AddNonvoter(n.ID, n.Addr, 0, 0).Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitApplied(0, n)
		a := newApp(c, l, defaultConf())
		victim := c.Others(l, n)[0]
		p := &demoter{demote: []raft.ServerID{victim.ID}, promote: []raft.ServerID{n.ID}}
		ap := autopilot.New(l.Raft, a, append(options(), autopilot.WithPromoter(p))...)
		ap.Start(context.Background())
		defer func() { <-ap.Stop() }()
		before := l.Raft.GetConfiguration().Index()
		c.WaitFor(30*time.Second, "the swap", func() bool {
			s1, ok1 := suffrage(l, victim.ID)
			s2, ok2 := suffrage(l, n.ID)
			return ok1 && ok2 && s1 == raft.Nonvoter && s2 == raft.Voter
		})
		kinds := configurationKinds(l, before)
		if len(kinds) != 2 || kinds[0] != "joint" {
			t.Fatalf("configuration entries %v, want one joint change (joint, then final)", kinds)
		}
	})
}

// Start, Stop, IsRunning, reconciliation switches and the state's life.
func TestLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := rafttest.NewCluster(t, 3, rafttest.WithSeed(7))
		l := c.WaitLeader()
		a := newApp(c, l, defaultConf())
		ap := autopilot.New(l.Raft, a, append(options(), autopilot.WithReconciliationDisabled())...)
		if st, done := ap.IsRunning(); st != autopilot.NotRunning {
			t.Fatalf("new autopilot is %v", st)
		} else if _, open := <-done; open {
			t.Fatal("done channel of a stopped autopilot is open")
		}
		if ap.ReconciliationEnabled() {
			t.Fatal("WithReconciliationDisabled left reconciliation on")
		}
		ap.Start(context.Background())
		if st := ap.GetState(); st.Leader != l.ID || len(st.Servers) != 3 {
			t.Fatalf("state after Start: leader %q, %d servers (the first state is made by Start)", st.Leader, len(st.Servers))
		}
		if st, _ := ap.IsRunning(); st != autopilot.Running {
			t.Fatalf("started autopilot is %v", st)
		}
		ap.EnableReconciliation()
		if !ap.ReconciliationEnabled() {
			t.Fatal("EnableReconciliation did not")
		}
		time.Sleep(3 * time.Second)
		a.mu.Lock()
		states := a.states
		a.mu.Unlock()
		if states < 3 {
			t.Fatalf("NotifyState called %d times in 3 s at a 500 ms interval", states)
		}
		<-ap.Stop()
		if st, _ := ap.IsRunning(); st != autopilot.NotRunning {
			t.Fatalf("stopped autopilot is %v", st)
		}
		if st := ap.GetState(); len(st.Servers) != 0 {
			t.Fatal("a stopped autopilot kept its state")
		}
		// Start again after Stop; a canceled context stops it too.
		ctx, cancel := context.WithCancel(context.Background())
		ap.Start(ctx)
		cancel()
		_, done := ap.IsRunning()
		<-done
		if st, _ := ap.IsRunning(); st != autopilot.NotRunning {
			t.Fatalf("autopilot after its context ended is %v", st)
		}
	})
}

// A promoter that names another leader gets leadership moved there (the
// StablePromoter never does).
func TestPromoterMovesLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := rafttest.NewCluster(t, 3, rafttest.WithSeed(7))
		l := c.WaitLeader()
		a := newApp(c, l, defaultConf())
		target := c.Others(l)[0]
		ap := autopilot.New(l.Raft, a, append(options(), autopilot.WithPromoter(&leaderMover{to: target.ID}))...)
		ap.Start(context.Background())
		defer func() { <-ap.Stop() }()
		if got := c.WaitLeader(target); got != target {
			t.Fatalf("leader %s, want %s", got.ID, target.ID)
		}
	})
}

// leaderMover asks for leadership on one server.
type leaderMover struct {
	autopilot.StablePromoter
	to raft.ServerID
}

func (m *leaderMover) CalculatePromotionsAndDemotions(*autopilot.Config, *autopilot.State) autopilot.RaftChanges {
	return autopilot.RaftChanges{Leader: m.to}
}

// configurationKinds returns, for each configuration entry in l's log after
// index after, "joint" or "plain".
func configurationKinds(l *rafttest.Node, after uint64) []string {
	var kinds []string
	for i := after + 1; i <= l.Raft.LastIndex(); i++ {
		var e raft.Log
		if l.Store.GetLog(i, &e) != nil || e.Type != raft.LogConfiguration {
			continue
		}
		kind := "plain"
		for _, s := range raft.DecodeConfiguration(e.Data).Servers {
			switch s.Suffrage {
			case raft.JointIncoming, raft.JointOutgoing, raft.JointDemoting:
				kind = "joint"
			}
		}
		kinds = append(kinds, kind)
	}
	return kinds
}
