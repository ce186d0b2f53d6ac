package raft

import (
	"sync/atomic"
	"time"
)

// Observation is sent along the given channel to observers when an event
// occurs.
type Observation struct {
	// Raft holds the Raft instance generating the observation.
	Raft *Raft
	// Data holds observation-specific data. Possible types are
	// RequestVoteRequest, RequestPreVoteRequest (values, not pointers),
	// RaftState, PeerObservation, LeaderObservation,
	// FailedHeartbeatObservation and ResumedHeartbeatObservation.
	Data interface{}
}

// LeaderObservation is used for the data when leadership changes, including
// to no leader.
type LeaderObservation struct {
	// Leader is deprecated: use LeaderAddr.
	Leader     ServerAddress
	LeaderAddr ServerAddress
	LeaderID   ServerID
}

// PeerObservation is sent to observers when the leader starts or stops
// replicating to a peer.
type PeerObservation struct {
	Removed bool
	Peer    Server
}

// FailedHeartbeatObservation is sent when a node fails to heartbeat with the
// leader.
type FailedHeartbeatObservation struct {
	PeerID      ServerID
	LastContact time.Time
}

// ResumedHeartbeatObservation is sent when a node resumes to heartbeat with
// the leader following failures.
type ResumedHeartbeatObservation struct {
	PeerID ServerID
}

// nextObserverID is used to provide a unique ID for each observer to aid in
// deregistration.
var nextObserverID atomic.Uint64

// FilterFn is a function that can be registered in order to filter
// observations. The function reports whether the observation should be
// included - if it returns false, the observation will be filtered out.
type FilterFn func(o *Observation) bool

// Observer describes what to do with a given observation.
type Observer struct {
	numObserved atomic.Uint64
	numDropped  atomic.Uint64

	// channel receives observations.
	channel chan Observation

	// blocking, if true, will cause Raft to block when sending an
	// observation to this observer. This should generally be set to false.
	blocking bool

	// filter will be called to determine if an observation should be sent
	// to the channel.
	filter FilterFn

	// id is the ID of this observer in the Raft map.
	id uint64
}

// NewObserver creates a new observer that can be registered to make
// observations on a Raft instance. Observations will be sent on the given
// channel if they satisfy the given filter.
//
// If blocking is true, the observer will block when it can't send on the
// channel, otherwise it may discard events and count them as dropped.
func NewObserver(channel chan Observation, blocking bool, filter FilterFn) *Observer {
	return &Observer{
		channel:  channel,
		blocking: blocking,
		filter:   filter,
		id:       nextObserverID.Add(1),
	}
}

// GetNumObserved returns the number of observations.
func (or *Observer) GetNumObserved() uint64 {
	return or.numObserved.Load()
}

// GetNumDropped returns the number of dropped observations due to blocking.
func (or *Observer) GetNumDropped() uint64 {
	return or.numDropped.Load()
}

// RegisterObserver registers a new observer.
func (r *Raft) RegisterObserver(or *Observer) {
	r.observersLock.Lock()
	defer r.observersLock.Unlock()
	r.observers[or.id] = or
}

// DeregisterObserver deregisters an observer.
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
