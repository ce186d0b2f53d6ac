package raftboltdb

import (
	"context"
	"time"

	"github.com/hashicorp/go-metrics"
	"go.etcd.io/bbolt"
)

// defaultMetricsInterval is RunMetrics's interval when given 0.
const defaultMetricsInterval = 5 * time.Second

// RunMetrics emits bbolt's statistics (free pages, read transactions, page
// and node counters) as go-metrics gauges and counters under
// raft.boltdb.*, with raft-boltdb's names, every interval until ctx is done.
// It blocks; run it in its own goroutine.
func (b *BoltStore) RunMetrics(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = defaultMetricsInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	prev := b.emitMetrics(nil)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			prev = b.emitMetrics(prev)
		}
	}
}

// emitMetrics emits the gauges from the current statistics and the counters
// as the difference from prev (everything, when prev is nil). It returns the
// current statistics.
func (b *BoltStore) emitMetrics(prev *bbolt.Stats) *bbolt.Stats {
	cur := b.conn.Stats()
	delta := cur
	if prev != nil {
		delta = cur.Sub(prev)
	}
	gauge := func(name string, v float32) { metrics.SetGauge([]string{"raft", "boltdb", name}, v) }
	count := func(v float32, name ...string) {
		metrics.IncrCounter(append([]string{"raft", "boltdb"}, name...), v)
	}
	gauge("numFreePages", float32(cur.FreePageN))
	gauge("numPendingPages", float32(cur.PendingPageN))
	gauge("freePageBytes", float32(cur.FreeAlloc))
	gauge("freelistBytes", float32(cur.FreelistInuse))
	gauge("openReadTxn", float32(cur.OpenTxN))
	count(float32(delta.TxN), "totalReadTxn")

	ts, dts := cur.TxStats, delta.TxStats
	metrics.SetGauge([]string{"raft", "boltdb", "txstats", "pageCount"}, float32(ts.GetPageCount()))
	metrics.SetGauge([]string{"raft", "boltdb", "txstats", "pageAlloc"}, float32(ts.GetPageAlloc()))
	count(float32(dts.GetCursorCount()), "txstats", "cursorCount")
	count(float32(dts.GetNodeCount()), "txstats", "nodeCount")
	count(float32(dts.GetNodeDeref()), "txstats", "nodeDeref")
	count(float32(dts.GetRebalance()), "txstats", "rebalance")
	count(float32(dts.GetSplit()), "txstats", "split")
	count(float32(dts.GetSpill()), "txstats", "spill")
	count(float32(dts.GetWrite()), "txstats", "write")
	ms := func(d time.Duration) float32 { return float32(d.Nanoseconds()) / 1e6 }
	metrics.AddSample([]string{"raft", "boltdb", "txstats", "rebalanceTime"}, ms(dts.GetRebalanceTime()))
	metrics.AddSample([]string{"raft", "boltdb", "txstats", "spillTime"}, ms(dts.GetSpillTime()))
	metrics.AddSample([]string{"raft", "boltdb", "txstats", "writeTime"}, ms(dts.GetWriteTime()))
	return &cur
}
