package main

import (
	"bytes"
	"encoding/xml"
	"strings"
	"testing"

	"github.com/seed48a2b68f/raft/bench/harness"
)

func TestChartAndTable(t *testing.T) {
	var cells []cellSummary
	for _, sc := range []harness.Scenario{harness.S1, harness.S2} {
		for _, p := range []int{16, 1024} {
			for _, c := range []int{1, 16, 256} {
				v := float64(1000 * c * (1 + len(sc)))
				cells = append(cells, cellSummary{Cell: cell{Scenario: sc, Payload: p, Clients: c}, Ours: side{OpsPerSec: 2 * v}, Hashicorp: side{OpsPerSec: v}, Ratio: 2})
			}
		}
	}
	cells = append(cells, cellSummary{Cell: cell{Scenario: harness.Failover}, Ours: side{FailoverMS: 900}, Hashicorp: side{FailoverMS: 1200}})
	// Read cells go to a table of their own and stay out of the chart.
	cells = append(cells,
		cellSummary{Cell: cell{Scenario: harness.R, Payload: 16, Clients: 256, Read: harness.ReadLease},
			Ours: side{OpsPerSec: 4e6}, Hashicorp: side{OpsPerSec: 2e5}, Ratio: 20},
		cellSummary{Cell: cell{Scenario: harness.RW, Payload: 16, Clients: 16, Read: harness.ReadRound},
			Ours: side{OpsPerSec: 1e5, WriteOpsPerSec: 1e4, WriteP50us: 300}, Hashicorp: side{OpsPerSec: 5e4, WriteOpsPerSec: 5e3, WriteP50us: 2000}, Ratio: 2})
	svg := chart(cells)
	dec := xml.NewDecoder(bytes.NewReader(svg))
	lines := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			lines++
			for _, a := range se.Attr {
				if a.Name.Local == "points" && strings.Count(a.Value, ",") != 3 {
					t.Fatalf("a line with %d points, want 3: %s", strings.Count(a.Value, ","), a.Value)
				}
			}
		}
	}
	if lines != 2*2*2 { // scenarios x payloads x libraries
		t.Fatalf("%d lines in the chart, want 8", lines)
	}
	var table bytes.Buffer
	printTable(&table, cells)
	if got := strings.Count(table.String(), "| S"); got != 12 {
		t.Fatalf("%d rows, want 12:\n%s", got, table.String())
	}
	for _, row := range []string{"| R, 256 clients, ours lease | 200000 | 4000000 | 20.00x |", "| RW, 16 clients, ours round |", "| 5000 / 10000 | 2.0 ms / 300 µs |"} {
		if !strings.Contains(table.String(), row) {
			t.Fatalf("no %q in the read table:\n%s", row, table.String())
		}
	}
	if !strings.Contains(table.String(), "hashicorp 1200 ms, ours 900 ms") {
		t.Fatalf("no failover line:\n%s", table.String())
	}
}

func TestPlanAndMedian(t *testing.T) {
	cells, err := plan("S1,failover", "16,1024", "1,256", "round")
	if err != nil || len(cells) != 5 {
		t.Fatalf("plan: %v, %v", cells, err)
	}
	if _, err := plan("S9", "16", "1", "round"); err == nil {
		t.Fatal("an unknown scenario was accepted")
	}
	cells, err = plan("R,RW", "16,1024", "1,256", "round,lease")
	if err != nil || len(cells) != 8 || cells[1].Read != harness.ReadLease || cells[7].Scenario != harness.RW {
		t.Fatalf("plan of read cells: %v, %v", cells, err)
	}
	if _, err := plan("R", "16", "1", "fast"); err == nil {
		t.Fatal("an unknown read mode was accepted")
	}
	if m := median([]float64{5, 1, 3}); m != 3 {
		t.Fatalf("median = %v", m)
	}
	if m := median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Fatalf("median = %v", m)
	}
}
