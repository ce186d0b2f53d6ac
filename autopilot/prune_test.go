package autopilot

import (
	"slices"
	"testing"

	"github.com/seed48a2b68f/raft"
)

// The pruning round's rules, case by case.
func TestPruneRound(t *testing.T) {
	voter := eligibility{voter: true, potential: true}
	staleVoter := eligibility{voter: true}
	nonvoter := eligibility{potential: true}
	ids := func(n int, prefix string) []raft.ServerID {
		var out []raft.ServerID
		for i := 0; i < n; i++ {
			out = append(out, raft.ServerID(prefix+string(rune('a'+i))))
		}
		return out
	}
	cases := []struct {
		name      string
		servers   map[string]eligibility
		minQuorum uint
		ask       []raft.ServerID
		want      []raft.ServerID
	}{
		{"one of three voters", map[string]eligibility{"a": voter, "b": voter, "c": voter}, 0,
			ids(1, ""), ids(1, "")},
		{"two of three voters: one", map[string]eligibility{"a": voter, "b": voter, "c": voter}, 0,
			ids(2, ""), ids(1, "")},
		{"MinQuorum holds", map[string]eligibility{"a": voter, "b": voter, "c": voter}, 3,
			ids(1, ""), nil},
		{"a nonvoter below MinQuorum", map[string]eligibility{"a": nonvoter, "b": voter, "c": voter}, 3,
			ids(1, ""), nil},
		{"nonvoters are not voters", map[string]eligibility{"a": nonvoter, "b": nonvoter, "c": voter}, 0,
			ids(2, ""), ids(2, "")},
		{"no potential voter known: no voter removed", map[string]eligibility{"a": staleVoter, "b": staleVoter, "c": staleVoter}, 0,
			ids(1, ""), nil},
		// raft-autopilot would remove all four stale voters of seven here.
		{"stale voters: a majority remains", map[string]eligibility{"a": staleVoter, "b": staleVoter, "c": staleVoter,
			"d": staleVoter, "e": voter, "f": voter, "g": voter}, 0,
			ids(4, ""), ids(3, "")},
		{"unknown ids are skipped", map[string]eligibility{"a": voter, "b": voter, "c": voter}, 0,
			[]raft.ServerID{"zz", "a"}, []raft.ServerID{"a"}},
	}
	for _, tc := range cases {
		servers := map[raft.ServerID]eligibility{}
		for id, e := range tc.servers {
			servers[raft.ServerID(id)] = e
		}
		got := newPruneRound(servers, tc.minQuorum).allow(tc.ask, func(string, ...interface{}) {})
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: allowed %v, want %v", tc.name, got, tc.want)
		}
	}
}
