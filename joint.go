package raft

import (
	"errors"
	"fmt"
	"slices"
)

// Joint consensus (ChangeConfiguration): the decisions, as pure functions.
//
// A joint configuration is an ordinary Configuration, encoded as any other,
// whose servers may also carry the suffrages below; each names a server's
// change from the old configuration to the new. The old configuration's
// voters are the Voters, the outgoing and the demoting ones; the new one's
// are the Voters and the incoming ones. A decision (a commit, an election,
// a read round, the leader's check that it still leads) needs a majority of
// each. The final configuration follows from the joint one alone
// (finalConfiguration), so the joint entry is all a restarted node, a
// snapshot or an InstallSnapshot needs to carry. GetConfiguration shows
// these suffrages while a change is in its joint phase; they never appear
// in a configuration a hashicorp/raft node can receive.
const (
	// JointIncoming marks, in a joint configuration, a voter of the new
	// configuration that was not one in the old (a server added as a
	// voter, or a nonvoter promoted). It votes in the new half only.
	JointIncoming ServerSuffrage = 3 + iota
	// JointOutgoing marks, in a joint configuration, a voter of the old
	// configuration that is gone from the new. It votes in the old half
	// only and is removed when the final configuration is written.
	JointOutgoing
	// JointDemoting marks, in a joint configuration, a voter of the old
	// configuration that is a nonvoter in the new. It votes in the old
	// half only.
	JointDemoting
)

// isVoterSuffrage reports whether a server of suffrage s votes in some
// half of its configuration (in a configuration that is not joint: is a
// Voter).
func isVoterSuffrage(s ServerSuffrage) bool {
	return s == Voter || s == JointIncoming || s == JointOutgoing || s == JointDemoting
}

// votesInFinal reports whether a server of suffrage s is a voter of the
// configuration being moved to (for one that is not joint: is a Voter).
func votesInFinal(s ServerSuffrage) bool {
	return s == Voter || s == JointIncoming
}

// errConfigurationInJoint: a change was asked for while the configuration
// is joint; the leader leaves it by itself, and only then takes another.
var errConfigurationInJoint = errors.New("the configuration is joint: a change is in progress")

// isJoint reports whether c is a joint configuration.
func isJoint(c Configuration) bool {
	for _, s := range c.Servers {
		switch s.Suffrage {
		case JointIncoming, JointOutgoing, JointDemoting:
			return true
		}
	}
	return false
}

// jointHalves returns the voters of the old and of the new configuration
// of c. For a configuration that is not joint both are its voters.
func jointHalves(c Configuration) (oldVoters, newVoters []ServerID) {
	for _, s := range c.Servers {
		switch s.Suffrage {
		case Voter:
			oldVoters = append(oldVoters, s.ID)
			newVoters = append(newVoters, s.ID)
		case JointOutgoing, JointDemoting:
			oldVoters = append(oldVoters, s.ID)
		case JointIncoming:
			newVoters = append(newVoters, s.ID)
		}
	}
	return oldVoters, newVoters
}

// finalConfiguration returns the configuration a joint one leads to: the
// incoming servers vote, the demoting ones do not, the outgoing ones are
// gone. A configuration that is not joint is returned as it is.
func finalConfiguration(joint Configuration) Configuration {
	var out Configuration
	for _, s := range joint.Servers {
		switch s.Suffrage {
		case JointIncoming:
			s.Suffrage = Voter
		case JointDemoting:
			s.Suffrage = Nonvoter
		case JointOutgoing:
			continue
		}
		out.Servers = append(out.Servers, s)
	}
	return out
}

// jointConfiguration returns the configuration that moves the cluster from
// current to exactly next: a joint one when the voters change, else next
// itself (a change of nonvoters or addresses alone needs no joint phase:
// every quorum stays the same). It refuses a next that is not a valid
// configuration and a current that is already joint.
func jointConfiguration(current, next Configuration) (c Configuration, joint bool, err error) {
	if isJoint(current) {
		return Configuration{}, false, errConfigurationInJoint
	}
	for _, s := range next.Servers {
		if s.Suffrage != Voter && s.Suffrage != Nonvoter && s.Suffrage != Staging {
			return Configuration{}, false, fmt.Errorf("server %s: suffrage %d is not one a configuration may ask for", s.ID, int(s.Suffrage))
		}
	}
	if err := checkConfiguration(next); err != nil {
		return Configuration{}, false, err
	}
	oldVoters, _ := jointHalves(current)
	newVoters, _ := jointHalves(next)
	if sameMembers(oldVoters, newVoters) {
		return next.Clone(), false, nil
	}
	wasVoter := make(map[ServerID]bool, len(oldVoters))
	for _, id := range oldVoters {
		wasVoter[id] = true
	}
	inNext := make(map[ServerID]bool, len(next.Servers))
	for _, s := range next.Servers {
		inNext[s.ID] = true
		switch {
		case s.Suffrage == Voter && !wasVoter[s.ID]:
			s.Suffrage = JointIncoming
		case s.Suffrage != Voter && wasVoter[s.ID]:
			s.Suffrage = JointDemoting
		}
		c.Servers = append(c.Servers, s)
	}
	for _, s := range current.Servers {
		if !inNext[s.ID] && s.Suffrage == Voter {
			s.Suffrage = JointOutgoing
			c.Servers = append(c.Servers, s)
		}
	}
	return c, true, nil
}

// sameMembers reports whether a and b hold the same IDs.
func sameMembers(a, b []ServerID) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// jointAgreed reports whether the servers for which yes reports true make
// a majority of the old configuration's voters and a majority of the new
// one's: the rule for every decision under c (for a configuration that is
// not joint, a majority of its voters).
func jointAgreed(c Configuration, yes func(ServerID) bool) bool {
	oldVoters, newVoters := jointHalves(c)
	return majorityOf(oldVoters, yes) && majorityOf(newVoters, yes)
}

func majorityOf(ids []ServerID, yes func(ServerID) bool) bool {
	n := 0
	for _, id := range ids {
		if yes(id) {
			n++
		}
	}
	return n >= len(ids)/2+1
}

// jointCommitIndex returns the highest index stored by a majority of the
// old configuration's voters and by a majority of the new one's, given
// each voter's match index (a missing voter counts as 0).
func jointCommitIndex(c Configuration, match func(ServerID) uint64) uint64 {
	oldVoters, newVoters := jointHalves(c)
	return min(majorityMatch(oldVoters, match), majorityMatch(newVoters, match))
}

// majorityMatch is the highest index a majority of ids has stored.
func majorityMatch(ids []ServerID, match func(ServerID) uint64) uint64 {
	if len(ids) == 0 {
		return 0
	}
	m := make([]uint64, len(ids))
	for i, id := range ids {
		m[i] = match(id)
	}
	slices.Sort(m)
	return m[(len(m)-1)/2]
}
