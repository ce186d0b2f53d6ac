package main

import (
	"fmt"
	"net/http"

	"github.com/hashicorp/go-metrics"
	gometricsprom "github.com/hashicorp/go-metrics/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newMetrics sends go-metrics (the library's raft.* metrics and raftkv's
// own) to go-metrics' Prometheus sink, in a registry of this node's with the
// Go runtime and process collectors, and returns the /metrics handler:
// counters, gauges, and samples as summaries with quantiles, in the
// standard exposition formats. Series never expire, so a counter stays
// visible after its last increment.
func newMetrics() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(collectors.NewGoCollector()); err != nil {
		return nil, fmt.Errorf("metrics: the Go collector: %w", err)
	}
	if err := reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("metrics: the process collector: %w", err)
	}
	sink, err := gometricsprom.NewPrometheusSinkFrom(gometricsprom.PrometheusOpts{Registerer: reg, Name: "raftkv_sink"})
	if err != nil {
		return nil, fmt.Errorf("metrics: the go-metrics sink: %w", err)
	}
	mc := metrics.DefaultConfig("raftkv")
	mc.EnableHostname = false
	mc.EnableRuntimeMetrics = false // the Go collector reports the runtime
	if _, err := metrics.NewGlobal(mc, sink); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}
