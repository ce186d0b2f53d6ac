package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/autopilot"
	raftboltdb "github.com/seed48a2b68f/raft/raftbolt"
)

// nodeConfig is what the command line of a node says.
type nodeConfig struct {
	id, raftAddr, httpAddr, dataDir string
	join                            string // HTTP address of a member to join through
	bootstrap                       bool
	tlsCert, tlsKey, tlsCA          string
	heartbeat, election             time.Duration
	snapshotThreshold               uint64
	journalFileSize                 int64
	journalFiles                    int
	logLevel                        string
	exitOnStdinClose                bool
	leaseReads                      bool
	// The HTTP server's limits (flags -http-*).
	httpReadTimeout, httpWriteTimeout, httpIdleTimeout time.Duration
	httpMaxConns                                       int
	autopilot                                          autopilotFlags
}

// Bounds of the HTTP server that are not flags.
const (
	httpReadHeaderTimeout = 10 * time.Second
	httpMaxHeaderBytes    = 64 << 10
)

// Journal file sizes raftkv accepts (raftbolt caps at 1 GiB).
const (
	minJournalFileSize = 4 << 10
	maxJournalFileSize = 1 << 30
)

func parseNodeFlags(args []string) (nodeConfig, error) {
	var c nodeConfig
	fs := flag.NewFlagSet("raftkv", flag.ContinueOnError)
	fs.StringVar(&c.id, "id", "", "this node's server ID (required)")
	fs.StringVar(&c.raftAddr, "raft", "127.0.0.1:7001", "address for Raft traffic (host:port; others dial it)")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:8001", "address of the HTTP API (host:port)")
	fs.StringVar(&c.dataDir, "data", "", "directory for raft.db and snapshots (required)")
	fs.StringVar(&c.join, "join", "", "HTTP address of a member to join through (first start only)")
	fs.BoolVar(&c.bootstrap, "bootstrap", false, "start a new cluster with this node as its only voter (ignored once there is state)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate for mutual TLS between nodes (with -tls-key and -tls-ca)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&c.tlsCA, "tls-ca", "", "PEM CA certificate that signs every node's certificate")
	fs.DurationVar(&c.heartbeat, "heartbeat-timeout", time.Second, "Raft heartbeat timeout")
	fs.DurationVar(&c.election, "election-timeout", time.Second, "Raft election timeout")
	fs.Uint64Var(&c.snapshotThreshold, "snapshot-threshold", 8192, "entries since the last snapshot before the next one")
	fs.Int64Var(&c.journalFileSize, "journal-file-size", 0, "bytes per raftbolt journal file (0: raftbolt's default, 8 MiB)")
	fs.IntVar(&c.journalFiles, "journal-files", 0, "most raftbolt journal files before the oldest moves into raft.db (0: raftbolt's default, 32)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.BoolVar(&c.exitOnStdinClose, "exit-on-stdin-close", false, "shut down when standard input closes (used by the demo)")
	fs.BoolVar(&c.leaseReads, "lease-reads", false, "allow GET ?consistency=lease: reads the leader confirms from its lease, without a round of heartbeats, under the clock assumption of raft.Config.LeaseReads (give it to every node; all must run this program with the same -heartbeat-timeout)")
	fs.DurationVar(&c.httpReadTimeout, "http-read-timeout", 30*time.Second, "most time to read a request, body included (POST /restore gets 10 minutes)")
	fs.DurationVar(&c.httpWriteTimeout, "http-write-timeout", time.Minute, "most time to write a response (GET /backup gets 10 minutes)")
	fs.DurationVar(&c.httpIdleTimeout, "http-idle-timeout", 2*time.Minute, "how long an idle keep-alive connection stays open")
	fs.IntVar(&c.httpMaxConns, "http-max-conns", 1024, "most HTTP connections open at once; more wait to be accepted")
	a := &c.autopilot
	fs.BoolVar(&a.enabled, "autopilot", true, "run autopilot on the leader: new nodes join as nonvoters and are promoted once stable; see the other -autopilot-* flags")
	fs.BoolVar(&a.cleanupDeadServers, "autopilot-cleanup-dead-servers", false, "let autopilot remove members that have not answered for -autopilot-dead-after (never below -autopilot-min-quorum, never a majority)")
	fs.DurationVar(&a.lastContact, "autopilot-last-contact-threshold", 0, "a member that has not heard from the leader for longer is unhealthy (0: -heartbeat-timeout)")
	fs.Uint64Var(&a.maxTrailingLogs, "autopilot-max-trailing-logs", 250, "a member further behind the leader's log is unhealthy")
	fs.UintVar(&a.minQuorum, "autopilot-min-quorum", 0, "autopilot removes no dead member if fewer voters than this would remain")
	fs.DurationVar(&a.stabilization, "autopilot-server-stabilization-time", 10*time.Second, "how long a new member must be healthy before autopilot makes it a voter")
	fs.DurationVar(&a.deadAfter, "autopilot-dead-after", time.Minute, "a member that has not answered the leader's status requests for this long counts as failed")
	fs.DurationVar(&a.updateInterval, "autopilot-update-interval", autopilot.DefaultUpdateInterval, "how often autopilot checks the members' health")
	fs.DurationVar(&a.reconcileInterval, "autopilot-reconcile-interval", autopilot.DefaultReconcileInterval, "how often autopilot promotes, and removes dead members")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := c.check(); err != nil {
		return c, err
	}
	return c, nil
}

// check refuses values no node can run with, naming the flag.
func (c *nodeConfig) check() error {
	switch {
	case hclog.LevelFromString(c.logLevel) == hclog.NoLevel:
		return fmt.Errorf("-log-level %q: want trace, debug, info, warn or error", c.logLevel)
	case c.journalFiles < 0 || c.journalFiles == 1:
		return fmt.Errorf("-journal-files %d: want 0 (raftbolt's default, 32) or at least 2", c.journalFiles)
	case c.journalFileSize != 0 && (c.journalFileSize < minJournalFileSize || c.journalFileSize > maxJournalFileSize):
		return fmt.Errorf("-journal-file-size %d: want 0 (raftbolt's default, 8 MiB) or %d to %d bytes",
			c.journalFileSize, minJournalFileSize, maxJournalFileSize)
	case c.snapshotThreshold == 0:
		return errors.New("-snapshot-threshold 0: want at least 1 entry")
	case c.heartbeat <= 0 || c.election <= 0:
		return fmt.Errorf("-heartbeat-timeout %v and -election-timeout %v must be positive", c.heartbeat, c.election)
	case c.httpReadTimeout <= 0 || c.httpWriteTimeout <= 0 || c.httpIdleTimeout <= 0:
		return errors.New("-http-read-timeout, -http-write-timeout and -http-idle-timeout must be positive")
	case c.httpMaxConns < 1:
		return fmt.Errorf("-http-max-conns %d: want at least 1", c.httpMaxConns)
	case c.autopilot.enabled && (c.autopilot.lastContact < 0 || c.autopilot.stabilization < 0):
		return errors.New("-autopilot-last-contact-threshold and -autopilot-server-stabilization-time must not be negative")
	case c.autopilot.enabled && (c.autopilot.deadAfter <= 0 || c.autopilot.updateInterval <= 0 || c.autopilot.reconcileInterval <= 0):
		return errors.New("-autopilot-dead-after, -autopilot-update-interval and -autopilot-reconcile-interval must be positive")
	}
	switch {
	case c.id == "":
		return errors.New("-id is required")
	case c.dataDir == "":
		return errors.New("-data is required")
	case (c.tlsCert != "" || c.tlsKey != "" || c.tlsCA != "") && (c.tlsCert == "" || c.tlsKey == "" || c.tlsCA == ""):
		return errors.New("-tls-cert, -tls-key and -tls-ca go together")
	case c.bootstrap && c.join != "":
		return errors.New("-bootstrap and -join exclude each other")
	}
	return nil
}

// node is one running raftkv server.
type node struct {
	cfg   nodeConfig
	log   hclog.Logger
	raft  *raft.Raft
	fsm   *kvStore
	store *raftboltdb.BoltStore
	trans *raft.NetworkTransport
	// metrics serves GET /metrics.
	metrics http.Handler
	server  *http.Server
	ln      net.Listener
	// peers carries this node's own requests to other nodes (joins,
	// forwarded requests). It is the node's, not the process's default,
	// so that close can drop its idle connections: another node's server
	// waits for a connection that was dialed but never used (a dial that
	// lost a race to a freed connection) as if a request were coming.
	peers *http.Transport
	// pilot runs autopilot while this node leads (nil with -autopilot=false).
	pilot *pilot
	done  chan struct{} // closed by close

	closeOnce sync.Once
	closeErr  error
}

func startNode(cfg nodeConfig) (*node, error) {
	n := &node{cfg: cfg, fsm: newKVStore(), done: make(chan struct{}), peers: http.DefaultTransport.(*http.Transport).Clone()}
	n.log = hclog.New(&hclog.LoggerOptions{Name: cfg.id, Level: hclog.LevelFromString(cfg.logLevel), Output: os.Stderr})
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	if err := claimDataDir(cfg.dataDir, cfg.id); err != nil {
		return nil, err
	}

	// Metrics: the library reports to go-metrics' global sink.
	var err error
	if n.metrics, err = newMetrics(); err != nil {
		return nil, err
	}

	// Everything opened is closed again if a later step fails.
	var closers []func() error
	defer func() {
		if closers != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	n.ln, err = net.Listen("tcp", cfg.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("HTTP listener on %s: %w", cfg.httpAddr, err)
	}
	closers = append(closers, n.ln.Close)
	n.cfg.httpAddr = n.ln.Addr().String() // the real port when asked for :0
	// Journal mode: one fdatasync per write; the file stays a raft-boltdb
	// database after a clean stop.
	n.store, err = raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.dataDir, "raft.db"), Journal: true,
		JournalSize: cfg.journalFileSize, JournalFiles: cfg.journalFiles})
	if err != nil {
		return nil, fmt.Errorf("opening the log store: %w", err)
	}
	closers = append(closers, n.store.Close)
	logs, err := raft.NewLogCache(512, n.store)
	if err != nil {
		return nil, err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.dataDir, 2, n.log.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("opening the snapshot store: %w", err)
	}
	if cfg.tlsCert != "" {
		tlsConf, err := loadTLS(cfg)
		if err != nil {
			return nil, err
		}
		n.trans, err = raft.NewTLSTransportWithLogger(cfg.raftAddr, nil, tlsConf, 3, 10*time.Second, n.log.Named("transport"))
		if err != nil {
			return nil, fmt.Errorf("raft transport on %s: %w", cfg.raftAddr, err)
		}
	} else {
		n.trans, err = raft.NewTCPTransportWithLogger(cfg.raftAddr, nil, 3, 10*time.Second, n.log.Named("transport"))
		if err != nil {
			return nil, fmt.Errorf("raft transport on %s: %w", cfg.raftAddr, err)
		}
	}

	conf := raft.DefaultConfig()
	conf.LocalID = raft.ServerID(cfg.id)
	conf.Logger = n.log
	conf.HeartbeatTimeout = cfg.heartbeat
	conf.ElectionTimeout = cfg.election
	conf.LeaderLeaseTimeout = min(conf.LeaderLeaseTimeout, cfg.heartbeat/2)
	conf.SnapshotThreshold = cfg.snapshotThreshold
	// A removed node stays up, so that it can tell clients it was removed
	// (410) instead of vanishing.
	conf.ShutdownOnRemove = false
	closers = append(closers, n.trans.Close)
	if err := raft.ValidateConfig(conf); err != nil {
		return nil, err
	}

	existing, err := raft.HasExistingState(logs, n.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("reading the stores: %w", err)
	}
	// peers.json in the data directory: recover a cluster that lost its
	// quorum by forcing this configuration (see the README).
	peersPath := filepath.Join(cfg.dataDir, "peers.json")
	if _, err := os.Stat(peersPath); err == nil {
		recovery, err := raft.ReadConfigJSON(peersPath)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", peersPath, err)
		}
		if err := raft.RecoverCluster(conf, n.fsm, logs, n.store, snaps, n.trans, recovery); err != nil {
			return nil, fmt.Errorf("recovering with %s: %w", peersPath, err)
		}
		if err := os.Rename(peersPath, peersPath+".applied"); err != nil {
			return nil, fmt.Errorf("recovered, but could not rename %s (remove it before the next start): %w", peersPath, err)
		}
		n.log.Warn("recovered the cluster configuration from peers.json", "servers", recovery.Servers)
		// RecoverCluster restored the FSM to check the state; NewRaft
		// restores it again from the snapshot it wrote.
		n.fsm = newKVStore()
		existing = true
	}
	if cfg.bootstrap && !existing {
		err := raft.BootstrapCluster(conf, logs, n.store, snaps, n.trans, raft.Configuration{Servers: []raft.Server{
			{Suffrage: raft.Voter, ID: conf.LocalID, Address: n.trans.LocalAddr()},
		}})
		if err != nil {
			return nil, fmt.Errorf("bootstrapping: %w", err)
		}
	}
	n.raft, err = raft.NewRaft(conf, n.fsm, logs, n.store, snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("starting raft: %w", err)
	}

	n.server = &http.Server{
		Handler:           n.routes(),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       cfg.httpReadTimeout,
		WriteTimeout:      cfg.httpWriteTimeout,
		IdleTimeout:       cfg.httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          n.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	if cfg.autopilot.enabled {
		n.pilot = newPilot(n)
	}
	closers = nil
	go n.server.Serve(newLimitListener(n.ln, cfg.httpMaxConns))
	go n.keepMembership()
	if cfg.join != "" && !existing {
		go n.joinThrough(cfg.join)
	}
	n.log.Info("raftkv node started", "raft", n.trans.LocalAddr(), "http", n.cfg.httpAddr, "data", cfg.dataDir, "existing-state", existing)
	return n, nil
}

func loadTLS(cfg nodeConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("loading -tls-cert/-tls-key: %w", err)
	}
	pem, err := os.ReadFile(cfg.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("reading -tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-tls-ca %s holds no PEM certificate", cfg.tlsCA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// keepMembership records this node's HTTP address in the replicated state
// whenever it leads and the record is missing or old, so that followers
// can forward to it. Joining nodes are recorded by the leader that adds
// them.
func (n *node) keepMembership() {
	for {
		var leader bool
		select {
		case leader = <-n.raft.LeaderCh():
		case <-n.done:
			if n.pilot != nil {
				n.pilot.lead(false)
			}
			return
		}
		if n.pilot != nil {
			n.pilot.lead(leader)
		}
		if !leader || n.fsm.member(n.cfg.id) == n.cfg.httpAddr {
			continue
		}
		cmd := encodeCommand(opMember, n.cfg.id, []byte(n.cfg.httpAddr))
		if err := n.raft.Apply(cmd, 5*time.Second).Error(); err != nil {
			n.log.Warn("recording this node's HTTP address", "error", err)
		}
	}
}

// joinRequest is the body of POST /join.
type joinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	// Replace allows a new raft_addr for an ID already in the
	// configuration (a member moved to another address); without it such
	// a join is refused.
	Replace bool `json:"replace,omitempty"`
}

// joinThrough asks a member to add this node until one accepts.
func (n *node) joinThrough(addr string) {
	body, _ := json.Marshal(joinRequest{ID: n.cfg.id, RaftAddr: string(n.trans.LocalAddr()), HTTPAddr: n.cfg.httpAddr})
	client := &http.Client{Timeout: 15 * time.Second, Transport: n.peers}
	for attempt := 0; ; attempt++ {
		resp, err := client.Post("http://"+addr+"/join", "application/json", bytes.NewReader(body))
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				n.log.Info("joined the cluster", "through", addr)
				return
			}
			err = fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(msg))
			if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusConflict {
				// A definite refusal: asking again cannot help.
				n.log.Error("the cluster refused to add this node; not asking again", "through", addr, "error", err)
				return
			}
		}
		n.log.Warn("join failed, retrying", "through", addr, "error", err)
		select {
		case <-time.After(min(time.Duration(attempt+1)*200*time.Millisecond, 2*time.Second)):
		case <-n.done:
			return
		}
	}
}

// close shuts the node down: HTTP first, then Raft, then the store. Later
// calls return the first one's result.
func (n *node) close() error {
	n.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		close(n.done)
		if n.pilot != nil {
			n.pilot.stop()
		}
		herr := n.server.Shutdown(ctx)
		n.peers.CloseIdleConnections()
		rerr := n.raft.Shutdown().Error()
		terr := n.trans.Close()
		serr := n.store.Close()
		n.closeErr = errors.Join(herr, rerr, terr, serr)
	})
	return n.closeErr
}

// runNode runs a node until SIGINT or SIGTERM (or standard input closing,
// with -exit-on-stdin-close).
func runNode(args []string) error {
	cfg, err := parseNodeFlags(args)
	if err != nil {
		return err
	}
	n, err := startNode(cfg)
	if err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	if cfg.exitOnStdinClose {
		go func() {
			io.Copy(io.Discard, os.Stdin)
			stop <- syscall.SIGTERM
		}()
	}
	s := <-stop
	n.log.Info("shutting down", "signal", s)
	return n.close()
}
