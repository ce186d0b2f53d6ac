package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// roundFileSize is the size of each node's file in bareRound; writes wrap
// around inside it.
const roundFileSize = 4 << 20

// roundNode is one node's file in bareRound: written full of zeros first,
// so that its data syncs, like raftbolt's journal's, flush data only.
type roundNode struct {
	f   *os.File
	off int64
}

func newRoundNode(path string) (*roundNode, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteAt(make([]byte, roundFileSize), 0); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return &roundNode{f: f}, nil
}

// store writes b at the node's next offset and waits for a data sync.
func (n *roundNode) store(b []byte) error {
	if n.off+int64(len(b)) > roundFileSize {
		n.off = 0
	}
	if _, err := n.f.WriteAt(b, n.off); err != nil {
		return err
	}
	n.off += int64(len(b))
	return datasync(n.f)
}

// bareRound runs S2's one-client path for d with nothing of raft around
// it, and returns its ops/s: the most a Go program of the same shape gets
// from this machine, where the limit (a sync plus a round trip) leaves out
// the hand-offs between goroutines, and processors, that three nodes in
// one process need. Per op the leader hands the payload to two sender
// goroutines, which write it to two followers over loopback TCP, writes it
// to its own file with a data sync meanwhile, and waits for the first
// follower's acknowledgement of that op; a follower reads the op, writes
// it to its own file with a data sync, and answers with the op's number.
func bareRound(payload int, d time.Duration) (opsPerSec float64, err error) {
	payload = max(payload, 8) // the op's number leads the payload
	dir, err := os.MkdirTemp("", "raft-bench-round-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()

	var (
		wg    sync.WaitGroup
		conns []net.Conn
		files []*os.File
	)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
		for _, f := range files {
			f.Close()
		}
	}()
	leader, err := newRoundNode(filepath.Join(dir, "leader"))
	if err != nil {
		return 0, err
	}
	files = append(files, leader.f)
	acks := make(chan uint64, 16)
	failed := make(chan error, 2)
	quit := make(chan struct{})
	defer close(quit) // runs before the connections close
	senders := make([]chan []byte, 2)
	for i := range senders {
		fn, err := newRoundNode(filepath.Join(dir, fmt.Sprintf("follower%d", i)))
		if err != nil {
			return 0, err
		}
		files = append(files, fn.f)
		out, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return 0, err
		}
		conns = append(conns, out)
		in, err := ln.Accept()
		if err != nil {
			return 0, err
		}
		conns = append(conns, in)
		senders[i] = make(chan []byte, 1)
		wg.Add(3)
		go func() { // the follower
			defer wg.Done()
			buf := make([]byte, payload)
			for {
				if _, err := io.ReadFull(in, buf); err != nil {
					return
				}
				if err := fn.store(buf); err != nil {
					failed <- err
					return
				}
				if _, err := in.Write(buf[:8]); err != nil {
					return
				}
			}
		}()
		go func() { // the leader's sender to it
			defer wg.Done()
			for b := range senders[i] {
				if _, err := out.Write(b); err != nil {
					return
				}
			}
		}()
		go func() { // the leader's reader of its answers
			defer wg.Done()
			b := make([]byte, 8)
			for {
				if _, err := io.ReadFull(out, b); err != nil {
					return
				}
				select {
				case acks <- binary.BigEndian.Uint64(b):
				case <-quit:
					return
				}
			}
		}()
	}
	defer func() {
		for _, s := range senders {
			if s != nil {
				close(s)
			}
		}
	}()

	stuck := time.NewTimer(time.Hour)
	defer stuck.Stop()
	start := time.Now()
	var ops uint64
	for time.Since(start) < d {
		ops++
		msg := make([]byte, payload) // a lagging sender may still hold the last one
		binary.BigEndian.PutUint64(msg, ops)
		for _, s := range senders {
			s <- msg
		}
		if err := leader.store(msg); err != nil {
			return 0, err
		}
		stuck.Reset(5 * time.Second)
		for done := false; !done; {
			select {
			case a := <-acks:
				done = a == ops
			case err := <-failed:
				return 0, err
			case <-stuck.C:
				return 0, errors.New("bare round: no answer from the followers in 5s")
			}
		}
	}
	return float64(ops) / time.Since(start).Seconds(), nil
}
