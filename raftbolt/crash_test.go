package raftboltdb

// Crash tests with real processes: the test binary runs itself as a child
// node (raftbolt with fsync, the file snapshot store) that writes from many
// clients and prints each write once its Apply has returned. The parent kills
// the child with SIGKILL at a moment drawn from a seeded source, reopens the
// node's files in its own process, and checks that every acknowledged write
// is in the FSM, exactly once.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft"
)

const (
	envCrashDir  = "RAFTBOLT_CRASH_DIR"
	envCrashMode = "RAFTBOLT_CRASH_MODE"
	envCrashTag  = "RAFTBOLT_CRASH_TAG"

	// envCrashJournal=1 makes the child open its store in journal mode.
	envCrashJournal = "RAFTBOLT_CRASH_JOURNAL"
)

// crashFSM records commands. Its snapshots are JSON; with tear set, Persist
// writes half of the snapshot, says so on stdout, and waits to be killed.
type crashFSM struct {
	mu   sync.Mutex
	cmds []string
	tear bool
}

func (f *crashFSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	f.mu.Lock()
	f.cmds = append(f.cmds, string(l.Data))
	f.mu.Unlock()
	return nil
}

func (f *crashFSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := json.Marshal(f.cmds)
	if err != nil {
		return nil, err
	}
	return &crashSnapshot{data: data, tear: f.tear}, nil
}

func (f *crashFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var cmds []string
	if err := json.NewDecoder(rc).Decode(&cmds); err != nil {
		return fmt.Errorf("crash FSM: decode snapshot: %w", err)
	}
	f.mu.Lock()
	f.cmds = cmds
	f.mu.Unlock()
	return nil
}

func (f *crashFSM) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

type crashSnapshot struct {
	data []byte
	tear bool
}

func (s *crashSnapshot) Persist(sink raft.SnapshotSink) error {
	if s.tear {
		if _, err := sink.Write(s.data[:len(s.data)/2]); err != nil {
			return err
		}
		fmt.Fprintf(os.Stdout, "persisting %s\n", sink.ID())
		select {} // killed here
	}
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *crashSnapshot) Release() {}

func crashConfig(out io.Writer) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = "solo"
	conf.HeartbeatTimeout = 100 * time.Millisecond
	conf.ElectionTimeout = 100 * time.Millisecond
	conf.LeaderLeaseTimeout = 100 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	// Snapshots and compaction run often during the burst, so that some
	// kills land in the middle of one.
	conf.SnapshotInterval = 30 * time.Millisecond
	conf.SnapshotThreshold = 150
	conf.TrailingLogs = 50
	conf.Logger = hclog.New(&hclog.LoggerOptions{Name: "solo", Output: out, Level: hclog.Warn})
	return conf
}

// openSolo opens (bootstrapping if new) the single-node cluster in dir.
func openSolo(dir string, fsm raft.FSM, logOut io.Writer) (*raft.Raft, *BoltStore, error) {
	opts := Options{Path: filepath.Join(dir, "raft.db")}
	if os.Getenv(envCrashJournal) == "1" {
		// Small files, few of them: the kills land amid rotations, reuse
		// of files freed by compaction, deletion records and checkpoints
		// of a full ring.
		opts.Journal, opts.JournalSize, opts.JournalFiles = true, 8<<10, 3
	}
	store, err := New(opts)
	if err != nil {
		return nil, nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	addr, trans := raft.NewInmemTransport("")
	conf := crashConfig(logOut)
	has, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	if !has {
		boot := raft.Configuration{Servers: []raft.Server{{ID: conf.LocalID, Address: addr}}}
		if err := raft.BootstrapCluster(conf, store, store, snaps, trans, boot); err != nil {
			store.Close()
			return nil, nil, err
		}
	}
	r, err := raft.NewRaft(conf, fsm, store, store, snaps, trans)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return r, store, nil
}

// TestCrashChild is the child process; it does nothing in a normal run.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("runs only as the child of the crash tests")
	}
	fsm := &crashFSM{}
	r, _, err := openSolo(dir, fsm, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stdout, "error %v\n", err)
		os.Exit(3)
	}
	for r.State() != raft.Leader {
		time.Sleep(5 * time.Millisecond)
	}
	if err := r.Barrier(0).Error(); err != nil {
		fmt.Fprintf(os.Stdout, "error %v\n", err)
		os.Exit(3)
	}
	tag := os.Getenv(envCrashTag)
	if os.Getenv(envCrashMode) == "tear" {
		// Writes first, then a snapshot that never completes.
		for i := 0; i < 100; i++ {
			cmd := fmt.Sprintf("%s-t-%d", tag, i)
			if err := r.Apply([]byte(cmd), 0).Error(); err != nil {
				fmt.Fprintf(os.Stdout, "error %v\n", err)
				os.Exit(3)
			}
			fmt.Fprintf(os.Stdout, "ack %s\n", cmd)
		}
		fsm.mu.Lock()
		fsm.tear = true
		fsm.mu.Unlock()
		_ = r.Snapshot().Error() // blocks in Persist until killed
		select {}
	}
	fmt.Fprintln(os.Stdout, "ready")
	var out sync.Mutex
	for c := 0; c < 16; c++ {
		go func() {
			for i := 0; ; i++ {
				cmd := fmt.Sprintf("%s-%d-%d", tag, c, i)
				if err := r.Apply([]byte(cmd), 0).Error(); err != nil {
					continue // not acknowledged
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "ack %s\n", cmd)
				out.Unlock()
			}
		}()
	}
	select {}
}

// child is a running child process and what it has printed.
type child struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *lockedBuffer
	done   chan struct{}
}

func startChild(t *testing.T, dir, mode, tag string, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashDir+"="+dir, envCrashMode+"="+mode, envCrashTag+"="+tag)
	cmd.Env = append(cmd.Env, env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 1<<16), stderr: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = c.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return c
}

// kill sends SIGKILL, waits for the process, and returns the lines it
// printed that were not read yet.
func (c *child) kill(t *testing.T) []string {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-c.done
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Exited() {
		t.Fatalf("the child did not die of the kill: %v\nstderr:\n%s", err, c.stderr.String())
	}
	var rest []string
	for l := range c.lines {
		rest = append(rest, l)
	}
	return rest
}

// next returns the child's next line, failing after a generous wait.
func (c *child) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatalf("the child exited early; stderr:\n%s", c.stderr.String())
		}
		if strings.HasPrefix(l, "error ") {
			t.Fatalf("child: %s; stderr:\n%s", l, c.stderr.String())
		}
		return l
	case <-time.After(60 * time.Second):
		t.Fatalf("the child said nothing for a minute; stderr:\n%s", c.stderr.String())
	}
	return ""
}

// verifyAcked reopens the node in this process and checks that every
// acknowledged command was applied exactly once.
func verifyAcked(t *testing.T, dir string, acked map[string]bool) {
	t.Helper()
	fsm := &crashFSM{}
	logs := &lockedBuffer{}
	r, store, err := openSolo(dir, fsm, logs)
	if err != nil {
		t.Fatalf("reopen after the kill: %v", err)
	}
	defer func() {
		_ = r.Shutdown().Error()
		store.Close()
	}()
	waitFor(t, "the reopened node to lead", func() bool { return r.State() == raft.Leader })
	barrier := make(chan error, 1)
	go func() { barrier <- r.Barrier(10 * time.Second).Error() }()
	select {
	case err := <-barrier:
		if err != nil {
			t.Fatalf("barrier after the kill: %v; node log:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the reopened node applies nothing; node log:\n%s", logs.String())
	}
	seen := make(map[string]int)
	for _, c := range fsm.commands() {
		seen[c]++
	}
	missing := 0
	for c := range acked {
		if seen[c] == 0 {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged write %q is lost", c)
			}
		}
	}
	for c, n := range seen {
		if n > 1 {
			t.Errorf("write %q applied %d times", c, n)
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d acknowledged writes lost; node log:\n%s", missing, len(acked), logs.String())
	}
}

func crashSeed(t *testing.T) uint64 {
	if s := os.Getenv("RAFTBOLT_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("RAFTBOLT_CRASH_SEED: %v", err)
		}
		return v
	}
	return 7
}

// TestCrashKillDuringWriteBurst kills the node several times in the middle
// of a burst from 16 clients (with snapshots and compaction running); each
// time every write it had acknowledged is there after the restart.
func TestCrashKillDuringWriteBurst(t *testing.T) {
	testCrashKillDuringWriteBurst(t)
}

// TestCrashKillDuringWriteBurstJournal is the same with the child's store
// in journal mode; each reopen in this process is a plain open, which
// replays the journal the killed child left.
func TestCrashKillDuringWriteBurstJournal(t *testing.T) {
	testCrashKillDuringWriteBurst(t, envCrashJournal+"=1")
}

func testCrashKillDuringWriteBurst(t *testing.T, env ...string) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	seed := crashSeed(t)
	t.Logf("seed %d (RAFTBOLT_CRASH_SEED replays the kill points)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	acked := map[string]bool{}
	for round := 0; round < 4; round++ {
		c := startChild(t, dir, "burst", fmt.Sprintf("r%d", round), env...)
		if l := c.next(t); l != "ready" {
			t.Fatalf("child said %q before ready", l)
		}
		// Kill after a number of acknowledgements drawn from the seed.
		for n := 200 + rng.IntN(1500); n > 0; {
			l := c.next(t)
			if cmd, ok := strings.CutPrefix(l, "ack "); ok {
				acked[cmd] = true
				n--
			}
		}
		for _, l := range c.kill(t) {
			if cmd, ok := strings.CutPrefix(l, "ack "); ok {
				acked[cmd] = true
			}
		}
		verifyAcked(t, dir, acked)
	}
	t.Logf("%d acknowledged writes survived 4 kills", len(acked))
}

// TestCrashTornSnapshotIgnored kills the node while it writes a snapshot,
// half of whose state is on disk: the torn snapshot is ignored, the node
// starts from its older state, no write is lost, and the next completed
// snapshot removes the torn one's directory.
func TestCrashTornSnapshotIgnored(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	// A first snapshot completes normally in a burst.
	c := startChild(t, dir, "burst", "warm")
	if l := c.next(t); l != "ready" {
		t.Fatalf("child said %q before ready", l)
	}
	// At least 800 writes, and on until a snapshot has completed (its
	// directory renamed from .tmp): how many writes that takes depends on
	// the machine's speed.
	for n := 800; n > 0 || !completedSnapshot(t, dir); {
		if cmd, ok := strings.CutPrefix(c.next(t), "ack "); ok {
			acked[cmd] = true
			n--
		}
	}
	for _, l := range c.kill(t) {
		if cmd, ok := strings.CutPrefix(l, "ack "); ok {
			acked[cmd] = true
		}
	}

	c = startChild(t, dir, "tear", "tear")
	var torn string
	for torn == "" {
		l := c.next(t)
		if cmd, ok := strings.CutPrefix(l, "ack "); ok {
			acked[cmd] = true
		}
		if id, ok := strings.CutPrefix(l, "persisting "); ok {
			torn = id
		}
	}
	c.kill(t)
	tmp := filepath.Join(dir, "snapshots", torn+".tmp")
	if _, err := os.Stat(filepath.Join(tmp, "state.bin")); err != nil {
		t.Fatalf("the torn snapshot is not on disk: %v", err)
	}

	verifyAcked(t, dir, acked)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	metas, err := snaps.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range metas {
		if m.ID == torn {
			t.Fatalf("the torn snapshot %s is listed", torn)
		}
	}
	if len(metas) == 0 {
		t.Fatal("no completed snapshot is listed")
	}
	// The next completed snapshot reaps the crashed one's directory.
	sink, err := snaps.Create(raft.SnapshotVersionMax, metas[0].Index+1, metas[0].Term, metas[0].Configuration,
		metas[0].ConfigurationIndex, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.Write([]byte("[]")); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("the torn snapshot directory %s is still there after a snapshot completed (%v)", tmp, err)
	}
}

// completedSnapshot reports whether a snapshot directory in dir has been
// completed (renamed from its .tmp name).
func completedSnapshot(t *testing.T, dir string) bool {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() && !strings.HasSuffix(e.Name(), ".tmp") {
			return true
		}
	}
	return false
}
