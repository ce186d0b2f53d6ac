package autopilot

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/seed48a2b68f/raft"
)

// Default intervals.
const (
	// DefaultUpdateInterval is how often the state is made anew.
	DefaultUpdateInterval = 2 * time.Second
	// DefaultReconcileInterval is how often promotions, demotions,
	// leadership and dead servers are acted on.
	DefaultReconcileInterval = 10 * time.Second
)

// Option sets something on a new Autopilot.
type Option func(*Autopilot)

// WithUpdateInterval sets how often the state is made anew (0: the
// default).
func WithUpdateInterval(t time.Duration) Option {
	return func(a *Autopilot) { a.updateInterval = orDefault(t, DefaultUpdateInterval) }
}

// WithReconcileInterval sets how often changes are made (0: the default).
func WithReconcileInterval(t time.Duration) Option {
	return func(a *Autopilot) { a.reconcileInterval = orDefault(t, DefaultReconcileInterval) }
}

func orDefault(t, def time.Duration) time.Duration {
	if t == 0 {
		return def
	}
	return t
}

// WithLogger sets the logger (named "autopilot" under it; nil: hclog's
// default).
func WithLogger(logger hclog.Logger) Option {
	if logger == nil {
		logger = hclog.Default()
	}
	return func(a *Autopilot) { a.logger = logger.Named("autopilot") }
}

// WithTimeProvider sets where states get their time; for tests.
func WithTimeProvider(provider TimeProvider) Option {
	return func(a *Autopilot) { a.time = provider }
}

// WithPromoter sets the promoter (nil: DefaultPromoter).
func WithPromoter(promoter Promoter) Option {
	if promoter == nil {
		promoter = DefaultPromoter()
	}
	return func(a *Autopilot) { a.promoter = promoter }
}

// WithReconciliationDisabled starts the Autopilot with reconciliation off
// (see EnableReconciliation).
func WithReconciliationDisabled() Option {
	return func(a *Autopilot) { a.reconcile.Store(false) }
}

// Autopilot watches the health of a Raft cluster's servers and keeps its
// membership in shape: it promotes nonvoters once they are stable, makes
// the promoter's demotions and leadership moves, and removes dead servers
// without going below Config.MinQuorum or removing a majority of voters.
//
// Make one per node and Start it on the node that leads (Stop it when the
// node stops leading): only one should act at a time.
type Autopilot struct {
	raft     Raft
	delegate ApplicationIntegration
	promoter Promoter
	logger   hclog.Logger
	time     TimeProvider

	updateInterval    time.Duration
	reconcileInterval time.Duration

	reconcile  atomic.Bool
	removeDead chan struct{}

	// acting is held by the one goroutine set that makes states and
	// changes: a new run waits for the previous one to let go.
	acting chan struct{}

	stateMu sync.RWMutex
	state   *State

	runMu  sync.Mutex
	status ExecutionStatus
	cancel context.CancelFunc
	done   chan struct{}
}

// New makes an Autopilot for r, with the application's delegate. The
// promoter is the StablePromoter unless WithPromoter says otherwise.
func New(raft Raft, delegate ApplicationIntegration, options ...Option) *Autopilot {
	a := &Autopilot{
		raft:              raft,
		delegate:          delegate,
		promoter:          DefaultPromoter(),
		logger:            hclog.Default().Named("autopilot"),
		time:              systemTime{},
		updateInterval:    DefaultUpdateInterval,
		reconcileInterval: DefaultReconcileInterval,
		removeDead:        make(chan struct{}, 1),
		acting:            make(chan struct{}, 1),
		state:             &State{},
		status:            NotRunning,
	}
	a.reconcile.Store(true)
	for _, o := range options {
		o(a)
	}
	return a
}

// Start runs autopilot in the background until ctx ends or Stop is
// called. The first state is made before Start returns (waiting up to a
// second for a previous run to end). Starting a running Autopilot does
// nothing.
func (a *Autopilot) Start(ctx context.Context) {
	a.runMu.Lock()
	defer a.runMu.Unlock()
	if a.status == Running {
		return
	}
	if a.status == NotRunning {
		wait, cancel := context.WithTimeout(context.Background(), time.Second)
		if a.take(wait) == nil {
			a.updateState(ctx)
			a.release()
		}
		cancel()
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	a.status, a.cancel, a.done = Running, cancel, done
	go a.run(ctx, done)
}

// Stop ends the background work; the channel is closed once it has
// ended (at once if it was not running).
func (a *Autopilot) Stop() <-chan struct{} {
	a.runMu.Lock()
	defer a.runMu.Unlock()
	if a.status == NotRunning {
		return closedChan()
	}
	a.cancel()
	a.status = ShuttingDown
	return a.done
}

// IsRunning returns the execution status and a channel closed when the
// background work has ended.
func (a *Autopilot) IsRunning() (ExecutionStatus, <-chan struct{}) {
	a.runMu.Lock()
	defer a.runMu.Unlock()
	if a.status == NotRunning {
		return NotRunning, closedChan()
	}
	return a.status, a.done
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func (a *Autopilot) take(ctx context.Context) error {
	select {
	case a.acting <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *Autopilot) release() { <-a.acting }

// run is the background work of one Start: states every update interval,
// changes every reconcile interval, dead-server removal when asked.
func (a *Autopilot) run(ctx context.Context, done chan struct{}) {
	finish := func() {
		a.runMu.Lock()
		if a.done == done {
			a.status, a.cancel, a.done = NotRunning, nil, nil
		}
		close(done)
		a.runMu.Unlock()
	}
	if a.take(ctx) != nil {
		finish()
		return
	}
	a.logger.Debug("autopilot is now running")

	var updater sync.WaitGroup
	updater.Add(1)
	go func() {
		defer updater.Done()
		t := time.NewTicker(a.updateInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				a.updateState(ctx)
			}
		}
	}()

	t := time.NewTicker(a.reconcileInterval)
	defer func() {
		t.Stop()
		updater.Wait()
		a.setState(&State{})
		a.logger.Debug("autopilot is now stopped")
		a.release()
		finish()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.reconcileChanges(); err != nil {
				a.logger.Error("Failed to reconcile current state with the desired state", "error", err)
			}
			if err := a.pruneDeadServers(); err != nil {
				a.logger.Error("Failed to prune dead servers", "error", err)
			}
		case <-a.removeDead:
			if err := a.pruneDeadServers(); err != nil {
				a.logger.Error("Failed to prune dead servers", "error", err)
			}
		}
	}
}

// RemoveDeadServers asks the running autopilot to remove dead servers now.
func (a *Autopilot) RemoveDeadServers() {
	select {
	case a.removeDead <- struct{}{}:
	default:
	}
}

// GetState returns the newest state (empty while not running). Do not
// modify it.
func (a *Autopilot) GetState() *State {
	a.stateMu.RLock()
	defer a.stateMu.RUnlock()
	return a.state
}

func (a *Autopilot) setState(s *State) {
	a.stateMu.Lock()
	a.state = s
	a.stateMu.Unlock()
}

// GetServerHealth returns the newest health of server id, or nil if the
// state does not hold it. Do not modify it.
func (a *Autopilot) GetServerHealth(id raft.ServerID) *ServerHealth {
	if s, ok := a.GetState().Servers[id]; ok {
		return &s.Health
	}
	return nil
}

// EnableReconciliation lets autopilot make changes (the default).
func (a *Autopilot) EnableReconciliation() {
	if a.reconcile.CompareAndSwap(false, true) {
		a.logger.Info("reconciliation now enabled")
	}
}

// DisableReconciliation stops autopilot from making changes; states are
// still made.
func (a *Autopilot) DisableReconciliation() {
	if a.reconcile.CompareAndSwap(true, false) {
		a.logger.Info("reconciliation now disabled")
	}
}

// ReconciliationEnabled reports whether autopilot makes changes.
func (a *Autopilot) ReconciliationEnabled() bool { return a.reconcile.Load() }
