// Package nodeclock lets this repository's own tests run a Raft node on a
// clock of their own: fuzzy's clock nemesis makes each node's clock run at
// its own rate to check the lease rule against Config.LeaseClockDrift. It
// is internal, so no program outside the module can use it, and the public
// API keeps hashicorp/raft's shape.
//
// A clock is registered for the *raft.Config a node is about to be created
// with; NewRaft looks it up once and reads the node's time from it for
// everything the lease's safety rests on (its last contact with the
// leader, the vote refusal after it, the leader's lease and its step-down
// check), and runs on it the timers that start those checks (the
// follower's heartbeat timer, the candidate's election timer, the leader's
// lease check), so that a fast clock also fires them early.
package nodeclock

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is a node's clock.
type Clock interface {
	// Now reads the clock; each reading is no earlier than the one before.
	Now() time.Time
	// Real is how long d on this clock takes in real time: the duration
	// to give a timer that must fire after d on this clock.
	Real(d time.Duration) time.Duration
}

// System is the real clock, the one every node uses unless a test sets
// another.
type System struct{}

// Now is time.Now.
func (System) Now() time.Time { return time.Now() }

// Real is d.
func (System) Real(d time.Duration) time.Duration { return d }

var clocks sync.Map // the *raft.Config → Clock

// Set makes a node created by NewRaft with conf (the pointer itself) run
// on clock. Clear it once NewRaft has returned.
func Set(conf any, clock Clock) { clocks.Store(conf, clock) }

// Clear forgets conf's clock.
func Clear(conf any) { clocks.Delete(conf) }

// For returns the clock set for conf, or System.
func For(conf any) Clock {
	if v, ok := clocks.Load(conf); ok {
		return v.(Clock)
	}
	return System{}
}

// Skewed is a clock that runs at a rate of its own against the real one
// (in a synctest bubble, the bubble's): a piecewise linear function of
// real time, one rate per piece, so it never goes backwards when its rate
// changes. Its readings keep Go's monotonic reading, so Sub and Since on
// them are monotonic too. Safe for concurrent use.
type Skewed struct {
	piece atomic.Pointer[piece]
}

type piece struct {
	real  time.Time // real time when this piece began
	local time.Time // the clock's reading then
	rate  float64
}

func (p *piece) at(real time.Time) time.Time {
	return p.local.Add(time.Duration(float64(real.Sub(p.real)) * p.rate))
}

// NewSkewed returns a clock reading real time now and running at rate
// (1: as fast as real time, 2: twice as fast).
func NewSkewed(rate float64) *Skewed {
	k := &Skewed{}
	now := time.Now()
	k.piece.Store(&piece{real: now, local: now, rate: rate})
	return k
}

// Now reads the clock.
func (k *Skewed) Now() time.Time { return k.piece.Load().at(time.Now()) }

// SetRate makes the clock run at rate from now on. Calls to SetRate must
// not race each other.
func (k *Skewed) SetRate(rate float64) {
	old := k.piece.Load()
	real := time.Now()
	k.piece.Store(&piece{real: real, local: old.at(real), rate: rate})
}

// Real is d divided by the current rate.
func (k *Skewed) Real(d time.Duration) time.Duration {
	return time.Duration(float64(d) / k.piece.Load().rate)
}

// Rate is the clock's current rate.
func (k *Skewed) Rate() float64 { return k.piece.Load().rate }
