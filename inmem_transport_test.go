package raft_test

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	raft "github.com/seed48a2b68f/raft"
)

func TestInmemTransportConnectDisconnectAndTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		addr1, t1 := raft.NewInmemTransportWithTimeout("one", 100*time.Millisecond)
		addr2, t2 := raft.NewInmemTransportWithTimeout("two", 100*time.Millisecond)
		if addr1 != "one" || t1.LocalAddr() != "one" {
			t.Fatalf("address %q", addr1)
		}
		if a, _ := raft.NewInmemTransport(""); a == "" {
			t.Fatal("empty address not replaced by a random one")
		}
		req := &raft.AppendEntriesRequest{Term: 1}
		var resp raft.AppendEntriesResponse

		if err := t1.AppendEntries("two", addr2, req, &resp); err == nil || !strings.Contains(err.Error(), "failed to connect") {
			t.Fatalf("unconnected peer: %v", err)
		}
		t1.Connect(addr2, t2)

		// Nobody consumes t2: the 16-slot buffer fills, then sends time out.
		var err error
		for i := 0; i < 20 && err == nil; i++ {
			err = t1.AppendEntries("two", addr2, req, &resp)
		}
		if err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("unanswered RPC: %v", err)
		}

		// A consumer answers.
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case rpc := <-t2.Consumer():
					rpc.Respond(&raft.AppendEntriesResponse{Term: 7, Success: true}, nil)
				case <-time.After(time.Second):
					return
				}
			}
		}()
		if err := t1.AppendEntries("two", addr2, req, &resp); err != nil || !resp.Success || resp.Term != 7 {
			t.Fatalf("answered RPC: %v %+v", err, resp)
		}
		p, err := t1.AppendEntriesPipeline("two", addr2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != nil {
			t.Fatal(err)
		}
		f := <-p.Consumer()
		if err := f.Error(); err != nil || !f.Response().Success {
			t.Fatalf("pipelined RPC: %v", err)
		}
		t1.Disconnect(addr2)
		if _, err := p.AppendEntries(req, &raft.AppendEntriesResponse{}); err != raft.ErrPipelineShutdown {
			t.Fatalf("pipeline after Disconnect: %v", err)
		}
		if err := t1.AppendEntries("two", addr2, req, &resp); err == nil {
			t.Fatal("RPC after Disconnect succeeded")
		}
		t1.Connect(addr2, t2)
		t1.DisconnectAll()
		if err := t1.AppendEntries("two", addr2, req, &resp); err == nil {
			t.Fatal("RPC after DisconnectAll succeeded")
		}
		if string(t1.EncodePeer("x", "addr")) != "addr" || t1.DecodePeer([]byte("addr")) != "addr" {
			t.Fatal("EncodePeer/DecodePeer are not the identity on addresses")
		}
		var _ raft.LoopbackTransport = t1
		<-done
	})
}
