// Package ours builds benchmark clusters on github.com/seed48a2b68f/raft.
//
// This file is the single source of both libraries' cluster code: the
// package hashi is generated from it by changing the import paths only
// (go generate ./... in bench/, checked by TestGeneratedIsCurrent). It
// therefore uses only the API the two libraries share.
package ours

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft"
	raftboltdb "github.com/seed48a2b68f/raft/raftbolt"

	"github.com/seed48a2b68f/raft/bench/harness"
)

// Library is the name the tool reports.
const Library = "ours"

// counter is the benchmark's state machine: it counts applied commands.
type counter struct{ n atomic.Uint64 }

func (c *counter) Apply(*raft.Log) interface{} { c.n.Add(1); return nil }

func (c *counter) Snapshot() (raft.FSMSnapshot, error) { return &counterSnap{c.n.Load()}, nil }

func (c *counter) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var b [8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return err
	}
	var n uint64
	for _, x := range b {
		n = n<<8 | uint64(x)
	}
	c.n.Store(n)
	return nil
}

type counterSnap struct{ n uint64 }

func (s *counterSnap) Persist(sink raft.SnapshotSink) error {
	var b [8]byte
	for i := range b {
		b[i] = byte(s.n >> (56 - 8*i))
	}
	if _, err := sink.Write(b[:]); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s *counterSnap) Release() {}

type node struct {
	r      *raft.Raft
	closer []func() error
	dead   bool
}

type cluster struct {
	mu    sync.Mutex
	nodes []*node
}

// Start builds and starts the cluster of a scenario and waits for a
// leader.
func Start(opts harness.Options) (harness.Cluster, error) {
	n := 3
	if opts.Scenario == harness.S3 {
		n = 1
	}
	c := &cluster{}
	var servers []raft.Server
	type parts struct {
		logs   raft.LogStore
		stable raft.StableStore
		snaps  raft.SnapshotStore
		trans  raft.Transport
	}
	all := make([]parts, n)
	var inmem []*raft.InmemTransport
	for i := 0; i < n; i++ {
		nd := &node{}
		c.nodes = append(c.nodes, nd)
		p := &all[i]
		switch opts.Scenario {
		case harness.S1:
			addr, t := raft.NewInmemTransport("")
			inmem = append(inmem, t)
			store := raft.NewInmemStore()
			p.logs, p.stable, p.snaps, p.trans = store, store, raft.NewInmemSnapshotStore(), t
			servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprint(i)), Address: addr})
		case harness.S2, harness.S3, harness.Failover:
			dir := filepath.Join(opts.Dir, fmt.Sprint(i))
			if opts.Scenario == harness.Failover {
				store := raft.NewInmemStore()
				p.logs, p.stable, p.snaps = store, store, raft.NewInmemSnapshotStore()
			} else {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					c.Close()
					return nil, err
				}
				// Each library's durable store at its best: ours in journal
				// mode (one fdatasync per write) unless asked for the plain
				// store, raft-boltdb as it is.
				store, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft.db"), Journal: !opts.PlainStore})
				if err != nil {
					c.Close()
					return nil, err
				}
				nd.closer = append(nd.closer, store.Close)
				cache, err := raft.NewLogCache(512, store)
				if err != nil {
					c.Close()
					return nil, err
				}
				snaps, err := raft.NewFileSnapshotStore(dir, 2, io.Discard)
				if err != nil {
					c.Close()
					return nil, err
				}
				p.logs, p.stable, p.snaps = cache, store, snaps
			}
			if n > 1 {
				newTransport := func() (raft.Transport, error) {
					return raft.NewTCPTransport("127.0.0.1:0", nil, 3, 10*time.Second, io.Discard)
				}
				if opts.GRPC {
					newTransport = func() (raft.Transport, error) { return startGRPC(nd) }
				}
				t, err := newTransport()
				if err != nil {
					c.Close()
					return nil, err
				}
				p.trans = t
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprint(i)), Address: t.LocalAddr()})
			} else {
				addr, t := raft.NewInmemTransport("")
				p.trans = t
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(fmt.Sprint(i)), Address: addr})
			}
		default:
			return nil, fmt.Errorf("unknown scenario %q", opts.Scenario)
		}
	}
	for _, a := range inmem {
		for _, b := range inmem {
			if a != b {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
	configuration := raft.Configuration{Servers: servers}
	for i := 0; i < n; i++ {
		conf := raft.DefaultConfig()
		conf.LocalID = raft.ServerID(fmt.Sprint(i))
		conf.Logger = hclog.NewNullLogger()
		if os.Getenv("BENCH_LOG") != "" {
			conf.Logger = hclog.New(&hclog.LoggerOptions{Name: string(conf.LocalID), Output: os.Stderr, Level: hclog.Info})
		}
		if opts.Scenario == harness.S1 {
			// In memory there is no network to wait for: short timeouts
			// only make the start quick.
			conf.HeartbeatTimeout = 100 * time.Millisecond
			conf.ElectionTimeout = 100 * time.Millisecond
			conf.LeaderLeaseTimeout = 100 * time.Millisecond
		}
		p := all[i]
		if err := raft.BootstrapCluster(conf, p.logs, p.stable, p.snaps, p.trans, configuration); err != nil {
			c.Close()
			return nil, err
		}
		r, err := raft.NewRaft(conf, &counter{}, p.logs, p.stable, p.snaps, p.trans)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.nodes[i].r = r
	}
	if _, err := harness.WaitLeader(c, 20*time.Second); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *cluster) Nodes() int { return len(c.nodes) }

func (c *cluster) Leader() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if !n.dead && n.r != nil && n.r.State() == raft.Leader {
			return i
		}
	}
	return -1
}

func (c *cluster) Apply(i int, data []byte) error {
	return c.nodes[i].r.Apply(data, 0).Error()
}

func (c *cluster) Kill(i int) error {
	c.mu.Lock()
	n := c.nodes[i]
	n.dead = true
	c.mu.Unlock()
	return n.r.Shutdown().Error()
}

func (c *cluster) Close() error {
	var first error
	for _, n := range c.nodes {
		if n.r != nil && !n.dead {
			if err := n.r.Shutdown().Error(); err != nil && first == nil {
				first = err
			}
		}
		for _, f := range n.closer {
			if err := f(); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}
