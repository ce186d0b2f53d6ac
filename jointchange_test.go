package raft_test

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// servers builds a configuration of the given nodes with one suffrage.
func servers(s raft.ServerSuffrage, nodes ...*rafttest.Node) []raft.Server {
	var out []raft.Server
	for _, n := range nodes {
		out = append(out, raft.Server{Suffrage: s, ID: n.ID, Address: n.Addr})
	}
	return out
}

// sameConfiguration reports whether a and b hold the same servers, in any
// order.
func sameConfiguration(a, b raft.Configuration) bool {
	key := func(c raft.Configuration) []string {
		var out []string
		for _, s := range c.Servers {
			out = append(out, s.Suffrage.String()+"/"+string(s.ID)+"/"+string(s.Address))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(key(a), key(b))
}

func isJointConfiguration(c raft.Configuration) bool {
	for _, s := range c.Servers {
		switch s.Suffrage {
		case raft.JointIncoming, raft.JointOutgoing, raft.JointDemoting:
			return true
		}
	}
	return false
}

// configurationsIn returns the configuration entries of n's log, in order.
func configurationsIn(t *testing.T, n *rafttest.Node) (idx []uint64, confs []raft.Configuration) {
	t.Helper()
	first, _ := n.Store.FirstIndex()
	last, _ := n.Store.LastIndex()
	for i := max(first, 1); i <= last; i++ {
		var l raft.Log
		if err := n.Store.GetLog(i, &l); err != nil || l.Type != raft.LogConfiguration {
			continue
		}
		idx = append(idx, i)
		confs = append(confs, raft.DecodeConfiguration(l.Data))
	}
	return idx, confs
}

// Every voter replaced at once: the cluster goes through one joint
// configuration to exactly the one asked for; the old leader hands over
// and shuts down (ShutdownOnRemove), and the new voters go on.
func TestChangeConfiguration_ReplacesEveryVoter(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 10)
		old := c.Running()
		fresh := []*rafttest.Node{c.AddNode(), c.AddNode(), c.AddNode()}
		next := raft.Configuration{Servers: servers(raft.Voter, fresh...)}
		// The old leader hands over: the new voters see a vote request
		// marked as a leadership transfer (a TimeoutNow's election).
		handedOver := make(chan raft.Observation, 16)
		for _, n := range fresh {
			n.Raft.RegisterObserver(raft.NewObserver(handedOver, false, func(o *raft.Observation) bool {
				req, ok := o.Data.(raft.RequestVoteRequest)
				return ok && req.LeadershipTransfer
			}))
		}

		f := leader.Raft.ChangeConfiguration(next, 0, time.Second)
		if err := f.Error(); err != nil {
			t.Fatalf("ChangeConfiguration: %v", err)
		}
		idx, confs := configurationsIn(t, leader)
		if len(confs) < 3 || idx[len(idx)-1] != f.Index() {
			t.Fatalf("configuration entries at %v, future index %d", idx, f.Index())
		}
		if j := confs[len(confs)-2]; !isJointConfiguration(j) || len(j.Servers) != 6 {
			t.Fatalf("entry before the final configuration is %+v, want the joint one of 6 servers", j)
		}
		if got := confs[len(confs)-1]; !sameConfiguration(got, next) {
			t.Fatalf("final configuration %+v, want %+v", got, next)
		}

		// The old leader hands over and shuts down; the removed followers
		// hear no more (as with RemoveServer) and never lead again.
		c.WaitFor(10*time.Second, "the old leader to shut down", func() bool { return leader.Raft.State() == raft.Shutdown })
		newLeader := c.WaitLeader(fresh...)
		select {
		case <-handedOver:
		default:
			t.Fatal("no vote request of a leadership transfer: the old leader did not hand over")
		}
		c.ApplyN(newLeader, "b", 10)
		c.WaitApplied(20, fresh...)
		cf := newLeader.Raft.GetConfiguration()
		if err := cf.Error(); err != nil || !sameConfiguration(cf.Configuration(), next) || cf.Index() != f.Index() {
			t.Fatalf("new leader's configuration %+v at %d, want %+v at %d (%v)", cf.Configuration(), cf.Index(), next, f.Index(), err)
		}
		if s := newLeader.Raft.Stats(); s["latest_configuration_joint"] != "false" {
			t.Fatalf("Stats latest_configuration_joint = %q after the change", s["latest_configuration_joint"])
		}
		for _, n := range old {
			if n != leader && n.Raft.State() == raft.Leader {
				t.Fatalf("removed %s leads", n.ID)
			}
		}
	})
}

// While the configuration is joint, a commit and an election need a
// majority of the old voters and a majority of the new: with the new
// voters cut off, the joint entry stays uncommitted on a majority of the
// old ones, the leader steps down (it cannot reach a majority of the new
// half) and none of the old voters can be elected. Nodes restarted in the
// joint phase come back in it, and once the new voters are reachable a
// leader other than the one that began the change finishes it.
func TestChangeConfiguration_JointPhaseNeedsBothHalves(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 5)
		d, e := c.AddNode(), c.AddNode()
		// Nonvoters first, so the leader has heard from both before they
		// are cut off.
		for _, n := range []*rafttest.Node{d, e} {
			if err := leader.Raft.AddNonvoter(n.ID, n.Addr, 0, time.Second).Error(); err != nil {
				t.Fatal(err)
			}
		}
		c.WaitApplied(5, d, e)
		olds := c.Others(d, e)
		var b, cc *rafttest.Node
		for _, n := range olds {
			switch {
			case n == leader:
			case b == nil:
				b = n
			default:
				cc = n
			}
		}
		c.Partition(d, e)
		next := raft.Configuration{Servers: append(servers(raft.Voter, leader), servers(raft.Voter, d, e)...)}
		f := leader.Raft.ChangeConfiguration(next, 0, time.Second)

		// The joint entry reaches b and c but cannot commit.
		var jointIndex uint64
		c.WaitFor(5*time.Second, "the joint entry on every old voter", func() bool {
			for _, n := range olds {
				cf := n.Raft.GetConfiguration()
				if cf.Error() != nil || !isJointConfiguration(cf.Configuration()) {
					return false
				}
				jointIndex = cf.Index()
			}
			return true
		})
		// A read round, as a commit, needs both halves: b and c alone do
		// not confirm the leader.
		if err := leader.Raft.VerifyLeader().Error(); err == nil {
			t.Fatal("VerifyLeader confirmed by a majority of the old voters only")
		}
		cf := leader.Raft.GetConfiguration()
		for _, s := range cf.Configuration().Servers {
			want := map[raft.ServerID]raft.ServerSuffrage{leader.ID: raft.Voter, b.ID: raft.JointOutgoing,
				cc.ID: raft.JointOutgoing, d.ID: raft.JointIncoming, e.ID: raft.JointIncoming}[s.ID]
			if s.Suffrage != want {
				t.Fatalf("joint configuration %+v: %s is %v, want %v", cf.Configuration(), s.ID, s.Suffrage, want)
			}
		}
		time.Sleep(5 * time.Second)
		for _, n := range olds {
			if got := n.Raft.CommitIndex(); got >= jointIndex {
				t.Fatalf("%s committed %d, the joint entry at %d, with no new voter reachable", n.ID, got, jointIndex)
			}
			if n.Raft.State() == raft.Leader {
				t.Fatalf("%s leads with a majority of the old voters only", n.ID)
			}
		}
		if err := f.Error(); !errors.Is(err, raft.ErrLeadershipLost) {
			t.Fatalf("ChangeConfiguration of a deposed leader: %v, want ErrLeadershipLost", err)
		}

		// b and c restart in the joint phase; the leader that began the
		// change is gone for good.
		c.Stop(leader)
		c.Restart(b)
		c.Restart(cc)
		for _, n := range []*rafttest.Node{b, cc} {
			if cf := n.Raft.GetConfiguration(); !isJointConfiguration(cf.Configuration()) {
				t.Fatalf("%s restarted with %+v, want the joint configuration", n.ID, cf.Configuration())
			}
			if s := n.Raft.Stats(); s["latest_configuration_joint"] != "true" {
				t.Fatalf("%s Stats latest_configuration_joint = %q in the joint phase", n.ID, s["latest_configuration_joint"])
			}
		}
		c.Heal()
		// Whoever leads finishes the change: next, with leader stopped,
		// has d and e for its majority.
		c.WaitFor(20*time.Second, "the final configuration committed", func() bool {
			for _, n := range []*rafttest.Node{d, e} {
				cf := n.Raft.GetConfiguration()
				if cf.Error() != nil || !sameConfiguration(cf.Configuration(), next) || n.Raft.CommitIndex() < cf.Index() {
					return false
				}
			}
			return true
		})
		final := c.WaitLeader(d, e)
		c.ApplyN(final, "b", 5)
		c.WaitApplied(10, d, e)
	})
}

// ChangeConfiguration writes nothing when a member cannot show that it
// understands joint configurations; here one of the new voters does not
// answer at all (it may be a hashicorp/raft node for all the leader knows).
func TestChangeConfiguration_RefusedWhenAMemberCannotBeAsked(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 3)
		before := leader.Raft.GetConfiguration()
		last := leader.Raft.LastIndex()
		next := before.Configuration()
		next.Servers = append(slices.Clone(next.Servers), raft.Server{Suffrage: raft.Voter, ID: "ghost", Address: "nowhere"})
		err := leader.Raft.ChangeConfiguration(next, 0, time.Second).Error()
		if !errors.Is(err, raft.ErrJointConsensusUnsupported) {
			t.Fatalf("ChangeConfiguration with an unreachable new voter: %v, want ErrJointConsensusUnsupported", err)
		}
		after := leader.Raft.GetConfiguration()
		if after.Index() != before.Index() || leader.Raft.LastIndex() != last {
			t.Fatalf("a refused change wrote something: configuration %d -> %d, last index %d -> %d",
				before.Index(), after.Index(), last, leader.Raft.LastIndex())
		}
		// The single-server API still works, and the cluster goes on.
		c.ApplyN(leader, "b", 3)
	})
}

// A change that keeps the voters (nonvoters added, removed or moved) is one
// ordinary entry, with no joint phase and no capability check.
func TestChangeConfiguration_NonvotersOnlyIsOneEntry(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		before := leader.Raft.GetConfiguration()
		extra := raft.Server{Suffrage: raft.Nonvoter, ID: "learner", Address: "nowhere"}
		next := before.Configuration()
		next.Servers = append(slices.Clone(next.Servers), extra)
		f := leader.Raft.ChangeConfiguration(next, before.Index(), time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		idx, confs := configurationsIn(t, leader)
		if idx[len(idx)-1] != f.Index() || idx[len(idx)-2] != before.Index() || isJointConfiguration(confs[len(confs)-1]) {
			t.Fatalf("configuration entries %v (future %d, before %d): want one new ordinary entry", idx, f.Index(), before.Index())
		}
		// prevIndex: a stale one is refused.
		if err := leader.Raft.ChangeConfiguration(before.Configuration(), before.Index(), time.Second).Error(); err == nil {
			t.Fatal("ChangeConfiguration with a stale prevIndex accepted")
		}
	})
}

// A next that is not a configuration is refused with a clear error and
// nothing written.
func TestChangeConfiguration_RefusesBadConfigurations(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		voters := leader.Raft.GetConfiguration().Configuration().Servers
		last := leader.Raft.LastIndex()
		cases := map[string][]raft.Server{
			"empty":        nil,
			"no voter":     {{Suffrage: raft.Nonvoter, ID: voters[0].ID, Address: voters[0].Address}},
			"duplicate id": {voters[0], {Suffrage: raft.Voter, ID: voters[0].ID, Address: "elsewhere"}},
			"joint suffrage": {voters[0], voters[1],
				{Suffrage: raft.JointIncoming, ID: "x", Address: "x"}},
			"unknown suffrage": {voters[0], {Suffrage: 42, ID: "x", Address: "x"}},
		}
		for name, s := range cases {
			err := leader.Raft.ChangeConfiguration(raft.Configuration{Servers: s}, 0, time.Second).Error()
			if err == nil {
				t.Fatalf("%s: ChangeConfiguration accepted %+v", name, s)
			}
		}
		if leader.Raft.LastIndex() != last {
			t.Fatalf("refused changes wrote entries: last index %d -> %d", last, leader.Raft.LastIndex())
		}
	})
}

// On a follower: ErrNotLeader, as every membership change.
func TestChangeConfiguration_FollowerSaysNotLeader(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		follower := c.Others(leader)[0]
		conf := leader.Raft.GetConfiguration().Configuration()
		if err := follower.Raft.ChangeConfiguration(conf, 0, time.Second).Error(); !errors.Is(err, raft.ErrNotLeader) {
			t.Fatalf("ChangeConfiguration on a follower: %v, want ErrNotLeader", err)
		}
	})
}

// A joint configuration travels in snapshots: nodes that start from a
// snapshot whose configuration is joint come back in the joint phase,
// elect a leader by both halves' majorities, and that leader writes the
// final configuration. The incoming voters start empty, so a commit needs
// them to take the snapshot by InstallSnapshot first, and the one they
// install carries the joint configuration.
func TestChangeConfiguration_JointStateInSnapshots(t *testing.T) {
	inBubble(t, 5, func(t *testing.T, c *rafttest.Cluster) {
		n := c.Nodes
		joint := raft.Configuration{Servers: []raft.Server{
			{Suffrage: raft.Voter, ID: n[0].ID, Address: n[0].Addr},
			{Suffrage: raft.JointOutgoing, ID: n[1].ID, Address: n[1].Addr},
			{Suffrage: raft.JointDemoting, ID: n[2].ID, Address: n[2].Addr},
			{Suffrage: raft.JointIncoming, ID: n[3].ID, Address: n[3].Addr},
			{Suffrage: raft.JointIncoming, ID: n[4].ID, Address: n[4].Addr},
		}}
		final := raft.Configuration{Servers: []raft.Server{
			{Suffrage: raft.Voter, ID: n[0].ID, Address: n[0].Addr},
			{Suffrage: raft.Nonvoter, ID: n[2].ID, Address: n[2].Addr},
			{Suffrage: raft.Voter, ID: n[3].ID, Address: n[3].Addr},
			{Suffrage: raft.Voter, ID: n[4].ID, Address: n[4].Addr},
		}}
		for _, node := range n {
			c.Stop(node)
		}
		for _, node := range n[:3] {
			sink, err := node.Snapshots.Create(raft.SnapshotVersionMax, 100, 5, joint, 90, node.Trans)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sink.Write([]byte(`{"Logs":[],"LastIndex":100,"LastTerm":5}`)); err != nil {
				t.Fatal(err)
			}
			if err := sink.Close(); err != nil {
				t.Fatal(err)
			}
			if err := node.Stable.SetUint64([]byte("CurrentTerm"), 5); err != nil {
				t.Fatal(err)
			}
		}
		for _, node := range n {
			c.Restart(node)
		}
		for _, node := range n[:3] {
			if cf := node.Raft.GetConfiguration(); !sameConfiguration(cf.Configuration(), joint) || cf.Index() != 90 {
				t.Fatalf("%s started with %+v at %d, want the snapshot's joint configuration at 90", node.ID, cf.Configuration(), cf.Index())
			}
		}
		c.WaitFor(20*time.Second, "the final configuration committed on the new voters", func() bool {
			for _, node := range []*rafttest.Node{n[0], n[3], n[4]} {
				cf := node.Raft.GetConfiguration()
				if !sameConfiguration(cf.Configuration(), final) || node.Raft.CommitIndex() < cf.Index() {
					return false
				}
			}
			return true
		})
		for _, node := range n[3:] {
			metas, err := node.Snapshots.List()
			if err != nil || len(metas) == 0 {
				t.Fatalf("%s has no installed snapshot (%v)", node.ID, err)
			}
			if got := metas[0].Configuration; !sameConfiguration(got, joint) {
				t.Fatalf("%s installed a snapshot with %+v, want the joint configuration", node.ID, got)
			}
		}
		leader := c.WaitLeader(n[0], n[3], n[4])
		c.ApplyN(leader, "after", 5)
		c.WaitApplied(5, n[0], n[3], n[4])
	}, rafttest.WithoutBootstrap())
}

// RecoverCluster and BootstrapCluster take only ordinary configurations: a
// joint one is refused with an error that says so. A node whose log ends
// in a joint configuration is recovered with an ordinary one, as any other.
func TestChangeConfiguration_RecoverRefusesJointConfigurations(t *testing.T) {
	joint := raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: "a", Address: "a"},
		{Suffrage: raft.JointIncoming, ID: "b", Address: "b"},
	}}
	conf := rafttest.Config("a")
	store := raft.NewInmemStore()
	snaps := raft.NewInmemSnapshotStore()
	_, trans := raft.NewInmemTransport("a")
	err := raft.RecoverCluster(conf, rafttest.NewFSM(), store, store, snaps, trans, joint)
	if err == nil || !strings.Contains(err.Error(), "joint") {
		t.Fatalf("RecoverCluster with a joint configuration: %v, want a refusal naming it", err)
	}
	if err := raft.BootstrapCluster(conf, store, store, snaps, trans, joint); err == nil || !strings.Contains(err.Error(), "joint") {
		t.Fatalf("BootstrapCluster with a joint configuration: %v, want a refusal naming it", err)
	}

	// A log ending in a joint configuration, recovered to a single voter.
	if err := store.StoreLogs([]*raft.Log{
		{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(joint)},
	}); err != nil {
		t.Fatal(err)
	}
	if err := store.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	alone := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: "a", Address: "a"}}}
	if err := raft.RecoverCluster(conf, rafttest.NewFSM(), store, store, snaps, trans, alone); err != nil {
		t.Fatalf("RecoverCluster of a node in a joint phase: %v", err)
	}
	got, err := raft.GetConfiguration(conf, rafttest.NewFSM(), store, store, snaps, trans)
	if err != nil || !sameConfiguration(got, alone) {
		t.Fatalf("configuration after recovery %+v (%v), want %+v", got, err, alone)
	}
}

// A leader that next demotes to nonvoter keeps leading through the joint
// phase, then hands over and becomes a follower (it stays a member, so it
// does not shut down), and the change also promotes a nonvoter.
func TestChangeConfiguration_DemotesTheLeaderAndPromotesANonvoter(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		learner := c.AddNode()
		if err := leader.Raft.AddNonvoter(learner.ID, learner.Addr, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		var next raft.Configuration
		for _, n := range c.Nodes {
			s := raft.Voter
			if n == leader {
				s = raft.Nonvoter
			}
			next.Servers = append(next.Servers, raft.Server{Suffrage: s, ID: n.ID, Address: n.Addr})
		}
		f := leader.Raft.ChangeConfiguration(next, 0, time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(10*time.Second, "the old leader to step down", func() bool { return leader.Raft.State() == raft.Follower })
		newLeader := c.WaitLeader(c.Others(leader)...)
		c.ApplyN(newLeader, "after", 5)
		c.WaitApplied(5, c.Nodes...)
		if cf := newLeader.Raft.GetConfiguration(); !sameConfiguration(cf.Configuration(), next) {
			t.Fatalf("configuration %+v, want %+v", cf.Configuration(), next)
		}
		if leader.Raft.State() != raft.Follower {
			t.Fatalf("the demoted leader is %v, want a follower that stays", leader.Raft.State())
		}
	})
}

// refusingStore fails StoreLogs of any batch holding an ordinary (not
// joint) configuration entry while armed: a follower that never stores
// the final configuration of a joint change.
type refusingStore struct {
	*raft.InmemStore
	armed *atomic.Bool
}

func (s refusingStore) StoreLogs(logs []*raft.Log) error {
	if s.armed.Load() {
		for _, l := range logs {
			if l.Type == raft.LogConfiguration && !isJointConfiguration(raft.DecodeConfiguration(l.Data)) {
				return errors.New("refusingStore: not storing the final configuration")
			}
		}
	}
	return s.InmemStore.StoreLogs(logs)
}

func (s refusingStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// The final configuration of a joint change reached only the servers it
// demotes or removes, and the leader died: the one new voter lacks it, so
// it cannot be elected (the others' logs are newer), and none of the
// others has a vote in its latest configuration. Servers that vote in the
// committed configuration may still campaign while the latest is
// uncommitted (mayCampaign): one of them is elected by the new voter,
// commits the change and hands over. Found by fuzzy (seed 2128 of
// TestJointSchedules): without the rule the cluster had no leader for good.
func TestChangeConfiguration_FinalConfigurationMissingOnTheNewVoter(t *testing.T) {
	armed := new(atomic.Bool)
	var keep raft.ServerID // the one voter of the final configuration
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		a := c.WaitLeader()
		c.ApplyN(a, "x", 3)
		var b, cc *rafttest.Node
		for _, n := range c.Others(a) {
			if n.ID == keep {
				b = n
			} else {
				cc = n
			}
		}
		if b == nil {
			t.Skipf("leader %s is the node whose store refuses; the seed decides", a.ID)
		}
		armed.Store(true)
		next := raft.Configuration{Servers: []raft.Server{
			{Suffrage: raft.Nonvoter, ID: a.ID, Address: a.Addr},
			{Suffrage: raft.Voter, ID: b.ID, Address: b.Addr},
		}}
		f := a.Raft.ChangeConfiguration(next, 0, time.Second)
		c.WaitFor(10*time.Second, "the final configuration on the old voters", func() bool {
			for _, n := range []*rafttest.Node{a, cc} {
				if cf := n.Raft.GetConfiguration().Configuration(); !sameConfiguration(cf, next) {
					return false
				}
			}
			return true
		})
		if cf := b.Raft.GetConfiguration().Configuration(); sameConfiguration(cf, next) {
			t.Fatalf("%s stored the final configuration despite its store", b.ID)
		}
		c.Stop(a)
		_ = f.Error()
		armed.Store(false)
		// cc campaigns (it votes in the committed joint configuration), b
		// elects it, it commits the final configuration and hands over.
		c.WaitFor(30*time.Second, "the final configuration committed on the new voter", func() bool {
			cf := b.Raft.GetConfiguration()
			return sameConfiguration(cf.Configuration(), next) && b.Raft.CommitIndex() >= cf.Index()
		})
		leader := c.WaitLeader(b)
		c.ApplyN(leader, "y", 3)
	}, rafttest.WithStores(func(id raft.ServerID, s *raft.InmemStore) (raft.LogStore, raft.StableStore) {
		if id == "node1" {
			keep = id
			return refusingStore{InmemStore: s, armed: armed}, s
		}
		return s, s
	}))
}

// A removed follower is told its removal is committed (the leader keeps
// replicating to it until then), so it never stands for election: a server
// whose latest configuration is uncommitted may campaign on its committed
// one (mayCampaign), which a removed server must not do for ever.
func TestCluster_RemovedFollowerLearnsItsRemovalIsCommitted(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		victim := c.Others(leader)[0]
		f := leader.Raft.RemoveServer(victim.ID, 0, time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(5*time.Second, "the removed follower to learn the commit", func() bool {
			return victim.Raft.CommitIndex() >= f.Index()
		})
		for i := 0; i < 50; i++ {
			time.Sleep(100 * time.Millisecond)
			if st := victim.Raft.State(); st != raft.Follower {
				t.Fatalf("the removed follower is %v", st)
			}
		}
		if l := c.WaitLeader(c.Others(victim)...); l != leader {
			t.Fatalf("leadership moved from %s to %s", leader.ID, l.ID)
		}
	})
}
