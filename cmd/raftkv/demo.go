package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"
)

// runDemo starts a 3-node cluster as processes on loopback, writes, kills
// the leader, shows the failover and the catch-up of the restarted node,
// and leaves nothing running behind it.
func runDemo(args []string) error {
	fs := flag.NewFlagSet("raftkv demo", flag.ContinueOnError)
	writes := fs.Int("writes", 3000, "writes before the failover")
	clients := fs.Int("clients", 16, "concurrent HTTP clients")
	keep := fs.Bool("keep", false, "keep the data directory and node logs")
	if err := fs.Parse(args); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to run its nodes: %w", err)
	}
	dir, err := os.MkdirTemp("", "raftkv-demo-")
	if err != nil {
		return err
	}
	d := &demo{exe: exe, dir: dir, client: newKVClient(), start: time.Now(), acked: map[string][]byte{}}
	defer func() {
		d.stopAll()
		if *keep {
			fmt.Printf("data and logs kept in %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()
	// Ctrl-C: stop the nodes cleanly, then exit.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Println("interrupted: stopping the nodes")
		d.stopAll()
		if !*keep {
			os.RemoveAll(dir)
		}
		os.Exit(1)
	}()
	err = d.run(*writes, *clients)
	if err != nil {
		for _, p := range d.procs {
			fmt.Fprintf(os.Stderr, "--- last lines of %s's log (%s):\n%s\n", p.id, p.logPath, p.logTail(15))
		}
	}
	return err
}

type demo struct {
	exe, dir string
	client   *kvClient
	start    time.Time
	mu       sync.Mutex
	procs    []*proc
	acked    map[string][]byte // every acknowledged write
	seq      int
}

func (d *demo) say(format string, args ...any) {
	fmt.Printf("[%5.1fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) stopAll() {
	d.mu.Lock()
	procs := slices.Clone(d.procs)
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

// flags of the demo's nodes: a LAN setting that fails over in about a
// second.
var demoTimeouts = []string{"-heartbeat-timeout", "500ms", "-election-timeout", "500ms", "-snapshot-threshold", "1024",
	// Autopilot promotes the joining nodes quickly.
	"-autopilot-update-interval", "200ms", "-autopilot-reconcile-interval", "500ms", "-autopilot-server-stabilization-time", "1s"}

func (d *demo) run(writes, clients int) error {
	fmt.Printf("raftkv demo: 3 nodes as processes on loopback; data and logs in %s\n", d.dir)
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		args := append([]string{"-bootstrap"}, demoTimeouts...)
		if i > 1 {
			args = append([]string{"-join", d.procs[0].httpAddr}, demoTimeouts...)
		}
		p, err := newProc(d.dir, id, args...)
		if err != nil {
			return err
		}
		if err := p.start(d.exe); err != nil {
			return err
		}
		d.mu.Lock()
		d.procs = append(d.procs, p)
		d.mu.Unlock()
		d.say("started %s (pid %d): raft %s, http %s%s", id, p.cmd.Process.Pid, p.raftAddr, p.httpAddr,
			map[bool]string{true: ", bootstraps the cluster", false: ", joins through n1"}[i == 1])
	}
	leader, err := d.client.waitReady(30*time.Second, d.procs)
	if err != nil {
		return err
	}
	d.say("cluster ready: %s leads, voters n1 n2 n3 (n2 and n3 joined as nonvoters; autopilot promoted them)", leader.id)

	// Writes through the leader from concurrent clients.
	took, lat, err := d.writeBurst(leader, writes, clients)
	if err != nil {
		return err
	}
	rate := float64(writes) / took.Seconds()
	d.say("%d writes from %d clients in %.2fs: %.0f writes/s, latency p50 %v, p99 %v",
		writes, clients, took.Seconds(), rate, pct(lat, 50), pct(lat, 99))

	follower := d.other(leader)
	if err := d.verifyAll(follower); err != nil {
		return err
	}
	d.say("read all %d keys back through follower %s (linearizable reads served by the follower, its read index from the leader): all match", len(d.acked), follower.id)

	// Kill the leader and time the failover.
	d.say("killing the leader %s with SIGKILL (pid %d)", leader.id, leader.cmd.Process.Pid)
	killed := leader
	killedAt := time.Now()
	before := len(d.acked)
	killed.kill()
	var survivors []*proc
	for _, p := range d.procs {
		if p != killed {
			survivors = append(survivors, p)
		}
	}
	var failover time.Duration
	err = waitFor(20*time.Second, "a write on a new leader", func() bool {
		target := survivors[rand.IntN(len(survivors))]
		if d.put(target) == nil {
			failover = time.Since(killedAt)
			return true
		}
		return false
	})
	if err != nil {
		return err
	}
	newLeader, err := d.leaderAmong(survivors)
	if err != nil {
		return err
	}
	d.say("%s took over: first write committed %v after the kill", newLeader.id, failover.Round(time.Millisecond))
	if _, _, err := d.writeBurst(newLeader, writes/4, clients); err != nil {
		return err
	}
	if err := d.verifyAll(newLeader); err != nil {
		return err
	}
	d.say("every acknowledged write (%d, %d of them made while %s was down) reads back through %s",
		len(d.acked), len(d.acked)-before, killed.id, newLeader.id)

	// Restart the killed node and watch it catch up.
	if err := killed.start(d.exe); err != nil {
		return err
	}
	restartedAt := time.Now()
	st, err := d.client.status(newLeader.httpAddr)
	if err != nil {
		return err
	}
	target := st.CommitIndex
	err = waitFor(30*time.Second, killed.id+" to catch up", func() bool {
		s, err := d.client.status(killed.httpAddr)
		return err == nil && s.AppliedIndex >= target
	})
	if err != nil {
		return err
	}
	catchUp := time.Since(restartedAt)
	stale := 0
	for key, want := range d.acked {
		got, err := d.client.getStale(killed.httpAddr, key)
		if err != nil || !bytes.Equal(got, want) {
			stale++
		}
	}
	if stale > 0 {
		return fmt.Errorf("%d acknowledged writes missing from %s's own state after catching up", stale, killed.id)
	}
	d.say("restarted %s from its data directory: caught up to index %d in %v; its own state (stale reads) holds all %d writes",
		killed.id, target, catchUp.Round(time.Millisecond), len(d.acked))

	fmt.Printf("\nsummary: %d writes acknowledged, none lost; %.0f writes/s with %d clients (fsync on every node); failover %v; catch-up %v\n",
		len(d.acked), rate, clients, failover.Round(time.Millisecond), catchUp.Round(time.Millisecond))
	d.stopAll()
	for _, p := range d.procs {
		if p.running() {
			return fmt.Errorf("%s still running after the stop", p.id)
		}
	}
	fmt.Println("all nodes stopped")
	return nil
}

func (d *demo) other(not *proc) *proc {
	for _, p := range d.procs {
		if p != not {
			return p
		}
	}
	return nil
}

func (d *demo) leaderAmong(procs []*proc) (*proc, error) {
	var leader *proc
	err := waitFor(10*time.Second, "the new leader", func() bool {
		for _, p := range procs {
			if st, err := d.client.status(p.httpAddr); err == nil && st.State == "Leader" {
				leader = p
				return true
			}
		}
		return false
	})
	return leader, err
}

// put writes the next key through p and records it once acknowledged.
// Only a 503 without an unknown outcome is retried by callers: anything
// else may have been applied.
func (d *demo) put(p *proc) error {
	d.mu.Lock()
	d.seq++
	key := fmt.Sprintf("demo/key-%06d", d.seq)
	d.mu.Unlock()
	value := fmt.Appendf(nil, "value %d written at %s", d.seq, time.Now().Format(time.RFC3339Nano))
	if err := d.client.put(p.httpAddr, key, value); err != nil {
		return err
	}
	d.mu.Lock()
	d.acked[key] = value
	d.mu.Unlock()
	return nil
}

// writeBurst sends n writes through p from the given number of clients.
func (d *demo) writeBurst(p *proc, n, clients int) (time.Duration, []time.Duration, error) {
	var (
		mu    sync.Mutex
		lat   []time.Duration
		errs  []error
		wg    sync.WaitGroup
		left  = n
		begin = time.Now()
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if left == 0 || len(errs) > 0 {
					mu.Unlock()
					return
				}
				left--
				mu.Unlock()
				t0 := time.Now()
				err := d.put(p)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					lat = append(lat, time.Since(t0))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return 0, nil, fmt.Errorf("writing through %s: %w", p.id, errors.Join(errs...))
	}
	return time.Since(begin), lat, nil
}

// verifyAll reads every acknowledged key through p (linearizable reads).
func (d *demo) verifyAll(p *proc) error {
	d.mu.Lock()
	want := make(map[string][]byte, len(d.acked))
	for k, v := range d.acked {
		want[k] = v
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	keys := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range keys {
				got, err := d.client.get(p.httpAddr, k)
				if err != nil || !bytes.Equal(got, want[k]) {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s: got %q, %v", k, got, err))
					mu.Unlock()
				}
			}
		}()
	}
	for k := range want {
		keys <- k
	}
	close(keys)
	wg.Wait()
	if len(bad) > 0 {
		return fmt.Errorf("%d of %d acknowledged writes do not read back through %s, e.g. %s", len(bad), len(want), p.id, bad[0])
	}
	return nil
}

// pct returns the p-th percentile of durations.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}
