package raft_test

import (
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// BenchmarkApply measures a 3-node cluster on the in-memory transport and
// stores applying 16-byte commands, each client waiting for its own future.
// ops/s is the cluster's throughput; allocs/op counts every allocation in the
// process (all three nodes) per applied command.
func BenchmarkApply(b *testing.B) {
	for _, clients := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			c := rafttest.NewCluster(b, 3, rafttest.WithConfig(func(cfg *raft.Config) {
				// Production-like timeouts; snapshots out of the way.
				cfg.HeartbeatTimeout = time.Second
				cfg.ElectionTimeout = time.Second
				cfg.LeaderLeaseTimeout = 500 * time.Millisecond
				cfg.CommitTimeout = 50 * time.Millisecond
				cfg.SnapshotThreshold = 1 << 40
			}), rafttest.WithFSM(func() raft.FSM { return &discardFSM{} }))
			leader := c.WaitLeader()
			cmd := make([]byte, 16)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			per := b.N / clients
			extra := b.N % clients
			for w := 0; w < clients; w++ {
				n := per
				if w < extra {
					n++
				}
				wg.Add(1)
				go func(n int) {
					defer wg.Done()
					for i := 0; i < n; i++ {
						if err := leader.Raft.Apply(cmd, 0).Error(); err != nil {
							b.Error(err)
							return
						}
					}
				}(n)
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
		})
	}
}

// discardFSM applies nothing and keeps nothing.
type discardFSM struct{}

func (discardFSM) Apply(*raft.Log) interface{}         { return nil }
func (discardFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("no snapshots") }
func (discardFSM) Restore(io.ReadCloser) error         { return nil }
