package main

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The end-to-end test: the real binary, three processes on loopback, raftbolt
// with fsync, clients writing and reading through random nodes while the
// leader is killed with SIGKILL and restarted twice, and then paused with
// SIGSTOP and resumed once a new leader has taken writes. Every
// acknowledged write must read back, and the history must be linearizable.

type regInput struct {
	put   bool
	key   string
	value string // for a put
}

type regOutput struct {
	value   string // for a get; "" when absent
	unknown bool   // a put whose outcome is unknown
}

// registerModel is one register per key; a key never written reads as "".
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(regInput).key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, len(keys))
		for i, k := range keys {
			out[i] = byKey[k]
		}
		return out
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		in, out := input.(regInput), output.(regOutput)
		if in.put {
			return true, in.value
		}
		return out.value == state.(string), state
	},
	Equal: func(a, b interface{}) bool { return a == b },
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(regInput), output.(regOutput)
		if in.put {
			return fmt.Sprintf("put(%s, %q)%s", in.key, in.value, map[bool]string{true: " ?", false: ""}[out.unknown])
		}
		return fmt.Sprintf("get(%s) -> %q", in.key, out.value)
	},
}

// buildBinary compiles raftkv once for the test.
func buildBinary(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "raftkv")
	cmd := exec.Command("go", "build", "-o", exe, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

func TestEndToEndKillLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs processes")
	}
	// RAFTKV_E2E_STALE=1 is the known-bad control: reads served from any
	// node's own state must make the history fail the check.
	staleControl := os.Getenv("RAFTKV_E2E_STALE") != ""
	exe := buildBinary(t)
	dir := t.TempDir()
	var procs []*proc
	// Small journal files and few of them: the kills land amid file
	// rotations and checkpoints, and a killed leader's uncommitted suffix
	// is deleted (a deletion record) when it rejoins.
	common := append([]string{"-journal-file-size", "32768", "-journal-files", "3"}, demoTimeouts...)
	for i := 1; i <= 3; i++ {
		args := append([]string{"-bootstrap"}, common...)
		if i > 1 {
			args = append([]string{"-join", procs[0].httpAddr}, common...)
		}
		p, err := newProc(dir, fmt.Sprintf("n%d", i), args...)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.start(exe); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.stop()
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("--- %s's log:\n%s", p.id, p.logTail(40))
			}
		}
	})
	c := newKVClient()
	if _, err := c.waitReady(30*time.Second, procs); err != nil {
		t.Fatal(err)
	}

	var (
		mu      sync.Mutex
		history []porcupine.Operation
		acked   = map[string]string{} // unique keys written once each
		stop    atomic.Bool
		wg      sync.WaitGroup
		counts  [4]atomic.Int64 // ok writes, ok reads, unknown, refused
	)
	const clients, keys = 8, 12
	rng := rand.New(rand.NewPCG(seedFromEnv(t), 1))
	seeds := make([]uint64, clients)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seeds[cl], 2))
			for n := 0; !stop.Load(); n++ {
				p := procs[r.IntN(len(procs))]
				switch x := r.IntN(10); {
				case x < 2: // a unique key, checked at the end
					key, value := fmt.Sprintf("u/%d/%d", cl, n), fmt.Sprintf("c%d-%d", cl, n)
					if err := c.put(p.httpAddr, key, []byte(value)); err == nil {
						mu.Lock()
						acked[key] = value
						mu.Unlock()
					}
				case x < 6:
					in := regInput{put: true, key: fmt.Sprintf("k%d", r.IntN(keys)), value: fmt.Sprintf("c%d-%d", cl, n)}
					call := time.Now().UnixNano()
					err := c.put(p.httpAddr, in.key, []byte(in.value))
					ret := time.Now().UnixNano()
					out := regOutput{}
					switch {
					case err == nil:
						counts[0].Add(1)
					case errors.Is(err, errUnavailable):
						counts[3].Add(1)
						time.Sleep(20 * time.Millisecond)
						continue // refused: it never happened
					default:
						// It may take effect at any later time.
						counts[2].Add(1)
						out.unknown, ret = true, math.MaxInt64
						time.Sleep(20 * time.Millisecond)
					}
					mu.Lock()
					history = append(history, porcupine.Operation{ClientId: cl, Input: in, Output: out, Call: call, Return: ret})
					mu.Unlock()
				default:
					in := regInput{key: fmt.Sprintf("k%d", r.IntN(keys))}
					call := time.Now().UnixNano()
					read := c.get
					if staleControl {
						read = c.getStale
					}
					v, err := read(p.httpAddr, in.key)
					ret := time.Now().UnixNano()
					if err != nil && !errors.Is(err, errNotFound) {
						counts[3].Add(1)
						time.Sleep(20 * time.Millisecond)
						continue // a failed read has no effect
					}
					counts[1].Add(1)
					mu.Lock()
					history = append(history, porcupine.Operation{ClientId: cl, Input: in, Output: regOutput{value: string(v)}, Call: call, Return: ret})
					mu.Unlock()
				}
			}
		}()
	}

	// nextLeader lets the clients run a while, then finds the leader.
	nextLeader := func() *proc {
		time.Sleep(1500 * time.Millisecond)
		leader, err := c.waitReady(30*time.Second, procs)
		if err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatal(err)
		}
		return leader
	}
	// othersWrite waits until every node but gone takes a write.
	othersWrite := func(gone *proc, round int) error {
		return waitFor(20*time.Second, fmt.Sprintf("writes without %s", gone.id), func() bool {
			for _, p := range procs {
				if p != gone && c.put(p.httpAddr, fmt.Sprintf("probe%d", round), []byte(p.id)) != nil {
					return false
				}
			}
			return true
		})
	}

	// Kill the leader twice, restarting it from its data each time.
	for round := 1; round <= 2; round++ {
		leader := nextLeader()
		leader.kill()
		t.Logf("round %d: killed the leader %s", round, leader.id)
		if err := othersWrite(leader, round); err != nil {
			t.Error(err)
		}
		time.Sleep(time.Second)
		if err := leader.start(exe); err != nil {
			t.Fatal(err)
		}
	}
	// Pause the leader (SIGSTOP) for several election timeouts: the others
	// elect a leader and take writes in a new term; then it runs again,
	// believing for a moment that it still leads, with the reads and writes
	// that clients sent it meanwhile queued on its sockets. None of them
	// may be served from its stale state.
	if canPause {
		leader := nextLeader()
		if err := leader.pause(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round 3: paused the leader %s", leader.id)
		err := othersWrite(leader, 3)
		// Every register gets a new value in the new term, so that a read
		// the old leader served from its own state would be seen as stale.
		// (The clients are mostly stuck on the paused node by now.)
		var through *proc
		for _, p := range procs {
			if p != leader {
				through = p
			}
		}
		for k := 0; err == nil && k < keys; k++ {
			in := regInput{put: true, key: fmt.Sprintf("k%d", k), value: fmt.Sprintf("paused-%d", k)}
			call := time.Now().UnixNano()
			perr := c.put(through.httpAddr, in.key, []byte(in.value))
			ret := time.Now().UnixNano()
			out := regOutput{}
			if perr != nil {
				out.unknown, ret = true, math.MaxInt64
			}
			mu.Lock()
			history = append(history, porcupine.Operation{ClientId: clients + 1, Input: in, Output: out, Call: call, Return: ret})
			mu.Unlock()
		}
		// And a read of every register waits on the paused node's socket,
		// to be served in the first moments after it resumes.
		var (
			reads    sync.WaitGroup
			answered atomic.Int64
		)
		for k := 0; err == nil && k < keys; k++ {
			reads.Add(1)
			go func() {
				defer reads.Done()
				in := regInput{key: fmt.Sprintf("k%d", k)}
				call := time.Now().UnixNano()
				v, rerr := c.get(leader.httpAddr, in.key)
				ret := time.Now().UnixNano()
				if rerr != nil && !errors.Is(rerr, errNotFound) {
					return // refused: no effect
				}
				answered.Add(1)
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: clients + 2 + k, Input: in, Output: regOutput{value: string(v)}, Call: call, Return: ret})
				mu.Unlock()
			}()
		}
		time.Sleep(500 * time.Millisecond)
		rerr := leader.resume()
		reads.Wait()
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			t.Error(err)
		}
		t.Logf("round 3: resumed %s; of %d reads sent to it while it was paused, %d were answered (the rest refused)", leader.id, keys, answered.Load())
	}
	time.Sleep(1500 * time.Millisecond)
	stop.Store(true)
	wg.Wait()

	if _, err := c.waitReady(30*time.Second, procs); err != nil {
		t.Fatal(err)
	}
	// Final reads of every register join the history; every unique key
	// must read back through every node.
	for k := 0; k < keys; k++ {
		in := regInput{key: fmt.Sprintf("k%d", k)}
		call := time.Now().UnixNano()
		v, err := c.get(procs[k%len(procs)].httpAddr, in.key)
		if err != nil && !errors.Is(err, errNotFound) {
			t.Fatalf("final read of %s: %v", in.key, err)
		}
		history = append(history, porcupine.Operation{ClientId: clients, Input: in, Output: regOutput{value: string(v)}, Call: call, Return: time.Now().UnixNano()})
	}
	missing := 0
	for key, want := range acked {
		for _, p := range procs {
			if got, err := c.get(p.httpAddr, key); err != nil || string(got) != want {
				missing++
				if missing < 5 {
					t.Errorf("acknowledged %s = %q reads %q through %s: %v", key, want, got, p.id, err)
				}
			}
		}
	}
	if missing > 0 {
		t.Fatalf("%d reads of acknowledged writes failed", missing)
	}
	t.Logf("%d unique writes read back through every node; history: %d operations (%d writes, %d reads ok, %d unknown, %d refused)",
		len(acked), len(history), counts[0].Load(), counts[1].Load(), counts[2].Load(), counts[3].Load())
	if len(acked) < 50 || counts[0].Load() < 100 || counts[1].Load() < 100 {
		t.Fatalf("too little traffic to mean anything")
	}

	res, info := porcupine.CheckOperationsVerbose(registerModel, history, time.Minute)
	if staleControl {
		if res != porcupine.Illegal {
			t.Fatalf("control: stale reads gave %v, want a history that is not linearizable", res)
		}
		t.Log("control: stale reads are caught as not linearizable")
		return
	}
	switch res {
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), "raftkv-e2e.html")
		if err := porcupine.VisualizePath(registerModel, info, path); err == nil {
			t.Fatalf("the history is not linearizable; visualization: %s", path)
		}
		t.Fatal("the history is not linearizable")
	case porcupine.Unknown:
		t.Fatal("the linearizability check timed out: inconclusive, not a pass")
	}
}

func seedFromEnv(t *testing.T) uint64 {
	var seed uint64
	if _, err := fmt.Sscan(strings.TrimSpace(os.Getenv("RAFTKV_E2E_SEED")), &seed); err != nil {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("client seed %d (RAFTKV_E2E_SEED replays the clients' choices)", seed)
	return seed
}

// The register model is not vacuous: it refuses a stale read, a value
// never written, and a write seen before it began; an unknown write may or
// may not have happened.
func TestRegisterModel(t *testing.T) {
	put := func(cl int, key, v string, call, ret int64, unknown bool) porcupine.Operation {
		return porcupine.Operation{ClientId: cl, Input: regInput{put: true, key: key, value: v}, Output: regOutput{unknown: unknown}, Call: call, Return: ret}
	}
	get := func(cl int, key, v string, call, ret int64) porcupine.Operation {
		return porcupine.Operation{ClientId: cl, Input: regInput{key: key}, Output: regOutput{value: v}, Call: call, Return: ret}
	}
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		ok   bool
	}{
		{"read after write", []porcupine.Operation{put(0, "a", "1", 0, 1, false), get(1, "a", "1", 2, 3)}, true},
		{"stale read after a completed write", []porcupine.Operation{put(0, "a", "1", 0, 1, false), get(1, "a", "", 2, 3)}, false},
		{"value never written", []porcupine.Operation{get(1, "a", "x", 0, 1)}, false},
		{"read before the write began", []porcupine.Operation{get(1, "a", "1", 0, 1), put(0, "a", "1", 2, 3, false)}, false},
		{"concurrent read may see either", []porcupine.Operation{put(0, "a", "1", 0, 5, false), get(1, "a", "", 1, 2), get(2, "a", "1", 3, 4)}, true},
		{"unknown write seen", []porcupine.Operation{put(0, "a", "1", 0, math.MaxInt64, true), get(1, "a", "1", 2, 3)}, true},
		{"unknown write never seen", []porcupine.Operation{put(0, "a", "1", 0, math.MaxInt64, true), get(1, "a", "", 2, 3)}, true},
		{"keys are independent", []porcupine.Operation{put(0, "a", "1", 0, 1, false), get(1, "b", "1", 2, 3)}, false},
	} {
		if got := porcupine.CheckOperations(registerModel, tc.ops); got != tc.ok {
			t.Errorf("%s: linearizable = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
