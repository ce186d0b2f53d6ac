// Package raft is a Raft consensus library with the API of hashicorp/raft
// v1.7/v1.8: a service embeds it with NewRaft, applies commands through
// futures, and plugs in its own FSM, LogStore, StableStore, SnapshotStore and
// Transport. Programs written for hashicorp/raft build against it by changing
// the import path.
//
// # Goroutines and ownership
//
//	goroutine            owns                                        reads from
//	main loop (run)      term, vote, log tail, commit index,         Transport.Consumer, apply queue,
//	                     configurations, leader state                control queue, configurationChangeCh
//	runFSM               the FSM, the applied index                  fsmMutateCh, fsmSnapshotCh
//	runSnapshots         snapshot creation, log compaction           userSnapshotCh, a timer
//	replicate (per peer) nextIndex, pipeline                         triggerCh, stopCh, a timer
//	heartbeat (per peer) heartbeat failures                          notifyCh, a timer
//
// Only the main loop changes the term; replication goroutines report a newer
// term through observedTerm. Getters read published copies (atomics and small
// locks). Every future resolves, also on shutdown.
//
// # Files
//
//	api.go             Raft, NewRaft, BootstrapCluster, RecoverCluster, public methods
//	raft.go            follower and candidate loops, RPC handlers
//	leader.go          leader loop: dispatch, commit, membership, lease, transfer, restore
//	replication.go     per-follower replicate, pipeline and heartbeat goroutines
//	votes.go           pure vote and pre-vote decisions
//	logmatch.go        pure log matching, commit and back-off rules
//	configuration.go   membership types and the pure nextConfiguration
//	fsm.go             FSM interfaces and the FSM goroutine
//	snapshot.go        snapshot goroutine and compaction
//	state.go           RaftState, the log tail, the apply queue, the commitment
//	control.go         the control queue: rare requests and signals to the main loop
//
// The rafttest package builds clusters on the in-memory transport for tests,
// inside testing/synctest or not.
package raft
