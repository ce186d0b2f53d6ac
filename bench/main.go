// Command bench compares this library with hashicorp/raft v1.7.3 on the same
// workload, machine and run. Each run of each library is a fresh child
// process; the libraries alternate run by run (ours, hashicorp, ours, ...),
// and every cell is repeated; the table shows medians and the ratio
// ours/hashicorp.
//
//	go run .                          # every cell, 3 runs each
//	go run . -runs 5 -json out.json -svg chart.svg
//	go run . -scenarios S2 -clients 256 -payloads 16
//	go run . -limits                  # fsync and loopback round trip of this machine
//	go run . -scenarios S2,S3 -ours-store plain   # our store as NewBoltStore opens it
//
// Scenarios: S1 (3 nodes, in-memory transport and stores), S2 (3 nodes, TCP
// on loopback, raft-boltdb/raftbolt with fsync, file snapshots, LogCache),
// S2g (S2 with our nodes on grpctransport, hashicorp's still on TCP),
// S3 (1 node, bolt with fsync), failover (3 nodes on TCP, default LAN
// timeouts: time from killing the leader to the first commit of its
// successor). Clients loop Apply(payload).Error() on the leader. R and RW
// are reads on S2's cluster: R only reads, RW does nine reads for every
// write of a 16-byte payload; hashicorp reads with VerifyLeader on the
// leader and a wait for the applied index, ours with ReadBarrier by round
// on the leader, by lease on the leader, or by round spread over the three
// nodes (-reads round,lease,spread):
//
//	go run . -scenarios R,RW -reads round,lease,spread
//
// BENCH_LOG=1 sends our nodes' logs (level Info) to stderr, to see what a
// cell's nodes did, for example which node stood for election in a
// failover: BENCH_LOG=1 go run . -child -lib ours -scenario failover.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/seed48a2b68f/raft/bench/harness"
	"github.com/seed48a2b68f/raft/bench/libs/hashi"
	"github.com/seed48a2b68f/raft/bench/libs/ours"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var (
		childMode = fs.Bool("child", false, "internal: run one cell of one library and print its result as JSON")
		lib       = fs.String("lib", "", "internal: the library of a -child run")
		scenario  = fs.String("scenario", "", "internal: the scenario of a -child run")
		payload   = fs.Int("payload", 16, "internal: the payload of a -child run")
		clientsN  = fs.Int("nclients", 1, "internal: the clients of a -child run")
		readMode  = fs.String("read", "", "internal: the read mode of a -child run")
		reads     = fs.String("reads", "round,lease,spread", "read modes of ours in R and RW cells")
		scenarios = fs.String("scenarios", "S1,S2,S3,failover", "scenarios to run")
		payloads  = fs.String("payloads", "16,1024", "payload sizes in bytes")
		clients   = fs.String("clients", "1,16,256", "numbers of concurrent clients")
		runs      = fs.Int("runs", 3, "runs of each library per cell")
		warmup    = fs.Duration("warmup", 500*time.Millisecond, "time before measuring, per run")
		duration  = fs.Duration("duration", 3*time.Second, "measured time per run")
		jsonPath  = fs.String("json", "", "write every run and the medians as JSON here")
		svgPath   = fs.String("svg", "", "write a chart of throughput against clients here")
		limits    = fs.Bool("limits", false, "measure this machine's fsync latency and loopback round trip, and stop")
		cpuProf   = fs.String("cpuprofile", "", "with -child: write a CPU profile of the measured run here")
		memProf   = fs.String("memprofile", "", "with -child: write an allocation profile (every allocation sampled) here")
		traceOut  = fs.String("trace", "", "with -child: write an execution trace of the run here (go tool trace)")
		oursStore = fs.String("ours-store", "journal", "our raftbolt store in S2 and S3: journal (Options.Journal) or plain (as NewBoltStore opens it, what a program moved over from hashicorp/raft gets)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *oursStore != "journal" && *oursStore != "plain" {
		return fmt.Errorf("-ours-store %q: want journal or plain", *oursStore)
	}
	plain := *oursStore == "plain"
	if *childMode {
		if *cpuProf != "" {
			f, err := os.Create(*cpuProf)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return err
			}
			defer pprof.StopCPUProfile()
		}
		if *traceOut != "" {
			f, err := os.Create(*traceOut)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := trace.Start(f); err != nil {
				return err
			}
			defer trace.Stop()
		}
		if *memProf != "" {
			runtime.MemProfileRate = 1
			defer func() {
				f, err := os.Create(*memProf)
				if err == nil {
					pprof.Lookup("allocs").WriteTo(f, 0)
					f.Close()
				}
			}()
		}
		res := runCell(*lib, cell{Scenario: harness.Scenario(*scenario), Payload: *payload, Clients: *clientsN, Read: harness.ReadMode(*readMode)}, *warmup, *duration, plain)
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	lim, err := measureLimits()
	if err != nil {
		return err
	}
	fmt.Printf("machine: fsync %v (median of %d; %v with three files syncing at once); data sync of preallocated space %v (%v three at once); loopback round trip %v (median of %d)\n",
		lim.Fsync.Round(time.Microsecond), lim.FsyncSamples, lim.Fsync3.Round(time.Microsecond),
		lim.SyncPrealloc.Round(time.Microsecond), lim.SyncPrealloc3.Round(time.Microsecond),
		lim.RTT.Round(time.Microsecond), lim.RTTSamples)
	fmt.Printf("bare round (S2's one-client path without raft: three nodes in this process, loopback TCP, a data sync each): %.0f ops/s with 16 B, %.0f with 1 KiB\n",
		lim.BareRound[16], lim.BareRound[1024])
	if *limits {
		fmt.Printf("limits for one client: S3 %.0f ops/s (one sync), S2 %.0f ops/s (one sync with three at once, and one round trip; the faster kind of sync)\n",
			lim.limit(cell{Scenario: harness.S3, Clients: 1}), lim.limit(cell{Scenario: harness.S2, Clients: 1}))
		return nil
	}
	cells, err := plan(*scenarios, *payloads, *clients, *reads)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	report := reportJSON{Limits: lim, Runs: *runs, Warmup: warmup.String(), Duration: duration.String(),
		Command: "go run ./bench " + strings.Join(args, " ")}
	libs := []string{ours.Library, hashi.Library}
	for _, c := range cells {
		n := *runs
		var rs []result
		for r := 0; r < n; r++ {
			for _, l := range libs {
				res, err := child(exe, l, c, *warmup, *duration, *oursStore)
				if err != nil {
					return fmt.Errorf("%s on %s: %w", l, c, err)
				}
				if res.Error != "" {
					return fmt.Errorf("%s on %s, run %d: %s", l, c, r+1, res.Error)
				}
				rs = append(rs, res)
				fmt.Fprintf(os.Stderr, "  %-28s run %d %-9s %s\n", c, r+1, l, brief(res))
			}
		}
		s := summarize(c, rs, lim)
		report.Results = append(report.Results, rs...)
		report.Cells = append(report.Cells, s)
	}
	printTable(os.Stdout, report.Cells)
	if *jsonPath != "" {
		b, _ := json.MarshalIndent(report, "", "  ")
		if err := os.WriteFile(*jsonPath, b, 0o644); err != nil {
			return err
		}
	}
	if *svgPath != "" {
		if err := os.WriteFile(*svgPath, chart(report.Cells), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func plan(scenarios, payloads, clients, reads string) ([]cell, error) {
	ints := func(s string) ([]int, error) {
		var out []int
		for _, f := range strings.Split(s, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || v <= 0 {
				return nil, fmt.Errorf("bad number %q", f)
			}
			out = append(out, v)
		}
		return out, nil
	}
	ps, err := ints(payloads)
	if err != nil {
		return nil, err
	}
	cs, err := ints(clients)
	if err != nil {
		return nil, err
	}
	var cells []cell
	for _, s := range strings.Split(scenarios, ",") {
		sc := harness.Scenario(strings.TrimSpace(s))
		switch sc {
		case harness.S1, harness.S2, harness.S3, harness.S2g:
			for _, p := range ps {
				for _, c := range cs {
					cells = append(cells, cell{Scenario: sc, Payload: p, Clients: c})
				}
			}
		case harness.Failover:
			cells = append(cells, cell{Scenario: sc})
		case harness.R, harness.RW:
			for _, c := range cs {
				for _, m := range strings.Split(reads, ",") {
					mode := harness.ReadMode(strings.TrimSpace(m))
					switch mode {
					case harness.ReadRound, harness.ReadLease, harness.ReadSpread:
					default:
						return nil, fmt.Errorf("unknown read mode %q", m)
					}
					cells = append(cells, cell{Scenario: sc, Payload: 16, Clients: c, Read: mode})
				}
			}
		default:
			return nil, fmt.Errorf("unknown scenario %q", s)
		}
	}
	return cells, nil
}

// child runs one cell of one library in a fresh process.
func child(exe, lib string, c cell, warmup, duration time.Duration, oursStore string) (result, error) {
	cmd := exec.Command(exe, "-child", "-lib", lib, "-scenario", string(c.Scenario),
		"-payload", strconv.Itoa(c.Payload), "-nclients", strconv.Itoa(c.Clients), "-read", string(c.Read),
		"-warmup", warmup.String(), "-duration", duration.String(), "-ours-store", oursStore)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return result{}, fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	var res result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return result{}, fmt.Errorf("reading the child's result %q: %w", stdout.String(), err)
	}
	return res, nil
}

func brief(r result) string {
	if r.Cell.Scenario == harness.Failover {
		return fmt.Sprintf("%.0f ms", r.FailoverMS)
	}
	s := fmt.Sprintf("%9.0f ops/s  p50 %7.0f us  p99 %7.0f us  %6.1f cpu-us/op  %6.1f allocs/op",
		r.OpsPerSec, r.P50us, r.P99us, r.CPUusOp, r.AllocsOp)
	if r.WriteOpsPerSec > 0 {
		s += fmt.Sprintf("  writes %.0f/s p50 %.0f us p99 %.0f us", r.WriteOpsPerSec, r.WriteP50us, r.WriteP99us)
	}
	return s
}

// side holds one library's medians on a cell.
type side = stats

type cellSummary struct {
	Cell      cell    `json:"cell"`
	Ours      side    `json:"ours"`
	Hashicorp side    `json:"hashicorp"`
	Ratio     float64 `json:"ratio"` // throughput ours/hashicorp (failover: hashicorp/ours time)
	Limit     float64 `json:"limit_ops_per_sec,omitempty"`
	// BareRound is the bare round's ops/s with this cell's payload, for
	// S2 with one client.
	BareRound float64 `json:"bare_round_ops_per_sec,omitempty"`
}

type reportJSON struct {
	Command  string        `json:"command"`
	Runs     int           `json:"runs"`
	Warmup   string        `json:"warmup"`
	Duration string        `json:"duration"`
	Limits   limits        `json:"limits"`
	Cells    []cellSummary `json:"cells"`
	Results  []result      `json:"results"`
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarize(c cell, rs []result, lim limits) cellSummary {
	med := func(lib string) side {
		var o, p50, p99, cpu, al, fo, wo, w50, w99 []float64
		for _, r := range rs {
			if r.Library != lib {
				continue
			}
			o, p50, p99 = append(o, r.OpsPerSec), append(p50, r.P50us), append(p99, r.P99us)
			cpu, al, fo = append(cpu, r.CPUusOp), append(al, r.AllocsOp), append(fo, r.FailoverMS)
			wo, w50, w99 = append(wo, r.WriteOpsPerSec), append(w50, r.WriteP50us), append(w99, r.WriteP99us)
		}
		return side{OpsPerSec: median(o), P50us: median(p50), P99us: median(p99), CPUusOp: median(cpu),
			AllocsOp: median(al), FailoverMS: median(fo),
			WriteOpsPerSec: median(wo), WriteP50us: median(w50), WriteP99us: median(w99)}
	}
	s := cellSummary{Cell: c, Ours: med(ours.Library), Hashicorp: med(hashi.Library), Limit: lim.limit(c)}
	if c.Scenario == harness.S2 && c.Clients == 1 {
		s.BareRound = lim.BareRound[c.Payload]
	}
	switch {
	case c.Scenario == harness.Failover && s.Ours.FailoverMS > 0:
		s.Ratio = s.Hashicorp.FailoverMS / s.Ours.FailoverMS
	case s.Hashicorp.OpsPerSec > 0:
		s.Ratio = s.Ours.OpsPerSec / s.Hashicorp.OpsPerSec
	}
	return s
}

// limits are the machine's floors for one client.
type limits struct {
	Fsync        time.Duration `json:"fsync_ns"`
	FsyncSamples int           `json:"fsync_samples"`
	// Fsync3 is an fsync's time while three files sync at once, as S2's
	// three nodes do for every entry on this one disk.
	Fsync3 time.Duration `json:"fsync_3_ns,omitempty"`
	// SyncPrealloc and SyncPrealloc3 are the same with a write into space
	// allocated beforehand and a data-only sync, alone and three at once:
	// what a log store that preallocates its files waits for.
	SyncPrealloc  time.Duration `json:"sync_prealloc_ns,omitempty"`
	SyncPrealloc3 time.Duration `json:"sync_prealloc_3_ns,omitempty"`
	RTT           time.Duration `json:"loopback_rtt_ns"`
	RTTSamples    int           `json:"rtt_samples"`
	// BareRound is, by payload, the ops/s of S2's one-client path with
	// nothing of raft around it (bareRound).
	BareRound map[int]float64 `json:"bare_round_ops_per_sec,omitempty"`
}

// limit is the most ops/s one client can reach on a cell (0 when not
// modelled): a write waits for one fsync on a single node, and for one
// round trip plus a follower's fsync in a cluster (the leader's own fsync
// runs meanwhile). In S2 all three nodes sync every entry on this machine's
// one disk at about the same moment, so the follower's fsync is timed with
// two others running (Fsync3) when that was measured. Where the sync of
// preallocated space was measured too and is faster, the limit uses it:
// the floor is the fastest durable write the disk offers.
func (l limits) limit(c cell) float64 {
	if c.Clients != 1 || l.Fsync <= 0 {
		return 0
	}
	one, three := l.Fsync, max(l.Fsync, l.Fsync3)
	if l.SyncPrealloc > 0 {
		one = min(one, l.SyncPrealloc)
		three = min(three, max(l.SyncPrealloc, l.SyncPrealloc3))
	}
	switch c.Scenario {
	case harness.S3:
		return 1 / one.Seconds()
	case harness.S2, harness.S2g:
		return 1 / (three + l.RTT).Seconds()
	}
	return 0
}
