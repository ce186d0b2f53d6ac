// Package fuzzy runs a raft cluster under randomized fault schedules and
// checks it: election safety (seen at the transport), log matching, state
// machine safety, no acknowledged write lost or applied twice, convergence
// and liveness once the faults stop, and linearizability of a key-value
// history (get, put, append, compare-and-swap) with porcupine.
//
// A schedule is drawn from a seed: partitions (symmetric, one-way, the
// leader cut off with others, a bridge node), message loss, delay,
// duplication and reordering, slow disks, crashes that keep only completed
// disk writes, restarts, leadership transfers and snapshots, and a clock
// nemesis: every node's clock runs at its own rate within LeaseClockDrift
// (ClockMode; TestClockNemesis runs a targeted schedule at the edge of the
// drift and, as a control that must be caught, beyond it). Runs happen in
// process on the in-memory transport inside testing/synctest, so a seed
// fixes the schedule and every random choice (goroutine interleavings can
// still differ between runs).
//
// go test ./fuzzy runs a few schedules; FUZZY_SCHEDULES=N runs N,
// FUZZY_DURATION=30m runs schedules until the time is up, FUZZY_FROM=S
// starts either at seed S instead of 1, FUZZY_SEED=S replays one, and
// FUZZY_CLOCK_SCHEDULES=N runs N targeted clock schedules at the drift's
// edge. A schedule that fails prints its events, and writes
// porcupine's visualization when the history is not linearizable.
package fuzzy
