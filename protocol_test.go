package raft_test

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"
	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// A cluster at protocol version 2 (IDs are addresses) bootstraps with the
// legacy peers entry, elects, replicates, and changes membership.
func TestProtocolVersion2Cluster(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var nodes []*raft.Raft
		var trans []*raft.InmemTransport
		var servers []raft.Server
		var fsms []*rafttest.FSM
		mk := func(i int) (*raft.Config, *raft.InmemStore, *raft.InmemSnapshotStore) {
			addr, tr := raft.NewInmemTransport(raft.ServerAddress(fmt.Sprintf("10.0.0.%d:8300", i)))
			trans = append(trans, tr)
			c := rafttest.Config(raft.ServerID(addr))
			c.ProtocolVersion = 2
			c.RandomSeed = uint64(i + 1)
			c.Logger = hclog.NewNullLogger()
			return c, raft.NewInmemStore(), raft.NewInmemSnapshotStore()
		}
		connect := func() {
			for _, a := range trans {
				for _, b := range trans {
					if a != b {
						a.Connect(b.LocalAddr(), b)
					}
				}
			}
		}
		type nodeParts struct {
			c  *raft.Config
			s  *raft.InmemStore
			ss *raft.InmemSnapshotStore
		}
		var parts []nodeParts
		for i := 0; i < 3; i++ {
			c, s, ss := mk(i)
			parts = append(parts, nodeParts{c, s, ss})
			servers = append(servers, raft.Server{ID: c.LocalID, Address: raft.ServerAddress(c.LocalID)})
		}
		connect()
		for i, p := range parts {
			if err := raft.BootstrapCluster(p.c, p.s, p.s, p.ss, trans[i], raft.Configuration{Servers: servers}); err != nil {
				t.Fatal(err)
			}
			var first raft.Log
			p.s.GetLog(1, &first)
			if first.Type != raft.LogRemovePeerDeprecated {
				t.Fatalf("bootstrap entry at protocol 2 is %v", first.Type)
			}
			f := rafttest.NewFSM()
			r, err := raft.NewRaft(p.c, f, p.s, p.s, p.ss, trans[i])
			if err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, r)
			fsms = append(fsms, f)
		}
		defer func() {
			for _, r := range nodes {
				r.Shutdown().Error()
			}
		}()
		var leader *raft.Raft
		for leader == nil {
			time.Sleep(time.Millisecond)
			for _, r := range nodes {
				if r.State() == raft.Leader {
					leader = r
				}
			}
		}
		for i := 0; i < 10; i++ {
			if err := leader.Apply([]byte("x"), time.Second).Error(); err != nil {
				t.Fatal(err)
			}
		}
		if err := leader.AddNonvoter("x", "y", 0, 0).Error(); err != raft.ErrUnsupportedProtocol {
			t.Fatalf("AddNonvoter at protocol 2 = %v", err)
		}
		c, s, ss := mk(3)
		connect()
		r, err := raft.NewRaft(c, rafttest.NewFSM(), s, s, ss, trans[3])
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, r)
		if err := leader.AddVoter(c.LocalID, raft.ServerAddress(c.LocalID), 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		if err := leader.Barrier(time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for r.AppliedIndex() < leader.AppliedIndex() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if got := len(r.GetConfiguration().Configuration().Servers); got != 4 {
			t.Fatalf("new node sees %d servers", got)
		}
		for _, f := range fsms {
			deadline := time.Now().Add(5 * time.Second)
			for f.Len() != 10 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			if f.Len() != 10 {
				t.Fatalf("an FSM applied %d commands, want 10", f.Len())
			}
		}
	})
}
