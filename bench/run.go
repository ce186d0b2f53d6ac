package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/seed48a2b68f/raft/bench/harness"
	"github.com/seed48a2b68f/raft/bench/libs/hashi"
	"github.com/seed48a2b68f/raft/bench/libs/ours"
)

// cell is one point of the comparison: a scenario, a payload size and a
// number of clients (clients and payload are unused for failover).
type cell struct {
	Scenario harness.Scenario `json:"scenario"`
	Payload  int              `json:"payload"`
	Clients  int              `json:"clients"`
	// Read is how our library reads in R and RW cells.
	Read harness.ReadMode `json:"read,omitempty"`
}

// reads reports whether the cell is a read cell.
func (c cell) reads() bool { return c.Scenario == harness.R || c.Scenario == harness.RW }

func (c cell) String() string {
	if c.Scenario == harness.Failover {
		return "failover"
	}
	size := fmt.Sprintf("%d B", c.Payload)
	if c.Payload >= 1024 {
		size = fmt.Sprintf("%d KiB", c.Payload/1024)
	}
	s := fmt.Sprintf("%s %s, %d client%s", c.Scenario, size, c.Clients, map[bool]string{true: "s"}[c.Clients > 1])
	if c.reads() {
		s = fmt.Sprintf("%s, %d client%s, ours %s", c.Scenario, c.Clients, map[bool]string{true: "s"}[c.Clients > 1], c.Read)
	}
	return s
}

// stats are the measurements of a run, and the medians of a cell's runs.
type stats struct {
	OpsPerSec float64 `json:"ops_per_sec"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	CPUusOp   float64 `json:"cpu_us_per_op"`
	AllocsOp  float64 `json:"allocs_per_op"`
	// FailoverMS is the time from killing the leader to the first commit
	// on its successor (failover cells only).
	FailoverMS float64 `json:"failover_ms,omitempty"`
	// In RW cells OpsPerSec, P50us and P99us are the reads'; these are
	// the writes' (CPUusOp and AllocsOp count both).
	WriteOpsPerSec float64 `json:"write_ops_per_sec,omitempty"`
	WriteP50us     float64 `json:"write_p50_us,omitempty"`
	WriteP99us     float64 `json:"write_p99_us,omitempty"`
}

// result is what one run of one library on one cell measured.
type result struct {
	Library string  `json:"library"`
	Cell    cell    `json:"cell"`
	Ops     int64   `json:"ops"`
	Seconds float64 `json:"seconds"`
	stats
	Error string `json:"error,omitempty"`
}

type startFunc func(harness.Options) (harness.Cluster, error)

func library(name string) (startFunc, error) {
	switch name {
	case ours.Library:
		return ours.Start, nil
	case hashi.Library:
		return hashi.Start, nil
	}
	return nil, fmt.Errorf("unknown library %q", name)
}

// runCell runs one cell on one library in this process: it builds the
// cluster, warms it up, then lets the clients apply for the given time.
func runCell(lib string, c cell, warmup, duration time.Duration, plainStore bool) (res result) {
	res = result{Library: lib, Cell: c}
	start, err := library(lib)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	dir, err := os.MkdirTemp("", "raft-bench-")
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer os.RemoveAll(dir)
	cl, err := start(harness.Options{Scenario: c.Scenario.Base(), Dir: dir, PlainStore: plainStore, GRPC: c.Scenario == harness.S2g})
	if err != nil {
		res.Error = fmt.Sprintf("starting the cluster: %v", err)
		return res
	}
	defer cl.Close()
	if c.Scenario == harness.Failover {
		ms, err := failover(cl)
		if err != nil {
			res.Error = err.Error()
		}
		res.FailoverMS = ms
		return res
	}
	leader, err := harness.WaitLeader(cl, 10*time.Second)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	if c.reads() {
		// Every node that will serve reads first answers one: a follower
		// that has not heard from the new leader yet has none to ask.
		for i := 0; i < cl.Nodes(); i++ {
			if i != leader && (c.Read != harness.ReadSpread || lib != ours.Library) {
				continue
			}
			if err := firstRead(cl, i, c.Read); err != nil {
				res.Error = err.Error()
				return res
			}
		}
	}
	payload := make([]byte, c.Payload)
	for i := range payload {
		payload[i] = byte(i)
	}

	// The clients loop until told to stop; the measured window is a part
	// of their run, so that no ramp-up or wind-down is counted.
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		ops       atomic.Int64
		writes    atomic.Int64
		failed    atomic.Value
		wg        sync.WaitGroup
		lats      = make([][]time.Duration, c.Clients)
		wlats     = make([][]time.Duration, c.Clients)
	)
	for w := 0; w < c.Clients; w++ {
		// In read cells, client w reads on the leader, or with the
		// spread mode on node w mod n (hashicorp reads on the leader
		// only); one op in ten is a write in RW.
		reader := leader
		if c.Read == harness.ReadSpread && lib == ours.Library {
			reader = w % cl.Nodes()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 4096)
			var mineW []time.Duration
			for i := 0; !stop.Load(); i++ {
				write := !c.reads() || c.Scenario == harness.RW && i%10 == 9
				t0 := time.Now()
				var err error
				if write {
					err = cl.Apply(leader, payload)
				} else {
					err = cl.Read(reader, c.Read)
				}
				if err != nil {
					failed.Store(err.Error())
					return
				}
				if c.reads() {
					// A read from the lease never blocks: without a yield,
					// hundreds of clients in tight loops keep the nodes'
					// own goroutines off the processors for whole time
					// slices, and the leader loses its followers. A real
					// client's request comes from a socket and blocks
					// there; here each gives its processor up once.
					runtime.Gosched()
				}
				if measuring.Load() {
					if write && c.reads() {
						mineW = append(mineW, time.Since(t0))
						writes.Add(1)
						continue
					}
					mine = append(mine, time.Since(t0))
					ops.Add(1)
				}
			}
			lats[w], wlats[w] = mine, mineW
		}()
	}
	time.Sleep(warmup)
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0 := cpuTime()
	t0 := time.Now()
	measuring.Store(true)
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(t0)
	cpu1 := cpuTime()
	runtime.ReadMemStats(&ms1)
	stop.Store(true)
	wg.Wait()
	if e, ok := failed.Load().(string); ok {
		res.Error = e
		return res
	}
	n, nw := ops.Load(), writes.Load()
	res.Ops, res.Seconds = n, elapsed.Seconds()
	if n == 0 || c.Scenario == harness.RW && nw == 0 {
		res.Error = "no operation completed in the window"
		return res
	}
	res.OpsPerSec = float64(n) / elapsed.Seconds()
	res.P50us, res.P99us = percentiles(lats)
	if nw > 0 {
		res.WriteOpsPerSec = float64(nw) / elapsed.Seconds()
		res.WriteP50us, res.WriteP99us = percentiles(wlats)
	}
	res.CPUusOp = float64(cpu1-cpu0) / 1e3 / float64(n+nw)
	res.AllocsOp = float64(ms1.Mallocs-ms0.Mallocs) / float64(n+nw)
	return res
}

// firstRead retries a read on node i for up to 10 s.
func firstRead(cl harness.Cluster, i int, mode harness.ReadMode) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := cl.Read(i, mode)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no read on node %d within 10 s: %w", i, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// percentiles returns the median and the 99th percentile, in µs, of the
// clients' latencies together.
func percentiles(lats [][]time.Duration) (p50, p99 float64) {
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	return float64(all[len(all)/2]) / 1e3, float64(all[min(len(all)-1, len(all)*99/100)]) / 1e3
}

// failover writes a little, kills the leader and times the first write
// committed by another node.
func failover(cl harness.Cluster) (float64, error) {
	leader, err := harness.WaitLeader(cl, 10*time.Second)
	if err != nil {
		return 0, err
	}
	for i := 0; i < 100; i++ {
		if err := cl.Apply(leader, []byte("x")); err != nil {
			return 0, fmt.Errorf("writing before the failover: %w", err)
		}
	}
	killed := time.Now()
	if err := cl.Kill(leader); err != nil {
		return 0, err
	}
	deadline := killed.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if l := cl.Leader(); l >= 0 && l != leader {
			if cl.Apply(l, []byte("y")) == nil {
				return float64(time.Since(killed)) / 1e6, nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return 0, fmt.Errorf("no commit within 30 s of killing the leader")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
