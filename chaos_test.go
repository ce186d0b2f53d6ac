package raft_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// TestChaos runs short random fault schedules on a 5-node cluster inside a
// synctest bubble: partitions of random groups, crashes and restarts, a
// leadership transfer now and then, while a client writes through whoever
// leads. Afterwards every acknowledged write must be applied, once and in
// the same order, on every node, and no term may have had two leaders.
// RAFT_CHAOS_SCHEDULES sets how many schedules run (default 8);
// RAFT_CHAOS_SEED replays one.
func TestChaos(t *testing.T) {
	schedules := 8
	if v, err := strconv.Atoi(os.Getenv("RAFT_CHAOS_SCHEDULES")); err == nil {
		schedules = v
	}
	seeds := make([]uint64, schedules)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	if v, err := strconv.ParseUint(os.Getenv("RAFT_CHAOS_SEED"), 10, 64); err == nil {
		seeds = []uint64{v}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runChaos(t, seed) })
		})
	}
}

func runChaos(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	c := rafttest.NewCluster(t, 5, rafttest.WithSeed(seed), rafttest.WithConfig(func(cfg *raft.Config) {
		cfg.SnapshotThreshold = 64
		cfg.SnapshotInterval = 200 * time.Millisecond
		cfg.TrailingLogs = 16
	}))
	c.WaitLeader()

	// Election safety, sampled every millisecond of virtual time. The lock
	// is a channel: a goroutine blocked on a sync.Mutex is not durably
	// blocked, so the bubble's clock could not move while one waits.
	mu := chanLock(make(chan struct{}, 1))
	leaders := map[uint64]raft.ServerID{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			mu.Lock()
			for _, n := range c.Running() {
				// The term read on both sides of the state: a node that
				// steps down (state first, then the higher term) between
				// the reads is not counted as the next term's leader.
				term := n.Raft.CurrentTerm()
				if n.Raft.State() != raft.Leader || n.Raft.CurrentTerm() != term {
					continue
				}
				if id, ok := leaders[term]; ok && id != n.ID {
					t.Errorf("seed %d: two leaders in term %d: %s and %s", seed, term, id, n.ID)
				}
				leaders[term] = n.ID
			}
			mu.Unlock()
		}
	}()

	// The client: one write at a time through the current leader.
	var acked [][]byte
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			mu.Lock()
			var leader *rafttest.Node
			for _, n := range c.Running() {
				if n.Raft.State() == raft.Leader {
					leader = n
				}
			}
			mu.Unlock()
			if leader == nil {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			cmd := []byte(fmt.Sprintf("w%d", i))
			if err := leader.Raft.Apply(cmd, 100*time.Millisecond).Error(); err == nil {
				mu.Lock()
				acked = append(acked, cmd)
				mu.Unlock()
			}
			time.Sleep(time.Millisecond)
		}
	}()

	for step := 0; step < 20; step++ {
		mu.Lock()
		switch rng.IntN(5) {
		case 0, 1: // partition a random group of 1 or 2 nodes
			c.Heal()
			perm := rng.Perm(len(c.Nodes))
			var cut []*rafttest.Node
			for _, i := range perm[:1+rng.IntN(2)] {
				cut = append(cut, c.Nodes[i])
			}
			c.Partition(cut...)
		case 2: // crash one node and restart another that was down
			running := c.Running()
			if len(running) == len(c.Nodes) {
				c.Stop(running[rng.IntN(len(running))])
			} else {
				for _, n := range c.Nodes {
					if !contains(running, n) {
						c.Restart(n)
					}
				}
			}
		case 3:
			for _, n := range c.Running() {
				if n.Raft.State() == raft.Leader {
					n.Raft.LeadershipTransfer()
				}
			}
		case 4:
			c.Heal()
		}
		mu.Unlock()
		time.Sleep(time.Duration(50+rng.IntN(400)) * time.Millisecond)
	}

	// Heal everything, restart the dead, and let the cluster converge.
	mu.Lock()
	c.Heal()
	for _, n := range c.Nodes {
		if !contains(c.Running(), n) {
			c.Restart(n)
		}
	}
	mu.Unlock()
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	leader := c.WaitLeader()
	if err := leader.Raft.Barrier(time.Second).Error(); err != nil {
		t.Fatalf("seed %d: barrier after heal: %v", seed, err)
	}
	c.WaitFor(10*time.Second, "all nodes to apply everything", func() bool {
		want := leader.Raft.AppliedIndex()
		for _, n := range c.Nodes {
			if n.Raft.AppliedIndex() < want {
				return false
			}
		}
		return true
	})
	ref := leader.Recorder().Logs()
	for _, n := range c.Nodes {
		got := n.Recorder().Logs()
		if len(got) != len(ref) {
			t.Fatalf("seed %d: %s applied %d commands, %s applied %d", seed, n.ID, len(got), leader.ID, len(ref))
		}
		for i := range got {
			if !bytes.Equal(got[i], ref[i]) {
				t.Fatalf("seed %d: command %d differs on %s", seed, i, n.ID)
			}
		}
	}
	seen := map[string]bool{}
	for _, cmd := range ref {
		if seen[string(cmd)] {
			t.Fatalf("seed %d: %s applied twice", seed, cmd)
		}
		seen[string(cmd)] = true
	}
	for _, cmd := range acked {
		if !seen[string(cmd)] {
			t.Fatalf("seed %d: acknowledged write %s lost", seed, cmd)
		}
	}
	if len(acked) == 0 {
		t.Fatalf("seed %d: no write succeeded", seed)
	}
	t.Logf("seed %d: %d writes acknowledged, %d applied, %d terms with a leader", seed, len(acked), len(ref), len(leaders))
}

// chanLock is a mutex made of a channel, safe to wait on inside a bubble.
type chanLock chan struct{}

func (l chanLock) Lock()   { l <- struct{}{} }
func (l chanLock) Unlock() { <-l }

func contains(nodes []*rafttest.Node, n *rafttest.Node) bool {
	for _, o := range nodes {
		if o == n {
			return true
		}
	}
	return false
}
