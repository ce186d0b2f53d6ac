// Package raft is a Raft consensus library with the API of hashicorp/raft
// v1.7/v1.8: a service embeds it with NewRaft, applies commands through
// futures, and plugs in its own FSM, LogStore, StableStore, SnapshotStore and
// Transport. Programs written for hashicorp/raft build against it by changing
// the import path.
//
// # Using it
//
// A node is built from a Config, an FSM (the application's state: Apply,
// Snapshot, Restore) and four stores: a LogStore and a StableStore (raftbolt
// on disk, or NewInmemStore), a SnapshotStore (NewFileSnapshotStore, or
// NewInmemSnapshotStore) and a Transport (NewTCPTransport, NewTLSTransport,
// or NewInmemTransport in tests):
//
//	conf := raft.DefaultConfig()
//	conf.LocalID = "node1"
//	// First server of a new cluster, once: a node with state answers
//	// ErrCantBootstrap.
//	err := raft.BootstrapCluster(conf, logs, stable, snaps, trans,
//		raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: trans.LocalAddr()}}})
//	r, err := raft.NewRaft(conf, fsm, logs, stable, snaps, trans)
//
// Writes go through the leader: Apply returns a future whose Error is nil
// once the command is committed and applied to the FSM, and whose Response
// is what FSM.Apply returned. On a follower it fails with ErrNotLeader;
// LeaderWithID names the leader, LeaderCh and NotifyCh report this node's
// leadership as it changes. Membership changes (AddVoter, AddNonvoter,
// DemoteVoter, RemoveServer), Barrier, VerifyLeader, Snapshot, Restore and
// LeadershipTransfer are leader operations with futures too; GetConfiguration,
// State, Stats, LastContact and AppliedIndex can be read on any node.
// Shutdown stops the node; every future still waiting resolves.
//
// The package example (example_test.go) is a whole program; README.md has
// more, and the cmd/raftkv service shows a real one (disk stores, TCP,
// joins, linearizable reads, backups).
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
