package fuzzy

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/anishathalye/porcupine"
	raft "github.com/seed48a2b68f/raft"
)

// op is a client's request to the key-value state machine.
type op struct {
	Kind  string `json:"k"`           // get, put, append, cas (restore in histories)
	Key   string `json:"key"`         //
	Value string `json:"v,omitempty"` // put, append: the value; cas: the new value
	Old   string `json:"o,omitempty"` // cas: the expected value
	ID    string `json:"id"`          // unique per request, to spot double application
}

// result is what the state machine answered.
type result struct {
	Value string // get: the value; cas: the value found
	OK    bool   // cas: whether it swapped
}

// kv is the state machine: a map of strings, plus the order in which it
// applied entries, for the state-machine-safety check.
type kv struct {
	mu       sync.Mutex
	data     map[string]string
	applied  []appliedEntry // since the last restore
	restores int
}

// appliedEntry is one command the FSM applied.
type appliedEntry struct {
	Index uint64
	Term  uint64
	Data  string
}

func newKV() *kv {
	return &kv{data: make(map[string]string)}
}

// Apply runs a command.
func (k *kv) Apply(l *raft.Log) interface{} {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.applied = append(k.applied, appliedEntry{Index: l.Index, Term: l.Term, Data: string(l.Data)})
	var o op
	if err := json.Unmarshal(l.Data, &o); err != nil {
		return fmt.Errorf("fuzzy: bad command at %d: %w", l.Index, err)
	}
	return k.step(o)
}

func (k *kv) step(o op) result {
	cur := k.data[o.Key]
	switch o.Kind {
	case "get":
		return result{Value: cur}
	case "put":
		k.data[o.Key] = o.Value
	case "append":
		k.data[o.Key] = cur + o.Value
	case "cas":
		if cur == o.Old {
			k.data[o.Key] = o.Value
			return result{Value: cur, OK: true}
		}
		return result{Value: cur}
	}
	return result{}
}

// read answers a get from the local state, without the log.
func (k *kv) read(key string) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.data[key]
}

// kvState is what a snapshot holds.
type kvState struct {
	Data map[string]string
}

// Snapshot captures the map.
func (k *kv) Snapshot() (raft.FSMSnapshot, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := kvState{Data: make(map[string]string, len(k.data))}
	for key, v := range k.data {
		s.Data[key] = v
	}
	return &kvSnapshot{s}, nil
}

// Restore replaces the map with a snapshot's.
func (k *kv) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s kvState
	if err := json.NewDecoder(rc).Decode(&s); err != nil {
		return fmt.Errorf("fuzzy: decode snapshot: %w", err)
	}
	if s.Data == nil {
		s.Data = map[string]string{}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.data = s.Data
	k.restores++
	return nil
}

func (k *kv) appliedEntries() []appliedEntry {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]appliedEntry(nil), k.applied...)
}

// dump is the state as JSON (map keys sorted), for comparisons.
func (k *kv) dump() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	b, _ := json.Marshal(k.data)
	return string(b)
}

func (k *kv) restoreCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.restores
}

type kvSnapshot struct{ s kvState }

func (s *kvSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(&s.s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fuzzy: encode snapshot: %w", err)
	}
	return sink.Close()
}

func (s *kvSnapshot) Release() {}

// The porcupine model: one register per key (histories are partitioned
// by key). An output whose outcome is unknown (the write may or may not
// have happened) is accepted with any value.

type kvOutput struct {
	result
	Unknown bool
}

var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, h := range history {
			k := h.Input.(op).Key
			byKey[k] = append(byKey[k], h)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return "" },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		cur := state.(string)
		in := input.(op)
		out := output.(kvOutput)
		switch in.Kind {
		case "get":
			return out.Unknown || out.Value == cur, cur
		case "put", "restore":
			return true, in.Value
		case "append":
			return true, cur + in.Value
		case "cas":
			if out.Unknown {
				if cur == in.Old {
					return true, in.Value
				}
				return true, cur
			}
			if cur == in.Old {
				return out.OK, in.Value
			}
			return !out.OK && out.Value == cur, cur
		}
		return false, cur
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(op)
		out := output.(kvOutput)
		res := fmt.Sprintf("%q", out.Value)
		if out.Unknown {
			res = "?"
		}
		switch in.Kind {
		case "get":
			return fmt.Sprintf("get(%s) -> %s", in.Key, res)
		case "put":
			return fmt.Sprintf("put(%s, %q)", in.Key, in.Value)
		case "restore":
			return fmt.Sprintf("restore(%s = %q) %s", in.Key, in.Value, map[bool]string{true: "?", false: "ok"}[out.Unknown])
		case "append":
			return fmt.Sprintf("append(%s, %q)", in.Key, in.Value)
		default:
			return fmt.Sprintf("cas(%s, %q, %q) -> %v %s", in.Key, in.Old, in.Value, out.OK, res)
		}
	},
	DescribeState: func(state interface{}) string {
		s := state.(string)
		if len(s) > 40 {
			s = "…" + s[len(s)-40:]
		}
		return fmt.Sprintf("%q", s)
	},
}

// describeOps is a short summary of a history for logs.
func describeOps(ops []porcupine.Operation) string {
	kinds := map[string]int{}
	for _, o := range ops {
		kinds[o.Input.(op).Kind]++
	}
	var parts []string
	for _, k := range []string{"get", "put", "append", "cas", "restore"} {
		parts = append(parts, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	return strings.Join(parts, ", ")
}

// summary describes what the FSM applied since its last restore, for a
// violation's report.
func (k *kv) summary() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.applied) == 0 {
		return fmt.Sprintf("%d restores, nothing applied since", k.restores)
	}
	return fmt.Sprintf("%d restores, applied %d entries since (%d-%d)", k.restores, len(k.applied),
		k.applied[0].Index, k.applied[len(k.applied)-1].Index)
}

// stateDiff lists the keys whose values differ between two dumps.
func stateDiff(a, b string) string {
	var ma, mb map[string]string
	_ = json.Unmarshal([]byte(a), &ma)
	_ = json.Unmarshal([]byte(b), &mb)
	var out []string
	for key, v := range ma {
		if mb[key] != v {
			out = append(out, fmt.Sprintf("%s: %q vs %q", key, v, mb[key]))
		}
	}
	for key, v := range mb {
		if _, ok := ma[key]; !ok {
			out = append(out, fmt.Sprintf("%s: missing vs %q", key, v))
		}
	}
	sort.Strings(out)
	if len(out) > 6 {
		out = append(out[:6], fmt.Sprintf("... %d more", len(out)-6))
	}
	return strings.Join(out, "; ")
}
