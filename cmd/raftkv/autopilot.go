package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/autopilot"
)

// autopilotFlags are the -autopilot-* settings.
type autopilotFlags struct {
	enabled            bool
	cleanupDeadServers bool
	lastContact        time.Duration // 0: the heartbeat timeout
	maxTrailingLogs    uint64
	minQuorum          uint
	stabilization      time.Duration
	deadAfter          time.Duration
	updateInterval     time.Duration
	reconcileInterval  time.Duration
}

// pilot is raftkv's side of autopilot: it knows the members from the Raft
// configuration, asks each for its Raft statistics over HTTP (GET
// /status), counts a member failed once it has not answered for
// -autopilot-dead-after, and removes failed members through Raft. The
// Autopilot runs while this node leads.
type pilot struct {
	n  *node
	f  autopilotFlags
	ap *autopilot.Autopilot

	mu       sync.Mutex
	lastSeen map[raft.ServerID]time.Time // last answer to a status request
	listed   map[raft.ServerID]time.Time // first seen in the configuration
	since    time.Time                   // when this node last started leading

	// runMu orders starts and stops (not mu: Start makes a state, which
	// takes mu).
	runMu   sync.Mutex
	stopped bool // the node is closing: no more starts
}

func newPilot(n *node) *pilot {
	p := &pilot{n: n, f: n.cfg.autopilot, lastSeen: map[raft.ServerID]time.Time{}, listed: map[raft.ServerID]time.Time{}}
	p.ap = autopilot.New(n.raft, p,
		autopilot.WithLogger(n.log),
		autopilot.WithUpdateInterval(p.f.updateInterval),
		autopilot.WithReconcileInterval(p.f.reconcileInterval))
	return p
}

// lead starts or stops autopilot as this node gains or loses leadership.
func (p *pilot) lead(leader bool) {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	if !leader || p.stopped {
		<-p.ap.Stop()
		return
	}
	p.mu.Lock()
	p.since = time.Now()
	p.mu.Unlock()
	p.ap.Start(context.Background())
}

// stop ends autopilot for good (the node is closing).
func (p *pilot) stop() {
	p.runMu.Lock()
	defer p.runMu.Unlock()
	p.stopped = true
	<-p.ap.Stop()
}

// AutopilotConfig returns the flags' settings.
func (p *pilot) AutopilotConfig() *autopilot.Config {
	lc := p.f.lastContact
	if lc == 0 {
		lc = p.n.cfg.heartbeat
	}
	return &autopilot.Config{
		CleanupDeadServers:      p.f.cleanupDeadServers,
		LastContactThreshold:    lc,
		MaxTrailingLogs:         p.f.maxTrailingLogs,
		MinQuorum:               p.f.minQuorum,
		ServerStabilizationTime: p.f.stabilization,
	}
}

// NotifyState: the state is read through GET /autopilot.
func (p *pilot) NotifyState(*autopilot.State) {}

// KnownServers returns the members of the latest configuration: alive
// unless a member has not answered a statistics request for -autopilot-
// dead-after, counting from when this node began to lead or the member
// was first seen in the configuration, if later.
func (p *pilot) KnownServers() map[raft.ServerID]*autopilot.Server {
	cf := p.n.raft.GetConfiguration()
	if cf.Error() != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	_, leader := p.n.raft.LeaderWithID()
	out := map[raft.ServerID]*autopilot.Server{}
	for id := range p.listed {
		if !slices.ContainsFunc(cf.Configuration().Servers, func(s raft.Server) bool { return s.ID == id }) {
			delete(p.listed, id) // removed: a later return is a new member
		}
	}
	for _, s := range cf.Configuration().Servers {
		status := autopilot.NodeAlive
		if _, ok := p.listed[s.ID]; !ok {
			p.listed[s.ID] = now
		}
		if s.ID != raft.ServerID(p.n.cfg.id) {
			seen := p.lastSeen[s.ID]
			for _, t := range []time.Time{p.since, p.listed[s.ID]} {
				if seen.Before(t) {
					seen = t
				}
			}
			if now.Sub(seen) > p.f.deadAfter {
				status = autopilot.NodeFailed
			}
		}
		out[s.ID] = &autopilot.Server{ID: s.ID, Name: string(s.ID), Address: s.Address, NodeStatus: status,
			NodeType: autopilot.NodeVoter, IsLeader: s.ID == leader,
			Meta: map[string]string{"http_addr": p.n.fsm.member(string(s.ID))}}
	}
	return out
}

// FetchServerStats asks each server for its status over HTTP, this node
// from itself.
func (p *pilot) FetchServerStats(ctx context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	var mu sync.Mutex
	out := map[raft.ServerID]*autopilot.ServerStats{}
	var wg sync.WaitGroup
	for id := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st status
			if string(id) == p.n.cfg.id {
				st = p.n.status()
			} else if err := p.fetch(ctx, id, &st); err != nil {
				p.n.log.Debug("autopilot: no statistics from a member", "id", id, "error", err)
				return
			}
			s := &autopilot.ServerStats{LastTerm: st.LastLogTerm, LastIndex: st.LastIndex}
			switch lc := st.LastLeaderContact; lc {
			case "", "0":
			case "never":
				s.LastContact = -1
			default:
				d, err := time.ParseDuration(lc)
				if err != nil {
					return
				}
				s.LastContact = d
			}
			mu.Lock()
			out[id] = s
			mu.Unlock()
			p.mu.Lock()
			p.lastSeen[id] = time.Now()
			p.mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (p *pilot) fetch(ctx context.Context, id raft.ServerID, st *status) error {
	addr := p.n.fsm.member(string(id))
	if addr == "" {
		return fmt.Errorf("no HTTP address recorded for %s", id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: p.n.peers}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /status: %s", resp.Status)
	}
	return json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(st)
}

// RemoveFailedServer removes a failed member from Raft.
func (p *pilot) RemoveFailedServer(s *autopilot.Server) {
	go func() {
		p.n.log.Info("autopilot: removing a failed member", "id", s.ID)
		if err := p.n.raft.RemoveServer(s.ID, 0, 0).Error(); err != nil {
			p.n.log.Warn("autopilot: removing a failed member", "id", s.ID, "error", err)
		}
	}()
}

// handleAutopilot serves GET /autopilot: the leader's autopilot state.
func (n *node) handleAutopilot(w http.ResponseWriter, r *http.Request) {
	if n.pilot == nil {
		httpError(w, http.StatusNotFound, "autopilot is off on this node (-autopilot=false)")
		return
	}
	if n.forward(w, r) {
		return
	}
	writeJSON(w, n.pilot.ap.GetState())
}
