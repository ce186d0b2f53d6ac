package main

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-metrics"
)

// promSink is a go-metrics sink that keeps what Prometheus expects:
// counters and samples accumulate from the start of the process (samples
// as a summary's _sum and _count), gauges keep their last value. Keys are
// joined with "_" and labels kept as labels, so a peer's ID never becomes
// part of a metric name.
type promSink struct {
	mu     sync.Mutex
	series map[string]*promSeries // by name and labels
}

type promSeries struct {
	kind   string // "gauge", "counter" or "summary"
	name   string
	labels string // rendered: {a="b",...} or ""
	value  float64
	sum    float64
	count  uint64
}

func newPromSink() *promSink { return &promSink{series: map[string]*promSeries{}} }

func (p *promSink) get(kind string, key []string, labels []metrics.Label) *promSeries {
	name := promName(strings.Join(key, "_"))
	lbl := promLabels(labels)
	id := name + lbl
	s := p.series[id]
	if s == nil {
		s = &promSeries{kind: kind, name: name, labels: lbl}
		p.series[id] = s
	}
	return s
}

func (p *promSink) SetGauge(key []string, val float32) { p.SetGaugeWithLabels(key, val, nil) }
func (p *promSink) SetGaugeWithLabels(key []string, val float32, labels []metrics.Label) {
	p.SetPrecisionGaugeWithLabels(key, float64(val), labels)
}
func (p *promSink) SetPrecisionGauge(key []string, val float64) {
	p.SetPrecisionGaugeWithLabels(key, val, nil)
}
func (p *promSink) SetPrecisionGaugeWithLabels(key []string, val float64, labels []metrics.Label) {
	p.mu.Lock()
	p.get("gauge", key, labels).value = val
	p.mu.Unlock()
}

// EmitKey is a one-off value; it is kept like a gauge.
func (p *promSink) EmitKey(key []string, val float32) { p.SetGauge(key, val) }

func (p *promSink) IncrCounter(key []string, val float32) { p.IncrCounterWithLabels(key, val, nil) }
func (p *promSink) IncrCounterWithLabels(key []string, val float32, labels []metrics.Label) {
	p.mu.Lock()
	p.get("counter", key, labels).value += float64(val)
	p.mu.Unlock()
}

func (p *promSink) AddSample(key []string, val float32) { p.AddSampleWithLabels(key, val, nil) }
func (p *promSink) AddSampleWithLabels(key []string, val float32, labels []metrics.Label) {
	p.mu.Lock()
	s := p.get("summary", key, labels)
	s.sum += float64(val)
	s.count++
	p.mu.Unlock()
}

// write renders every series in Prometheus' text format, families sorted by
// name.
func (p *promSink) write(w io.Writer) {
	p.mu.Lock()
	families := map[string][]promSeries{}
	for _, s := range p.series {
		families[s.name] = append(families[s.name], *s)
	}
	p.mu.Unlock()
	names := make([]string, 0, len(families))
	for name := range families {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fam := families[name]
		sort.Slice(fam, func(i, j int) bool { return fam[i].labels < fam[j].labels })
		kind := fam[0].kind
		out := name
		if kind == "counter" {
			out = name + "_total"
		}
		fmt.Fprintf(w, "# TYPE %s %s\n", out, kind)
		for _, s := range fam {
			switch s.kind {
			case "summary":
				fmt.Fprintf(w, "%s_sum%s %g\n%s_count%s %d\n", name, s.labels, s.sum, name, s.labels, s.count)
			default:
				fmt.Fprintf(w, "%s%s %g\n", out, s.labels, s.value)
			}
		}
	}
}

// handleMetrics serves the metrics in Prometheus' text format.
func (n *node) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	n.sink.write(w)
}

// promName turns a metric name into one Prometheus accepts.
func promName(name string) string {
	var b strings.Builder
	for i, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_', r == ':', r >= '0' && r <= '9' && i > 0:
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}

func promLabels(labels []metrics.Label) string {
	if len(labels) == 0 {
		return ""
	}
	parts := make([]string, len(labels))
	for i, l := range labels {
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(l.Value)
		parts[i] = promName(l.Name) + `="` + v + `"`
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}
