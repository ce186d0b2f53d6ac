package main

import (
	"bytes"
	"fmt"
	"math"
	"strings"

	"github.com/seed48a2b68f/raft/bench/harness"
)

// chart draws throughput against clients, one panel per scenario, one line
// per library and payload (solid 16 B, dashed 1 KiB; or whatever payloads
// ran), as a standalone SVG.
func chart(cells []cellSummary) []byte {
	const panelW, panelH, margin = 300.0, 220.0, 50.0
	var scenarios []harness.Scenario
	for _, c := range cells {
		if c.Cell.Scenario != harness.Failover && !c.Cell.reads() && (len(scenarios) == 0 || scenarios[len(scenarios)-1] != c.Cell.Scenario) {
			scenarios = append(scenarios, c.Cell.Scenario)
		}
	}
	width := margin + float64(len(scenarios))*(panelW+margin)
	height := panelH + 2*margin + 40
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	colors := map[string]string{"ours": "#1f77b4", "hashicorp": "#ff7f0e"}
	for pi, sc := range scenarios {
		x0 := margin + float64(pi)*(panelW+margin)
		y0 := margin
		var own []cellSummary
		var clients []int
		var payloads []int
		maxY, minY := 0.0, math.Inf(1)
		for _, c := range cells {
			if c.Cell.Scenario != sc {
				continue
			}
			own = append(own, c)
			maxY = math.Max(maxY, math.Max(c.Ours.OpsPerSec, c.Hashicorp.OpsPerSec))
			minY = math.Min(minY, math.Min(c.Ours.OpsPerSec, c.Hashicorp.OpsPerSec))
			if !containsInt(clients, c.Cell.Clients) {
				clients = append(clients, c.Cell.Clients)
			}
			if !containsInt(payloads, c.Cell.Payload) {
				payloads = append(payloads, c.Cell.Payload)
			}
		}
		// A log scale: one client and 256 clients differ by decades.
		lo := math.Floor(math.Log10(math.Max(minY, 1)))
		hi := math.Ceil(math.Log10(math.Max(maxY, 10)))
		if hi <= lo {
			hi = lo + 1
		}
		yAt := func(v float64) float64 {
			return y0 + panelH - panelH*(math.Log10(math.Max(v, 1))-lo)/(hi-lo)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-size="13" font-weight="bold">%s</text>`+"\n", x0, y0-15, scenarioTitle(sc))
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", x0, y0+panelH, x0+panelW, y0+panelH)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", x0, y0, x0, y0+panelH)
		for e := lo; e <= hi; e++ {
			for _, m := range []float64{1, 2, 5} {
				v := m * math.Pow(10, e)
				if e == hi && m > 1 {
					break
				}
				y := yAt(v)
				stroke := "#eee"
				if m == 1 {
					stroke = "#ccc"
				}
				fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="%s"/>`+"\n", x0, y, x0+panelW, y, stroke)
				fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-4, y+4, short(v))
			}
		}
		xAt := func(c int) float64 {
			i := indexInt(clients, c)
			if len(clients) == 1 {
				return x0 + panelW/2
			}
			return x0 + 20 + (panelW-40)*float64(i)/float64(len(clients)-1)
		}
		for _, c := range clients {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%d</text>`+"\n", xAt(c), y0+panelH+15, c)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">clients</text>`+"\n", x0+panelW/2, y0+panelH+30)
		for pj, p := range payloads {
			for _, lib := range []string{"hashicorp", "ours"} {
				var pts []string
				for _, c := range own {
					if c.Cell.Payload != p {
						continue
					}
					v := c.Hashicorp.OpsPerSec
					if lib == "ours" {
						v = c.Ours.OpsPerSec
					}
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", xAt(c.Cell.Clients), yAt(v)))
				}
				dash := ""
				if pj > 0 {
					dash = ` stroke-dasharray="6,4"`
				}
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", colors[lib], dash, joinPts(pts))
			}
		}
	}
	ly := height - 20
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"/><text x="%.0f" y="%.0f">this library</text>`+"\n", margin, ly, margin+25, ly, colors["ours"], margin+30, ly+4)
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"/><text x="%.0f" y="%.0f">hashicorp/raft v1.7.3</text>`+"\n", margin+130, ly, margin+155, ly, colors["hashicorp"], margin+160, ly+4)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">ops/s (log scale), medians; solid: 16 B commands, dashed: 1 KiB</text>`+"\n", margin+300, ly+4)
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func scenarioTitle(s harness.Scenario) string {
	switch s {
	case harness.S1:
		return "S1: 3 nodes in memory"
	case harness.S2:
		return "S2: 3 nodes, TCP, bolt + fsync"
	case harness.S2g:
		return "S2g: S2 with ours on gRPC (hashicorp on TCP)"
	case harness.S3:
		return "S3: 1 node, bolt + fsync"
	}
	return string(s)
}

func containsInt(xs []int, v int) bool { return indexInt(xs, v) >= 0 }

func indexInt(xs []int, v int) int {
	for i, x := range xs {
		if x == v {
			return i
		}
	}
	return -1
}

func joinPts(p []string) string {
	var b bytes.Buffer
	for i, s := range p {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	return b.String()
}

func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e3), ".0") + "k"
	}
	return fmt.Sprintf("%.0f", v)
}
