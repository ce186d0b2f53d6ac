package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/seed48a2b68f/raft"
)

// Headers of the HTTP API.
const (
	// headerForwarded marks a request a follower passed to the leader; a
	// node that receives one and is not the leader answers 503 instead
	// of forwarding again.
	headerForwarded = "X-Raftkv-Forwarded-By"
	// headerOutcome is "unknown" on a failed write that may still have
	// been applied (leadership lost after the entry was sent, or the
	// leader failed while a forwarded request was in flight).
	headerOutcome = "X-Raftkv-Outcome"
	// headerIndex carries the log index of a write, or the index a
	// linearizable read waited for.
	headerIndex = "X-Raft-Index"
)

const applyTimeout = 5 * time.Second

func (n *node) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /kv/{key...}", n.handleGet)
	mux.HandleFunc("PUT /kv/{key...}", n.handlePut)
	mux.HandleFunc("DELETE /kv/{key...}", n.handleDelete)
	mux.HandleFunc("POST /join", n.handleJoin)
	mux.HandleFunc("DELETE /members/{id}", n.handleRemove)
	mux.HandleFunc("GET /status", n.handleStatus)
	mux.HandleFunc("GET /autopilot", n.handleAutopilot)
	mux.Handle("GET /metrics", n.metrics)
	mux.HandleFunc("POST /snapshot", n.handleSnapshot)
	mux.HandleFunc("POST /leader/transfer", n.handleTransfer)
	mux.HandleFunc("GET /backup", n.handleBackup)
	mux.HandleFunc("POST /restore", n.handleRestore)
	return mux
}

// httpError writes a plain-text error.
func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintf(w, format+"\n", args...)
}

// unavailable answers 503 with Retry-After: nothing was done, and the
// client may retry.
func unavailable(w http.ResponseWriter, format string, args ...any) {
	w.Header().Set("Retry-After", "1")
	httpError(w, http.StatusServiceUnavailable, format, args...)
}

// raftError maps a library error to a response. Errors that guarantee the
// command was not applied are 503s; others leave the outcome unknown.
func raftError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		unavailable(w, "%s: %v", what, err)
	default:
		w.Header().Set(headerOutcome, "unknown")
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, "%s: %v (it may or may not have taken effect)", what, err)
	}
}

// validKey reports why a key is unacceptable, or "".
func validKey(key string) string {
	switch {
	case key == "":
		return "the key is empty"
	case len(key) > maxKeyLen:
		return fmt.Sprintf("the key is %d bytes; at most %d are allowed", len(key), maxKeyLen)
	case !utf8.ValidString(key):
		return "the key is not valid UTF-8"
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return fmt.Sprintf("the key holds the control character %U", r)
		}
	}
	return ""
}

func (n *node) key(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.PathValue("key")
	if why := validKey(key); why != "" {
		httpError(w, http.StatusBadRequest, "bad key: %s", why)
		return "", false
	}
	return key, true
}

// forward passes a request the leader must serve to the leader, or answers
// 503 when there is none this node can reach. It reports whether the
// request was handled (forwarded or refused).
func (n *node) forward(w http.ResponseWriter, r *http.Request) bool {
	if n.raft.State() == raft.Leader {
		return false
	}
	if n.refuseIfRemoved(w) {
		return true
	}
	if by := r.Header.Get(headerForwarded); by != "" {
		unavailable(w, "not the leader (forwarded here by %s); leadership is changing", by)
		return true
	}
	_, id := n.raft.LeaderWithID()
	if id == "" {
		unavailable(w, "no leader is known; an election may be running")
		return true
	}
	addr := n.fsm.member(string(id))
	if addr == "" {
		unavailable(w, "the leader %s has not published its HTTP address yet", id)
		return true
	}
	target := &url.URL{Scheme: "http", Host: addr}
	proxy := &httputil.ReverseProxy{
		Transport: n.peers,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set(headerForwarded, n.cfg.id)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, syscall.ECONNREFUSED) {
				// The leader is down and nothing was sent.
				unavailable(w, "the leader %s at %s is unreachable: %v", id, addr, err)
				return
			}
			if r.Method != http.MethodGet {
				w.Header().Set(headerOutcome, "unknown")
			}
			w.Header().Set("Retry-After", "1")
			httpError(w, http.StatusBadGateway, "forwarding to the leader %s at %s: %v", id, addr, err)
		},
	}
	proxy.ServeHTTP(w, r)
	return true
}

func (n *node) handleGet(w http.ResponseWriter, r *http.Request) {
	key, ok := n.key(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	consistency := q.Get("consistency")
	if _, stale := q["stale"]; stale {
		consistency = "stale"
	}
	read := raft.ReadByRound
	switch consistency {
	case "", "linearizable":
	case "lease":
		if !n.cfg.leaseReads {
			httpError(w, http.StatusBadRequest, "bad consistency: this node was not started with -lease-reads")
			return
		}
		read = raft.ReadByLease
	case "stale":
	default:
		httpError(w, http.StatusBadRequest, "bad consistency %q: want linearizable (the default), lease or stale", consistency)
		return
	}
	if consistency != "stale" {
		if n.refuseIfRemoved(w) {
			return
		}
		idx, err := n.readBarrier(r.Context(), read)
		if err != nil {
			// A read changes nothing: whatever failed, asking again is safe.
			unavailable(w, "linearizable read: %v", err)
			return
		}
		w.Header().Set(headerIndex, strconv.FormatUint(idx, 10))
	}
	v, found := n.fsm.get(key)
	if !found {
		httpError(w, http.StatusNotFound, "key %q not found", key)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Write(v)
}

// readBarrier makes a read of this node's state linearizable, on the leader
// or a follower, without a log write and without forwarding: ReadIndex
// (the leader confirms its index by a round of heartbeats, or for
// consistency=lease by its lease; a follower asks the leader for it), then
// a wait until this node has applied that index.
func (n *node) readBarrier(ctx context.Context, c raft.ReadConsistency) (uint64, error) {
	rf := n.raft.ReadIndexWith(c, applyTimeout)
	if err := rf.Error(); err != nil {
		return 0, err
	}
	idx := rf.Index()
	for n.raft.AppliedIndex() < idx {
		// Entries the FSM never sees (no-ops, configurations) advance
		// AppliedIndex without a batch of ours, hence the short tick.
		select {
		case <-n.fsm.changedCh():
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return idx, nil
}

func (n *node) handlePut(w http.ResponseWriter, r *http.Request) {
	key, ok := n.key(w, r)
	if !ok || n.forward(w, r) {
		return
	}
	value, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxValueLen))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "bad body: values are at most %d bytes", maxValueLen)
			return
		}
		httpError(w, http.StatusBadRequest, "bad body: %v", err)
		return
	}
	n.write(w, r, encodeCommand(opPut, key, value))
}

func (n *node) handleDelete(w http.ResponseWriter, r *http.Request) {
	key, ok := n.key(w, r)
	if !ok {
		return
	}
	n.write(w, r, encodeCommand(opDelete, key, nil))
}

// write applies a command on the leader (forwarding from a follower) and
// answers 204 once it is committed and applied.
func (n *node) write(w http.ResponseWriter, r *http.Request, cmd []byte) {
	if n.forward(w, r) {
		return
	}
	f := n.raft.Apply(cmd, applyTimeout)
	if err := f.Error(); err != nil {
		raftError(w, "write", err)
		return
	}
	if err, _ := f.Response().(error); err != nil {
		httpError(w, http.StatusInternalServerError, "write: %v", err)
		return
	}
	w.Header().Set(headerIndex, strconv.FormatUint(f.Index(), 10))
	w.WriteHeader(http.StatusNoContent)
}

// maxJoinBody bounds the body of POST /join.
const maxJoinBody = 64 << 10

func (n *node) handleJoin(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJoinBody))
	if err != nil {
		httpError(w, http.StatusBadRequest, "bad body: %v", err)
		return
	}
	req, field, err := parseJoin(body)
	if err != nil {
		httpError(w, http.StatusBadRequest, "bad %s: %v", field, err)
		return
	}
	// The body was read here; a forwarded request carries it again.
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if n.forward(w, r) {
		return
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		raftError(w, "reading the configuration", err)
		return
	}
	already := false
	for _, s := range cf.Configuration().Servers {
		switch {
		case s.ID == raft.ServerID(req.ID) && s.Address == raft.ServerAddress(req.RaftAddr):
			// Present already: as a voter, or as a nonvoter autopilot
			// will promote.
			already = s.Suffrage == raft.Voter || n.pilot != nil
		case s.ID == raft.ServerID(req.ID) && !req.Replace:
			httpError(w, http.StatusConflict, "%s is already a member at %s; to move it to %s, send \"replace\": true", req.ID, s.Address, req.RaftAddr)
			return
		case s.ID != raft.ServerID(req.ID) && s.Address == raft.ServerAddress(req.RaftAddr):
			httpError(w, http.StatusConflict, "bad raft_addr: %s is the address of member %s", req.RaftAddr, s.ID)
			return
		}
	}
	index := cf.Index()
	if !already {
		// With autopilot the newcomer joins without a vote and is promoted
		// once it has been healthy for -autopilot-server-stabilization-time.
		add := n.raft.AddVoter
		if n.pilot != nil {
			add = n.raft.AddNonvoter
		}
		f := add(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, applyTimeout)
		if err := f.Error(); err != nil {
			raftError(w, "adding "+req.ID, err)
			return
		}
		index = f.Index()
	}
	if n.fsm.member(req.ID) != req.HTTPAddr {
		if err := n.raft.Apply(encodeCommand(opMember, req.ID, []byte(req.HTTPAddr)), applyTimeout).Error(); err != nil {
			raftError(w, "recording the HTTP address of "+req.ID, err)
			return
		}
	}
	if already {
		n.log.Info("join of a member already present", "id", req.ID, "raft", req.RaftAddr, "http", req.HTTPAddr)
	} else {
		n.log.Info("added a member", "id", req.ID, "raft", req.RaftAddr, "http", req.HTTPAddr, "replace", req.Replace,
			"voter", n.pilot == nil)
	}
	writeJSON(w, map[string]any{"id": req.ID, "index": index, "already_member": already})
}

// parseJoin decodes and checks a POST /join body: one JSON object with
// known fields and nothing after it, an ID that is a valid key, and
// addresses that are host:port. On error it names the field at fault
// ("body" for the JSON as a whole).
func parseJoin(body []byte) (joinRequest, string, error) {
	var req joinRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, "body", fmt.Errorf("want {\"id\", \"raft_addr\", \"http_addr\"} (and optionally \"replace\": true): %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, "body", errors.New("bytes after the JSON object")
	}
	if why := validKey(req.ID); why != "" {
		return req, "id", errors.New(why)
	}
	for _, f := range [...]struct{ name, v string }{{"raft_addr", req.RaftAddr}, {"http_addr", req.HTTPAddr}} {
		if err := validHostPort(f.v); err != nil {
			return req, f.name, err
		}
	}
	return req, "", nil
}

// validHostPort checks that addr can name a server to dial: host:port
// with a host and a port from 1 to 65535.
func validHostPort(addr string) error {
	if addr == "" {
		return errors.New("empty; want host:port")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q has no host; others could not dial it", addr)
	}
	if why := validKey(host); why != "" {
		return fmt.Errorf("the host of %q: %s", addr, why)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("the port of %q is not a number from 1 to 65535", addr)
	}
	return nil
}

func (n *node) handleRemove(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if why := validKey(id); why != "" {
		httpError(w, http.StatusBadRequest, "bad id: %s", why)
		return
	}
	if n.forward(w, r) {
		return
	}
	known := false
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		raftError(w, "reading the configuration", err)
		return
	}
	for _, s := range cf.Configuration().Servers {
		known = known || s.ID == raft.ServerID(id)
	}
	if !known {
		httpError(w, http.StatusNotFound, "%s is not a member", id)
		return
	}
	f := n.raft.RemoveServer(raft.ServerID(id), 0, applyTimeout)
	if err := f.Error(); err != nil {
		raftError(w, "removing "+id, err)
		return
	}
	if n.raft.State() == raft.Leader {
		if err := n.raft.Apply(encodeCommand(opForget, id, nil), applyTimeout).Error(); err != nil {
			n.log.Warn("forgetting the HTTP address of a removed member", "id", id, "error", err)
		}
	}
	writeJSON(w, map[string]any{"removed": id, "index": f.Index()})
}

func (n *node) handleSnapshot(w http.ResponseWriter, r *http.Request) {
	f := n.raft.Snapshot()
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNothingNewToSnapshot) {
			httpError(w, http.StatusConflict, "snapshot: %v", err)
			return
		}
		httpError(w, http.StatusInternalServerError, "snapshot: %v", err)
		return
	}
	meta, rc, err := f.Open()
	if err != nil {
		httpError(w, http.StatusInternalServerError, "snapshot taken, but opening it failed: %v", err)
		return
	}
	rc.Close()
	writeJSON(w, map[string]any{"id": meta.ID, "index": meta.Index, "term": meta.Term, "size": meta.Size})
}

// backupWriteTimeout is how long GET /backup may take to send a backup, in
// place of the server's write timeout.
const backupWriteTimeout = 10 * time.Minute

// handleBackup takes a snapshot on this node and streams it: a backup of
// everything this node has applied.
func (n *node) handleBackup(w http.ResponseWriter, r *http.Request) {
	http.NewResponseController(w).SetWriteDeadline(time.Now().Add(backupWriteTimeout))
	f := n.raft.Snapshot()
	if err := f.Error(); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, raft.ErrNothingNewToSnapshot) {
			code = http.StatusConflict
		}
		httpError(w, code, "backup: taking a snapshot: %v", err)
		return
	}
	meta, rc, err := f.Open()
	if err != nil {
		httpError(w, http.StatusInternalServerError, "backup: opening the snapshot: %v", err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(meta.Size, 10))
	w.Header().Set(headerIndex, strconv.FormatUint(meta.Index, 10))
	io.Copy(w, rc)
}

// maxRestoreSize bounds a backup sent to POST /restore.
const maxRestoreSize = 1 << 30

// restoreReadTimeout is how long an upload to POST /restore may take: far
// longer than other requests get (the server's read timeout), since a
// backup may be large.
const restoreReadTimeout = 10 * time.Minute

// handleRestore replaces the cluster's state with a backup (the body of a
// GET /backup), through the leader's Restore: the leader installs it and
// sends it to every follower. The upload goes to a file in the data
// directory, is checked there, and only then restored from the file, so the
// node's memory does not grow with it; a refused backup changes nothing.
func (n *node) handleRestore(w http.ResponseWriter, r *http.Request) {
	if n.forward(w, r) {
		return
	}
	http.NewResponseController(w).SetReadDeadline(time.Now().Add(restoreReadTimeout))
	f, err := os.CreateTemp(n.cfg.dataDir, "restore-*.upload")
	if err != nil {
		httpError(w, http.StatusInternalServerError, "restore: a file for the upload: %v", err)
		return
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	size, err := io.Copy(f, http.MaxBytesReader(w, r.Body, maxRestoreSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "restore: a backup is at most %d bytes", maxRestoreSize)
			return
		}
		httpError(w, http.StatusBadRequest, "restore: reading the backup: %v", err)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		httpError(w, http.StatusInternalServerError, "restore: %v", err)
		return
	}
	keys, err := checkSnapshot(bufio.NewReader(f))
	if err != nil {
		httpError(w, http.StatusBadRequest, "restore: not a usable backup: %v", err)
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		httpError(w, http.StatusInternalServerError, "restore: %v", err)
		return
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: size}
	if err := n.raft.Restore(meta, f, time.Minute); err != nil {
		raftError(w, "restore", err)
		return
	}
	n.log.Info("restored a backup", "keys", keys, "bytes", size)
	writeJSON(w, map[string]any{"restored_keys": keys, "index": n.raft.LastIndex()})
}

// transferWait bounds how long POST /leader/transfer waits for the new
// leader to be known after this node stepped down.
const transferWait = 10 * time.Second

func (n *node) handleTransfer(w http.ResponseWriter, r *http.Request) {
	if n.forward(w, r) {
		return
	}
	var f raft.Future
	if id := r.URL.Query().Get("id"); id != "" {
		if id == n.cfg.id {
			httpError(w, http.StatusConflict, "%s already leads", id)
			return
		}
		var addr raft.ServerAddress
		cf := n.raft.GetConfiguration()
		if err := cf.Error(); err != nil {
			raftError(w, "reading the configuration", err)
			return
		}
		for _, s := range cf.Configuration().Servers {
			if s.ID == raft.ServerID(id) && s.Suffrage == raft.Voter {
				addr = s.Address
			}
		}
		if addr == "" {
			httpError(w, http.StatusBadRequest, "%s is not a voter", id)
			return
		}
		f = n.raft.LeadershipTransferToServer(raft.ServerID(id), addr)
	} else {
		if !n.hasOtherVoter() {
			httpError(w, http.StatusConflict, "there is no other voter to hand leadership to")
			return
		}
		f = n.raft.LeadershipTransfer()
	}
	if err := f.Error(); err != nil && n.raft.State() == raft.Leader {
		// Nothing changed: this node still leads.
		unavailable(w, "leadership transfer: %v (%s still leads)", err, n.cfg.id)
		return
	}
	// The future resolves once this node no longer leads; name the new
	// leader once it is known.
	var leader raft.ServerID
	waitFor(transferWait, "a new leader", func() bool {
		_, leader = n.raft.LeaderWithID()
		return leader != "" && leader != raft.ServerID(n.cfg.id)
	})
	if leader == "" || leader == raft.ServerID(n.cfg.id) {
		unavailable(w, "%s stepped down, but no new leader is known yet", n.cfg.id)
		return
	}
	writeJSON(w, map[string]any{"transferred_from": n.cfg.id, "leader": leader})
}

// hasOtherVoter reports whether the configuration holds a voter other than
// this node.
func (n *node) hasOtherVoter() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return true // let the library answer
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID != raft.ServerID(n.cfg.id) && s.Suffrage == raft.Voter {
			return true
		}
	}
	return false
}

// refuseIfRemoved answers 410 and reports true on a node removed from the
// cluster.
func (n *node) refuseIfRemoved(w http.ResponseWriter) bool {
	if !n.removed() {
		return false
	}
	httpError(w, http.StatusGone, "this node (%s) was removed from the cluster; it serves only ?stale reads and /status", n.cfg.id)
	return true
}

// removed reports whether this node was a member and no longer is: its
// configuration names other servers but not itself. A node still waiting
// to join has an empty configuration.
func (n *node) removed() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	servers := cf.Configuration().Servers
	if len(servers) == 0 {
		return false
	}
	for _, s := range servers {
		if s.ID == raft.ServerID(n.cfg.id) {
			return false
		}
	}
	return true
}

// status is the JSON of GET /status.
type status struct {
	ID                string                `json:"id"`
	State             string                `json:"state"`
	Term              uint64                `json:"term"`
	Leader            *member               `json:"leader"`
	CommitIndex       uint64                `json:"commit_index"`
	AppliedIndex      uint64                `json:"applied_index"`
	LastIndex         uint64                `json:"last_index"`
	LastLogTerm       uint64                `json:"last_log_term"`
	LastSnapshotIndex uint64                `json:"last_snapshot_index"`
	LastLeaderContact string                `json:"last_leader_contact,omitempty"`
	Configuration     []member              `json:"configuration"`
	Peers             map[string]peerStatus `json:"peers,omitempty"`
	Keys              int                   `json:"keys"`
}

type member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	Suffrage string `json:"suffrage,omitempty"`
}

// peerStatus is the leader's view of a follower.
type peerStatus struct {
	LastContact      time.Time `json:"last_contact"`
	LastContactAgoMS int64     `json:"last_contact_ago_ms"`
	MatchIndex       uint64    `json:"match_index"`
}

func (n *node) status() status {
	st := status{
		ID:           n.cfg.id,
		State:        n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		LastIndex:    n.raft.LastIndex(),
	}
	stats := n.raft.Stats()
	st.LastSnapshotIndex, _ = strconv.ParseUint(stats["last_snapshot_index"], 10, 64)
	st.LastLogTerm, _ = strconv.ParseUint(stats["last_log_term"], 10, 64)
	if n.raft.State() != raft.Leader {
		st.LastLeaderContact = stats["last_contact"]
	}
	if addr, id := n.raft.LeaderWithID(); id != "" {
		st.Leader = &member{ID: string(id), RaftAddr: string(addr), HTTPAddr: n.fsm.member(string(id))}
	}
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			st.Configuration = append(st.Configuration, member{ID: string(s.ID), RaftAddr: string(s.Address),
				HTTPAddr: n.fsm.member(string(s.ID)), Suffrage: s.Suffrage.String()})
		}
	}
	now := time.Now()
	for id, p := range n.raft.PeerStatus() {
		if st.Peers == nil {
			st.Peers = map[string]peerStatus{}
		}
		st.Peers[string(id)] = peerStatus{LastContact: p.LastContact, LastContactAgoMS: now.Sub(p.LastContact).Milliseconds(), MatchIndex: p.MatchIndex}
	}
	n.fsm.mu.RLock()
	st.Keys = len(n.fsm.data)
	n.fsm.mu.RUnlock()
	return st
}

func (n *node) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, n.status())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
