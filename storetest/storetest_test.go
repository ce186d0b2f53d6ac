package storetest_test

import (
	"testing"

	"github.com/seed48a2b68f/raft"
	"github.com/seed48a2b68f/raft/storetest"
)

func TestInmemStore(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T, dir string) storetest.Store { return raft.NewInmemStore() },
	})
}

func TestInmemCommitTrackingStore(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T, dir string) storetest.Store { return raft.NewInmemCommitTrackingStore() },
	})
}

// TestLogCache runs the suite on a LogCache in front of an InmemStore, with a
// ring small enough that reads come from both.
func TestLogCache(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T, dir string) storetest.Store {
			inner := raft.NewInmemStore()
			c, err := raft.NewLogCache(8, inner)
			if err != nil {
				t.Fatal(err)
			}
			return struct {
				raft.LogStore
				raft.StableStore
			}{c, inner}
		},
	})
}
