package raft

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// Future is the outcome of an asynchronous operation.
type Future interface {
	// Error waits for the operation to finish and returns its error, nil
	// on success. It may be called any number of times, also after the
	// node has shut down, and always returns the same value. Every future
	// resolves: one still pending when the node shuts down returns
	// ErrRaftShutdown (hashicorp/raft can leave such futures waiting).
	Error() error
}

// IndexFuture is the outcome of an operation that writes a log entry.
type IndexFuture interface {
	Future

	// Index is the index of the entry written. Call it only after Error
	// has returned.
	Index() uint64
}

// ApplyFuture is the outcome of Apply.
type ApplyFuture interface {
	IndexFuture

	// Response is what FSM.Apply returned for the entry; call it only
	// after Error has returned. An error from the FSM arrives here, not
	// from Error, so check both.
	Response() interface{}
}

// ConfigurationFuture is the outcome of GetConfiguration.
type ConfigurationFuture interface {
	IndexFuture

	// Configuration is the latest configuration, committed or not; call it
	// only after Error has returned.
	Configuration() Configuration
}

// SnapshotFuture is the outcome of Snapshot.
type SnapshotFuture interface {
	Future

	// Open opens the snapshot that was taken, with its metadata; call it
	// only after Error has returned nil, and close the reader.
	Open() (*SnapshotMeta, io.ReadCloser, error)
}

// LeadershipTransferFuture is the outcome of LeadershipTransfer.
type LeadershipTransferFuture interface {
	Future
}

// errorFuture is a future resolved from the start with a fixed error.
type errorFuture struct {
	err error
}

func (e errorFuture) Error() error          { return e.err }
func (e errorFuture) Response() interface{} { return nil }
func (e errorFuture) Index() uint64         { return 0 }

// deferError is the resolution shared by the futures: set once by the
// owner, read by any number of waiters. A waiter also watches the node's
// shutdown, so none hangs after Shutdown.
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

// logFuture follows one entry written through Apply, Barrier or a
// membership change until it is committed and applied.
type logFuture struct {
	deferError
	log      Log
	clock    stageClock // when Apply was called (raftstages build)
	response interface{}
	dispatch time.Time
	// enqueueBy: the leader loop must take the entry by then or answer
	// ErrEnqueueTimeout without writing it (zero: no limit).
	enqueueBy time.Time
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

// userSnapshotFuture is the SnapshotFuture of Raft.Snapshot.
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

// userRestoreFuture carries a Raft.Restore request to the main loop.
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

// verifyFuture is a VerifyLeader or ReadIndex request.
type verifyFuture struct {
	deferError
	// read marks a ReadIndex: losing leadership fails it with
	// ErrLeadershipLost rather than VerifyLeader's ErrNotLeader.
	read bool
	// consistency is a ReadIndex's choice of round or lease.
	consistency ReadConsistency
	// shared marks a round of readRounds, which calls join until the
	// main loop takes it.
	shared bool
	// readers is how many ReadIndex calls share the round: set when a
	// shared round is taken, else at creation.
	readers uint64
	// joins counts the calls joining a shared round, with roundClosed
	// set once it is taken; noLease is set by a call that does not allow
	// the lease.
	joins   atomic.Int64
	noLease atomic.Bool
	// takenAt is when the main loop took the round (readRounds.take), in
	// readRounds.since's nanoseconds; 0 until then.
	takenAt atomic.Int64
	// index is the commit index when the round started (before any of
	// its heartbeats was sent); set by the leader loop, read after Error.
	index uint64
	// enqueueBy: a ReadIndex not taken by then fails with
	// ErrEnqueueTimeout (zero: no limit).
	enqueueBy time.Time
}

// expired reports whether the request's enqueue deadline passed by now.
func (v *verifyFuture) expired(now time.Time) bool {
	return !v.enqueueBy.IsZero() && now.After(v.enqueueBy)
}

// Index is the read index of a ReadIndex: the commit index of the moment
// its round started. Call it only after Error has returned nil.
func (v *verifyFuture) Index() uint64 { return v.index }

// lostErr is the error a round fails with when leadership is lost.
func (v *verifyFuture) lostErr() error {
	if v.read {
		return ErrLeadershipLost
	}
	return ErrNotLeader
}

// leadershipTransferFuture carries a transfer request to the leader loop.
type leadershipTransferFuture struct {
	deferError
	ID      *ServerID
	Address *ServerAddress
}

// configurationsFuture is a GetConfiguration request.
type configurationsFuture struct {
	deferError
	configurations configurations
}

// Configuration returns the configuration read.
func (c *configurationsFuture) Configuration() Configuration {
	return c.configurations.latest
}

// Index returns the index of the latest configuration. hashicorp/raft
// always returns 0 here (its quirk); this library returns the real index.
func (c *configurationsFuture) Index() uint64 {
	return c.configurations.latestIndex
}

// appendFuture is one AppendEntries in flight on a pipeline.
type appendFuture struct {
	deferError
	start time.Time
	args  *AppendEntriesRequest
	resp  *AppendEntriesResponse
}

func (a *appendFuture) Start() time.Time                 { return a.start }
func (a *appendFuture) Request() *AppendEntriesRequest   { return a.args }
func (a *appendFuture) Response() *AppendEntriesResponse { return a.resp }
