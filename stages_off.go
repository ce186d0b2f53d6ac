//go:build !raftstages

package raft

// stagesOn is false in the default build: nothing is recorded.
const stagesOn = false

// stageClock holds when Apply was called, in the raftstages build only.
type stageClock struct{}

func (*stageClock) start()             {}
func stampRange(stage, uint64, uint64) {}
func stampApply(*stageClock, uint64)   {}
func stagesNodeStarted()               {}
func stagesNodeStopped()               {}
