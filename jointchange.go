package raft

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// ChangeConfiguration: the leader's side of joint consensus. The decisions
// are in joint.go; this file holds the effects on the leader loop.
//
// A change goes through three steps, each on the leader loop:
//  1. appendJointChange computes the joint configuration for the request.
//     If any member of it has not shown this leader that it understands
//     joint configurations, the leader asks those members once (probeCaps,
//     off the loop, a heartbeat each) and takes the request again when the
//     answers are in; a member still unproven refuses the change with
//     ErrJointConsensusUnsupported, and nothing is written.
//  2. The joint entry is written and replicated; from then on every
//     decision needs a majority of each half.
//  3. Once the joint entry commits (leaderCommit), appendFinalConfiguration
//     writes the final configuration; the caller's future is that entry's.
//     A new leader that finds a committed joint configuration writes the
//     final one itself, after the first commit of its term.
//
// The configuration stays unstable (configurationChangeChIfStable) from the
// moment a request is taken until its final configuration commits, so only
// one change is ever in flight.

// jointProbeDone carries the answers of a capability probe back to the
// leader loop.
type jointProbeDone struct {
	f    *configurationChangeFuture
	caps map[ServerID]uint64
}

// respond answers the change's caller (used when the loop has ended before
// it took the probe's answers).
func (p *jointProbeDone) respond(err error) { p.f.respond(err) }

// appendJointChange handles a ChangeConfiguration request on the leader
// loop.
func (r *Raft) appendJointChange(f *configurationChangeFuture, probed map[ServerID]uint64) {
	ls := r.leaderState
	c := r.configurations
	if f.req.prevIndex > 0 && f.req.prevIndex != c.latestIndex {
		f.respond(fmt.Errorf("configuration changed since %v (latest is %v)", f.req.prevIndex, c.latestIndex))
		return
	}
	joint, isJointChange, err := jointConfiguration(c.latest, *f.req.next)
	if err != nil {
		f.respond(fmt.Errorf("change configuration: %w", err))
		return
	}
	if !isJointChange {
		// The voters stay the same: one ordinary entry, as hashicorp/raft
		// itself would write, needs no capability.
		r.logger.Info("changing configuration without a joint phase (the voters stay)",
			"servers", fmt.Sprintf("%+v", joint.Servers))
		r.writeConfiguration(f, joint)
		return
	}

	unknown, refusing := r.jointCapabilities(joint, probed)
	if len(refusing) > 0 || (len(unknown) > 0 && probed != nil) {
		refusing = append(refusing, unknown...)
		slices.Sort(refusing)
		f.respond(fmt.Errorf("%w: not shown to understand joint configurations: %v",
			ErrJointConsensusUnsupported, refusing))
		return
	}
	if len(unknown) > 0 {
		// Ask once; the request waits, holding the configuration unstable.
		ls.jointProbe = f
		targets := make([]Server, 0, len(unknown))
		for _, s := range joint.Servers {
			if slices.Contains(unknown, s.ID) {
				targets = append(targets, s)
			}
		}
		header, term := r.getRPCHeader(), ls.term
		r.goFunc(func() {
			done := &jointProbeDone{f: f, caps: r.probeCaps(targets, header, term)}
			if !r.ctl.push(done) {
				f.respond(ErrRaftShutdown)
			}
		})
		return
	}

	r.logger.Info("entering joint configuration", "servers", fmt.Sprintf("%+v", joint.Servers),
		"final", fmt.Sprintf("%+v", finalConfiguration(joint).Servers))
	entry := &configurationChangeFuture{}
	entry.init()
	ls.jointChange = f
	r.writeConfiguration(entry, joint)
}

// jointProbeAnswered takes a probe's answers back on the leader loop.
func (r *Raft) jointProbeAnswered(p *jointProbeDone) {
	ls := r.leaderState
	if ls == nil || ls.jointProbe != p.f {
		p.f.respond(ErrLeadershipLost)
		return
	}
	ls.jointProbe = nil
	r.appendJointChange(p.f, p.caps)
}

// jointCapabilities sorts the members of joint other than this node into
// those not heard from (neither by replication nor in probed) and those
// that answered without capJointConsensus.
func (r *Raft) jointCapabilities(joint Configuration, probed map[ServerID]uint64) (unknown, refusing []ServerID) {
	ls := r.leaderState
	for _, s := range joint.Servers {
		if s.ID == r.localID {
			continue
		}
		var caps uint64
		if repl, ok := ls.replState[s.ID]; ok {
			caps = repl.peerCaps.Load()
		}
		if caps&capAnswered == 0 {
			caps = probed[s.ID]
		}
		switch {
		case caps&capAnswered == 0:
			unknown = append(unknown, s.ID)
		case caps&capJointConsensus == 0:
			refusing = append(refusing, s.ID)
		}
	}
	return unknown, refusing
}

// probeCaps sends each target a heartbeat advertising this leader's
// capabilities and returns what each answered (with capAnswered), or
// nothing for a target that did not answer. It runs off the leader loop. A
// heartbeat is what a server added to the configuration would get first
// anyway; a hashicorp/raft node answers it without capabilities.
func (r *Raft) probeCaps(targets []Server, header RPCHeader, term uint64) map[ServerID]uint64 {
	var mu sync.Mutex
	caps := make(map[ServerID]uint64, len(targets))
	var wg sync.WaitGroup
	for _, s := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := AppendEntriesRequest{RPCHeader: header, Term: term, Leader: header.Addr, capabilities: ourCapabilities}
			var resp AppendEntriesResponse
			if err := r.trans.AppendEntries(s.ID, s.Address, &req, &resp); err != nil {
				r.logger.Warn("failed to learn the capabilities of a server for a joint configuration change",
					"server-id", s.ID, "address", s.Address, "error", err)
				return
			}
			if resp.Term > term {
				r.observeTerm(resp.Term)
			}
			mu.Lock()
			caps[s.ID] = resp.capabilities | capAnswered
			mu.Unlock()
		}()
	}
	wg.Wait()
	return caps
}

// writeConfiguration appends conf as the latest configuration, with f as
// its entry's future, and starts or stops replication to match it.
func (r *Raft) writeConfiguration(f *configurationChangeFuture, conf Configuration) {
	if r.protocolVersion < 2 {
		f.log = Log{Type: LogRemovePeerDeprecated, Data: encodePeers(conf, r.trans)}
	} else {
		f.log = Log{Type: LogConfiguration, Data: EncodeConfiguration(conf)}
	}
	lastIdx, _ := r.getLastLog()
	c := r.configurations
	c.latest, c.latestIndex = conf, lastIdx+1
	r.setConfigurations(c)
	// A lease counted on the old configuration's quorums ends here; with
	// the configuration uncommitted the published view is nil (endLease
	// publishes after the configuration is set).
	r.endLease()
	r.leaderState.commitment.setConfiguration(conf)
	if err := r.dispatchLogs([]*logFuture{&f.logFuture}); err != nil {
		return
	}
	// Start replicating to added servers; removed ones keep getting
	// entries until the change commits (startStopReplication).
	r.startStopReplication()
}

// appendFinalConfiguration writes the configuration a committed joint one
// leads to. The caller's future, if this leader took the change, is the
// final entry's.
func (r *Raft) appendFinalConfiguration() {
	ls := r.leaderState
	final := finalConfiguration(r.configurations.latest)
	f := ls.jointChange
	ls.jointChange = nil
	if f == nil {
		f = &configurationChangeFuture{}
		f.init()
	}
	ls.handOver = !hasVote(final, r.localID)
	r.logger.Info("leaving joint configuration", "servers", fmt.Sprintf("%+v", final.Servers))
	r.writeConfiguration(f, final)
}

// handOverLeadership asks the most up-to-date voter of conf to campaign at
// once: a leader that a joint change left out of the configuration steps
// down, and the cluster need not wait an election timeout for the next.
func (r *Raft) handOverLeadership(conf Configuration) {
	target, ok := r.mostUpToDateVoter(conf)
	if !ok {
		return
	}
	r.logger.Info("handing leadership over after leaving the configuration", "id", target.ID, "address", target.Address)
	header := r.getRPCHeader()
	r.goFunc(func() {
		var resp TimeoutNowResponse
		if err := r.trans.TimeoutNow(target.ID, target.Address, &TimeoutNowRequest{RPCHeader: header}, &resp); err != nil {
			r.logger.Debug("hand-over TimeoutNow failed", "id", target.ID, "error", err)
		}
	})
}

// ChangeConfiguration moves the cluster to exactly next: any number of
// servers added, removed, promoted or demoted at once. Leader only.
//
// When the voters change, the leader first writes a joint configuration,
// in which every decision (commit, election, the leader's check that it
// still leads, a read round) needs a majority of the old voters and a
// majority of the new ones, and writes next itself once the joint one
// commits. When the voters stay the same (only nonvoters or addresses
// change) next is written at once as one ordinary entry. The future's
// Index is next's entry, and it resolves once that commits. A leader that
// is not a voter of next hands leadership to the most up-to-date voter and
// steps down once next commits (shutting down if it is not in next at all
// and Config.ShutdownOnRemove is set), as RemoveServer does.
//
// A joint configuration is written only when every member of the current
// and of the next configuration other than the leader has shown that it
// understands one (a node of this library, heard from by this leader; the
// leader asks those it has not heard from). Otherwise nothing is written
// and the future fails with ErrJointConsensusUnsupported: a hashicorp/raft
// node, or a member that does not answer, may be among them. The
// single-server changes (AddVoter, RemoveServer...) work with any node.
//
// One change is in flight at a time: the request waits, as AddVoter's
// does, until the leader has committed an entry of its term and no other
// change is uncommitted, and a change requested while a joint phase runs
// waits for it to end. prevIndex and timeout work as in AddVoter. next
// must be a valid configuration (unique IDs and addresses, at least one
// voter) whose suffrages are Voter, Nonvoter or Staging.
func (r *Raft) ChangeConfiguration(next Configuration, prevIndex uint64, timeout time.Duration) IndexFuture {
	n := next.Clone()
	return r.requestConfigChange(3, configurationChangeRequest{next: &n, prevIndex: prevIndex}, timeout)
}
