package raft

import (
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-metrics"
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

	conf         atomic.Pointer[Config]
	confReloadMu sync.Mutex

	// Published state, readable by anyone. termLock is held (write) while
	// the main loop changes the term and (read) while the heartbeat fast
	// path answers, so the two never interleave.
	termLock     sync.RWMutex
	state        atomic.Uint32
	currentTerm  atomic.Uint64
	commitIndex  atomic.Uint64
	appliedIndex atomic.Uint64 // written by runFSM

	lastLock          sync.Mutex
	lastLogIndex      uint64
	lastLogTerm       uint64
	lastSnapshotIndex uint64
	lastSnapshotTerm  uint64

	leaderLock sync.RWMutex
	leaderAddr ServerAddress
	leaderID   ServerID

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
	observedTerm        atomic.Uint64 // highest term seen by replication
	observedTermCh      chan struct{}

	// Requests to the main loop.
	applyQ                *applyQueue
	configurationChangeCh chan *configurationChangeFuture
	configurationsCh      chan *configurationsFuture
	verifyCh              chan *verifyFuture
	userRestoreCh         chan *userRestoreFuture
	leadershipTransferCh  chan *leadershipTransferFuture
	bootstrapCh           chan *bootstrapFuture
	heartbeatCh           chan RPC
	leaderNotifyCh        chan struct{}
	followerNotifyCh      chan struct{}

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

// BootstrapCluster initializes a server's storage with the given cluster
// configuration. This should only be called at the beginning of time for the
// cluster with an identical configuration listing all Voter servers. There is
// no need to bootstrap Nonvoter and Staging servers.
//
// A cluster can only be bootstrapped once from a single participating Voter
// server. Any further attempts to bootstrap will return ErrCantBootstrap, so
// it is safe to call this on every start.
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

// RecoverCluster is used to manually force a new configuration in order to
// recover from a loss of quorum where the current configuration cannot be
// restored, such as when several servers die at the same time. This works
// by reading all the current state for this server, creating a snapshot with
// the supplied configuration, and then truncating the Raft log. This is the
// only safe way to force a given configuration without actually altering
// the log to insert any new entries, which could cause conflicts with other
// servers with different state.
//
// WARNING! This operation implicitly commits all entries in the Raft log, so
// in general this is an extremely unsafe operation. Run it on every server
// with the same configuration, while all of them are stopped.
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
			_, source, err := snaps.Open(snapshot.ID)
			if err != nil {
				logger.Error("failed to open snapshot", "id", snapshot.ID, "error", err)
				continue
			}
			err = fsm.Restore(source)
			source.Close()
			if err != nil {
				logger.Error("failed to restore snapshot", "id", snapshot.ID, "error", err)
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

	// Compact the log so that we don't get bad interference from any
	// configuration change log entries that might be there.
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

// GetConfiguration returns the persisted configuration of the Raft cluster
// without starting a Raft instance or connecting to the cluster. It reads
// the newest snapshot's metadata and the configuration entries of the log.
// Unlike hashicorp/raft's, it does not restore the FSM (fsm is unused).
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

// HasExistingState returns true if the server has any existing state (logs,
// knowledge of a current term, or any snapshots).
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

// NewRaft is used to construct a new Raft node. It takes a configuration, as
// well as implementations of various interfaces that are required. If we
// have any old state, such as snapshots, logs, peers, etc, all those will be
// restored when creating the Raft node. It never panics on bad stored state:
// it returns an error that says what is wrong.
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
		tail:                  newLogTail(max(8*conf.MaxAppendEntries, 1024)),
		appendBytesBudget:     appendBytesBudget(trans),
		observedTermCh:        make(chan struct{}, 1),
		applyQ:                newApplyQueue(applyQueueLimit),
		configurationChangeCh: make(chan *configurationChangeFuture),
		configurationsCh:      make(chan *configurationsFuture, 8),
		verifyCh:              make(chan *verifyFuture, 64),
		userRestoreCh:         make(chan *userRestoreFuture),
		leadershipTransferCh:  make(chan *leadershipTransferFuture, 1),
		bootstrapCh:           make(chan *bootstrapFuture),
		heartbeatCh:           make(chan RPC, 16),
		leaderNotifyCh:        make(chan struct{}, 1),
		followerNotifyCh:      make(chan struct{}, 1),
		fsmMutateCh:           make(chan interface{}, 128),
		fsmSnapshotCh:         make(chan *reqSnapshotFuture),
		userSnapshotCh:        make(chan *userSnapshotFuture),
		leaderCh:              make(chan bool, 1),
		observers:             make(map[uint64]*Observer),
		shutdownCh:            make(chan struct{}),
	}
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

	trans.SetHeartbeatHandler(r.processHeartbeat)
	r.goFunc(r.run)
	r.goFunc(r.runFSM)
	r.goFunc(r.runSnapshots)
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
			_, source, err := r.snapshots.Open(meta.ID)
			if err != nil {
				r.logger.Error("failed to open snapshot", "id", meta.ID, "error", err)
				continue
			}
			err = r.fsm.Restore(source)
			source.Close()
			if err != nil {
				r.logger.Error("failed to restore snapshot", "id", meta.ID, "error", err)
				continue
			}
			r.logger.Info("restored from snapshot", "id", meta.ID, "last-index", meta.Index)
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

// ReloadConfig updates the configuration of a running raft node. If the new
// configuration is invalid an error is returned and no changes made to the
// instance. All fields will be copied from rc into the new configuration,
// even if they are zero valued.
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
		asyncNotify(r.followerNotifyCh)
		asyncNotify(r.leaderNotifyCh)
	}
	return nil
}

// ReloadableConfig returns the current state of the reloadable fields in
// Raft's configuration.
func (r *Raft) ReloadableConfig() ReloadableConfig {
	var rc ReloadableConfig
	rc.fromConfig(r.config())
	return rc
}

// BootstrapCluster is equivalent to non-member BootstrapCluster but can be
// called on an un-bootstrapped Raft instance after it has been created. This
// should only be called at the beginning of time for the cluster with an
// identical configuration listing all Voter servers.
func (r *Raft) BootstrapCluster(configuration Configuration) Future {
	f := &bootstrapFuture{configuration: configuration}
	f.init()
	f.shutdownCh = r.shutdownCh
	select {
	case <-r.shutdownCh:
		return errorFuture{ErrRaftShutdown}
	case r.bootstrapCh <- f:
		return f
	}
}

// Leader is used to return the current leader of the cluster. Deprecated:
// use LeaderWithID. It may return empty strings if there is no current
// leader or the leader is unknown.
func (r *Raft) Leader() ServerAddress {
	addr, _ := r.LeaderWithID()
	return addr
}

// LeaderWithID is used to return the current leader address and ID of the
// cluster. It may return empty strings if there is no current leader or the
// leader is unknown.
func (r *Raft) LeaderWithID() (ServerAddress, ServerID) {
	r.leaderLock.RLock()
	defer r.leaderLock.RUnlock()
	return r.leaderAddr, r.leaderID
}

// Apply is used to apply a command to the FSM in a highly consistent
// manner. This returns a future that can be used to wait on the
// application. An optional timeout can be provided to limit the amount of
// time we wait for the command to be started. This must be run on the
// leader or it will fail.
//
// If the node discovers it is no longer the leader while applying the
// command, it will return ErrLeadershipLost. There is no way to guarantee
// whether the write succeeded or failed in this case. The future always
// resolves: on shutdown it returns ErrRaftShutdown.
func (r *Raft) Apply(cmd []byte, timeout time.Duration) ApplyFuture {
	return r.ApplyLog(Log{Data: cmd}, timeout)
}

// ApplyLog performs Apply but takes in a Log directly. The only values
// currently taken from the submitted Log are Data and Extensions.
func (r *Raft) ApplyLog(log Log, timeout time.Duration) ApplyFuture {
	metrics.IncrCounter(keyApply, 1)
	f := &logFuture{log: Log{Type: LogCommand, Data: log.Data, Extensions: log.Extensions}}
	return r.enqueue(f, timeout)
}

// enqueue hands a log future to the main loop.
func (r *Raft) enqueue(f *logFuture, timeout time.Duration) ApplyFuture {
	f.init()
	f.shutdownCh = r.shutdownCh
	select {
	case <-r.shutdownCh:
		return errorFuture{ErrRaftShutdown}
	default:
	}
	if err := r.applyQ.push(f, timeout, r.shutdownCh); err != nil {
		return errorFuture{err}
	}
	return f
}

// Barrier is used to issue a command that blocks until all preceding
// operations have been applied to the FSM. It can be used to ensure the FSM
// reflects all queued writes. An optional timeout can be provided to limit
// the amount of time we wait for the command to be started. This must be
// run on the leader, or it will fail.
func (r *Raft) Barrier(timeout time.Duration) Future {
	metrics.IncrCounter([]string{"raft", "barrier"}, 1)
	f := &logFuture{log: Log{Type: LogBarrier}}
	return r.enqueue(f, timeout)
}

// VerifyLeader is used to ensure this peer is still the leader. It may be
// used to prevent returning stale data from the FSM after the peer has lost
// leadership. It counts only acknowledgements to heartbeats sent after the
// call, so a delayed reply to an older heartbeat cannot satisfy it.
func (r *Raft) VerifyLeader() Future {
	metrics.IncrCounter([]string{"raft", "verify_leader"}, 1)
	f := &verifyFuture{}
	f.init()
	f.shutdownCh = r.shutdownCh
	select {
	case <-r.shutdownCh:
		return errorFuture{ErrRaftShutdown}
	case r.verifyCh <- f:
		return f
	}
}

// GetConfiguration returns the latest configuration. This may not yet be
// committed. The main loop can be running or not. Its Index is the index of
// the entry that holds that configuration (hashicorp/raft returns 0).
func (r *Raft) GetConfiguration() ConfigurationFuture {
	f := &configurationsFuture{}
	f.configurations = r.getConfigurations()
	return f
}

// AddPeer to the cluster configuration. Must be run on the leader, or it
// will fail. Deprecated: use AddVoter/AddNonvoter instead.
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

// RemovePeer from the cluster configuration. If the current leader is being
// removed, it will cause a new election to occur. Must be run on the leader,
// or it will fail. Deprecated: use RemoveServer instead.
func (r *Raft) RemovePeer(peer ServerAddress) Future {
	if r.protocolVersion > 2 {
		return errorFuture{ErrUnsupportedProtocol}
	}
	return r.requestConfigChange(0, configurationChangeRequest{
		command:  RemoveServer,
		serverID: ServerID(peer),
	}, 0)
}

// AddVoter will add the given server to the cluster as a staging server. If
// the server is already in the cluster as a voter, this updates the
// server's address. This must be run on the leader or it will fail. The
// leader will promote the staging server to a voter once that server is
// ready. If nonzero, prevIndex is the index of the only configuration upon
// which this change may be applied; if another configuration entry has been
// added in the meantime, this request will fail. If nonzero, timeout is how
// long this server should wait before the configuration change log entry is
// appended.
//
// As in hashicorp/raft, the server becomes a voter at once: there is no
// staging step.
func (r *Raft) AddVoter(id ServerID, address ServerAddress, prevIndex uint64, timeout time.Duration) IndexFuture {
	return r.requestConfigChange(2, configurationChangeRequest{
		command:       AddVoter,
		serverID:      id,
		serverAddress: address,
		prevIndex:     prevIndex,
	}, timeout)
}

// AddNonvoter will add the given server to the cluster but won't assign it
// a vote. The server will receive log entries, but it won't participate in
// elections or log entry commitment. If the server is already in the
// cluster, this updates the server's address. This must be run on the
// leader or it will fail. For prevIndex and timeout, see AddVoter.
func (r *Raft) AddNonvoter(id ServerID, address ServerAddress, prevIndex uint64, timeout time.Duration) IndexFuture {
	return r.requestConfigChange(3, configurationChangeRequest{
		command:       AddNonvoter,
		serverID:      id,
		serverAddress: address,
		prevIndex:     prevIndex,
	}, timeout)
}

// RemoveServer will remove the given server from the cluster. If the
// current leader is being removed, it will cause a new election to occur.
// This must be run on the leader or it will fail. For prevIndex and
// timeout, see AddVoter.
func (r *Raft) RemoveServer(id ServerID, prevIndex uint64, timeout time.Duration) IndexFuture {
	return r.requestConfigChange(2, configurationChangeRequest{
		command:   RemoveServer,
		serverID:  id,
		prevIndex: prevIndex,
	}, timeout)
}

// DemoteVoter will take away a server's vote, if it has one. If present, the
// server will continue to receive log entries, but it won't participate in
// elections or log entry commitment. If the server is not in the cluster,
// this does nothing. This must be run on the leader or it will fail. For
// prevIndex and timeout, see AddVoter.
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

// Shutdown is used to stop the Raft background routines. This is not a
// graceful operation. Provides a future that can be used to block until all
// background routines have exited; its Error also closes the transport when
// it implements WithClose.
func (r *Raft) Shutdown() Future {
	r.shutdownLock.Lock()
	defer r.shutdownLock.Unlock()
	if !r.shutdown {
		close(r.shutdownCh)
		r.shutdown = true
		r.setState(Shutdown)
	}
	// Every call's future waits for the goroutines, also when an earlier
	// call (the node's own, on removal from the configuration) began the
	// shutdown; hashicorp/raft returns at once on the later calls, so a
	// caller could close its stores under a replication goroutine still
	// running. The transport is closed once.
	return &shutdownFuture{r}
}

// Snapshot is used to manually force Raft to take a snapshot. Returns a
// future that can be used to block until complete, and that contains a
// function that can be used to open the snapshot.
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

// Restore is used to manually force Raft to consume an external snapshot,
// such as if restoring from a backup. We will use the current Raft
// configuration, not the one from the snapshot, so that we can restore into
// a new cluster. We will also use the max of the index of the snapshot, or
// the current index, and then add 1 to that, so we force a new state with a
// hole in the Raft log, so that the snapshot will be sent to followers and
// used for any new joiners. This can only be run on the leader, and blocks
// until the restore is complete or an error occurs.
//
// WARNING! This operation has the leader take on the state of the snapshot
// and then sets itself up so that it replicates that to its followers
// through the install snapshot process. This involves a potentially
// dangerous period where the leader commits ahead of its followers, so
// should only be used for disaster recovery into a fresh cluster, and
// should not be used in normal operations.
//
// If the FSM fails to restore the snapshot its state is unknown: where
// hashicorp/raft panics, this library shuts the node down and returns the
// error.
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
	select {
	case <-timer:
		return ErrEnqueueTimeout
	case <-r.shutdownCh:
		return ErrRaftShutdown
	case r.userRestoreCh <- restore:
		if err := restore.Error(); err != nil {
			return err
		}
	}

	// Apply a no-op log entry. Waiting for this allows us to wait until
	// the followers have gotten the restore and replicated at least this
	// new entry, which shows that we've also faulted and installed the
	// snapshot with the contents of the restore.
	noop := &logFuture{log: Log{Type: LogNoop}}
	return r.enqueue(noop, timeout).Error()
}

// State returns the state of this raft peer.
func (r *Raft) State() RaftState {
	return RaftState(r.state.Load())
}

// LeaderCh is used to get a channel which delivers signals on acquiring or
// losing leadership. It sends true if we become the leader, and false if we
// lose it. The channel has a buffer of one: an unread value is replaced by
// the newest, so a slow reader always sees the current state last.
func (r *Raft) LeaderCh() <-chan bool {
	return r.leaderCh
}

// String returns a string representation of this Raft node.
func (r *Raft) String() string {
	return fmt.Sprintf("Node at %s [%v]", r.localAddr, r.State())
}

// LastContact returns the time of last contact by a leader. This only makes
// sense if we are currently a follower.
func (r *Raft) LastContact() time.Time {
	r.lastContactLock.RLock()
	defer r.lastContactLock.RUnlock()
	return r.lastContact
}

// Stats is used to return a map of various internal stats. This should only
// be used for informative purposes or debugging. The keys are those of
// hashicorp/raft; latest_configuration_index holds the real index.
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
	}

	c := r.getConfigurations()
	s["latest_configuration_index"] = toString(c.latestIndex)
	s["latest_configuration"] = fmt.Sprintf("%+v", c.latest.Servers)

	// This is a legacy metric that we've seen people use in the wild.
	hasUs := false
	numPeers := 0
	for _, server := range c.latest.Servers {
		if server.Suffrage == Voter {
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
		s["last_contact"] = fmt.Sprintf("%v", time.Since(last))
	}
	return s
}

// CurrentTerm returns the current term.
func (r *Raft) CurrentTerm() uint64 {
	return r.getCurrentTerm()
}

// LastIndex returns the last index in stable storage, either from the last
// log or from the last snapshot.
func (r *Raft) LastIndex() uint64 {
	idx, _ := r.getLastLog()
	return idx
}

// CommitIndex returns the committed index. This API maybe helpful for
// server to implement the read index optimization as described in the Raft
// paper.
func (r *Raft) CommitIndex() uint64 {
	return r.getCommitIndex()
}

// AppliedIndex returns the last index applied to the FSM. This is generally
// lagging behind the last index, especially for indexes that are persisted
// but have not yet been considered committed by the leader. Unlike
// hashicorp/raft, which counts entries handed to the FSM goroutine, this is
// what the FSM has actually applied, so waiting for it after VerifyLeader
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

// LeadershipTransfer will transfer leadership to a server in the cluster.
// This can only be called from the leader, or it will fail. The leader will
// stop accepting client requests, make sure the target server is up to date
// and starts the transfer with a TimeoutNow message. This message has the
// same effect as if the election timeout on the target server fires. Since
// it is unlikely that another server is starting an election, it is very
// likely that the target server is able to win the election. Note that
// leadership transfer is only supported with protocol version 3.
func (r *Raft) LeadershipTransfer() Future {
	if r.protocolVersion < 3 {
		return errorFuture{ErrUnsupportedProtocol}
	}
	return r.initiateLeadershipTransfer(nil, nil)
}

// LeadershipTransferToServer does the same as LeadershipTransfer but takes
// a server in the arguments in case a leadership should be transitioned to
// a specific server in the cluster.
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
	select {
	case r.leadershipTransferCh <- f:
		return f
	case <-r.shutdownCh:
		return errorFuture{ErrRaftShutdown}
	default:
		return errorFuture{ErrEnqueueTimeout}
	}
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
	r.lastContact = time.Now()
	r.lastContactLock.Unlock()
}

// setLeader records the leader and tells observers when it changed.
func (r *Raft) setLeader(addr ServerAddress, id ServerID) {
	r.leaderLock.Lock()
	oldAddr, oldID := r.leaderAddr, r.leaderID
	r.leaderAddr, r.leaderID = addr, id
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
