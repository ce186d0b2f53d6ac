package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// This file runs raftkv nodes as child processes and talks to them over
// HTTP; the demo and the end-to-end test share it.

// proc is one node run as a child process.
type proc struct {
	id, raftAddr, httpAddr, dataDir, logPath string
	args                                     []string // beyond the identity flags
	cmd                                      *exec.Cmd
	stdin                                    io.WriteCloser
	exited                                   chan struct{}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func newProc(dir, id string, args ...string) (*proc, error) {
	raftAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return &proc{id: id, raftAddr: raftAddr, httpAddr: httpAddr,
		dataDir: filepath.Join(dir, id), logPath: filepath.Join(dir, id+".log"), args: args}, nil
}

// start runs the node. Its standard input is a pipe held by this process:
// should this process die, the pipe closes and the node shuts down, so no
// node outlives the demo or the test.
func (p *proc) start(exe string) error {
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := append([]string{"-id", p.id, "-raft", p.raftAddr, "-http", p.httpAddr, "-data", p.dataDir, "-exit-on-stdin-close"}, p.args...)
	p.cmd = exec.Command(exe, args...)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		logFile.Close()
		return err
	}
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", p.id, err)
	}
	p.exited = make(chan struct{})
	go func() {
		p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	return nil
}

func (p *proc) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill ends the node at once (SIGKILL on Unix).
func (p *proc) kill() {
	if p.running() {
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// stop asks the node to shut down cleanly, and kills it after a grace
// period.
func (p *proc) stop() {
	if !p.running() {
		return
	}
	p.stdin.Close()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// logTail returns the end of the node's log, for error reports.
func (p *proc) logTail(lines int) string {
	b, _ := os.ReadFile(p.logPath)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// kvClient talks to nodes' HTTP APIs.
type kvClient struct{ http *http.Client }

func newKVClient() *kvClient {
	return &kvClient{http: &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 512},
	}}
}

// errUnavailable is a 503 without X-Raftkv-Outcome: nothing was done.
var errUnavailable = errors.New("unavailable")

// errNotFound is a 404 from a read.
var errNotFound = errors.New("not found")

// do sends one request; a non-2xx answer becomes an error wrapping
// errUnavailable when the request certainly had no effect.
func (c *kvClient) do(method, addr, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			// Nothing listens there (the node is down): nothing was sent.
			return nil, fmt.Errorf("%w: %w", errUnavailable, err)
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	switch {
	case resp.StatusCode/100 == 2:
		return data, nil
	case resp.StatusCode == http.StatusNotFound && method == http.MethodGet:
		return nil, errNotFound
	case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(headerOutcome) == "":
		return nil, fmt.Errorf("%w: %s", errUnavailable, bytes.TrimSpace(data))
	}
	return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
}

func kvPath(key string) string { return "/kv/" + url.PathEscape(key) }

func (c *kvClient) put(addr, key string, value []byte) error {
	_, err := c.do(http.MethodPut, addr, kvPath(key), value)
	return err
}

func (c *kvClient) get(addr, key string) ([]byte, error) {
	return c.do(http.MethodGet, addr, kvPath(key), nil)
}

// getStale reads this node's own state, without a round to the leader.
func (c *kvClient) getStale(addr, key string) ([]byte, error) {
	return c.do(http.MethodGet, addr, kvPath(key)+"?stale", nil)
}

func (c *kvClient) status(addr string) (status, error) {
	var st status
	b, err := c.do(http.MethodGet, addr, "/status", nil)
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	return st, err
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// waitReady waits until every given node reports the same leader, which
// has published its HTTP address, with all of them voters.
func (c *kvClient) waitReady(timeout time.Duration, procs []*proc) (*proc, error) {
	var leader *proc
	err := waitFor(timeout, "a leader that every node knows and a full configuration", func() bool {
		leader = nil
		for _, p := range procs {
			st, err := c.status(p.httpAddr)
			if err != nil || st.Leader == nil || st.Leader.HTTPAddr == "" {
				return false
			}
			voters := 0
			for _, m := range st.Configuration {
				if m.Suffrage == "Voter" {
					voters++
				}
			}
			if voters != len(procs) {
				return false
			}
			for _, q := range procs {
				if q.id == st.Leader.ID {
					if leader != nil && leader != q {
						return false
					}
					leader = q
				}
			}
		}
		return leader != nil
	})
	return leader, err
}
