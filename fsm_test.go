package raft_test

import (
	"sync"
	"testing"
	"time"

	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// batchFSM records the batches it is given.
type batchFSM struct {
	*rafttest.FSM
	mu      sync.Mutex
	batches [][]*raft.Log
}

func (b *batchFSM) ApplyBatch(logs []*raft.Log) []interface{} {
	b.mu.Lock()
	b.batches = append(b.batches, logs)
	b.mu.Unlock()
	out := make([]interface{}, len(logs))
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			out[i] = b.FSM.Apply(l)
		} else {
			out[i] = "config"
		}
	}
	return out
}

func TestBatchingFSMGetsBatchesOfCommandsAndConfigurations(t *testing.T) {
	fsms := map[int]*batchFSM{}
	i := 0
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		var futures []raft.ApplyFuture
		for j := 0; j < 200; j++ {
			futures = append(futures, leader.Raft.Apply([]byte{byte(j)}, 0))
		}
		if err := leader.Raft.Barrier(0).Error(); err != nil {
			t.Fatal(err)
		}
		for j, f := range futures {
			if err := f.Error(); err != nil {
				t.Fatal(err)
			}
			if f.Response() != j+1 {
				t.Fatalf("future %d got response %v: responses are not matched to entries", j, f.Response())
			}
		}
		var fsm *batchFSM
		for _, f := range fsms {
			if f.FSM == leader.FSM.(*batchFSM).FSM {
				fsm = f
			}
		}
		fsm.mu.Lock()
		defer fsm.mu.Unlock()
		multi, sawConfig := false, false
		for _, b := range fsm.batches {
			if len(b) > leader.Config.MaxAppendEntries {
				t.Fatalf("batch of %d entries, above MaxAppendEntries", len(b))
			}
			if len(b) > 1 {
				multi = true
			}
			for _, l := range b {
				switch l.Type {
				case raft.LogCommand:
				case raft.LogConfiguration:
					sawConfig = true
				default:
					t.Fatalf("ApplyBatch got a %v entry", l.Type)
				}
			}
		}
		if !multi || !sawConfig {
			t.Fatalf("batches: multi-entry %v, configuration seen %v", multi, sawConfig)
		}
	}, rafttest.WithFSM(func() raft.FSM {
		f := &batchFSM{FSM: rafttest.NewFSM()}
		fsms[i] = f
		i++
		return f
	}))
}

func TestObservationsOfStatePeersAndVotes(t *testing.T) {
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		ch := make(chan raft.Observation, 1024)
		obs := raft.NewObserver(ch, false, nil)
		for _, n := range c.Nodes {
			n.Raft.RegisterObserver(obs)
		}
		leader := c.WaitLeader()
		joiner := c.AddNode()
		if err := leader.Raft.AddNonvoter(joiner.ID, joiner.Addr, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.Partition(joiner)
		time.Sleep(time.Second)
		c.Heal()
		time.Sleep(time.Second)
		seen := map[string]bool{}
		for len(ch) > 0 {
			o := <-ch
			switch d := o.Data.(type) {
			case raft.RaftState:
				seen["state"] = true
			case raft.RequestPreVoteRequest:
				seen["prevote"] = true
			case raft.RequestVoteRequest:
				seen["vote"] = true
			case raft.LeaderObservation:
				seen["leader"] = true
			case raft.PeerObservation:
				if d.Peer.ID == joiner.ID && !d.Removed {
					seen["peer"] = true
				}
			case raft.FailedHeartbeatObservation:
				if d.PeerID == joiner.ID {
					seen["failed"] = true
				}
			case raft.ResumedHeartbeatObservation:
				if d.PeerID == joiner.ID {
					seen["resumed"] = true
				}
			}
		}
		for _, k := range []string{"state", "prevote", "vote", "leader", "peer", "failed", "resumed"} {
			if !seen[k] {
				t.Errorf("no %s observation", k)
			}
		}
		// A configuration-storing FSM is told of committed configurations:
		// the bootstrap one and the one that added the joiner.
		c.WaitFor(time.Second, "configurations stored", func() bool {
			cs := leader.Recorder().Configurations()
			return len(cs) >= 2 && len(cs[len(cs)-1].Servers) == 4
		})
	})
}

func TestLeaderChAndNotifyChOnStepDown(t *testing.T) {
	notifyChs := map[raft.ServerID]chan bool{}
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		if v := <-leader.Raft.LeaderCh(); !v {
			t.Fatal("LeaderCh: false on becoming leader")
		}
		c.Partition(leader)
		c.WaitFor(time.Second, "step down", func() bool { return leader.Raft.State() != raft.Leader })
		if v := <-leader.Raft.LeaderCh(); v {
			t.Fatal("LeaderCh: true on stepping down")
		}
		notify := notifyChs[leader.ID]
		got := []bool{}
		for len(notify) > 0 {
			got = append(got, <-notify)
		}
		if len(got) < 2 || !got[0] || got[len(got)-1] {
			t.Fatalf("NotifyCh sent %v", got)
		}
	}, rafttest.WithConfig(func(cfg *raft.Config) {
		ch := make(chan bool, 16)
		notifyChs[cfg.LocalID] = ch
		cfg.NotifyCh = ch
	}))
}
