package raft

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func cfg(servers ...Server) Configuration { return Configuration{Servers: servers} }

func srv(id string, s ServerSuffrage) Server {
	return Server{Suffrage: s, ID: ServerID(id), Address: ServerAddress("addr-" + id)}
}

// sorted returns c's servers ordered by ID, to compare configurations as
// sets.
func sorted(c Configuration) []Server {
	out := slices.Clone(c.Servers)
	slices.SortFunc(out, func(a, b Server) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

func TestJointConfiguration(t *testing.T) {
	abc := cfg(srv("a", Voter), srv("b", Voter), srv("c", Voter), srv("n", Nonvoter))
	for _, tc := range []struct {
		name      string
		current   Configuration
		next      Configuration
		joint     bool
		want      Configuration // the joint (or direct) configuration
		wantError bool
	}{
		{"replace every voter", abc, cfg(srv("d", Voter), srv("e", Voter), srv("f", Voter)), true,
			cfg(srv("a", JointOutgoing), srv("b", JointOutgoing), srv("c", JointOutgoing),
				srv("d", JointIncoming), srv("e", JointIncoming), srv("f", JointIncoming)), false},
		{"promote and demote together", abc, cfg(srv("a", Voter), srv("b", Voter), srv("c", Nonvoter), srv("n", Voter)), true,
			cfg(srv("a", Voter), srv("b", Voter), srv("c", JointDemoting), srv("n", JointIncoming)), false},
		{"two of five moved", cfg(srv("a", Voter), srv("b", Voter), srv("c", Voter), srv("d", Voter), srv("e", Voter)),
			cfg(srv("a", Voter), srv("b", Voter), srv("c", Voter), srv("x", Voter), srv("y", Voter)), true,
			cfg(srv("a", Voter), srv("b", Voter), srv("c", Voter), srv("d", JointOutgoing), srv("e", JointOutgoing),
				srv("x", JointIncoming), srv("y", JointIncoming)), false},
		{"nonvoters only: no joint phase", abc, cfg(srv("a", Voter), srv("b", Voter), srv("c", Voter), srv("m", Nonvoter)), false,
			cfg(srv("a", Voter), srv("b", Voter), srv("c", Voter), srv("m", Nonvoter)), false},
		{"already joint", cfg(srv("a", Voter), srv("b", JointIncoming)), abc, false, Configuration{}, true},
		{"no voter in next", abc, cfg(srv("a", Nonvoter)), false, Configuration{}, true},
		{"duplicate ID in next", abc, cfg(srv("a", Voter), srv("a", Nonvoter)), false, Configuration{}, true},
		{"joint suffrage asked for", abc, cfg(srv("a", Voter), srv("b", JointOutgoing)), false, Configuration{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, joint, err := jointConfiguration(tc.current, tc.next)
			if tc.wantError {
				if err == nil {
					t.Fatalf("accepted: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if joint != tc.joint || isJoint(got) != tc.joint {
				t.Fatalf("joint = %v (isJoint %v), want %v", joint, isJoint(got), tc.joint)
			}
			if !slices.Equal(sorted(got), sorted(tc.want)) {
				t.Fatalf("got %v\nwant %v", sorted(got), sorted(tc.want))
			}
			if final := finalConfiguration(got); !slices.Equal(sorted(final), sorted(tc.next)) {
				t.Fatalf("final configuration %v, want next %v", sorted(final), sorted(tc.next))
			}
		})
	}
}

// Under a joint configuration a decision needs a majority of the old
// voters and a majority of the new.
func TestJointAgreedAndCommitIndex(t *testing.T) {
	// Old voters a, b, c; new voters c, d, e.
	j := cfg(srv("a", JointOutgoing), srv("b", JointOutgoing), srv("c", Voter), srv("d", JointIncoming), srv("e", JointIncoming))
	for _, tc := range []struct {
		yes  string
		want bool
	}{
		{"ab", false},   // the old majority only
		{"de", false},   // the new majority only
		{"acd", true},   // c counts in both
		{"abde", true},  // a majority of each without c
		{"ad", false},   // one of each
		{"abcde", true}, // everyone
	} {
		in := map[ServerID]bool{}
		for _, r := range tc.yes {
			in[ServerID(string(r))] = true
		}
		if got := jointAgreed(j, func(id ServerID) bool { return in[id] }); got != tc.want {
			t.Errorf("agreed by %s = %v, want %v", tc.yes, got, tc.want)
		}
	}
	match := map[ServerID]uint64{"a": 10, "b": 9, "c": 5, "d": 3, "e": 8}
	// Old half: 9 (a, b); new half: 5 (c, e). The joint commit is the lower.
	if got := jointCommitIndex(j, func(id ServerID) uint64 { return match[id] }); got != 5 {
		t.Fatalf("joint commit index = %d, want 5", got)
	}
	// After the change, only the new half counts.
	if got := jointCommitIndex(finalConfiguration(j), func(id ServerID) uint64 { return match[id] }); got != 5 {
		t.Fatalf("commit index under the final configuration = %d, want 5", got)
	}
	match["d"] = 9
	if got := jointCommitIndex(finalConfiguration(j), func(id ServerID) uint64 { return match[id] }); got != 8 {
		t.Fatalf("commit index under the final configuration = %d, want 8", got)
	}
}

// For a configuration that is not joint the joint rules are the ordinary
// ones, and for any change the joint configuration leads to exactly next;
// random configurations from a seeded source.
func TestJointRulesAgreeWithTheSingleConfigurationOnes(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	randomConfig := func() Configuration {
		var c Configuration
		for i := 0; i < 1+rng.IntN(7); i++ {
			s := Voter
			if rng.IntN(3) == 0 {
				s = Nonvoter
			}
			c.Servers = append(c.Servers, srv(fmt.Sprintf("s%d", rng.IntN(9)), s))
		}
		c.Servers = slices.CompactFunc(sorted(c), func(a, b Server) bool { return a.ID == b.ID })
		if len(voters(c)) == 0 {
			c.Servers[0].Suffrage = Voter
		}
		return c
	}
	for i := 0; i < 2000; i++ {
		c := randomConfig()
		yes := map[ServerID]bool{}
		match := map[ServerID]uint64{}
		count := 0
		for _, s := range c.Servers {
			if rng.IntN(2) == 0 {
				yes[s.ID] = true
				if s.Suffrage == Voter {
					count++
				}
			}
			match[s.ID] = uint64(rng.IntN(20))
		}
		if got, want := jointAgreed(c, func(id ServerID) bool { return yes[id] }), count >= len(voters(c))/2+1; got != want {
			t.Fatalf("%v, yes %v: jointAgreed %v, majority of voters %v", c, yes, got, want)
		}
		var ms []uint64
		for _, id := range voters(c) {
			ms = append(ms, match[id])
		}
		slices.Sort(ms)
		slices.Reverse(ms)
		if got, want := jointCommitIndex(c, func(id ServerID) uint64 { return match[id] }), ms[len(voters(c))/2]; got != want {
			t.Fatalf("%v, match %v: jointCommitIndex %d, quorum match %d", c, match, got, want)
		}

		next := randomConfig()
		j, joint, err := jointConfiguration(c, next)
		if err != nil {
			t.Fatalf("%v -> %v: %v", c, next, err)
		}
		if joint != !sameMembers(voters(c), voters(next)) {
			t.Fatalf("%v -> %v: joint %v", c, next, joint)
		}
		if got := finalConfiguration(j); !slices.Equal(sorted(got), sorted(next)) {
			t.Fatalf("%v -> %v: final %v", c, next, got)
		}
		oldV, newV := jointHalves(j)
		if !sameMembers(oldV, voters(c)) || !sameMembers(newV, voters(next)) {
			t.Fatalf("%v -> %v: halves %v / %v", c, next, oldV, newV)
		}
	}
}

// The leader writes a joint configuration only for members that showed
// they understand one: a member that answered without capJointConsensus (a
// hashicorp/raft node) refuses the change, one not heard from is asked
// first, and a probe's answer stands in for replication's.
func TestJointCapabilities(t *testing.T) {
	r, _ := newStoppedRaft(t, 1)
	r.localID = "a"
	ls := &leaderState{replState: map[ServerID]*followerReplication{}}
	r.leaderState = ls
	heard := func(id ServerID, caps uint64) {
		s := &followerReplication{}
		s.peerCaps.Store(caps)
		ls.replState[id] = s
	}
	heard("ours", ourCapabilities|capAnswered)
	heard("hashicorp", capAnswered)
	heard("silent", 0)
	joint := Configuration{Servers: []Server{
		{Voter, "a", "a"}, {JointOutgoing, "ours", "o"}, {JointDemoting, "hashicorp", "h"},
		{JointIncoming, "silent", "s"}, {JointIncoming, "new", "n"},
	}}
	unknown, refusing := r.jointCapabilities(joint, nil)
	if !slices.Equal(unknown, []ServerID{"silent", "new"}) || !slices.Equal(refusing, []ServerID{"hashicorp"}) {
		t.Fatalf("unknown %v, refusing %v; want [silent new], [hashicorp]", unknown, refusing)
	}
	probed := map[ServerID]uint64{"silent": capJointConsensus | capAnswered, "new": capAnswered, "hashicorp": ourCapabilities | capAnswered}
	unknown, refusing = r.jointCapabilities(joint, probed)
	if len(unknown) != 0 || !slices.Equal(refusing, []ServerID{"hashicorp", "new"}) {
		t.Fatalf("after the probe: unknown %v, refusing %v; want [], [hashicorp new] (replication's answer wins)", unknown, refusing)
	}
}
