package main

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/seed48a2b68f/raft/bench/harness"
	"github.com/seed48a2b68f/raft/bench/libs/hashi"
	"github.com/seed48a2b68f/raft/bench/libs/ours"
)

// roundDirs lists the bare round's directories in the temporary directory.
func roundDirs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(os.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "raft-bench-round-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestBareRoundCompletes: the bare round completes ops with either
// payload, and leaves no goroutine and no file behind.
func TestBareRoundCompletes(t *testing.T) {
	before := len(roundDirs(t))
	goroutines := runtime.NumGoroutine()
	for _, p := range []int{1, 16, 1024} {
		ops, err := bareRound(p, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("%d-byte ops: %v", p, err)
		}
		if ops <= 0 {
			t.Fatalf("%d-byte ops: %v ops/s", p, ops)
		}
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after the rounds, %d before:\n%s", n, goroutines, buf[:runtime.Stack(buf, true)])
	}
	if n := len(roundDirs(t)); n != before {
		t.Fatalf("%d bare round directories left, %d before", n, before)
	}
}

// TestTableShowsTheBareRound: S2's one-client cells compare ours with the
// bare round of their payload; other cells do not.
func TestTableShowsTheBareRound(t *testing.T) {
	lim := limits{Fsync: 50 * time.Microsecond, RTT: 10 * time.Microsecond, BareRound: map[int]float64{16: 8000, 1024: 5000}}
	run := func(c cell, lib string, ops float64) result {
		return result{Library: lib, Cell: c, stats: stats{OpsPerSec: ops}}
	}
	var rows []cellSummary
	for _, c := range []cell{
		{Scenario: harness.S2, Payload: 16, Clients: 1},
		{Scenario: harness.S2, Payload: 1024, Clients: 1},
		{Scenario: harness.S2, Payload: 16, Clients: 16},
		{Scenario: harness.S3, Payload: 16, Clients: 1},
	} {
		rows = append(rows, summarize(c, []result{run(c, ours.Library, 4000), run(c, hashi.Library, 1000)}, lim))
	}
	for i, want := range []float64{8000, 5000, 0, 0} {
		if rows[i].BareRound != want {
			t.Errorf("%s: bare round %v, want %v", rows[i].Cell, rows[i].BareRound, want)
		}
	}
	var b strings.Builder
	printTable(&b, rows)
	lines := strings.Split(b.String(), "\n")
	for i, want := range []string{"50% of a bare round's 8000", "80% of a bare round's 5000", "", ""} {
		line := lines[2+i]
		if got := strings.Contains(line, "bare round"); got != (want != "") || !strings.Contains(line, want) {
			t.Errorf("row %q, want it to say %q", line, want)
		}
	}
}
