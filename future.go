package raft

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Future is used to represent an action that may occur in the future.
type Future interface {
	// Error blocks until the future arrives and then returns the error
	// status of the future. This may be called any number of times - all
	// calls will return the same value, even once the Raft node has shut
	// down. Unlike in hashicorp/raft, every future resolves: a future still
	// pending when the node shuts down returns ErrRaftShutdown.
	Error() error
}

// IndexFuture is used for future actions that can result in a raft log
// entry being created.
type IndexFuture interface {
	Future

	// Index holds the index of the newly applied log entry. This must not
	// be called until after the Error method has returned.
	Index() uint64
}

// ApplyFuture is used for Apply and can return the FSM response.
type ApplyFuture interface {
	IndexFuture

	// Response returns the FSM response as returned by the FSM.Apply
	// method. This must not be called until after the Error method has
	// returned. Note that if FSM.Apply returns an error, it will be returned
	// by Response, and not by the Error method, so it is always important
	// to check Response for errors from the FSM.
	Response() interface{}
}

// ConfigurationFuture is used for GetConfiguration and can return the
// latest configuration in use by Raft.
type ConfigurationFuture interface {
	IndexFuture

	// Configuration contains the latest configuration. This must not be
	// called until after the Error method has returned.
	Configuration() Configuration
}

// SnapshotFuture is used for waiting on a user-triggered snapshot to
// complete.
type SnapshotFuture interface {
	Future

	// Open is a function you can call to access the underlying snapshot and
	// its metadata. This must not be called until after the Error method
	// has returned.
	Open() (*SnapshotMeta, io.ReadCloser, error)
}

// LeadershipTransferFuture is used for waiting on a user-triggered leadership
// transfer to complete.
type LeadershipTransferFuture interface {
	Future
}

// errorFuture is used to return a static error.
type errorFuture struct {
	err error
}

func (e errorFuture) Error() error          { return e.err }
func (e errorFuture) Response() interface{} { return nil }
func (e errorFuture) Index() uint64         { return 0 }

// deferError can be embedded to allow a future to provide an error in the
// future. It resolves exactly once; waiting also watches the node's shutdown
// channel, so no waiter hangs after Shutdown.
type deferError struct {
	err        error
	done       chan struct{}
	responded  atomic.Bool
	shutdownCh <-chan struct{}
}

func (d *deferError) init() {
	d.done = make(chan struct{})
}

// respond resolves the future; later calls are ignored.
func (d *deferError) respond(err error) {
	if d.done == nil || !d.responded.CompareAndSwap(false, true) {
		return
	}
	d.err = err
	close(d.done)
}

func (d *deferError) Error() error {
	if d.done == nil {
		return d.err
	}
	select {
	case <-d.done:
		return d.err
	default:
	}
	if d.shutdownCh == nil {
		<-d.done
		return d.err
	}
	select {
	case <-d.done:
		return d.err
	case <-d.shutdownCh:
		// The node stopped. Claim the future so a late responder cannot
		// change the answer we give.
		d.respond(ErrRaftShutdown)
		<-d.done
		return d.err
	}
}

// logFuture is used to apply a log entry and waits until the log is
// considered committed and applied to the FSM.
type logFuture struct {
	deferError
	log      Log
	response interface{}
	dispatch time.Time
}

func (l *logFuture) Response() interface{} { return l.response }
func (l *logFuture) Index() uint64         { return l.log.Index }

// configurationChangeFuture is a logFuture that carries a membership change.
type configurationChangeFuture struct {
	logFuture
	req configurationChangeRequest
}

// bootstrapFuture carries a live BootstrapCluster request.
type bootstrapFuture struct {
	deferError
	configuration Configuration
}

// shutdownFuture waits for the goroutines to exit and closes the transport.
type shutdownFuture struct {
	raft *Raft
}

func (s *shutdownFuture) Error() error {
	r := s.raft
	r.waitShutdown()
	r.transportClose.Do(func() {
		if closeable, ok := r.trans.(WithClose); ok {
			if err := closeable.Close(); err != nil {
				r.transportCloseErr = fmt.Errorf("close transport: %w", err)
			}
		}
	})
	return r.transportCloseErr
}

// userSnapshotFuture is used for waiting on a user-triggered snapshot to
// complete.
type userSnapshotFuture struct {
	deferError
	opener func() (*SnapshotMeta, io.ReadCloser, error)
}

func (u *userSnapshotFuture) Open() (*SnapshotMeta, io.ReadCloser, error) {
	if u.opener == nil {
		return nil, nil, fmt.Errorf("no snapshot available")
	}
	// Prevent calling Open more than once.
	defer func() { u.opener = nil }()
	return u.opener()
}

// userRestoreFuture is used for waiting on a user-triggered restore of an
// external snapshot to complete.
type userRestoreFuture struct {
	deferError
	meta   *SnapshotMeta
	reader io.Reader
}

// reqSnapshotFuture asks the FSM goroutine for a point-in-time snapshot.
type reqSnapshotFuture struct {
	deferError
	index    uint64
	term     uint64
	snapshot FSMSnapshot
}

// restoreFuture asks the FSM goroutine to restore a snapshot by ID.
type restoreFuture struct {
	deferError
	ID string
}

// verifyFuture is used to verify the current node is still the leader.
type verifyFuture struct {
	deferError
}

// leadershipTransferFuture carries a transfer request to the leader loop.
type leadershipTransferFuture struct {
	deferError
	ID      *ServerID
	Address *ServerAddress
}

// configurationsFuture is used to retrieve the current configurations.
type configurationsFuture struct {
	deferError
	configurations configurations
}

// Configuration returns the latest configuration in use by Raft.
func (c *configurationsFuture) Configuration() Configuration {
	return c.configurations.latest
}

// Index returns the index of the latest configuration. hashicorp/raft
// always returns 0 here (its quirk); this library returns the real index.
func (c *configurationsFuture) Index() uint64 {
	return c.configurations.latestIndex
}

// appendFuture is used for waiting on a pipelined append entries RPC.
type appendFuture struct {
	deferError
	start time.Time
	args  *AppendEntriesRequest
	resp  *AppendEntriesResponse
}

func (a *appendFuture) Start() time.Time                 { return a.start }
func (a *appendFuture) Request() *AppendEntriesRequest   { return a.args }
func (a *appendFuture) Response() *AppendEntriesResponse { return a.resp }
