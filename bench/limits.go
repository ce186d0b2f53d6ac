package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"
)

// measureLimits times this machine's fsync (a 16-byte append and Sync in
// the temporary directory, where the benchmark's files live), the same
// with three files synced at once (S2's three nodes share the disk, and
// each writes every entry), both again as a 16-byte write into space
// allocated beforehand and a data-only sync (what a log store that
// preallocates its files waits for: no file size or block map changes),
// a 16-byte TCP round trip on loopback, and S2's one-client path without
// raft (bareRound) with 16-byte and 1 KiB ops.
func measureLimits() (limits, error) {
	var l limits
	f, err := os.CreateTemp("", "raft-bench-fsync-")
	if err != nil {
		return l, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 16)
	var fs []time.Duration
	for i := 0; i < 200; i++ {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return l, err
		}
		if err := f.Sync(); err != nil {
			return l, err
		}
		fs = append(fs, time.Since(t0))
	}
	l.Fsync, l.FsyncSamples = medianDuration(fs), len(fs)
	if l.Fsync3, err = concurrentFsync(3, 100, false); err != nil {
		return l, err
	}
	if l.SyncPrealloc, err = concurrentFsync(1, 200, true); err != nil {
		return l, err
	}
	if l.SyncPrealloc3, err = concurrentFsync(3, 100, true); err != nil {
		return l, err
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return l, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b := make([]byte, 16)
		for {
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return l, err
	}
	defer c.Close()
	var rs []time.Duration
	for i := 0; i < 5000; i++ {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return l, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return l, err
		}
		rs = append(rs, time.Since(t0))
	}
	l.RTT, l.RTTSamples = medianDuration(rs), len(rs)
	l.BareRound = make(map[int]float64)
	for _, p := range []int{16, 1024} {
		if l.BareRound[p], err = bareRound(p, bareRoundTime); err != nil {
			return l, fmt.Errorf("bare round, %d-byte ops: %w", p, err)
		}
	}
	return l, nil
}

// bareRoundTime is how long measureLimits runs each bare round.
const bareRoundTime = 1500 * time.Millisecond

// concurrentFsync is the median time of a 16-byte append and Sync when n
// files do it at the same moment, over rounds rounds. With prealloc the
// files are allocated first and each round writes within them and syncs
// only the data.
func concurrentFsync(n, rounds int, prealloc bool) (time.Duration, error) {
	files := make([]*os.File, n)
	for i := range files {
		f, err := os.CreateTemp("", "raft-bench-fsync-")
		if err != nil {
			return 0, err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		if prealloc {
			if err := preallocate(f, int64(rounds)*16); err != nil {
				return 0, err
			}
		}
		files[i] = f
	}
	var ds []time.Duration
	errs := make([]error, n)
	took := make([]time.Duration, n)
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, f := range files {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				t0 := time.Now()
				if prealloc {
					if _, err := f.WriteAt(make([]byte, 16), int64(round)*16); err != nil {
						errs[i] = err
						return
					}
					errs[i] = datasync(f)
				} else {
					if _, err := f.Write(make([]byte, 16)); err != nil {
						errs[i] = err
						return
					}
					errs[i] = f.Sync()
				}
				took[i] = time.Since(t0)
			}()
		}
		close(start)
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
		ds = append(ds, took...)
	}
	return medianDuration(ds), nil
}

func medianDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
