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
	var readCells []cellSummary
	for _, s := range cells {
		if s.Cell.Scenario == harness.Failover {
			continue
		}
		if s.Cell.reads() {
			readCells = append(readCells, s)
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
	if len(readCells) > 0 {
		printReadTable(w, readCells)
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

// printReadTable writes the read cells: reads per second of each library
// (hashicorp on its leader with VerifyLeader, ours as the cell says), their
// latencies and CPU per operation, and in RW cells the writes done
// alongside and their latencies.
func printReadTable(w io.Writer, cells []cellSummary) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| cell | hashicorp reads/s | ours reads/s | ratio | p50 hashicorp / ours | p99 hashicorp / ours | CPU µs/op hashicorp / ours | writes/s hashicorp / ours | write p50 hashicorp / ours | write p99 hashicorp / ours |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|")
	for _, s := range cells {
		writes, w50, w99 := "", "", ""
		if s.Cell.Scenario == harness.RW {
			writes = fmt.Sprintf("%.0f / %.0f", s.Hashicorp.WriteOpsPerSec, s.Ours.WriteOpsPerSec)
			w50 = us(s.Hashicorp.WriteP50us) + " / " + us(s.Ours.WriteP50us)
			w99 = us(s.Hashicorp.WriteP99us) + " / " + us(s.Ours.WriteP99us)
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f | %.2fx | %s / %s | %s / %s | %.1f / %.1f | %s | %s | %s |\n",
			s.Cell, s.Hashicorp.OpsPerSec, s.Ours.OpsPerSec, s.Ratio,
			us(s.Hashicorp.P50us), us(s.Ours.P50us), us(s.Hashicorp.P99us), us(s.Ours.P99us),
			s.Hashicorp.CPUusOp, s.Ours.CPUusOp, writes, w50, w99)
	}
}
