//go:build raftstages

package raft

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// In the raftstages build, a command applied on a three-node cluster over
// TCP passes every stage, and no stage is recorded before a stage it waits
// for (stageAfter). Each stage keeps the first node to reach it; the first
// follower to reach a stage is never later than the first to reach the
// stage after it, so the order holds across followers too.
func TestStagesRecordACommandsWay(t *testing.T) {
	resetStages()
	nodes, leader := startNetCluster(t, 3, func() *NetworkTransport { return newTestTCPTransport(t, time.Second) })
	var last uint64
	for range 200 {
		f := leader.r.Apply([]byte("x"), time.Second)
		if err := f.Error(); err != nil {
			t.Fatal(err)
		}
		last = f.Index()
	}
	waitAllApplied(t, nodes)

	// The first commands may go out before the pipeline starts; the
	// last hundred go through it.
	for idx := last - 99; idx <= last; idx++ {
		sl := &stageTable[idx%stageSlots]
		if got := sl.index.Load(); got != idx {
			t.Fatalf("slot of index %d holds index %d", idx, got)
		}
		for s := range numStages {
			if sl.t[s].Load() == 0 {
				t.Fatalf("index %d never passed stage %q", idx, stageNames[s])
			}
		}
		for s, after := range stageAfter {
			for _, p := range after {
				if a, b := sl.t[p].Load(), sl.t[s].Load(); a > b {
					t.Fatalf("index %d: %q %d ns after %q", idx, stageNames[p], a-b, stageNames[s])
				}
			}
		}
	}

	var out bytes.Buffer
	writeStages(&out)
	for _, name := range stageNames {
		if !strings.Contains(out.String(), name) {
			t.Fatalf("table lacks stage %q:\n%s", name, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}
