package raftboltdb

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// diskNode is a node with everything on disk: raftbolt, the file snapshot
// store, the TCP transport. It restarts on the same address and directory.
type diskNode struct {
	t     *testing.T
	id    raft.ServerID
	addr  raft.ServerAddress
	dir   string
	store *BoltStore
	snaps *raft.FileSnapshotStore
	trans *raft.NetworkTransport
	fsm   *rafttest.FSM
	r     *raft.Raft
	logs  *lockedBuffer
	// tune, if set, adjusts the node's configuration before each start.
	tune func(*raft.Config)
	// journal opens the store in journal mode, with small files and a
	// small ring so that rotations, reuse and checkpoints all happen.
	journal bool
}

// lockedBuffer collects a node's log output for assertions.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func diskConfig(id raft.ServerID, out io.Writer) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = id
	conf.HeartbeatTimeout = 150 * time.Millisecond
	conf.ElectionTimeout = 150 * time.Millisecond
	conf.LeaderLeaseTimeout = 100 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = 1 << 30 // snapshots only when the test asks
	conf.SnapshotInterval = time.Hour
	conf.TrailingLogs = 20
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: string(id), Output: out, Level: hclog.Info})
	return conf
}

// open opens the node's stores and transport (binding its address).
func (n *diskNode) open() {
	n.t.Helper()
	var err error
	opts := Options{Path: filepath.Join(n.dir, "raft.db")}
	if n.journal {
		opts.Journal, opts.JournalSize, opts.JournalFiles = true, 16<<10, 3
	}
	if n.store, err = New(opts); err != nil {
		n.t.Fatal(err)
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(n.dir, 3, hclog.NewNullLogger()); err != nil {
		n.t.Fatal(err)
	}
	bind := "127.0.0.1:0"
	if n.addr != "" {
		bind = string(n.addr)
	}
	for attempt := 0; ; attempt++ {
		n.trans, err = raft.NewTCPTransportWithLogger(bind, nil, 3, 2*time.Second, hclog.NewNullLogger())
		if err == nil || attempt == 50 {
			break
		}
		time.Sleep(50 * time.Millisecond) // the old listener is closing
	}
	if err != nil {
		n.t.Fatal(err)
	}
	n.addr = n.trans.LocalAddr()
	n.fsm = rafttest.NewFSM()
}

func (n *diskNode) start() {
	n.t.Helper()
	conf := diskConfig(n.id, n.logs)
	if n.tune != nil {
		n.tune(conf)
	}
	r, err := raft.NewRaft(conf, n.fsm, n.store, n.store, n.snaps, n.trans)
	if err != nil {
		n.t.Fatalf("NewRaft %s: %v", n.id, err)
	}
	n.r = r
}

func (n *diskNode) stop() {
	n.t.Helper()
	if n.r == nil {
		return
	}
	if err := n.r.Shutdown().Error(); err != nil {
		n.t.Fatal(err)
	}
	n.trans.Close()
	n.store.Close()
	n.r = nil
}

func startDiskCluster(t *testing.T, size int) []*diskNode {
	t.Helper()
	return startTunedDiskCluster(t, size, nil)
}

// startTunedDiskCluster starts a cluster whose nodes' configurations tune
// adjusts.
func startTunedDiskCluster(t *testing.T, size int, tune func(*raft.Config)) []*diskNode {
	t.Helper()
	return startDiskClusterWith(t, size, tune, false)
}

// startDiskClusterWith starts a cluster whose nodes' configurations tune
// adjusts, with stores in journal mode if journal is set.
func startDiskClusterWith(t *testing.T, size int, tune func(*raft.Config), journal bool) []*diskNode {
	t.Helper()
	var nodes []*diskNode
	var servers []raft.Server
	for i := 0; i < size; i++ {
		n := &diskNode{t: t, id: raft.ServerID(fmt.Sprintf("n%d", i)), dir: t.TempDir(), logs: &lockedBuffer{}, tune: tune, journal: journal}
		n.open()
		nodes = append(nodes, n)
		servers = append(servers, raft.Server{ID: n.id, Address: n.addr})
	}
	for _, n := range nodes {
		if err := raft.BootstrapCluster(diskConfig(n.id, io.Discard), n.store, n.store, n.snaps, n.trans,
			raft.Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
		n.start()
	}
	t.Cleanup(func() {
		for _, n := range nodes {
			n.stop()
		}
	})
	return nodes
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func leaderOf(t *testing.T, nodes []*diskNode) *diskNode {
	t.Helper()
	var leader *diskNode
	waitFor(t, "a leader", func() bool {
		for _, n := range nodes {
			if n.r != nil && n.r.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// followerOf returns a node other than leader.
func followerOf(nodes []*diskNode, leader *diskNode) *diskNode {
	for _, n := range nodes {
		if n != leader {
			return n
		}
	}
	return nil
}

// snapshotAll takes a snapshot on every running node.
func snapshotAll(t *testing.T, nodes []*diskNode) {
	t.Helper()
	// A follower on a busy machine may not have applied anything yet, and
	// a node whose FSM has seen nothing has nothing to snapshot (hashicorp's
	// rule): wait until each has applied what the leader had.
	target := leaderOf(t, nodes).r.AppliedIndex()
	for _, n := range nodes {
		if n.r != nil {
			waitFor(t, fmt.Sprintf("%s to apply index %d", n.id, target), func() bool { return n.r.AppliedIndex() >= target })
		}
	}
	for _, n := range nodes {
		if n.r != nil {
			if err := n.r.Snapshot().Error(); err != nil {
				t.Fatalf("snapshot on %s: %v", n.id, err)
			}
		}
	}
}

// applyN writes n commands "<prefix>-<i>" through the leader, 50 in flight
// at a time. The tests keep the leader stable while they write, so any
// failure fails the test.
func applyN(t *testing.T, nodes []*diskNode, prefix string, n int) {
	t.Helper()
	const batch = 50
	for i := 0; i < n; i += batch {
		leader := leaderOf(t, nodes)
		var fs []raft.ApplyFuture
		for j := i; j < min(n, i+batch); j++ {
			fs = append(fs, leader.r.Apply([]byte(fmt.Sprintf("%s-%04d", prefix, j)), 5*time.Second))
		}
		for _, f := range fs {
			if err := f.Error(); err != nil {
				t.Fatalf("apply through %s: %v", leader.id, err)
			}
		}
	}
}

// checkFSMs waits until every running node's FSM holds exactly want, in
// order (the commands, excluding anything else).
func checkFSMs(t *testing.T, nodes []*diskNode, want []string) {
	t.Helper()
	for _, n := range nodes {
		if n.r == nil {
			continue
		}
		waitFor(t, fmt.Sprintf("%s to apply %d commands", n.id, len(want)), func() bool { return n.fsm.Len() >= len(want) })
		got := n.fsm.Logs()
		if len(got) != len(want) {
			t.Fatalf("%s applied %d commands; want %d", n.id, len(got), len(want))
		}
		for i := range want {
			if string(got[i]) != want[i] {
				t.Fatalf("%s command %d = %q; want %q", n.id, i, got[i], want[i])
			}
		}
	}
}

func expected(parts ...[2]any) []string {
	var out []string
	for _, p := range parts {
		for i := 0; i < p[1].(int); i++ {
			out = append(out, fmt.Sprintf("%s-%04d", p[0].(string), i))
		}
	}
	return out
}

// TestDiskClusterSurvivesFullRestart: a 3-node cluster on TCP with raftbolt
// and file snapshots converges, and after every node is stopped and
// started again (from a snapshot plus log) every write is still there.
func TestDiskClusterSurvivesFullRestart(t *testing.T) {
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) { testDiskClusterSurvivesFullRestart(t, journal) })
	}
}

func testDiskClusterSurvivesFullRestart(t *testing.T, journal bool) {
	nodes := startDiskClusterWith(t, 3, nil, journal)
	applyN(t, nodes, "a", 150)
	snapshotAll(t, nodes)
	applyN(t, nodes, "b", 60)
	want := expected([2]any{"a", 150}, [2]any{"b", 60})
	checkFSMs(t, nodes, want)

	terms := map[raft.ServerID]uint64{}
	for _, n := range nodes {
		terms[n.id] = n.r.CurrentTerm()
		n.stop()
	}
	for _, n := range nodes {
		n.open()
		n.start()
	}
	for _, n := range nodes {
		if got := n.r.CurrentTerm(); got < terms[n.id] {
			t.Fatalf("%s came back with term %d, below %d", n.id, got, terms[n.id])
		}
	}
	applyN(t, nodes, "c", 10)
	checkFSMs(t, nodes, append(want, expected([2]any{"c", 10})...))
}

// TestDiskRestoreCommittedLogs: with Config.RestoreCommittedLogs (v1.8,
// set while the cluster runs, so that the commit index is stored) a node
// restarted alone, with no leader to tell it the commit index, applies
// what its raftbolt store recorded as committed before serving; without it
// the lone node's FSM has only its snapshot.
func TestDiskRestoreCommittedLogs(t *testing.T) {
	for _, restore := range []bool{true, false} {
		t.Run(fmt.Sprintf("restore=%v", restore), func(t *testing.T) {
			nodes := startTunedDiskCluster(t, 3, func(c *raft.Config) { c.RestoreCommittedLogs = restore })
			applyN(t, nodes, "a", 30)
			checkFSMs(t, nodes, expected([2]any{"a", 30}))
			snapshotAll(t, nodes)
			applyN(t, nodes, "b", 100)
			// Written after every "b" entry committed: the followers
			// store the commit index with these entries.
			applyN(t, nodes, "c", 5)
			checkFSMs(t, nodes, expected([2]any{"a", 30}, [2]any{"b", 100}, [2]any{"c", 5}))
			lone := followerOf(nodes, leaderOf(t, nodes))
			for _, n := range nodes {
				n.stop()
			}
			lone.open()
			lone.start()
			got := lone.fsm.Logs() // NewRaft returns after the replay
			want := expected([2]any{"a", 30})
			if restore {
				want = expected([2]any{"a", 30}, [2]any{"b", 100})
			}
			if len(got) < len(want) {
				t.Fatalf("the lone node applied %d commands at start; want at least %d", len(got), len(want))
			}
			for i := range want {
				if string(got[i]) != want[i] {
					t.Fatalf("command %d = %q; want %q", i, got[i], want[i])
				}
			}
			if !restore && len(got) != len(want) {
				t.Fatalf("without RestoreCommittedLogs the lone node applied %d commands; its snapshot has %d", len(got), len(want))
			}
			if lone.r.State() == raft.Leader {
				t.Fatal("a lone node of three became leader")
			}
		})
	}
}

// TestDiskFollowerDownAcrossCompaction: a follower that was down while the
// others compacted far past its log comes back through InstallSnapshot.
func TestDiskFollowerDownAcrossCompaction(t *testing.T) {
	for _, journal := range []bool{false, true} {
		t.Run(fmt.Sprintf("journal=%v", journal), func(t *testing.T) { testDiskFollowerDownAcrossCompaction(t, journal) })
	}
}

func testDiskFollowerDownAcrossCompaction(t *testing.T, journal bool) {
	nodes := startDiskClusterWith(t, 3, nil, journal)
	applyN(t, nodes, "a", 50)
	leader := leaderOf(t, nodes)
	down := followerOf(nodes, leader)
	down.stop()
	applyN(t, nodes, "b", 2500)
	snapshotAll(t, nodes)
	first, _ := leader.store.FirstIndex()
	downLast, _ := lastIndexOnDisk(t, down)
	if first <= downLast+1 {
		t.Fatalf("the leader's log starts at %d, not past the stopped follower's last %d", first, downLast)
	}
	down.open()
	down.start()
	want := expected([2]any{"a", 50}, [2]any{"b", 2500})
	checkFSMs(t, nodes, want)
	if !strings.Contains(down.logs.String(), "copied to local snapshot") {
		t.Fatalf("the follower caught up without installing a snapshot; its log:\n%s", down.logs.String())
	}
}

// lastIndexOnDisk opens a stopped node's database and reads its last index.
func lastIndexOnDisk(t *testing.T, n *diskNode) (uint64, error) {
	t.Helper()
	s, err := NewBoltStore(filepath.Join(n.dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return s.LastIndex()
}

// TestDiskCorruptNewestSnapshotNoOlderConnects is the case hashicorp/raft
// v1.7.3 panics on in NewRaft ("log not found"): the newest snapshot's data
// is corrupt and the older snapshot ends before the log begins (the entries
// between were compacted). The node comes back: it keeps its term, vote and
// log, does not stand for election while entries are missing, gets what it
// lacks from the leader, and ends with every write.
func TestDiskCorruptNewestSnapshotNoOlderConnects(t *testing.T) {
	// The leader still has the missing entries (in its log or its
	// in-memory tail): they come as AppendEntries.
	t.Run("FilledByEntries", func(t *testing.T) { testCorruptNewestSnapshot(t, 30, false) })
	// The leader has compacted far past them: a snapshot comes.
	t.Run("FilledBySnapshot", func(t *testing.T) { testCorruptNewestSnapshot(t, 2500, true) })
}

func testCorruptNewestSnapshot(t *testing.T, catchUp int, viaSnapshot bool) {
	nodes := startDiskCluster(t, 3)
	applyN(t, nodes, "a", 40)
	victim := followerOf(nodes, leaderOf(t, nodes))
	waitFor(t, "the victim to apply", func() bool { return victim.fsm.Len() == 40 })
	// Older snapshot at ~41, then many entries, then the newest snapshot,
	// whose compaction (TrailingLogs 20) removes the entries after the
	// older one.
	if err := victim.r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	applyN(t, nodes, "b", 200)
	waitFor(t, "the victim to apply", func() bool { return victim.fsm.Len() == 240 })
	if err := victim.r.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	metas, err := victim.snaps.List()
	if err != nil || len(metas) < 2 {
		t.Fatalf("victim has %d snapshots (%v); want 2", len(metas), err)
	}
	newest, older := metas[0], metas[1]
	firstLog, _ := victim.store.FirstIndex()
	if firstLog <= older.Index+1 {
		t.Fatalf("log starts at %d, still connected to the older snapshot at %d", firstLog, older.Index)
	}
	termBefore := victim.r.CurrentTerm()
	lastBefore := victim.r.LastIndex()
	victim.stop()

	state := filepath.Join(victim.dir, "snapshots", newest.ID, "state.bin")
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(state, data, 0o644); err != nil {
		t.Fatal(err)
	}

	// The others move on meanwhile and compact too, so the leader must
	// send a snapshot or the entries.
	applyN(t, nodes, "c", catchUp)
	if viaSnapshot {
		snapshotAll(t, nodes)
	}

	victim.open()
	victim.start() // must not fail or panic
	if got := victim.r.CurrentTerm(); got < termBefore {
		t.Fatalf("term went back from %d to %d", termBefore, got)
	}
	if got := victim.r.LastIndex(); got < lastBefore {
		t.Fatalf("last index went back from %d to %d: the log was not kept", lastBefore, got)
	}
	if !strings.Contains(victim.logs.String(), "log entries are missing") {
		t.Fatalf("no log line about the missing entries:\n%s", victim.logs.String())
	}
	want := expected([2]any{"a", 40}, [2]any{"b", 200}, [2]any{"c", catchUp})
	checkFSMs(t, nodes, want)
	if got := strings.Contains(victim.logs.String(), "copied to local snapshot"); got != viaSnapshot {
		t.Fatalf("installed a snapshot: %v; want %v", got, viaSnapshot)
	}

	// Whole again: it can lead.
	applyN(t, nodes, "d", 5)
	if err := leaderOf(t, nodes).r.LeadershipTransferToServer(victim.id, victim.addr).Error(); err != nil {
		t.Fatalf("transfer to the recovered node: %v", err)
	}
	waitFor(t, "the recovered node to lead", func() bool { return victim.r.State() == raft.Leader })
	applyN(t, nodes, "e", 5)
	checkFSMs(t, nodes, append(want, expected([2]any{"d", 5}, [2]any{"e", 5})...))
}
