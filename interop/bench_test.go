package interop

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// BenchmarkTCPApply runs the same workload on a 3-node cluster of each
// library over loopback TCP with in-memory stores: clients each loop
// Apply(16 bytes).Error(). ops/s is the cluster's throughput; allocs/op
// counts every allocation of the process (all three nodes) per command.
//
//	go test -run XXX -bench TCPApply -benchmem -count 5 ./interop
func BenchmarkTCPApply(b *testing.B) {
	for _, clients := range []int{1, 16, 256} {
		for _, lib := range []string{"hashicorp", "ours"} {
			b.Run(fmt.Sprintf("clients=%d/%s", clients, lib), func(b *testing.B) {
				hashi := lib == "hashicorp"
				nodes := startCluster(b, hashi, hashi, hashi)
				leader := waitLeader(b, nodes)
				cmd := make([]byte, 16)
				runClients(b, clients, func(int) *node { return leader }, func(on *node) error { return on.apply(cmd) })
			})
		}
	}
}

// BenchmarkTCPRead measures linearizable reads on a 3-node cluster of each
// library over loopback TCP with in-memory stores: clients each loop one
// read and check it covers every acknowledged write. hashicorp reads as its
// users do, VerifyLeader on the leader then a wait for the applied index;
// ours reads with ReadBarrier on the leader by round, on the leader with
// Config.LeaseReads, and on any node (spread: each client on a node of its
// own, followers asking the leader). ops/s is the cluster's reads per
// second; allocs/op counts every allocation of the process.
//
//	go test -run XXX -bench TCPRead -benchmem -count 5 ./interop
func BenchmarkTCPRead(b *testing.B) {
	for _, clients := range []int{1, 16, 256} {
		for _, mode := range []string{"hashicorp-verify", "ours-round", "ours-lease", "ours-spread"} {
			b.Run(fmt.Sprintf("clients=%d/%s", clients, mode), func(b *testing.B) {
				hashi := mode == "hashicorp-verify"
				oursLeaseReads = mode == "ours-lease"
				defer func() { oursLeaseReads = false }()
				nodes := startCluster(b, hashi, hashi, hashi)
				leader := waitLeader(b, nodes)
				applyN(b, leader, "w", 10)
				time.Sleep(100 * time.Millisecond) // heartbeats acknowledged (the lease)
				read := func(n *node) error {
					hr, or := n.rafts()
					if hr != nil {
						if err := hr.VerifyLeader().Error(); err != nil {
							return err
						}
						for idx := hr.CommitIndex(); hr.AppliedIndex() < idx; {
							time.Sleep(50 * time.Microsecond)
						}
						return nil
					}
					return or.ReadBarrier(time.Second).Error()
				}
				on := func(int) *node { return leader }
				if mode == "ours-spread" {
					on = func(w int) *node { return nodes[w%len(nodes)] }
				}
				rounds := func() (sum float64) {
					for _, n := range nodes {
						if _, or := n.rafts(); or != nil {
							v, _ := strconv.ParseFloat(or.Stats()["read_rounds"], 64)
							sum += v
						}
					}
					return sum
				}
				before := rounds()
				defer func() {
					if r := rounds() - before; !hashi && r > 0 {
						// How many reads a heartbeat round carries.
						b.ReportMetric(float64(b.N)/r, "reads/round")
					}
				}()
				runClients(b, clients, on, func(n *node) error {
					if err := read(n); err != nil {
						return err
					}
					if n.fsm.count() < 10 {
						return errors.New("a read missed acknowledged writes")
					}
					return nil
				})
			})
		}
	}
}

// runClients runs b.N operations split among clients goroutines, client w
// working on node on(w), and reports the process's allocations and the
// operations per second; the first error fails the benchmark.
func runClients(b *testing.B, clients int, on func(w int) *node, op func(*node) error) {
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		n := b.N / clients
		if w < b.N%clients {
			n++
		}
		wg.Add(1)
		go func(n int, target *node) {
			defer wg.Done()
			for i := 0; i < n; i++ {
				if err := op(target); err != nil {
					b.Error(err)
					return
				}
			}
		}(n, on(w))
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}
