package raft

// Stages of one command's way through a cluster, for the raftstages build
// (stages_on.go): go build -tags raftstages records when each entry passes
// each stage and, with RAFT_STAGES=1 in the environment, prints a table of
// the time between stages to standard error once the last node of the
// process shuts down. It answers "where does an apply's latency go?" on a
// real transport and disk, which a CPU profile cannot: most of that time
// is spent waiting, not running. The default build records nothing and
// the calls compile to nothing.
//
// A stage is recorded once per log index, by whichever node gets there
// first, so the follower stages describe the faster follower (the one a
// three-node cluster commits with), though not always the same one across
// stages. The table is the process's: it covers a cluster whose nodes run
// in one process, as bench/ and the tests run them. A node alone in its
// process records only the entries it dispatched as leader, and of those
// only its own stages.
type stage int

const (
	stageApply             stage = iota // Apply called on the leader
	stageDispatch                       // the leader numbered the entry
	stageLeaderStored                   // the leader's StoreLogs returned
	stageReplicationWoke                // a replication goroutine took the trigger
	stageSending                        // AppendEntries about to be written to a pipeline
	stageFollowerRead                   // a follower's transport decoded it
	stageFollowerLoop                   // the follower's main loop took it
	stageFollowerStored                 // the follower stored the entries
	stageFollowerAnswering              // the follower's transport took the answer to write it
	stageLeaderRead                     // the leader's transport decoded the answer
	stageMatched                        // replication recorded the match
	stageCommitted                      // the leader loop handed it to the FSM
	stageApplied                        // the FSM applied it
	numStages
)

// stampEntries records stage s for the entries (by their first and last
// index).
func stampEntries(s stage, entries []*Log) {
	if stagesOn && len(entries) > 0 {
		stampRange(s, entries[0].Index, entries[len(entries)-1].Index)
	}
}
