// Command raftkv is a replicated key-value service on the raft library: a
// node stores its log in raftbolt, its snapshots in a FileSnapshotStore,
// talks to the others over TCP (mutual TLS with -tls-*) and serves an HTTP
// API. "raftkv demo" runs a 3-node cluster of processes on loopback and
// shows a leader failing over.
//
//	raftkv -id n1 -raft 127.0.0.1:7001 -http 127.0.0.1:8001 -data ./data/n1 -bootstrap
//	raftkv -id n2 -raft 127.0.0.1:7002 -http 127.0.0.1:8002 -data ./data/n2 -join 127.0.0.1:8001
//	raftkv demo
//
// HTTP API (any node; writes sent to a follower are
// forwarded to the leader):
//
//	PUT    /kv/{key}           body = value; 204 once committed and applied
//	GET    /kv/{key}           linearizable read on this node; ?consistency=lease|stale
//	DELETE /kv/{key}           204 once committed and applied
//	POST   /join               {"id", "raft_addr", "http_addr"}: add a voter
//	DELETE /members/{id}       remove a server
//	GET    /status             JSON: state, term, leader, indexes, configuration, peers
//	GET    /metrics            Prometheus text format
//	POST   /snapshot           take a snapshot on this node
//	POST   /leader/transfer    hand leadership to another voter (?id= to pick one)
//	GET    /backup             a fresh snapshot of this node's state
//	POST   /restore            body = a backup: the leader restores it for the cluster
//
// A file <data>/peers.json present at start recovers a cluster that lost its
// quorum (raft.RecoverCluster); it is renamed peers.json.applied.
//
// Errors are plain text: 400 for a bad key or body, 409 for a request that
// conflicts with the cluster (a join naming another member's address, a
// transfer to the leader itself), 410 on a node removed from the cluster,
// 413 for a value above 1 MiB, 404 for a missing key, 503 with Retry-After
// when there is no leader or it changed (nothing was applied, unless the response carries
// X-Raftkv-Outcome: unknown, in which case the write may have been), 502
// when the leader failed while serving a forwarded request (a write's
// outcome is then unknown too).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "demo" {
		err = runDemo(os.Args[2:])
	} else {
		err = runNode(os.Args[1:])
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "raftkv:", err)
		os.Exit(1)
	}
}
