package raft

import (
	"testing"
	"time"
)

// gateTransport blocks every AppendEntries until the test releases it.
type gateTransport struct {
	*InmemTransport
	started chan struct{}
	release chan struct{}
}

func (g *gateTransport) AppendEntries(id ServerID, target ServerAddress, req *AppendEntriesRequest, resp *AppendEntriesResponse) error {
	select {
	case g.started <- struct{}{}:
	default: // nobody is waiting for it (the test is ending)
	}
	<-g.release
	*resp = AppendEntriesResponse{Term: req.Term, Success: true}
	return nil
}

// startHeartbeat runs the heartbeat goroutine of a leader (term 1) for
// follower b over trans; stop ends it (release anything trans blocks on
// first).
func startHeartbeat(t *testing.T, trans Transport) (s *followerReplication, stop func()) {
	r, _ := newStoppedRaft(t, 1)
	r.trans = trans
	ls := &leaderState{term: 1, stopCh: make(chan struct{}), commitment: newCommitment(make(chan struct{}, 1), r.configurations.latest, 1)}
	s = newFollowerReplication(r, ls, Server{Voter, "b", "addr-b"}, 2, 1)
	done := make(chan struct{})
	go func() { s.heartbeat(); close(done) }()
	return s, func() {
		close(ls.stopCh)
		<-done
	}
}

// A VerifyLeader round must be answered only by heartbeats sent after it
// started: an acknowledgement of an older heartbeat proves nothing about
// now (the ReadIndex reuse bug, known-raft-bugs #21).
func TestKnownBug21_VerifyLeaderCountsOnlyHeartbeatsSentAfterIt(t *testing.T) {
	_, inner := NewInmemTransport("addr-a")
	gate := &gateTransport{InmemTransport: inner, started: make(chan struct{}, 1), release: make(chan struct{})}
	s, stop := startHeartbeat(t, gate)
	defer func() {
		close(gate.release)
		stop()
	}()

	asyncNotify(s.notifyCh)
	<-gate.started // heartbeat 1 is in flight

	f := &verifyFuture{}
	f.init()
	v := &verifyState{future: f, oldVoters: []ServerID{"b"}, newVoters: []ServerID{"b"}, acks: make(map[ServerID]bool)}
	s.addVerify(v)

	gate.release <- struct{}{} // heartbeat 1 succeeds
	select {
	case <-gate.started: // heartbeat 2 in flight: heartbeat 1 fully handled
	case <-time.After(10 * time.Second):
		t.Fatal("no second heartbeat")
	}
	if f.responded.Load() {
		t.Fatal("VerifyLeader satisfied by a heartbeat sent before it started")
	}
	gate.release <- struct{}{}
	if err := f.Error(); err != nil {
		t.Fatalf("VerifyLeader = %v", err)
	}
}

// capsTransport answers every AppendEntries as a follower of this library
// would, advertising caps, and counts the answers.
type capsTransport struct {
	*InmemTransport
	caps    uint64
	answers chan struct{}
}

func (c *capsTransport) AppendEntries(id ServerID, target ServerAddress, req *AppendEntriesRequest, resp *AppendEntriesResponse) error {
	*resp = AppendEntriesResponse{Term: req.Term, Success: true, capabilities: c.caps}
	select {
	case c.answers <- struct{}{}:
	default:
	}
	return nil
}

// The leader learns each follower's capabilities from its answers, and
// forgets them when the follower stops advertising (a hashicorp/raft node
// took its place).
func TestLeaderLearnsFollowerCapabilities(t *testing.T) {
	_, inner := NewInmemTransport("addr-a")
	trans := &capsTransport{InmemTransport: inner, caps: capReadIndex, answers: make(chan struct{}, 1)}
	s, stop := startHeartbeat(t, trans)
	defer stop()
	waitCaps := func(want uint64) {
		t.Helper()
		for i := 0; i < 100 && s.peerCaps.Load() != want; i++ {
			asyncNotify(s.notifyCh)
			<-trans.answers
			time.Sleep(time.Millisecond) // the answer is handled after it is sent
		}
		if got := s.peerCaps.Load(); got != want {
			t.Fatalf("peer capabilities %d, want %d", got, want)
		}
	}
	waitCaps(capReadIndex | capAnswered)
	trans.caps = 0
	waitCaps(capAnswered)
}
