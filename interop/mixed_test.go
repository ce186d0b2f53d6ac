package interop

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	hc "github.com/hashicorp/raft"
	ours "github.com/seed48a2b68f/raft"
)

// counter FSMs for both libraries.
type hcFSM struct {
	mu sync.Mutex
	n  int
}

func (f *hcFSM) Apply(*hc.Log) interface{}         { f.mu.Lock(); defer f.mu.Unlock(); f.n++; return f.n }
func (f *hcFSM) Snapshot() (hc.FSMSnapshot, error) { return nil, fmt.Errorf("no snapshots") }
func (f *hcFSM) Restore(io.ReadCloser) error       { return nil }
func (f *hcFSM) count() int                        { f.mu.Lock(); defer f.mu.Unlock(); return f.n }

type ourFSM struct {
	mu sync.Mutex
	n  int
}

func (f *ourFSM) Apply(*ours.Log) interface{}         { f.mu.Lock(); defer f.mu.Unlock(); f.n++; return f.n }
func (f *ourFSM) Snapshot() (ours.FSMSnapshot, error) { return nil, fmt.Errorf("no snapshots") }
func (f *ourFSM) Restore(io.ReadCloser) error         { return nil }
func (f *ourFSM) count() int                          { f.mu.Lock(); defer f.mu.Unlock(); return f.n }

// member is one node of either library, seen through what the test needs.
type member struct {
	id       string
	hashi    bool
	isLeader func() bool
	apply    func([]byte) error
	transfer func(id, addr string) error
	count    func() int
	shutdown func()
}

func logger() hclog.Logger {
	level := hclog.Off
	if os.Getenv("INTEROP_LOG") != "" {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{Level: level})
}

const (
	heartbeat = 200 * time.Millisecond
	lease     = 100 * time.Millisecond
)

// startMixed starts nHashi hashicorp nodes and nOurs of ours, all
// bootstrapped with the same configuration over TCP.
func startMixed(t *testing.T, nHashi, nOurs int) []*member {
	t.Helper()
	log := logger()
	var hts []*hc.NetworkTransport
	var ots []*ours.NetworkTransport
	var addrs []string
	for i := 0; i < nHashi; i++ {
		tr, err := hc.NewTCPTransportWithLogger("127.0.0.1:0", nil, 2, time.Second, log)
		if err != nil {
			t.Fatal(err)
		}
		hts = append(hts, tr)
		addrs = append(addrs, string(tr.LocalAddr()))
	}
	for i := 0; i < nOurs; i++ {
		tr, err := ours.NewTCPTransportWithLogger("127.0.0.1:0", nil, 2, time.Second, log)
		if err != nil {
			t.Fatal(err)
		}
		ots = append(ots, tr)
		addrs = append(addrs, string(tr.LocalAddr()))
	}
	var hservers []hc.Server
	var oservers []ours.Server
	for _, a := range addrs {
		hservers = append(hservers, hc.Server{ID: hc.ServerID(a), Address: hc.ServerAddress(a)})
		oservers = append(oservers, ours.Server{ID: ours.ServerID(a), Address: ours.ServerAddress(a)})
	}

	var members []*member
	for _, tr := range hts {
		conf := hc.DefaultConfig()
		conf.LocalID = hc.ServerID(tr.LocalAddr())
		conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = heartbeat, heartbeat, lease
		conf.Logger = log
		store, snaps := hc.NewInmemStore(), hc.NewInmemSnapshotStore()
		if err := hc.BootstrapCluster(conf, store, store, snaps, tr, hc.Configuration{Servers: hservers}); err != nil {
			t.Fatal(err)
		}
		fsm := &hcFSM{}
		r, err := hc.NewRaft(conf, fsm, store, store, snaps, tr)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, &member{
			id: string(conf.LocalID), hashi: true,
			isLeader: func() bool { return r.State() == hc.Leader },
			apply:    func(b []byte) error { return r.Apply(b, time.Second).Error() },
			transfer: func(id, addr string) error {
				return r.LeadershipTransferToServer(hc.ServerID(id), hc.ServerAddress(addr)).Error()
			},
			count:    fsm.count,
			shutdown: func() { _ = r.Shutdown().Error() },
		})
	}
	for _, tr := range ots {
		conf := ours.DefaultConfig()
		conf.LocalID = ours.ServerID(tr.LocalAddr())
		conf.HeartbeatTimeout, conf.ElectionTimeout, conf.LeaderLeaseTimeout = heartbeat, heartbeat, lease
		conf.Logger = log
		store, snaps := ours.NewInmemStore(), ours.NewInmemSnapshotStore()
		if err := ours.BootstrapCluster(conf, store, store, snaps, tr, ours.Configuration{Servers: oservers}); err != nil {
			t.Fatal(err)
		}
		fsm := &ourFSM{}
		r, err := ours.NewRaft(conf, fsm, store, store, snaps, tr)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, &member{
			id:       string(conf.LocalID),
			isLeader: func() bool { return r.State() == ours.Leader },
			apply:    func(b []byte) error { return r.Apply(b, time.Second).Error() },
			transfer: func(id, addr string) error {
				return r.LeadershipTransferToServer(ours.ServerID(id), ours.ServerAddress(addr)).Error()
			},
			count:    fsm.count,
			shutdown: func() { _ = r.Shutdown().Error() },
		})
	}
	t.Cleanup(func() {
		for _, m := range members {
			m.shutdown()
		}
	})
	return members
}

func waitLeader(t *testing.T, members []*member) *member {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, m := range members {
			if m.isLeader() {
				return m
			}
		}
	}
	t.Fatal("no leader")
	return nil
}

func applyN(t *testing.T, m *member, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := m.apply([]byte(fmt.Sprintf("cmd-%d", i))); err != nil {
			t.Fatalf("apply on %s (hashicorp=%v): %v", m.id, m.hashi, err)
		}
	}
}

func waitCount(t *testing.T, members []*member, want int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		ok := true
		for _, m := range members {
			ok = ok && m.count() == want
		}
		if ok {
			return
		}
	}
	for _, m := range members {
		t.Errorf("%s (hashicorp=%v) applied %d, want %d", m.id, m.hashi, m.count(), want)
	}
	t.FailNow()
}

// In a cluster of one hashicorp node and two of ours, leadership moves from
// one library to the other and back with LeadershipTransferToServer, and the
// leader of either library drives the followers of the other.
func TestMixedClusterLeadershipMovesBothWays(t *testing.T) {
	members := startMixed(t, 1, 2)
	total := 0
	leader := waitLeader(t, members)
	for round := 0; round < 4; round++ {
		applyN(t, leader, 50)
		total += 50
		waitCount(t, members, total)
		// Hand leadership to a node of the other library.
		var target *member
		for _, m := range members {
			if m.hashi != leader.hashi {
				target = m
				break
			}
		}
		if err := leader.transfer(target.id, target.id); err != nil {
			t.Fatalf("round %d: transfer from %s (hashicorp=%v) to %s: %v", round, leader.id, leader.hashi, target.id, err)
		}
		next := waitLeader(t, []*member{target})
		t.Logf("round %d: leadership moved from hashicorp=%v to hashicorp=%v", round, leader.hashi, next.hashi)
		leader = next
	}
	applyN(t, leader, 10)
	waitCount(t, members, total+10)
}

// Two nodes of each library elect and commit whichever side leads.
func TestMixedClusterTwoAndTwo(t *testing.T) {
	members := startMixed(t, 2, 2)
	leader := waitLeader(t, members)
	applyN(t, leader, 100)
	waitCount(t, members, 100)
}
