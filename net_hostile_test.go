package raft

import (
	"bytes"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/hashicorp/go-hclog"
)

// syncBuffer is a log sink the transport's goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hostileServer is a transport with small limits whose log the test reads.
func hostileServer(t *testing.T) (*NetworkTransport, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	trans, err := NewTCPTransportWithConfig("127.0.0.1:0", nil, &NetworkTransportConfig{
		MaxPool: 2, Timeout: time.Second,
		Logger:         hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Debug}),
		MaxMessageSize: 1 << 20,
		ReadTimeout:    200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trans.Close() })
	return trans, logs
}

// waitClosed waits until the server closes conn, reading and discarding
// whatever it sends; it fails the test if the connection is still open after
// a generous bound (a guard against hanging, not a timing assertion).
func waitClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection open")
	}
}

// A peer sending garbage, truncated messages, a 4 GiB length, an unknown RPC
// type, an oversized message or a slow trickle has its connection closed
// with a log line naming the problem; the node stays healthy and still
// answers a proper RPC afterwards.
func TestNetworkTransportHostileInput(t *testing.T) {
	server, logs := hostileServer(t)
	serve(t, server, func(rpc RPC) {
		rpc.Respond(&AppendEntriesResponse{Term: 1, Success: true}, nil)
	})

	big := appendAppendEntriesRequest(nil, &AppendEntriesRequest{Term: 1,
		Entries: []*Log{{Index: 1, Data: make([]byte, 2<<20)}}}, false)
	small := appendAppendEntriesRequest(nil, &AppendEntriesRequest{Term: 1,
		Entries: []*Log{{Index: 1, Data: make([]byte, 100<<10)}}}, false)
	cases := []struct {
		name    string
		send    func(c net.Conn)
		wantLog string
	}{
		{"garbage", func(c net.Conn) { c.Write([]byte{rpcAppendEntries, 0xc1, 0xc1, 0xc1}) }, "invalid descriptor byte"},
		{"not a map", func(c net.Conn) { c.Write([]byte{rpcRequestVote, 0xa3, 'a', 'b', 'c'}) }, "decode RequestVote"},
		{"truncated", func(c net.Conn) {
			c.Write(append([]byte{rpcAppendEntries}, small[:len(small)/2]...))
			c.(*net.TCPConn).CloseWrite()
		}, "truncated"},
		{"length of 4 GiB", func(c net.Conn) {
			c.Write([]byte{rpcAppendEntries, 0x81, 0xa4, 'D', 'a', 't', 'a', mpStr32, 0xff, 0xff, 0xff, 0xff})
		}, "exceeds the maximum message size"},
		{"4G entries", func(c net.Conn) {
			c.Write([]byte{rpcAppendEntries, 0x81, 0xa7, 'E', 'n', 't', 'r', 'i', 'e', 's', mpArray32, 0xff, 0xff, 0xff, 0xff})
		}, "exceeds the maximum message size"},
		{"over the size limit", func(c net.Conn) { c.Write(append([]byte{rpcAppendEntries}, big...)) }, "exceeds the maximum message size"},
		{"unknown rpc type", func(c net.Conn) { c.Write([]byte{9}) }, "unknown rpc type 9"},
		{"slow trickle", func(c net.Conn) {
			c.Write([]byte{rpcAppendEntries, 0x89})
			for i := 0; i < 40; i++ {
				time.Sleep(20 * time.Millisecond)
				if _, err := c.Write([]byte{0xa4}); err != nil {
					return
				}
			}
		}, "i/o timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", string(server.LocalAddr()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			c.send(conn)
			waitClosed(t, conn)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			// Bounded: the limit is 1 MiB; the reads of the slow and large
			// cases allocate about that, never the declared sizes.
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("allocated %d bytes for one hostile connection", grew)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(logs.String(), c.wantLog) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if !strings.Contains(logs.String(), c.wantLog) {
				t.Fatalf("no log line with %q in:\n%s", c.wantLog, logs.String())
			}
		})
	}

	// Still healthy.
	client := newTestTCPTransport(t, time.Second)
	var resp AppendEntriesResponse
	req := &AppendEntriesRequest{RPCHeader: RPCHeader{ID: []byte("c"), Addr: []byte("c")}, Term: 1,
		Entries: []*Log{{Index: 1, Term: 1, Data: make([]byte, 512<<10)}}}
	if err := client.AppendEntries("s", server.LocalAddr(), req, &resp); err != nil || !resp.Success {
		t.Fatalf("a proper RPC after the hostile ones: %v %+v", err, resp)
	}
}

// deadlineConn records the read deadlines set on it.
type deadlineConn struct {
	net.Conn
	deadlines []time.Time
}

func (d *deadlineConn) SetReadDeadline(t time.Time) error {
	d.deadlines = append(d.deadlines, t)
	return nil
}

// A large request from a healthy but slow peer is not cut off: the read
// deadline is pushed out by ReadTimeout for every TimeoutScale bytes, and
// only then; a trickle of small reads does not extend it.
func TestNetworkTransportReadDeadlineGrowsWithProgress(t *testing.T) {
	trans := &NetworkTransport{TimeoutScale: 1000, readTimeout: time.Hour}
	conn := &deadlineConn{}
	in := &inboundConn{trans: trans, conn: conn}
	in.startDeadline()
	for _, received := range []int{10, 500, 999} {
		in.progress(received)
	}
	if len(conn.deadlines) != 1 {
		t.Fatalf("%d deadlines after less than TimeoutScale bytes, want only the first", len(conn.deadlines))
	}
	in.progress(1000)
	in.progress(1500)
	in.progress(2100)
	if len(conn.deadlines) != 3 {
		t.Fatalf("%d deadlines after 2100 bytes, want 3", len(conn.deadlines))
	}
	for i, d := range conn.deadlines {
		if time.Until(d) < 30*time.Minute {
			t.Fatalf("deadline %d is %v away, want about ReadTimeout", i, time.Until(d))
		}
	}

	// The snapshot data reader extends it the same way.
	conn.deadlines = nil
	in.startDeadline()
	dr := &deadlineReader{in: in, r: bytes.NewReader(make([]byte, 2500))}
	if _, err := io.Copy(io.Discard, iotest.OneByteReader(dr)); err != nil {
		t.Fatal(err)
	}
	if len(conn.deadlines) < 3 {
		t.Fatalf("%d deadlines while reading 2500 bytes of snapshot, want at least 3", len(conn.deadlines))
	}
}

// Pooled connections unused for MaxIdleTime are closed and not reused.
func TestNetworkTransportReapsIdleConnections(t *testing.T) {
	server := newTestTCPTransport(t, time.Second)
	serve(t, server, func(rpc RPC) { rpc.Respond(&RequestVoteResponse{Term: 1}, nil) })
	client, err := NewTCPTransportWithConfig("127.0.0.1:0", nil, &NetworkTransportConfig{
		MaxPool: 3, Timeout: time.Second, Logger: hclog.NewNullLogger(), MaxIdleTime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var resp RequestVoteResponse
	if err := client.RequestVote("s", server.LocalAddr(), &RequestVoteRequest{Term: 1}, &resp); err != nil {
		t.Fatal(err)
	}
	client.connPoolLock.Lock()
	pooled := append([]*netConn(nil), client.connPool[server.LocalAddr()]...)
	client.connPoolLock.Unlock()
	if len(pooled) != 1 {
		t.Fatalf("%d pooled connections, want 1", len(pooled))
	}
	if n := client.reapIdleOnce(time.Now()); n != 0 {
		t.Fatalf("reaped %d fresh connections", n)
	}
	if n := client.reapIdleOnce(time.Now().Add(2 * time.Hour)); n != 1 {
		t.Fatalf("reaped %d stale connections, want 1", n)
	}
	// The reaped connection is closed: reading from it fails at once.
	if _, err := pooled[0].conn.Read(make([]byte, 1)); err == nil {
		t.Fatal("reaped connection still open")
	}
	// A stale connection found in the pool is not used either.
	if err := client.RequestVote("s", server.LocalAddr(), &RequestVoteRequest{Term: 1}, &resp); err != nil {
		t.Fatal(err)
	}
	client.connPoolLock.Lock()
	stale := client.connPool[server.LocalAddr()][0]
	stale.lastUsed = time.Now().Add(-2 * time.Hour)
	client.connPoolLock.Unlock()
	if got := client.getPooledConn(server.LocalAddr()); got != nil {
		t.Fatal("a stale pooled connection was handed out")
	}
}
