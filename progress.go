package raft

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-metrics"
)

// progressInterval is how often a long snapshot restore or transfer logs
// how far it got, as hashicorp/raft does.
const progressInterval = 10 * time.Second

// Messages of the progress lines, hashicorp/raft's.
const (
	msgRestoreProgress  = "snapshot restore progress"
	msgTransferProgress = "snapshot network transfer progress"
)

// byteCounter is an io.Reader that counts what passes through it; the count
// may be read from another goroutine.
type byteCounter struct {
	r io.Reader
	n atomic.Int64
}

func (c *byteCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// Count implements CountingReader.
func (c *byteCounter) Count() int64 { return c.n.Load() }

// byteCounterCloser is a byteCounter over an io.ReadCloser, for an FSM's
// Restore.
type byteCounterCloser struct {
	byteCounter
	rc io.ReadCloser
}

func newByteCounterCloser(rc io.ReadCloser) *byteCounterCloser {
	return &byteCounterCloser{byteCounter: byteCounter{r: rc}, rc: rc}
}

func (c *byteCounterCloser) Close() error { return c.rc.Close() }

// WrappedReadCloser implements ReadCloserWrapper: the snapshot's own reader.
func (c *byteCounterCloser) WrappedReadCloser() io.ReadCloser { return c.rc }

// progressLog logs a restore's or transfer's progress every
// progressInterval, and once at the end if it never did: a restore that
// takes minutes shows it is moving, and every restore leaves one line.
type progressLog struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func startProgressLog(logger hclog.Logger, msg string, c CountingReader, size int64) *progressLog {
	p := &progressLog{stop: make(chan struct{}), done: make(chan struct{})}
	line := func() {
		read := c.Count()
		pct := 100.0
		if size > 0 {
			pct = float64(100*read) / float64(size)
		}
		logger.Info(msg, "read-bytes", read, "percent-complete", hclog.Fmt("%0.2f%%", pct))
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		logged := false
		for {
			select {
			case <-t.C:
				line()
				logged = true
			case <-p.stop:
				if !logged {
					line()
				}
				return
			}
		}
	}()
	return p
}

// end stops the log and waits for its last line.
func (p *progressLog) end() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
}

// restoreLogged restores an FSM from a snapshot's reader, logging its
// progress (size is the snapshot's size in bytes).
func restoreLogged(logger hclog.Logger, fsm FSM, source io.ReadCloser, size int64) error {
	c := newByteCounterCloser(source)
	p := startProgressLog(logger, msgRestoreProgress, c, size)
	err := fsm.Restore(c)
	p.end()
	return err
}

// restoreWithProgress is restoreLogged, measured under hashicorp/raft's
// restore metrics.
func restoreWithProgress(logger hclog.Logger, fsm FSM, source io.ReadCloser, size int64) error {
	start := time.Now()
	if err := restoreLogged(logger, fsm, source, size); err != nil {
		return err
	}
	measureRestore(start)
	return nil
}

// measureRestore records an FSM restore's duration under hashicorp/raft's
// metric names.
func measureRestore(start time.Time) {
	metrics.MeasureSince([]string{"raft", "fsm", "restore"}, start)
	metrics.SetGauge([]string{"raft", "fsm", "lastRestoreDuration"}, float32(time.Since(start).Milliseconds()))
}
