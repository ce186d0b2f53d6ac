//go:build raftstages

package raft

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// stageNames are the stages as the table prints them.
var stageNames = [numStages]string{
	"apply", "dispatch", "leader stored", "replication woke", "sending",
	"follower read", "follower loop", "follower stored", "follower answering",
	"leader read", "matched", "committed", "applied",
}

// stageAfter lists the stages each stage waits for; the table measures a
// stage from the latest of them that the entry passed. The leader's write
// and replication run side by side from dispatch; the commit waits for
// both (in a cluster of three, for the leader's write and one follower).
var stageAfter = [numStages][]stage{
	stageDispatch:          {stageApply},
	stageLeaderStored:      {stageDispatch},
	stageReplicationWoke:   {stageDispatch},
	stageSending:           {stageReplicationWoke},
	stageFollowerRead:      {stageSending},
	stageFollowerLoop:      {stageFollowerRead},
	stageFollowerStored:    {stageFollowerLoop},
	stageFollowerAnswering: {stageFollowerStored},
	stageLeaderRead:        {stageFollowerAnswering},
	stageMatched:           {stageLeaderRead},
	stageCommitted:         {stageLeaderStored, stageMatched},
	stageApplied:           {stageCommitted},
}

// stagesOn is true in the raftstages build: stages are recorded.
const stagesOn = true

// stageClock holds when Apply was called.
type stageClock struct{ t int64 }

func (c *stageClock) start() { c.t = stageNow() }

// stageEpoch makes the stamps monotonic: nanoseconds since it, never 0.
var stageEpoch = time.Now()

func stageNow() int64 { return int64(time.Since(stageEpoch)) + 1 }

// stageSlots is how many log indexes the table holds at once; index i
// uses slot i % stageSlots, so only the latest stageSlots entries are
// reported.
const stageSlots = 1 << 17

// stageSlot is one index's times from stageNow (0: not reached).
type stageSlot struct {
	index atomic.Uint64
	t     [numStages]atomic.Int64
}

var (
	stageTable   [stageSlots]stageSlot
	stageNodesMu sync.Mutex
	stageNodes   int
)

// stampApply starts index's record: it was applied at c and numbered now.
func stampApply(c *stageClock, index uint64) {
	sl := &stageTable[index%stageSlots]
	for i := range sl.t {
		sl.t[i].Store(0)
	}
	sl.index.Store(index)
	if c.t != 0 {
		sl.t[stageApply].Store(c.t)
	}
	sl.t[stageDispatch].Store(stageNow())
}

// stampRange records stage s now for the indexes [first, last] that it
// has not recorded yet.
func stampRange(s stage, first, last uint64) {
	now := stageNow()
	for i := first; i <= last && i >= first; i++ {
		sl := &stageTable[i%stageSlots]
		if sl.index.Load() == i {
			sl.t[s].CompareAndSwap(0, now)
		}
	}
}

// stagesNodeStarted counts a node up.
func stagesNodeStarted() {
	stageNodesMu.Lock()
	stageNodes++
	stageNodesMu.Unlock()
}

// stagesNodeStopped counts a node down; after the last one, with
// RAFT_STAGES set, the table goes to standard error and starts over.
func stagesNodeStopped() {
	stageNodesMu.Lock()
	defer stageNodesMu.Unlock()
	stageNodes--
	if stageNodes == 0 && os.Getenv("RAFT_STAGES") != "" {
		writeStages(os.Stderr)
		resetStages()
	}
}

func resetStages() {
	for i := range stageTable {
		stageTable[i].index.Store(0)
		for s := range stageTable[i].t {
			stageTable[i].t[s].Store(0)
		}
	}
}

// stageDeltas returns, per stage, the time each recorded index took from
// the latest of the stages it waits for (stageAfter) that the index
// passed; for the first stage, the time from apply to applied.
func stageDeltas() [numStages][]time.Duration {
	var d [numStages][]time.Duration
	for i := range stageTable {
		sl := &stageTable[i]
		if sl.index.Load() == 0 {
			continue
		}
		for s := range numStages {
			t := sl.t[s].Load()
			if t == 0 {
				continue
			}
			var from int64
			for _, p := range stageAfter[s] {
				from = max(from, sl.t[p].Load())
			}
			if from != 0 {
				d[s] = append(d[s], time.Duration(t-from))
			}
		}
		if a, b := sl.t[stageApply].Load(), sl.t[stageApplied].Load(); a != 0 && b != 0 {
			d[stageApply] = append(d[stageApply], time.Duration(b-a))
		}
	}
	return d
}

// writeStages prints the table: per stage, how many indexes passed it and
// the 10th, 50th and 90th percentile of stageDeltas.
func writeStages(w io.Writer) {
	d := stageDeltas()
	fmt.Fprintf(w, "raft stages: time from the stage(s) each waits for; first line: apply to applied\n")
	fmt.Fprintf(w, "%-18s %8s %9s %9s %9s\n", "stage", "count", "p10 us", "p50 us", "p90 us")
	for s := range numStages {
		ds := d[s]
		if len(ds) == 0 {
			fmt.Fprintf(w, "%-18s %8d\n", stageNames[s], 0)
			continue
		}
		slices.Sort(ds)
		pct := func(p int) float64 { return float64(ds[len(ds)*p/100].Nanoseconds()) / 1e3 }
		fmt.Fprintf(w, "%-18s %8d %9.1f %9.1f %9.1f\n", stageNames[s], len(ds), pct(10), pct(50), pct(90))
	}
}
