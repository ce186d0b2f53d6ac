package main

import (
	"fmt"
	"io"

	"github.com/seed48a2b68f/raft/bench/harness"
)

// printTable writes the medians as a Markdown table: each library's
// throughput, latency, CPU and allocations per operation, the ratio
// ours/hashicorp, and for one client the share of the machine's limit
// (and in S2 of the bare round's ops/s).
func printTable(w io.Writer, cells []cellSummary) {
	fmt.Fprintln(w, "| cell | hashicorp ops/s | ours ops/s | ratio | p50 hashicorp / ours | p99 hashicorp / ours | CPU µs/op hashicorp / ours | allocs/op hashicorp / ours | ours / limit |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, s := range cells {
		if s.Cell.Scenario == harness.Failover {
			continue
		}
		lim := ""
		if s.Limit > 0 {
			lim = fmt.Sprintf("%.0f%% of %.0f", 100*s.Ours.OpsPerSec/s.Limit, s.Limit)
		}
		if s.BareRound > 0 {
			lim += fmt.Sprintf("; %.0f%% of a bare round's %.0f", 100*s.Ours.OpsPerSec/s.BareRound, s.BareRound)
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.2fx | %s / %s | %s / %s | %.1f / %.1f | %.0f / %.0f | %s |\n",
			s.Cell, s.Hashicorp.OpsPerSec, s.Ours.OpsPerSec, s.Ratio,
			us(s.Hashicorp.P50us), us(s.Ours.P50us), us(s.Hashicorp.P99us), us(s.Ours.P99us),
			s.Hashicorp.CPUusOp, s.Ours.CPUusOp, s.Hashicorp.AllocsOp, s.Ours.AllocsOp, lim)
	}
	for _, s := range cells {
		if s.Cell.Scenario == harness.Failover {
			fmt.Fprintf(w, "\nfailover (kill the leader, first commit on its successor; default LAN timeouts): hashicorp %.0f ms, ours %.0f ms (medians)\n",
				s.Hashicorp.FailoverMS, s.Ours.FailoverMS)
		}
	}
}

// us formats microseconds as µs or ms.
func us(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1f ms", v/1000)
	}
	return fmt.Sprintf("%.0f µs", v)
}
