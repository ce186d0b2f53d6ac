package main

import (
	"math"
	"testing"
	"time"

	"github.com/seed48a2b68f/raft/bench/harness"
)

// The one-client limit is one sync (S3), or one sync with three at once
// plus a round trip (S2), of whichever kind of sync the disk does faster;
// other cells have none.
func TestLimitUsesTheFasterSync(t *testing.T) {
	us := time.Microsecond
	s3 := cell{Scenario: harness.S3, Clients: 1}
	s2 := cell{Scenario: harness.S2, Clients: 1}
	for _, c := range []struct {
		name   string
		l      limits
		s3, s2 float64 // microseconds per op
	}{
		{"appends only", limits{Fsync: 60 * us, Fsync3: 70 * us, RTT: 10 * us}, 60, 80},
		{"preallocated faster", limits{Fsync: 60 * us, Fsync3: 70 * us, SyncPrealloc: 40 * us, SyncPrealloc3: 45 * us, RTT: 10 * us}, 40, 55},
		{"preallocated slower", limits{Fsync: 60 * us, Fsync3: 70 * us, SyncPrealloc: 90 * us, SyncPrealloc3: 95 * us, RTT: 10 * us}, 60, 80},
		{"three at once faster than one", limits{Fsync: 60 * us, Fsync3: 50 * us, RTT: 10 * us}, 60, 70},
	} {
		for _, k := range []struct {
			c    cell
			want float64
		}{{s3, c.s3}, {s2, c.s2}} {
			if got := c.l.limit(k.c); math.Abs(got-1e6/k.want) > 1e-6 {
				t.Errorf("%s, %s: limit %.1f ops/s, want %.1f", c.name, k.c.Scenario, got, 1e6/k.want)
			}
		}
	}
	l := limits{Fsync: 60 * us, RTT: 10 * us}
	for _, c := range []cell{{Scenario: harness.S2, Clients: 16}, {Scenario: harness.S1, Clients: 1}} {
		if got := l.limit(c); got != 0 {
			t.Errorf("%v: limit %v, want none", c, got)
		}
	}
}
