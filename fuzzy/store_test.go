package fuzzy

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"

	raft "github.com/seed48a2b68f/raft"
)

// A crash keeps the writes that returned and loses the one still waiting
// on the slow disk; the crashed store refuses further writes.
func TestDiskStoreCrashKeepsCompletedWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newDiskStore(raft.NewInmemStore())
		if err := d.StoreLogs([]*raft.Log{{Index: 1, Term: 1}, {Index: 2, Term: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := d.SetUint64([]byte("CurrentTerm"), 4); err != nil {
			t.Fatal(err)
		}
		if err := d.Set([]byte("LastVoteCand"), []byte("n2")); err != nil {
			t.Fatal(err)
		}
		d.setLatency(10 * time.Millisecond)
		inflight := make(chan error, 1)
		go func() { inflight <- d.StoreLogs([]*raft.Log{{Index: 3, Term: 1}}) }()
		time.Sleep(5 * time.Millisecond) // the write waits on the disk
		saved, err := d.crash()
		if err != nil {
			t.Fatal(err)
		}
		if err := <-inflight; !errors.Is(err, errCrashed) {
			t.Fatalf("in-flight write after the crash = %v", err)
		}
		if last, _ := saved.LastIndex(); last != 2 {
			t.Fatalf("the restarted disk ends at %d; want 2", last)
		}
		if v, _ := saved.GetUint64([]byte("CurrentTerm")); v != 4 {
			t.Fatalf("CurrentTerm = %d", v)
		}
		if v, _ := saved.Get([]byte("LastVoteCand")); string(v) != "n2" {
			t.Fatalf("LastVoteCand = %q", v)
		}
		if err := d.Set([]byte("x"), []byte("y")); !errors.Is(err, errCrashed) {
			t.Fatalf("write to a crashed disk = %v", err)
		}
	})
}

// The network cuts links one way, loses and duplicates at the rates set,
// and reports two leaders of one term.
func TestNetworkFaults(t *testing.T) {
	n := newNetwork(1)
	n.setCut("a", "b", true)
	if d := n.decide("a", "b"); !d.lost {
		t.Fatal("a request over a cut link was delivered")
	}
	if d := n.decide("b", "a"); d.lost || !d.lostReply {
		t.Fatalf("b -> a with a -> b cut: %+v; want the reply lost", d)
	}
	n.clearCuts()
	n.setFaults(faults{drop: 0.5, dup: 0.5})
	for i := 0; i < 1000; i++ {
		n.decide("a", "b")
	}
	if n.stats.dropped < 400 || n.stats.dropped > 600 || n.stats.duplicated < 200 {
		t.Fatalf("stats %+v after 1000 messages at drop 0.5, dup 0.5", n.stats)
	}
	n.sawAppend(3, "a")
	n.sawAppend(3, "a")
	if len(n.violations()) != 0 {
		t.Fatal("one leader's heartbeats reported as two leaders")
	}
	n.sawAppend(3, "b")
	if len(n.violations()) != 1 {
		t.Fatal("two leaders of term 3 not reported")
	}
}
