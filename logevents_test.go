package raft_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	raft "github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/rafttest"
)

// logEvent is one line operators and their alerting look for: hashicorp/
// raft's message, level and key names, which this library keeps.
type logEvent struct {
	level string // hclog's JSON level: trace, debug, info, warn, error
	msg   string
	keys  []string
}

// hashicorpLogEvents are the events a cluster's life below brings about,
// each as hashicorp/raft v1.7.3 logs it.
var hashicorpLogEvents = []logEvent{
	// Start and restart.
	{"info", "initial configuration", []string{"index", "servers"}},
	{"info", "entering follower state", []string{"follower", "leader-address", "leader-id"}},
	{"info", "starting restore from snapshot", []string{"id", "last-index", "last-term", "size-in-bytes"}},
	{"info", "snapshot restore progress", []string{"id", "last-index", "last-term", "size-in-bytes", "read-bytes", "percent-complete"}},
	{"info", "restored from snapshot", []string{"id", "last-index", "last-term", "size-in-bytes"}},
	// Elections.
	{"warn", "heartbeat timeout reached, starting election", []string{"last-leader-addr", "last-leader-id"}},
	{"info", "entering candidate state", []string{"node", "term"}},
	{"debug", "calculated votes needed", []string{"needed", "term"}},
	{"debug", "pre-voting for self", []string{"term", "id"}},
	{"debug", "asking for pre-vote", []string{"term", "from", "address"}},
	{"debug", "pre-vote received", []string{"from", "term", "tally"}},
	{"debug", "pre-vote granted", []string{"from", "term", "tally"}},
	{"debug", "pre-vote denied", []string{"from", "term", "tally"}},
	{"info", "pre-vote successful, starting election", []string{"term", "tally", "refused", "votesNeeded"}},
	{"info", "pre-vote campaign failed, waiting for election timeout", []string{"term", "tally", "refused", "votesNeeded"}},
	{"warn", "rejecting pre-vote request since we have a leader", []string{"from", "leader", "leader-id"}},
	{"error", "failed to make requestVote RPC", []string{"target", "error", "term"}},
	{"debug", "voting for self", []string{"term", "id"}},
	{"debug", "asking for vote", []string{"term", "from", "address"}},
	{"debug", "vote granted", []string{"from", "term", "tally"}},
	{"info", "election won", []string{"term", "tally"}},
	{"info", "entering leader state", []string{"leader"}},
	{"warn", "Election timeout reached, restarting election", nil},
	// Replication.
	{"info", "added peer, starting replication", []string{"peer"}},
	{"info", "pipelining replication", []string{"peer"}},
	{"error", "failed to heartbeat to", []string{"peer", "backoff time", "error"}},
	{"warn", "failed to get previous log", []string{"previous-index", "last-index", "error"}},
	// Snapshots.
	{"info", "starting snapshot up to", []string{"index"}},
	{"info", "snapshot complete up to", []string{"index"}},
	{"info", "compacting logs", []string{"from", "to"}},
	{"info", "opening snapshot", []string{"id"}},
	{"info", "installing snapshot on", []string{"peer", "id", "size"}},
	{"info", "snapshot network transfer progress", []string{"read-bytes", "percent-complete"}},
	{"info", "copied to local snapshot", []string{"bytes"}},
	{"info", "snapshot restore progress", []string{"read-bytes", "percent-complete"}},
	{"info", "Installed remote snapshot", nil},
	// Membership and leadership.
	{"info", "updating configuration", []string{"command", "server-id", "server-addr", "servers"}},
	{"info", "removed peer, stopping replication", []string{"peer", "last-index"}},
	{"debug", "starting leadership transfer", []string{"id", "address"}},
	{"debug", "lost leadership during transfer (expected)", nil},
}

// logLines collects the JSON lines of every node's logger.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// events returns, for each message, the key sets it was logged with, by
// level.
func (l *logLines) events(t *testing.T) map[string]map[string][][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]map[string][][]string{}
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("a log line is not JSON: %q: %v", sc.Text(), err)
		}
		msg, _ := line["@message"].(string)
		level, _ := line["@level"].(string)
		var keys []string
		for k := range line {
			if !strings.HasPrefix(k, "@") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		if out[msg] == nil {
			out[msg] = map[string][][]string{}
		}
		out[msg][level] = append(out[msg][level], keys)
	}
	return out
}

// TestLogEventsAsHashicorpLogsThem drives a cluster through start, an
// election, a follower cut off from the leader (its pre-votes fail, the
// others refuse them while they have a leader), a snapshot sent to it,
// membership changes, a leadership transfer and a restart, and checks that
// each event of hashicorpLogEvents was logged with hashicorp/raft's
// message, level and exactly its keys.
func TestLogEventsAsHashicorpLogsThem(t *testing.T) {
	logs := &logLines{}
	inBubble(t, 3, func(t *testing.T, c *rafttest.Cluster) {
		leader := c.WaitLeader()
		c.ApplyN(leader, "a", 10)

		// A follower cut off from the leader only: the leader's heartbeats
		// to it fail, its pre-votes fail at the leader and are refused by
		// the third node, which still has a leader.
		cut := c.Others(leader)[0]
		c.Cut(leader, cut)
		time.Sleep(2 * time.Second)

		// Meanwhile the leader moves on and compacts past the cut node,
		// beyond the 1024 entries it keeps in memory too.
		c.ApplyN(leader, "b", 2000)
		if err := leader.Raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
		c.ApplyN(leader, "c", 5)
		c.Heal()
		c.WaitApplied(2015)

		// Membership: a fifth node added and removed again.
		extra := c.AddNode()
		l := c.WaitLeader()
		if err := l.Raft.AddVoter(extra.ID, extra.Addr, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		c.WaitFor(5*time.Second, "the new voter to catch up", func() bool {
			return extra.Raft.AppliedIndex() >= l.Raft.AppliedIndex()
		})
		if err := l.Raft.RemoveServer(extra.ID, 0, time.Second).Error(); err != nil {
			t.Fatal(err)
		}
		if err := l.Raft.LeadershipTransfer().Error(); err != nil {
			t.Fatal(err)
		}

		// A restart of the node that took the snapshot: it restores it.
		c.Restart(leader)
		c.WaitFor(5*time.Second, "the restarted node to catch up", func() bool {
			return leader.Raft.AppliedIndex() >= c.WaitLeader().Raft.AppliedIndex()
		})
	}, rafttest.WithConfig(func(conf *raft.Config) {
		conf.Logger = hclog.New(&hclog.LoggerOptions{Name: string(conf.LocalID), JSONFormat: true, Output: logs, Level: hclog.Trace})
		conf.TrailingLogs = 5
		conf.SnapshotThreshold = 1 << 30
	}))

	seen := logs.events(t)
	for _, ev := range hashicorpLogEvents {
		byLevel := seen[ev.msg]
		if len(byLevel) == 0 {
			t.Errorf("%q (%s) was never logged", ev.msg, ev.level)
			continue
		}
		got, ok := byLevel[ev.level]
		if !ok {
			t.Errorf("%q logged at %v, want %s", ev.msg, slices.Sorted(maps.Keys(byLevel)), ev.level)
			continue
		}
		want := slices.Sorted(slices.Values(ev.keys))
		match := false
		for _, keys := range got {
			match = match || slices.Equal(keys, want)
		}
		if !match {
			t.Errorf("%q logged with keys %v, want %v", ev.msg, got[0], want)
		}
	}
}
