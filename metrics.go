package raft

// Metric keys used on the hot path, allocated once. Metrics go to the
// go-metrics global sink (as in hashicorp/raft); peer IDs are labels, never
// part of a name.
var (
	keyApply         = []string{"raft", "apply"}
	keyCommitTime    = []string{"raft", "commitTime"}
	keyCommitNumLogs = []string{"raft", "commitNumLogs"}
	keyDispatchLog   = []string{"raft", "leader", "dispatchLog"}
	keyFSMApply      = []string{"raft", "fsm", "apply"}
	keyFSMApplyBatch = []string{"raft", "fsm", "applyBatch"}
)
