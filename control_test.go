package raft

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// notified reports whether q's notification is raised, and lowers it.
func notified(q *controlQueue) bool {
	select {
	case <-q.notify:
		return true
	default:
		return false
	}
}

func TestControlQueueSignalsBeforeItemsOnePerNotification(t *testing.T) {
	q := newControlQueue()
	a, b := &verifyFuture{}, &configurationsFuture{}
	if !q.push(a) || !q.push(b) {
		t.Fatal("push refused on an open queue")
	}
	q.signal(sigObservedTerm)
	q.signal(sigHeartbeatShortened)
	q.signal(sigObservedTerm) // raised twice before being taken: seen once
	want := []struct {
		item any
		sig  controlSignal
	}{{nil, sigObservedTerm}, {nil, sigHeartbeatShortened}, {a, 0}, {b, 0}}
	for i, w := range want {
		if !notified(q) {
			t.Fatalf("step %d: notification not raised while inputs wait", i)
		}
		item, sig, ok := q.next()
		if !ok || item != w.item || sig != w.sig {
			t.Fatalf("step %d: next = %v, %v, %v; want %v, %v", i, item, sig, ok, w.item, w.sig)
		}
	}
	if notified(q) {
		t.Fatal("notification raised with nothing left")
	}
	if item, sig, ok := q.next(); ok {
		t.Fatalf("next on an empty queue = %v, %v", item, sig)
	}
}

func TestControlQueueWithdrawAndPending(t *testing.T) {
	q := newControlQueue()
	isTransfer := func(it any) bool { _, ok := it.(*leadershipTransferFuture); return ok }
	t1, t2 := &leadershipTransferFuture{}, &leadershipTransferFuture{}
	if err := q.pushUnlessPending(t1, isTransfer); err != nil {
		t.Fatalf("first transfer: %v", err)
	}
	if err := q.pushUnlessPending(t2, isTransfer); !errors.Is(err, ErrEnqueueTimeout) {
		t.Fatalf("second transfer while one waits = %v, want ErrEnqueueTimeout", err)
	}
	v := &verifyFuture{}
	q.push(v)
	if item, _, _ := q.next(); item != t1 {
		t.Fatalf("next = %v, want the first transfer", item)
	}
	if err := q.pushUnlessPending(t2, isTransfer); err != nil {
		t.Fatalf("transfer after the first was taken: %v", err)
	}
	if !q.withdraw(v) {
		t.Fatal("withdraw of a waiting item failed")
	}
	if q.withdraw(v) || q.withdraw(t1) {
		t.Fatal("withdraw of an item no longer queued succeeded")
	}
	if item, _, _ := q.next(); item != t2 {
		t.Fatalf("next = %v, want the second transfer", item)
	}
	if _, _, ok := q.next(); ok {
		t.Fatal("withdrawn item still delivered")
	}
}

func TestControlQueueCloseAnswersWhatIsLeft(t *testing.T) {
	q := newControlQueue()
	f := &verifyFuture{}
	f.init()
	respCh := make(chan RPCResponse, 1)
	q.push(f)
	q.push(RPC{Command: &AppendEntriesRequest{}, RespChan: respCh})
	q.signal(sigObservedTerm)
	left := q.close()
	if len(left) != 2 {
		t.Fatalf("close returned %d items, want 2", len(left))
	}
	for _, item := range left {
		answerShutdown(item)
	}
	if err := f.Error(); !errors.Is(err, ErrRaftShutdown) {
		t.Fatalf("queued future = %v, want ErrRaftShutdown", err)
	}
	if resp := <-respCh; !errors.Is(resp.Error, ErrRaftShutdown) {
		t.Fatalf("queued RPC answered %v, want ErrRaftShutdown", resp.Error)
	}
	if q.push(&verifyFuture{}) {
		t.Fatal("push accepted after close")
	}
	if err := q.pushUnlessPending(&leadershipTransferFuture{}, func(any) bool { return false }); !errors.Is(err, ErrRaftShutdown) {
		t.Fatalf("pushUnlessPending after close = %v", err)
	}
	q.signal(sigHeartbeatShortened)
	if _, _, ok := q.next(); ok {
		t.Fatal("input delivered after close")
	}
}

// A Restore that the main loop does not take within its timeout fails with
// ErrEnqueueTimeout and leaves nothing behind for the loop to run later.
func TestRestoreEnqueueTimeoutWithdrawsTheRequest(t *testing.T) {
	r, _ := newStoppedRaft(t, 3) // no main loop takes requests
	meta := &SnapshotMeta{Version: SnapshotVersionMax, Index: 10, Term: 1}
	err := r.Restore(meta, bytes.NewReader(nil), 10*time.Millisecond)
	if !errors.Is(err, ErrEnqueueTimeout) {
		t.Fatalf("Restore = %v, want ErrEnqueueTimeout", err)
	}
	if item, sig, ok := r.ctl.next(); ok {
		t.Fatalf("the timed-out restore is still queued: %T %v", item, sig)
	}
}

// Only one LeadershipTransfer waits for the main loop at a time; another
// fails at once with ErrEnqueueTimeout (hashicorp/raft's one-slot channel).
func TestLeadershipTransferOneWaiting(t *testing.T) {
	r, _ := newStoppedRaft(t, 3)
	first := r.LeadershipTransfer()
	if err := r.LeadershipTransfer().Error(); !errors.Is(err, ErrEnqueueTimeout) {
		t.Fatalf("second transfer = %v, want ErrEnqueueTimeout", err)
	}
	item, _, ok := r.ctl.next()
	if !ok || item != first {
		t.Fatalf("queued = %T, want the first transfer", item)
	}
}
