package raft

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-metrics"
	"github.com/seed48a2b68f/raft/internal/nodeclock"
)

var (
	keyCurrentTerm  = []byte("CurrentTerm")
	keyLastVoteTerm = []byte("LastVoteTerm")
	keyLastVoteCand = []byte("LastVoteCand")
)

// applyQueueLimit bounds the Apply and Barrier requests waiting for the
// leader loop; callers beyond it wait up to their enqueue timeout.
const applyQueueLimit = 4096

// Raft implements a Raft node.
//
// Goroutines and what they own:
//   - the main loop (run: runFollower, runCandidate, runLeader) owns the
//     term, the vote, the log, the commit index, the configurations and the
//     leader state; every change of term happens there;
//   - runFSM owns the FSM and the applied index;
//   - runSnapshots takes snapshots and compacts the log;
//   - on the leader, two goroutines per peer (replicate and heartbeat) own
//     that peer's next and match index and report through the commitment.
//
// Other goroutines read published copies (atomics and small locked fields)
// and talk to the owners through futures.
type Raft struct {
	// RestoreCommittedLogs mirrors Config.RestoreCommittedLogs (v1.8).
	RestoreCommittedLogs bool

	// Set by NewRaft and never changed.
	protocolVersion ProtocolVersion
	localID         ServerID
	localAddr       ServerAddress
	logger          hclog.Logger
	fsm             FSM
	logs            LogStore
	stable          StableStore
	snapshots       SnapshotStore
	trans           Transport
	preVote         bool
	rng             *lockedRand
	rpcHeader       RPCHeader
	// appendBytesBudget caps the entry bytes of one AppendEntries.
	appendBytesBudget int

	// mergeBuf holds the requests merged by processFollowerRPC (main loop
	// only), reused from one batch to the next.
	mergeBuf  []RPC
	mergeResp chan RPCResponse

	conf         atomic.Pointer[Config]
	confReloadMu sync.Mutex

	// Published state, readable by anyone. termLock is held (write) while
	// the main loop changes the term and (read) while the heartbeat fast
	// path answers, so the two never interleave.
	termLock     sync.RWMutex
	state        atomic.Uint32
	currentTerm  atomic.Uint64
	commitIndex  atomic.Uint64
	appliedIndex atomic.Uint64  // written by runFSM
	applied      appliedWaiters // woken by runFSM as appliedIndex moves
	readsByRound atomic.Uint64  // ReadIndex calls served by a heartbeat round
	readsByLease atomic.Uint64  // ReadIndex calls served by the lease
	readCalls    atomic.Uint64  // ReadIndex calls made on this node
	// readRounds gathers the leader's ReadIndex calls into shared rounds.
	readRounds readRounds
	// readMetrics: what emitReadMetrics last emitted (main loop only).
	readMetrics readMetricsEmitted
	// leaseViewPtr: the lease's inputs as the leader loop last published
	// them, for ReadIndex's fast path (nil: no lease).
	leaseViewPtr atomic.Pointer[leaseView]
	// readHeartbeats counts heartbeats sent for VerifyLeader and ReadIndex
	// rounds, one per follower per batch of rounds that share it.
	readHeartbeats atomic.Uint64
	// readRoundsStarted counts the heartbeat rounds started for ReadIndex
	// calls (each carries every call that joined it).
	readRoundsStarted atomic.Uint64
	// readsForFollowers counts the reads followers asked this leader for.
	readsForFollowers atomic.Uint64
	// leaderCaps: what the current leader advertised in its last
	// AppendEntries (capReadIndex...); 0 for a hashicorp/raft leader.
	leaderCaps atomic.Uint64
	// followerReads batches ReadIndex calls made off the leader.
	followerReads followerReadBatch
	// started is when NewRaft ran, on the monotonic clock: the base of the
	// lease's clock readings, and the start of the voting quiet period.
	started time.Time
	// clock is this node's clock for what the lease's safety rests on:
	// last contact, the vote refusal after it, the lease and its
	// step-down check, and the timers that start them (the system clock
	// unless a test sets another; see internal/nodeclock).
	clock nodeclock.Clock

	lastLock          sync.Mutex
	lastLogIndex      uint64
	lastLogTerm       uint64
	lastSnapshotIndex uint64
	lastSnapshotTerm  uint64

	leaderLock sync.RWMutex
	leaderAddr ServerAddress
	leaderID   ServerID
	// leaderRaw is the encoded address leaderAddr was decoded from (by
	// setLeaderFrom), so a request from the known leader decodes nothing.
	leaderRaw []byte

	lastContactLock sync.RWMutex
	lastContact     time.Time

	latestConfiguration atomic.Pointer[configurations]
	// peerView is the leader's replication state per peer, republished
	// by the main loop whenever the set changes; nil when not leading.
	peerView atomic.Pointer[map[ServerID]*followerReplication]

	// Owned by the main loop.
	configurations      configurations
	leaderState         *leaderState
	candidateByTransfer bool
	fsmDispatched       uint64       // last index handed to runFSM
	hole                logHole      // entries missing before the log (main loop)
	diskWriteStart      atomic.Int64 // leader: unix nanos when its StoreLogs began, 0 when none is running
	tail                *logTail
	startupAppliedTerm  uint64
	observedTerm        atomic.Uint64 // highest term seen by replication (sigObservedTerm)

	// Requests to the main loop.
	applyQ                *applyQueue
	configurationChangeCh chan *configurationChangeFuture
	// ctl carries the rarely used requests and signals (control.go).
	ctl *controlQueue
	// fsmSpaceCh is notified by the FSM goroutine after each batch, so a
	// follower that left committed entries undispatched (the FSM's queue
	// was full) hands them over.
	fsmSpaceCh chan struct{}
	// mainLoopDone is closed when run returns: nothing sends to fsmMutateCh
	// after that, so runFSM can answer what is left in it.
	mainLoopDone chan struct{}
	// stranded holds committed apply futures that dispatchCommitted could
	// not hand to the FSM (a failed read before them); main loop only.
	stranded []*logFuture

	// Requests to the FSM and snapshot goroutines.
	fsmMutateCh    chan interface{}
	fsmSnapshotCh  chan *reqSnapshotFuture
	userSnapshotCh chan *userSnapshotFuture

	leaderCh chan bool

	observersLock sync.RWMutex
	observers     map[uint64]*Observer

	shutdownLock sync.Mutex
	shutdown     bool
	// transportClose closes the transport once, on the first shutdown
	// future's Error; later ones return its result.
	transportClose    sync.Once
	transportCloseErr error
	shutdownCh        chan struct{}
	wg                sync.WaitGroup
}

// BootstrapCluster writes the first configuration of a new cluster into
// empty stores (before NewRaft). Call it on the voters of the new cluster
// only, each with the same configuration, or on a single voter that the
// others then join. Stores that hold any state make it return
// ErrCantBootstrap and change nothing, so calling it on every start is safe.
func BootstrapCluster(conf *Config, logs LogStore, stable StableStore,
	snaps SnapshotStore, trans Transport, configuration Configuration) error {
	if err := ValidateConfig(conf); err != nil {
		return err
	}
	if err := checkConfiguration(configuration); err != nil {
		return err
	}
	hasState, err := HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("failed to check for existing state: %w", err)
	}
	if hasState {
		return ErrCantBootstrap
	}
	if err := stable.SetUint64(keyCurrentTerm, 1); err != nil {
		return fmt.Errorf("failed to save current term: %w", err)
	}
	entry := &Log{Index: 1, Term: 1}
	if conf.ProtocolVersion < 3 {
		entry.Type = LogRemovePeerDeprecated
		entry.Data = encodePeers(configuration, trans)
	} else {
		entry.Type = LogConfiguration
		entry.Data = EncodeConfiguration(configuration)
	}
	if err := logs.StoreLog(entry); err != nil {
		return fmt.Errorf("failed to append configuration entry to log: %w", err)
	}
	return nil
}

// RecoverCluster forces a configuration onto a stopped server's stores, for
// a cluster that lost its quorum for good (several servers gone at once).
// It applies the whole local log to fsm, stores the result as a snapshot
// carrying the new configuration, and empties the log; no entry is added,
// so servers recovered with different logs do not conflict later.
//
// It treats every entry of this server's log as committed, which Raft
// itself would not: entries that never reached a quorum become part of the
// state. Run it with the same configuration on every surviving server,
// all of them stopped, then start them.
func RecoverCluster(conf *Config, fsm FSM, logs LogStore, stable StableStore,
	snaps SnapshotStore, trans Transport, configuration Configuration) error {
	if err := ValidateConfig(conf); err != nil {
		return err
	}
	if err := checkConfiguration(configuration); err != nil {
		return err
	}
	hasState, err := HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("failed to check for existing state: %w", err)
	}
	if !hasState {
		return fmt.Errorf("refused to recover cluster with no initial state, this is probably an operator error")
	}

	// Restore the newest loadable snapshot into the FSM.
	var (
		lastIndex, lastTerm uint64
	)
	snapshots, err := snaps.List()
	if err != nil {
		return fmt.Errorf("failed to list snapshots: %w", err)
	}
	logger := newLogger(conf)
	for _, snapshot := range snapshots {
		if !conf.NoSnapshotRestoreOnStart {
			snapLogger := logger.With("id", snapshot.ID, "last-index", snapshot.Index, "last-term", snapshot.Term, "size-in-bytes", snapshot.Size)
			_, source, err := snaps.Open(snapshot.ID)
			if err != nil {
				snapLogger.Error("failed to open snapshot", "error", err)
				continue
			}
			// Not restoreWithProgress: as in hashicorp/raft, this restore
			// only checks the state and reports no metrics.
			err = restoreLogged(snapLogger, fsm, source, snapshot.Size)
			source.Close()
			if err != nil {
				snapLogger.Error("failed to restore snapshot", "error", err)
				continue
			}
		}
		lastIndex, lastTerm = snapshot.Index, snapshot.Term
		break
	}
	if len(snapshots) > 0 && (lastIndex == 0 || lastTerm == 0) {
		return fmt.Errorf("failed to restore any of the available snapshots")
	}

	// Apply any committed commands after the snapshot.
	lastLogIndex, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("failed to find last log: %w", err)
	}
	for index := lastIndex + 1; index <= lastLogIndex; index++ {
		var entry Log
		if err := logs.GetLog(index, &entry); err != nil {
			return fmt.Errorf("failed to get log at index %d: %w", index, err)
		}
		if entry.Type == LogCommand {
			_ = fsm.Apply(&entry)
		}
		lastIndex, lastTerm = entry.Index, entry.Term
	}

	// Snapshot the FSM with the new configuration.
	fsmSnap, err := fsm.Snapshot()
	if err != nil {
		return fmt.Errorf("failed to snapshot FSM: %w", err)
	}
	defer fsmSnap.Release()
	sink, err := snaps.Create(SnapshotVersionMax, lastIndex, lastTerm, configuration, 1, trans)
	if err != nil {
		return fmt.Errorf("failed to create snapshot: %w", err)
	}
	if err := fsmSnap.Persist(sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("failed to persist snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("failed to finalize snapshot: %w", err)
	}

	// Empty the log: a configuration entry left in it would override the
	// recovered configuration on start.
	firstLogIndex, err := logs.FirstIndex()
	if err != nil {
		return fmt.Errorf("failed to get first log index: %w", err)
	}
	if firstLogIndex > 0 && lastLogIndex >= firstLogIndex {
		if err := logs.DeleteRange(firstLogIndex, lastLogIndex); err != nil {
			return fmt.Errorf("log compaction failed: %w", err)
		}
	}
	return nil
}

// GetConfiguration reads the latest configuration from a stopped server's
// stores: the newest snapshot's, overridden by any configuration entry in
// the log after it. Unlike hashicorp/raft's, it does not restore the FSM
// (fsm is unused).
func GetConfiguration(conf *Config, fsm FSM, logs LogStore, stable StableStore,
	snaps SnapshotStore, trans Transport) (Configuration, error) {
	if err := ValidateConfig(conf); err != nil {
		return Configuration{}, err
	}
	st, err := loadDurableState(logs, stable, snaps, trans, false)
	if err != nil {
		return Configuration{}, err
	}
	return st.configurations.latest, nil
}

// HasExistingState reports whether the stores hold anything: a log entry, a
// current term or a snapshot. A server with none needs bootstrapping or
// joining.
func HasExistingState(logs LogStore, stable StableStore, snaps SnapshotStore) (bool, error) {
	currentTerm, err := stable.GetUint64(keyCurrentTerm)
	if err == nil {
		if currentTerm > 0 {
			return true, nil
		}
	} else if !isNotFound(err) {
		return false, fmt.Errorf("failed to read current term: %w", err)
	}

	lastIndex, err := logs.LastIndex()
	if err != nil {
		return false, fmt.Errorf("failed to get last log index: %w", err)
	}
	if lastIndex > 0 {
		return true, nil
	}

	snapshots, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("failed to list snapshots: %w", err)
	}
	return len(snapshots) > 0, nil
}

// durableState is what NewRaft recovers from the stores.
type durableState struct {
	currentTerm     uint64
	lastLogIndex    uint64
	lastLogTerm     uint64
	snapshotIndex   uint64
	snapshotTerm    uint64
	snapshotsListed int
	configurations  configurations
	commitIndex     uint64
	firstLogIndex   uint64
	snapshotsToTry  []*SnapshotMeta
	hole            logHole
}

// loadDurableState reads and cross-checks the term, the log and the snapshot
// metadata. It never panics: stores that disagree give an error naming what
// disagrees. It restores nothing into the FSM.
func loadDurableState(logs LogStore, stable StableStore, snaps SnapshotStore,
	trans Transport, listOnly bool) (*durableState, error) {
	st := &durableState{}
	term, err := stable.GetUint64(keyCurrentTerm)
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("failed to load current term: %w", err)
	}
	st.currentTerm = term

	st.lastLogIndex, err = logs.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("failed to find last log: %w", err)
	}
	st.firstLogIndex, err = logs.FirstIndex()
	if err != nil {
		return nil, fmt.Errorf("failed to find first log: %w", err)
	}
	if st.lastLogIndex > 0 {
		var last Log
		if err := logs.GetLog(st.lastLogIndex, &last); err != nil {
			return nil, fmt.Errorf("failed to get last log at index %d: %w", st.lastLogIndex, err)
		}
		st.lastLogTerm = last.Term
	}

	snapshots, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("failed to list snapshots: %w", err)
	}
	st.snapshotsToTry = snapshots
	st.snapshotsListed = len(snapshots)
	if len(snapshots) > 0 {
		newest := snapshots[0]
		if err := st.useSnapshotMeta(newest, trans); err != nil {
			return nil, err
		}
	}
	if listOnly {
		return st, nil
	}
	if err := st.replayConfigurations(logs); err != nil {
		return nil, err
	}
	return st, nil
}

// useSnapshotMeta takes the snapshot's index, term and configuration.
func (st *durableState) useSnapshotMeta(meta *SnapshotMeta, trans Transport) error {
	st.snapshotIndex, st.snapshotTerm = meta.Index, meta.Term
	var c Configuration
	var cIndex uint64
	switch {
	case meta.Version > 0:
		c, cIndex = meta.Configuration, meta.ConfigurationIndex
	default:
		var err error
		c, err = decodePeers(meta.Peers, trans)
		if err != nil {
			return fmt.Errorf("snapshot %s: %w", meta.ID, err)
		}
		cIndex = meta.Index
	}
	st.configurations = configurations{committed: c, committedIndex: cIndex, latest: c, latestIndex: cIndex}
	return nil
}

// replayConfigurations reads the configuration entries after the snapshot.
func (st *durableState) replayConfigurations(logs LogStore) error {
	if st.lastLogIndex == 0 || st.firstLogIndex == 0 {
		return nil
	}
	start := st.snapshotIndex + 1
	if st.hole.active() {
		start = st.firstLogIndex
	} else if st.firstLogIndex > start {
		if st.snapshotIndex == 0 && st.snapshotsListed > 0 {
			return fmt.Errorf("log starts at index %d but no snapshot could be used", st.firstLogIndex)
		}
		if st.snapshotIndex+1 < st.firstLogIndex {
			return fmt.Errorf("log starts at index %d, after the snapshot at index %d: entries %d to %d are missing",
				st.firstLogIndex, st.snapshotIndex, st.snapshotIndex+1, st.firstLogIndex-1)
		}
	}
	for index := start; index <= st.lastLogIndex; index++ {
		var entry Log
		if err := logs.GetLog(index, &entry); err != nil {
			return fmt.Errorf("failed to get log at index %d: %w", index, err)
		}
		switch entry.Type {
		case LogConfiguration:
			c, err := decodeConfiguration(entry.Data)
			if err != nil {
				return fmt.Errorf("log entry %d: %w", index, err)
			}
			st.configurations.latest, st.configurations.latestIndex = c, index
		case LogAddPeerDeprecated, LogRemovePeerDeprecated:
			// Legacy entries carry voter addresses.
			c, err := decodePeers(entry.Data, stubTransport{})
			if err != nil {
				return fmt.Errorf("log entry %d: %w", index, err)
			}
			st.configurations.latest, st.configurations.latestIndex = c, index
		}
		if st.commitIndex >= index && st.configurations.latestIndex == index {
			st.configurations.committed = st.configurations.latest
			st.configurations.committedIndex = index
		}
	}
	return nil
}

// stubTransport decodes legacy peer entries as plain addresses.
type stubTransport struct{ Transport }

func (stubTransport) DecodePeer(b []byte) ServerAddress { return ServerAddress(b) }

// NewRaft starts a node with the given Config, FSM, stores and transport.
// Whatever the stores hold (term, vote, log, snapshots) is loaded first: the
// newest usable snapshot is restored into fsm and the configuration
// recovered. Stored state that is inconsistent or unreadable is an error
// saying what is wrong, never a panic.
func NewRaft(conf *Config, fsm FSM, logs LogStore, stable StableStore, snaps SnapshotStore, trans Transport) (*Raft, error) {
	if err := ValidateConfig(conf); err != nil {
		return nil, err
	}
	if fsm == nil || logs == nil || stable == nil || snaps == nil || trans == nil {
		return nil, fmt.Errorf("NewRaft needs an FSM, a LogStore, a StableStore, a SnapshotStore and a Transport")
	}
	logger := newLogger(conf)

	var commitTracker CommitTrackingLogStore
	if conf.RestoreCommittedLogs {
		ct, ok := logs.(CommitTrackingLogStore)
		if !ok {
			return nil, ErrIncompatibleLogStore
		}
		commitTracker = ct
	}

	localAddr := trans.LocalAddr()
	localID := conf.LocalID
	if conf.ProtocolVersion < 3 && string(localID) != string(localAddr) {
		return nil, fmt.Errorf("when running with ProtocolVersion < 3, LocalID must be set to the network address")
	}

	st, err := loadDurableState(logs, stable, snaps, trans, true)
	if err != nil {
		return nil, err
	}

	r := &Raft{
		RestoreCommittedLogs:  conf.RestoreCommittedLogs,
		protocolVersion:       conf.ProtocolVersion,
		localID:               localID,
		localAddr:             localAddr,
		logger:                logger,
		fsm:                   fsm,
		logs:                  logs,
		stable:                stable,
		snapshots:             snaps,
		trans:                 trans,
		rng:                   newLockedRand(conf.RandomSeed),
		clock:                 nodeclock.For(conf),
		tail:                  newLogTail(max(8*conf.MaxAppendEntries, 1024)),
		appendBytesBudget:     appendBytesBudget(trans),
		applyQ:                newApplyQueue(applyQueueLimit),
		configurationChangeCh: make(chan *configurationChangeFuture),
		ctl:                   newControlQueue(),
		fsmSpaceCh:            make(chan struct{}, 1),
		mainLoopDone:          make(chan struct{}),
		fsmMutateCh:           make(chan interface{}, 128),
		fsmSnapshotCh:         make(chan *reqSnapshotFuture),
		userSnapshotCh:        make(chan *userSnapshotFuture),
		leaderCh:              make(chan bool, 1),
		observers:             make(map[uint64]*Observer),
		shutdownCh:            make(chan struct{}),
	}
	r.started = r.now()
	r.readRounds.epoch = time.Now()
	confCopy := *conf
	r.conf.Store(&confCopy)
	r.rpcHeader = RPCHeader{
		ProtocolVersion: conf.ProtocolVersion,
		ID:              []byte(localID),
		Addr:            trans.EncodePeer(localID, localAddr),
	}
	r.currentTerm.Store(st.currentTerm)

	if _, ok := trans.(WithPreVote); ok && !conf.PreVoteDisabled {
		r.preVote = true
	} else if !conf.PreVoteDisabled {
		logger.Warn("pre-vote is disabled because it is not supported by the Transport")
	}

	// Restore the newest snapshot that loads.
	if err := r.restoreSnapshot(st); err != nil {
		return nil, err
	}
	if err := r.findHole(st); err != nil {
		return nil, err
	}
	r.hole = st.hole
	if err := st.checkAgainstTerm(); err != nil {
		return nil, err
	}
	r.currentTerm.Store(st.currentTerm)

	if commitTracker != nil {
		ci, err := commitTracker.GetCommitIndex()
		if err != nil {
			return nil, fmt.Errorf("failed to read commit index: %w", err)
		}
		st.commitIndex = min(ci, max(st.lastLogIndex, st.snapshotIndex))
		if st.hole.active() {
			st.commitIndex = min(st.commitIndex, st.hole.from-1)
		}
	}
	st.commitIndex = max(st.commitIndex, st.snapshotIndex)
	if err := st.replayConfigurations(logs); err != nil {
		return nil, err
	}
	r.setConfigurations(st.configurations)

	lastIdx, lastTerm := st.lastLogIndex, st.lastLogTerm
	if st.snapshotIndex > lastIdx {
		lastIdx, lastTerm = st.snapshotIndex, st.snapshotTerm
	}
	r.setLastLog(lastIdx, lastTerm)
	r.setLastSnapshot(st.snapshotIndex, st.snapshotTerm)
	r.fsmDispatched = r.appliedIndex.Load()

	if conf.skipStartup {
		return r, nil
	}

	// Replay what the store knows to be committed (v1.8's
	// RestoreCommittedLogs) before serving.
	if commitTracker != nil && st.commitIndex > r.appliedIndex.Load() {
		if err := r.replayCommitted(st.commitIndex); err != nil {
			return nil, err
		}
	}
	r.setCommitIndex(max(st.commitIndex, r.appliedIndex.Load()))
	r.logger.Info("initial configuration",
		"index", r.configurations.latestIndex,
		"servers", hclog.Fmt("%+v", r.configurations.latest.Servers))

	trans.SetHeartbeatHandler(r.processHeartbeat)
	r.goFunc(r.run)
	r.goFunc(r.runFSM)
	r.goFunc(r.runSnapshots)
	stagesNodeStarted()
	return r, nil
}

// checkAgainstTerm rejects stores that disagree: the durable term must be at
// least the term of every entry and snapshot (it is persisted before any
// entry of a term is accepted).
//
// A store with no CurrentTerm at all (written by hand, or by tools) starts at
// the term of its last entry or snapshot.
func (st *durableState) checkAgainstTerm() error {
	if st.currentTerm == 0 {
		st.currentTerm = max(st.lastLogTerm, st.snapshotTerm)
		return nil
	}
	if st.lastLogTerm > st.currentTerm {
		return fmt.Errorf("stable store's CurrentTerm %d is below the last log entry's term %d: the stores disagree",
			st.currentTerm, st.lastLogTerm)
	}
	if st.snapshotTerm > st.currentTerm {
		return fmt.Errorf("stable store's CurrentTerm %d is below the snapshot's term %d: the stores disagree",
			st.currentTerm, st.snapshotTerm)
	}
	return nil
}

// restoreSnapshot restores the newest snapshot that loads into the FSM,
// trying older ones when one fails. With NoSnapshotRestoreOnStart it only
// takes the newest one's metadata.
func (r *Raft) restoreSnapshot(st *durableState) error {
	conf := r.config()
	if len(st.snapshotsToTry) == 0 {
		return nil
	}
	for _, meta := range st.snapshotsToTry {
		if meta.Version < SnapshotVersionMin || meta.Version > SnapshotVersionMax {
			r.logger.Error("snapshot has an unsupported version", "id", meta.ID, "version", meta.Version)
			continue
		}
		if !conf.NoSnapshotRestoreOnStart {
			snapLogger := r.logger.With("id", meta.ID, "last-index", meta.Index, "last-term", meta.Term, "size-in-bytes", meta.Size)
			snapLogger.Info("starting restore from snapshot")
			_, source, err := r.snapshots.Open(meta.ID)
			if err != nil {
				snapLogger.Error("failed to open snapshot", "error", err)
				continue
			}
			err = restoreWithProgress(snapLogger, r.fsm, source, meta.Size)
			source.Close()
			if err != nil {
				snapLogger.Error("failed to restore snapshot", "error", err)
				continue
			}
			snapLogger.Info("restored from snapshot")
			r.appliedIndex.Store(meta.Index)
			r.startupAppliedTerm = meta.Term
		}
		if err := st.useSnapshotMeta(meta, r.trans); err != nil {
			return err
		}
		return nil
	}
	// None restores. The node still comes back: with its log from the
	// start, or with a hole the leader fills (see findLogHole).
	r.logger.Error("no snapshot could be restored; starting without one", "listed", len(st.snapshotsToTry))
	st.snapshotIndex, st.snapshotTerm = 0, 0
	return nil
}

// findHole works out, after restoreSnapshot, whether entries are missing
// between the restored snapshot and the log, and if so sets r.hole and
// takes the newest snapshot's metadata for what it still tells: its
// configuration, and its index and term as the node's last log position
// (the node may have acknowledged those entries, so it must keep voting as
// if it had them).
func (r *Raft) findHole(st *durableState) error {
	if r.config().NoSnapshotRestoreOnStart || len(st.snapshotsToTry) == 0 {
		// With no snapshot at all, a log that does not start at 1 is
		// more likely a wrong or lost snapshot directory than damage:
		// replayConfigurations reports it.
		return nil
	}
	var newest *SnapshotMeta
	if len(st.snapshotsToTry) > 0 {
		newest = st.snapshotsToTry[0]
	}
	var newestIndex uint64
	if newest != nil {
		newestIndex = newest.Index
	}
	st.hole = findLogHole(st.snapshotIndex, newestIndex, st.firstLogIndex)
	if !st.hole.active() {
		return nil
	}
	if newest != nil && newest.Index > st.snapshotIndex {
		restoredIndex, restoredTerm := st.snapshotIndex, st.snapshotTerm
		if err := st.useSnapshotMeta(newest, r.trans); err != nil {
			return err
		}
		st.snapshotIndex, st.snapshotTerm = restoredIndex, restoredTerm
		if newest.Index > st.lastLogIndex {
			st.lastLogIndex, st.lastLogTerm = newest.Index, newest.Term
		}
	}
	r.logger.Error("log entries are missing: no usable snapshot covers them and the log starts after them; "+
		"keeping the term, vote and log, not standing for election, and waiting for the leader to send them or a snapshot",
		"missing-from", st.hole.from, "missing-to", st.hole.to, "restored-snapshot-index", st.snapshotIndex,
		"first-log-index", st.firstLogIndex)
	return nil
}

// replayCommitted applies entries up to commitIndex to the FSM on the
// calling goroutine, before the node starts.
func (r *Raft) replayCommitted(commitIndex uint64) error {
	applied := r.appliedIndex.Load()
	for index := applied + 1; index <= commitIndex; index++ {
		var entry Log
		if err := r.logs.GetLog(index, &entry); err != nil {
			return fmt.Errorf("failed to get committed log at index %d: %w", index, err)
		}
		if entry.Type == LogCommand {
			r.fsm.Apply(&entry)
		}
		r.appliedIndex.Store(index)
		r.startupAppliedTerm = entry.Term
	}
	r.fsmDispatched = commitIndex
	return nil
}

// goFunc starts a tracked goroutine; Shutdown waits for all of them.
func (r *Raft) goFunc(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

func (r *Raft) waitShutdown() { r.wg.Wait() }

// config returns a copy of the current configuration.
func (r *Raft) config() Config {
	return *r.conf.Load()
}

// ReloadConfig replaces the reloadable fields of the running node's Config
// with rc's, zero values included. If the result does not validate, it
// returns the error and changes nothing.
func (r *Raft) ReloadConfig(rc ReloadableConfig) error {
	r.confReloadMu.Lock()
	defer r.confReloadMu.Unlock()
	oldCfg := r.config()
	newCfg := rc.apply(oldCfg)
	if err := ValidateConfig(&newCfg); err != nil {
		return err
	}
	r.conf.Store(&newCfg)
	if rc.HeartbeatTimeout < oldCfg.HeartbeatTimeout {
		r.ctl.signal(sigHeartbeatShortened)
	}
	return nil
}

// ReloadableConfig returns the reloadable fields of the node's current
// Config.
func (r *Raft) ReloadableConfig() ReloadableConfig {
	var rc ReloadableConfig
	rc.fromConfig(r.config())
	return rc
}

// BootstrapCluster does what the package-level BootstrapCluster does, on a
// node already running with empty stores. The same rules apply: the first
// configuration of a new cluster, the same on every voter that gets it;
// ErrCantBootstrap once there is state.
func (r *Raft) BootstrapCluster(configuration Configuration) Future {
	f := &bootstrapFuture{configuration: configuration}
	f.init()
	f.shutdownCh = r.shutdownCh
	if !r.ctl.push(f) {
		return errorFuture{ErrRaftShutdown}
	}
	return f
}

// Leader returns the address of the leader this node knows of, "" when it
// knows none. Deprecated: use LeaderWithID.
func (r *Raft) Leader() ServerAddress {
	addr, _ := r.LeaderWithID()
	return addr
}

// LeaderWithID returns the address and ID of the leader this node knows
// of, both empty when it knows none.
func (r *Raft) LeaderWithID() (ServerAddress, ServerID) {
	r.leaderLock.RLock()
	defer r.leaderLock.RUnlock()
	return r.leaderAddr, r.leaderID
}

// Apply appends cmd to the log, on the leader; the future resolves once the
// entry is committed and applied to this node's FSM, with the FSM's
// response. A nonzero timeout bounds the wait for the main loop to take the
// command, not the commit: a command the leader loop has not taken from
// its queue within the timeout fails with ErrEnqueueTimeout and is not
// written. Apply itself returns at once unless the queue is full (4096
// waiting commands), and then waits at most the timeout.
//
// On a follower it fails with ErrNotLeader. If leadership is lost after the
// entry was written, it fails with ErrLeadershipLost: the entry may still
// be committed by the next leader, and nothing tells which. The future
// always resolves; at shutdown with ErrRaftShutdown.
func (r *Raft) Apply(cmd []byte, timeout time.Duration) ApplyFuture {
	return r.ApplyLog(Log{Data: cmd}, timeout)
}

// ApplyLog is Apply for a whole Log; only its Data and Extensions are used.
func (r *Raft) ApplyLog(log Log, timeout time.Duration) ApplyFuture {
	metrics.IncrCounter(keyApply, 1)
	f := &logFuture{log: Log{Type: LogCommand, Data: log.Data, Extensions: log.Extensions}}
	f.clock.start()
	return r.enqueue(f, timeout)
}

// enqueue hands a log future to the main loop.
func (r *Raft) enqueue(f *logFuture, timeout time.Duration) ApplyFuture {
	// No shutdownCh on the future: every apply future is answered on
	// shutdown (applyQueue.close, leaveLeader, applyCommitted, runFSM's
	// drain), so Error waits on the future alone.
	f.init()
	select {
	case <-r.shutdownCh:
		return errorFuture{ErrRaftShutdown}
	default:
	}
	if timeout > 0 {
		f.enqueueBy = time.Now().Add(timeout)
	}
	if err := r.applyQ.push(f, timeout, r.shutdownCh); err != nil {
		return errorFuture{err}
	}
	return f
}

// Barrier writes an entry and resolves once it is applied, hence once
// every entry before it is applied to this node's FSM. Leader only; the
// timeout works as Apply's.
func (r *Raft) Barrier(timeout time.Duration) Future {
	metrics.IncrCounter([]string{"raft", "barrier"}, 1)
	f := &logFuture{log: Log{Type: LogBarrier}}
	return r.enqueue(f, timeout)
}

// VerifyLeader resolves with nil once a quorum has answered heartbeats this
// node sent as leader after the call (an old reply cannot count), proving
// it still led at some moment after the call; otherwise ErrNotLeader or
// ErrLeadershipLost. Followed by waiting until AppliedIndex reaches the
// CommitIndex read after it, a read of the FSM is linearizable.
func (r *Raft) VerifyLeader() Future {
	metrics.IncrCounter([]string{"raft", "verify_leader"}, 1)
	f := &verifyFuture{}
	f.init()
	f.shutdownCh = r.shutdownCh
	if !r.ctl.push(f) {
		return errorFuture{ErrRaftShutdown}
	}
	return f
}

// GetConfiguration returns the latest configuration this node has, which
// may not be committed yet. It works on any node, running or shut down. The
// future's Index is that of the entry holding the configuration
// (hashicorp/raft returns 0).
func (r *Raft) GetConfiguration() ConfigurationFuture {
	f := &configurationsFuture{}
	f.configurations = r.getConfigurations()
	return f
}

// AddPeer adds a voter known by address only (protocol versions below 3).
// Leader only. Deprecated: use AddVoter or AddNonvoter.
func (r *Raft) AddPeer(peer ServerAddress) Future {
	if r.protocolVersion > 2 {
		return errorFuture{ErrUnsupportedProtocol}
	}
	return r.requestConfigChange(0, configurationChangeRequest{
		command:       AddVoter,
		serverID:      ServerID(peer),
		serverAddress: peer,
	}, 0)
}

// RemovePeer removes a server known by address only (protocol versions
// below 3). Leader only. Deprecated: use RemoveServer.
func (r *Raft) RemovePeer(peer ServerAddress) Future {
	if r.protocolVersion > 2 {
		return errorFuture{ErrUnsupportedProtocol}
	}
	return r.requestConfigChange(0, configurationChangeRequest{
		command:  RemoveServer,
		serverID: ServerID(peer),
	}, 0)
}

// AddVoter makes id a voter at address, adding it if absent or updating its
// address if present; the change takes effect when its entry is written,
// and there is no staging step (as in hashicorp/raft). Leader only.
//
// A nonzero prevIndex makes the change conditional: it fails unless the
// latest configuration is the one at prevIndex. A nonzero timeout bounds
// the wait for the main loop to take the request. The same two arguments
// work the same way in AddNonvoter, DemoteVoter and RemoveServer.
func (r *Raft) AddVoter(id ServerID, address ServerAddress, prevIndex uint64, timeout time.Duration) IndexFuture {
	return r.requestConfigChange(2, configurationChangeRequest{
		command:       AddVoter,
		serverID:      id,
		serverAddress: address,
		prevIndex:     prevIndex,
	}, timeout)
}

// AddNonvoter adds id at address without a vote: it receives the log but
// neither votes nor counts toward commitment. A present server has its
// address updated and keeps its suffrage. Leader only; see AddVoter for
// prevIndex and timeout.
func (r *Raft) AddNonvoter(id ServerID, address ServerAddress, prevIndex uint64, timeout time.Duration) IndexFuture {
	return r.requestConfigChange(3, configurationChangeRequest{
		command:       AddNonvoter,
		serverID:      id,
		serverAddress: address,
		prevIndex:     prevIndex,
	}, timeout)
}

// RemoveServer takes id out of the configuration. A leader that removes
// itself steps down once the change commits (and shuts down with
// Config.ShutdownOnRemove), and the others elect a new leader. Leader only;
// see AddVoter for prevIndex and timeout.
func (r *Raft) RemoveServer(id ServerID, prevIndex uint64, timeout time.Duration) IndexFuture {
	return r.requestConfigChange(2, configurationChangeRequest{
		command:   RemoveServer,
		serverID:  id,
		prevIndex: prevIndex,
	}, timeout)
}

// DemoteVoter takes id's vote away; it stays a member and keeps receiving
// the log. An absent id leaves the configuration as it is. Leader only; see
// AddVoter for prevIndex and timeout.
func (r *Raft) DemoteVoter(id ServerID, prevIndex uint64, timeout time.Duration) IndexFuture {
	return r.requestConfigChange(3, configurationChangeRequest{
		command:   DemoteVoter,
		serverID:  id,
		prevIndex: prevIndex,
	}, timeout)
}

// requestConfigChange hands a membership change to the leader loop, if the
// configured protocol version is at least minProtocol.
func (r *Raft) requestConfigChange(minProtocol ProtocolVersion, req configurationChangeRequest, timeout time.Duration) IndexFuture {
	if r.protocolVersion < minProtocol {
		return errorFuture{ErrUnsupportedProtocol}
	}
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}
	f := &configurationChangeFuture{req: req}
	f.init()
	f.shutdownCh = r.shutdownCh
	select {
	case <-timer:
		return errorFuture{ErrEnqueueTimeout}
	case r.configurationChangeCh <- f:
		return f
	case <-r.shutdownCh:
		return errorFuture{ErrRaftShutdown}
	}
}

// Shutdown stops the node at once, without handing leadership over. The
// future's Error waits until every goroutine of the node has exited, then
// closes the transport if it implements WithClose (once, however many
// times Shutdown is called).
func (r *Raft) Shutdown() Future {
	r.shutdownLock.Lock()
	defer r.shutdownLock.Unlock()
	if !r.shutdown {
		close(r.shutdownCh)
		r.shutdown = true
		r.setState(Shutdown)
		if stagesOn && !r.conf.Load().skipStartup {
			stagesNodeStopped()
		}
	}
	// Every call's future waits for the goroutines, also when an earlier
	// call (the node's own, on removal from the configuration) began the
	// shutdown; hashicorp/raft returns at once on the later calls, so a
	// caller could close its stores under a replication goroutine still
	// running. The transport is closed once.
	return &shutdownFuture{r}
}

// Snapshot takes a snapshot now, on any node, and compacts the log as an
// automatic one would. The future resolves when it is stored; its Open
// reads it back.
func (r *Raft) Snapshot() SnapshotFuture {
	f := &userSnapshotFuture{}
	f.init()
	f.shutdownCh = r.shutdownCh
	select {
	case r.userSnapshotCh <- f:
		return f
	case <-r.shutdownCh:
		f.respond(ErrRaftShutdown)
		return f
	}
}

// Restore replaces the cluster's state with an external snapshot (a
// backup), on the leader, and returns once it is done. The snapshot is
// stored under the current configuration (not the one it was taken with,
// so a backup can seed a new cluster) and at an index above the whole log,
// so that every follower, and any later joiner, receives it by
// InstallSnapshot.
//
// Meant for disaster recovery: the leader takes the new state before its
// followers have it, and writes made since the backup are lost. If the FSM
// fails to restore the snapshot, its state is unknown: hashicorp/raft
// panics there; this library shuts the node down and returns the error.
// timeout (0 for none) bounds only the wait for the node to take the
// request, which then fails with ErrEnqueueTimeout; once taken, the restore
// runs to its end.
func (r *Raft) Restore(meta *SnapshotMeta, reader io.Reader, timeout time.Duration) error {
	metrics.IncrCounter([]string{"raft", "restore"}, 1)
	if meta == nil || reader == nil {
		return fmt.Errorf("restore needs snapshot metadata and a reader")
	}
	var timer <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timer = t.C
	}

	restore := &userRestoreFuture{meta: meta, reader: reader}
	restore.init()
	restore.shutdownCh = r.shutdownCh
	if !r.ctl.push(restore) {
		return ErrRaftShutdown
	}
	// The timeout bounds the wait for the main loop to take the request,
	// not the restore itself.
	select {
	case <-timer:
		if r.ctl.withdraw(restore) {
			return ErrEnqueueTimeout
		}
	case <-restore.done:
	case <-r.shutdownCh:
	}
	if err := restore.Error(); err != nil {
		return err
	}

	// Commit an empty entry after the restore: a quorum storing it must
	// first have installed the restored snapshot.
	noop := &logFuture{log: Log{Type: LogNoop}}
	return r.enqueue(noop, timeout).Error()
}

// State returns whether the node is a follower, candidate or leader, or has
// shut down.
func (r *Raft) State() RaftState {
	return RaftState(r.state.Load())
}

// LeaderCh returns a channel that receives true when this node becomes
// leader and false when it stops. It holds one value: an unread one is
// replaced by the newer, so a slow reader still ends on the current state.
func (r *Raft) LeaderCh() <-chan bool {
	return r.leaderCh
}

// String describes the node: its address and state.
func (r *Raft) String() string {
	return fmt.Sprintf("Node at %s [%v]", r.localAddr, r.State())
}

// LastContact is when this node last heard from a leader; meaningful on a
// follower.
func (r *Raft) LastContact() time.Time {
	r.lastContactLock.RLock()
	defer r.lastContactLock.RUnlock()
	return r.lastContact
}

// Stats returns a snapshot of the node's internals as strings, for humans
// and debugging, under hashicorp/raft's keys (latest_configuration_index
// holds the real index here).
func (r *Raft) Stats() map[string]string {
	toString := func(v uint64) string { return strconv.FormatUint(v, 10) }
	lastLogIndex, lastLogTerm := r.getLastLog()
	lastSnapIndex, lastSnapTerm := r.getLastSnapshot()
	commit := r.getCommitIndex()
	applied := r.appliedIndex.Load()
	s := map[string]string{
		"state":                r.State().String(),
		"term":                 toString(r.getCurrentTerm()),
		"last_log_index":       toString(lastLogIndex),
		"last_log_term":        toString(lastLogTerm),
		"commit_index":         toString(commit),
		"applied_index":        toString(applied),
		"fsm_pending":          toString(commit - min(commit, applied)),
		"last_snapshot_index":  toString(lastSnapIndex),
		"last_snapshot_term":   toString(lastSnapTerm),
		"protocol_version":     strconv.Itoa(int(r.protocolVersion)),
		"protocol_version_min": strconv.Itoa(int(ProtocolVersionMin)),
		"protocol_version_max": strconv.Itoa(int(ProtocolVersionMax)),
		"snapshot_version_min": strconv.Itoa(int(SnapshotVersionMin)),
		"snapshot_version_max": strconv.Itoa(int(SnapshotVersionMax)),
		"reads_by_round":       toString(r.readsByRound.Load()),
		"reads_by_lease":       toString(r.readsByLease.Load()),
		"reads_for_followers":  toString(r.readsForFollowers.Load()),
		"read_heartbeats":      toString(r.readHeartbeats.Load()),
		"read_rounds":          toString(r.readRoundsStarted.Load()),
	}

	c := r.getConfigurations()
	s["latest_configuration_index"] = toString(c.latestIndex)
	s["latest_configuration"] = fmt.Sprintf("%+v", c.latest.Servers)
	// A ChangeConfiguration in its joint phase: its servers' suffrages in
	// latest_configuration say how each changes.
	s["latest_configuration_joint"] = strconv.FormatBool(isJoint(c.latest))

	// num_peers: the other voters, or 0 when this node has no vote.
	hasUs := false
	numPeers := 0
	for _, server := range c.latest.Servers {
		if isVoterSuffrage(server.Suffrage) {
			if server.ID == r.localID {
				hasUs = true
			} else {
				numPeers++
			}
		}
	}
	if !hasUs {
		numPeers = 0
	}
	s["num_peers"] = toString(uint64(numPeers))

	last := r.LastContact()
	if r.State() == Leader {
		s["last_contact"] = "0"
	} else if last.IsZero() {
		s["last_contact"] = "never"
	} else {
		s["last_contact"] = fmt.Sprintf("%v", r.now().Sub(last))
	}
	return s
}

// CurrentTerm returns the node's term.
func (r *Raft) CurrentTerm() uint64 {
	return r.getCurrentTerm()
}

// LastIndex returns the highest index this node has stored, in its log or
// as its last snapshot.
func (r *Raft) LastIndex() uint64 {
	idx, _ := r.getLastLog()
	return idx
}

// CommitIndex returns the highest index this node knows to be committed.
// On a leader, read after VerifyLeader, it is the index a linearizable
// read must wait for (see VerifyLeader).
func (r *Raft) CommitIndex() uint64 {
	return r.getCommitIndex()
}

// AppliedIndex returns the highest index the FSM has applied (entries it
// never sees, like no-ops and configurations, count once reached). Unlike
// hashicorp/raft's, which counts what was handed to the FSM goroutine, it
// moves only after the FSM returns, so waiting for it after VerifyLeader
// gives a linearizable read.
func (r *Raft) AppliedIndex() uint64 {
	return r.appliedIndex.Load()
}

// PeerStatus is the leader's view of one other server.
type PeerStatus struct {
	// LastContact is when the server last answered an AppendEntries,
	// heartbeat or InstallSnapshot from this leader (or when this leader
	// began replicating to it, before the first answer).
	LastContact time.Time
	// MatchIndex is the highest log index known to be stored on it.
	MatchIndex uint64
}

// PeerStatus reports, on the leader, its view of every other server in the
// latest configuration, voters and nonvoters alike. On any other node it
// returns nil. It is not part of hashicorp/raft's API; there the same
// facts only reach metrics and heartbeat observations.
func (r *Raft) PeerStatus() map[ServerID]PeerStatus {
	view := r.peerView.Load()
	if view == nil {
		return nil
	}
	out := make(map[ServerID]PeerStatus, len(*view))
	for id, repl := range *view {
		out[id] = PeerStatus{LastContact: repl.getLastContact(), MatchIndex: repl.getMatchIndex()}
	}
	return out
}

// LeadershipTransfer hands leadership to the most up-to-date other voter.
// Leader only, protocol version 3. Meanwhile the leader refuses new requests
// (ErrLeadershipTransferInProgress); it brings the target's log up to date,
// then tells it to start an election at once (TimeoutNow), which it is
// then almost sure to win. The future resolves when the leadership has
// moved or the attempt failed. While one transfer request waits for the
// node to take it, another fails at once with ErrEnqueueTimeout.
func (r *Raft) LeadershipTransfer() Future {
	if r.protocolVersion < 3 {
		return errorFuture{ErrUnsupportedProtocol}
	}
	return r.initiateLeadershipTransfer(nil, nil)
}

// LeadershipTransferToServer is LeadershipTransfer to a chosen voter.
func (r *Raft) LeadershipTransferToServer(id ServerID, address ServerAddress) Future {
	if r.protocolVersion < 3 {
		return errorFuture{ErrUnsupportedProtocol}
	}
	return r.initiateLeadershipTransfer(&id, &address)
}

func (r *Raft) initiateLeadershipTransfer(id *ServerID, address *ServerAddress) LeadershipTransferFuture {
	f := &leadershipTransferFuture{ID: id, Address: address}
	f.init()
	f.shutdownCh = r.shutdownCh
	if id != nil && *id == r.localID {
		err := fmt.Errorf("cannot transfer leadership to itself")
		r.logger.Info(err.Error())
		return errorFuture{err}
	}
	// One transfer request may wait for the leader loop; another is
	// refused with ErrEnqueueTimeout meanwhile, as hashicorp/raft does.
	err := r.ctl.pushUnlessPending(f, func(it any) bool {
		_, ok := it.(*leadershipTransferFuture)
		return ok
	})
	if err != nil {
		return errorFuture{err}
	}
	return f
}

// ---- published state helpers ----

func (r *Raft) getCurrentTerm() uint64 { return r.currentTerm.Load() }
func (r *Raft) getCommitIndex() uint64 { return r.commitIndex.Load() }
func (r *Raft) setCommitIndex(i uint64) {
	r.commitIndex.Store(i)
}

func (r *Raft) setState(s RaftState) {
	old := RaftState(r.state.Swap(uint32(s)))
	if old != s {
		r.observe(s)
	}
}

func (r *Raft) getLastLog() (uint64, uint64) {
	r.lastLock.Lock()
	defer r.lastLock.Unlock()
	return r.lastLogIndex, r.lastLogTerm
}

func (r *Raft) setLastLog(index, term uint64) {
	r.lastLock.Lock()
	r.lastLogIndex, r.lastLogTerm = index, term
	r.lastLock.Unlock()
}

func (r *Raft) getLastSnapshot() (uint64, uint64) {
	r.lastLock.Lock()
	defer r.lastLock.Unlock()
	return r.lastSnapshotIndex, r.lastSnapshotTerm
}

func (r *Raft) setLastSnapshot(index, term uint64) {
	r.lastLock.Lock()
	r.lastSnapshotIndex, r.lastSnapshotTerm = index, term
	r.lastLock.Unlock()
}

// advanceLastSnapshot records a snapshot unless a newer one is already
// recorded (a user Restore can finish while an older snapshot is written).
func (r *Raft) advanceLastSnapshot(index, term uint64) {
	r.lastLock.Lock()
	if index > r.lastSnapshotIndex {
		r.lastSnapshotIndex, r.lastSnapshotTerm = index, term
	}
	r.lastLock.Unlock()
}

func (r *Raft) setLastContact() {
	r.lastContactLock.Lock()
	r.lastContact = r.now()
	r.lastContactLock.Unlock()
}

// setLeader records the leader and tells observers when it changed.
func (r *Raft) setLeader(addr ServerAddress, id ServerID) {
	r.leaderLock.Lock()
	oldAddr, oldID := r.leaderAddr, r.leaderID
	r.leaderAddr, r.leaderID = addr, id
	r.leaderRaw = r.leaderRaw[:0]
	r.leaderLock.Unlock()
	if oldAddr != addr || oldID != id {
		r.observe(LeaderObservation{Leader: addr, LeaderAddr: addr, LeaderID: id})
	}
}

// setLeaderFrom records the sender of a leader's request as the leader.
// A request from the leader already known (the usual case) changes and
// allocates nothing.
func (r *Raft) setLeaderFrom(h *RPCHeader, deprecated []byte) {
	raw := h.Addr
	if len(raw) == 0 {
		raw = deprecated
	}
	r.leaderLock.RLock()
	same := len(r.leaderRaw) > 0 && bytes.Equal(r.leaderRaw, raw) && string(r.leaderID) == string(h.ID)
	r.leaderLock.RUnlock()
	if same {
		return
	}
	addr, id := r.trans.DecodePeer(raw), ServerID(h.ID)
	r.leaderLock.Lock()
	oldAddr, oldID := r.leaderAddr, r.leaderID
	r.leaderAddr, r.leaderID = addr, id
	r.leaderRaw = append(r.leaderRaw[:0], raw...)
	r.leaderLock.Unlock()
	if oldAddr != addr || oldID != id {
		r.observe(LeaderObservation{Leader: addr, LeaderAddr: addr, LeaderID: id})
	}
}

// setConfigurations stores the main loop's configurations and publishes a
// copy for readers.
func (r *Raft) setConfigurations(c configurations) {
	r.configurations = c
	pub := c.Clone()
	r.latestConfiguration.Store(&pub)
}

func (r *Raft) getConfigurations() configurations {
	if c := r.latestConfiguration.Load(); c != nil {
		return c.Clone()
	}
	return configurations{}
}

// asyncNotify pokes a one-slot channel without blocking.
func asyncNotify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// now reads this node's clock.
func (r *Raft) now() time.Time { return r.clock.Now() }

// newTimer starts a timer that fires after d on this node's clock.
func (r *Raft) newTimer(d time.Duration) *time.Timer { return time.NewTimer(r.clock.Real(d)) }
