package interop

import (
	"fmt"
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
					go func(n int) {
						defer wg.Done()
						for i := 0; i < n; i++ {
							if err := leader.apply(cmd); err != nil {
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
}
