package fuzzy

import (
	"fmt"
	"strings"
)

// ClockMode chooses the clock nemesis: how fast each node's clock runs
// against real (in a bubble, virtual) time.
type ClockMode int

const (
	// ClocksWithinDrift, the default: each node's clock runs at a rate of
	// its own, changed now and then by the schedule, and no two rates are
	// further apart than the factor 1 + LeaseClockDrift. Reads served from
	// leases must stay linearizable.
	ClocksWithinDrift ClockMode = iota
	// ClocksEdgeOfDrift runs the targeted schedule of ClocksBeyondDrift
	// with the clocks as far apart as LeaseClockDrift allows: the
	// others' at rate 1, the leader's slower by just under the factor
	// 1 + LeaseClockDrift.
	// Reads must stay linearizable.
	ClocksEdgeOfDrift
	// ClocksBeyondDrift is the known-bad control, a targeted schedule (see
	// slowLeaderAndCut) with leases on: again and again the leader's clock
	// turns slow (rate 0.1 to 0.3) and the others' fast (1 to 2), and the
	// leader is cut off. It keeps its lease after the others have elected
	// a new leader, and the checker must catch the stale reads it serves.
	ClocksBeyondDrift
)

// drawRate draws a clock rate for mode; drift is the cluster's
// LeaseClockDrift.
func (c *cluster) drawRate(drift float64) float64 {
	if c.opts.Clocks == ClocksBeyondDrift {
		return 0.1 + 1.9*c.rng.Float64()
	}
	// Every rate in [1, 1 + 0.999 drift): any two are less than the factor
	// 1 + drift apart.
	return 1 + 0.999*drift*c.rng.Float64()
}

// leaseDrift is the LeaseClockDrift the schedules' nodes run with.
const leaseDrift = 0.1

// clockRates describes every node's clock rate, for the schedule.
func (c *cluster) clockRates() string {
	var b strings.Builder
	for i, n := range c.nodes {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s×%.3f", n.id, n.clock.Rate())
	}
	return b.String()
}

// changeClock changes one node's clock rate.
func (c *cluster) changeClock() {
	m := c.nodes[c.rng.IntN(len(c.nodes))]
	m.clock.SetRate(c.drawRate(leaseDrift))
	c.event("clocks: %s", c.clockRates())
}

// slowLeaderAndCut is the targeted clock schedules' only fault: the cuts
// of the last one heal, the leader's clock turns slow and the others' fast
// (beyond the drift in the control, to its edge otherwise), and the leader
// is cut off from the others. A node on a slow clock seldom wins an
// election (its timers are slow too) and random faults seldom isolate it
// while the others can elect, so the schedule makes the case the control
// exists to show, again and again.
func (c *cluster) slowLeaderAndCut() {
	c.net.clearCuts()
	l := c.leader()
	for _, n := range c.nodes {
		switch {
		case c.opts.Clocks == ClocksEdgeOfDrift && n == l:
			n.clock.SetRate(1 / (1 + 0.999*leaseDrift))
		case c.opts.Clocks == ClocksEdgeOfDrift:
			n.clock.SetRate(1)
		case n == l:
			n.clock.SetRate(0.1 + 0.2*c.rng.Float64())
		default:
			n.clock.SetRate(1 + c.rng.Float64())
		}
	}
	if l == nil {
		c.event("heal; clocks: %s", c.clockRates())
		return
	}
	c.cutBetween([]*node{l}, c.complement([]*node{l}), true)
	c.event("clocks: %s; leader %s slowed and cut off", c.clockRates(), l.id)
}
