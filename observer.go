package raft

import (
	"sync/atomic"
	"time"
)

// Observation is one event, as delivered on an observer's channel.
type Observation struct {
	// Raft is the node the event happened on.
	Raft *Raft
	// Data is the event: a RequestVoteRequest or RequestPreVoteRequest
	// (by value) received, a RaftState entered, a PeerObservation,
	// LeaderObservation, FailedHeartbeatObservation or
	// ResumedHeartbeatObservation.
	Data interface{}
}

// LeaderObservation reports the leader this node knows of, when that
// changes (an empty one when it knows of none).
type LeaderObservation struct {
	// Leader is deprecated: use LeaderAddr.
	Leader     ServerAddress
	LeaderAddr ServerAddress
	LeaderID   ServerID
}

// PeerObservation reports, on the leader, a peer it began (Removed false) or
// stopped (Removed true) replicating to.
type PeerObservation struct {
	Removed bool
	Peer    Server
}

// FailedHeartbeatObservation reports, on the leader, a heartbeat to PeerID
// that failed; LastContact is when the peer last answered.
type FailedHeartbeatObservation struct {
	PeerID      ServerID
	LastContact time.Time
}

// ResumedHeartbeatObservation reports, on the leader, that heartbeats to
// PeerID succeed again after failures.
type ResumedHeartbeatObservation struct {
	PeerID ServerID
}

// nextObserverID numbers observers, the key under which a node keeps them.
var nextObserverID atomic.Uint64

// FilterFn decides which observations an observer receives: those for which
// it returns true.
type FilterFn func(o *Observation) bool

// Observer receives a node's observations on a channel. Register it with
// RegisterObserver.
type Observer struct {
	numObserved atomic.Uint64
	numDropped  atomic.Uint64

	// channel is where observations go.
	channel chan Observation

	// blocking makes the node wait for room on the channel instead of
	// dropping the observation; it holds up the node, so keep it off.
	blocking bool

	// filter, when set, selects the observations to send.
	filter FilterFn

	// id is the observer's key in a node's set of observers.
	id uint64
}

// NewObserver returns an observer that sends to channel every observation
// filter accepts (all of them when filter is nil). When the channel is full,
// a blocking observer waits (holding up the node, though never past its
// shutdown); a non-blocking one drops the observation and counts it.
func NewObserver(channel chan Observation, blocking bool, filter FilterFn) *Observer {
	return &Observer{
		channel:  channel,
		blocking: blocking,
		filter:   filter,
		id:       nextObserverID.Add(1),
	}
}

// GetNumObserved returns how many observations were sent on the channel.
func (or *Observer) GetNumObserved() uint64 {
	return or.numObserved.Load()
}

// GetNumDropped returns how many observations found the channel full and
// were dropped.
func (or *Observer) GetNumDropped() uint64 {
	return or.numDropped.Load()
}

// RegisterObserver starts sending this node's observations to or.
func (r *Raft) RegisterObserver(or *Observer) {
	r.observersLock.Lock()
	defer r.observersLock.Unlock()
	r.observers[or.id] = or
}

// DeregisterObserver stops sending observations to or.
func (r *Raft) DeregisterObserver(or *Observer) {
	r.observersLock.Lock()
	defer r.observersLock.Unlock()
	delete(r.observers, or.id)
}

// observe sends an observation to every observer. A blocking observer also
// gives up when the node shuts down, so Shutdown never hangs on one.
func (r *Raft) observe(o interface{}) {
	ob := Observation{Raft: r, Data: o}
	r.observersLock.RLock()
	defer r.observersLock.RUnlock()
	for _, or := range r.observers {
		if or.filter != nil && !or.filter(&ob) {
			continue
		}
		if or.channel == nil {
			continue
		}
		if or.blocking {
			select {
			case or.channel <- ob:
				or.numObserved.Add(1)
			case <-r.shutdownCh:
				or.numDropped.Add(1)
			}
			continue
		}
		select {
		case or.channel <- ob:
			or.numObserved.Add(1)
		default:
			or.numDropped.Add(1)
		}
	}
}
