package interop

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// logCall is one logger call found in a package's source: its level and
// the literal key names after the message.
type logCall struct {
	level string
	keys  string // comma-joined, in order
	at    string
}

// logCalls reads every logger call with a literal message in the non-test
// Go files of dir: messages to the calls that log them. A message chosen
// from literals (a table, a variable) is found by literals instead.
func logCalls(t *testing.T, dir string) (calls map[string][]logCall, literals map[string]bool) {
	t.Helper()
	calls, literals = map[string][]logCall{}, map[string]bool{}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasSuffix(f, "testing.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					literals[s] = true
				}
			}
			c, ok := n.(*ast.CallExpr)
			if !ok || len(c.Args) == 0 {
				return true
			}
			sel, ok := c.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch sel.Sel.Name {
			case "Trace", "Debug", "Info", "Warn", "Error":
			default:
				return true
			}
			if x, ok := sel.X.(*ast.SelectorExpr); !ok || !strings.Contains(strings.ToLower(x.Sel.Name), "logger") {
				if id, ok := sel.X.(*ast.Ident); !ok || !strings.Contains(strings.ToLower(id.Name), "logger") {
					return true
				}
			}
			lit, ok := c.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			msg, _ := strconv.Unquote(lit.Value)
			var keys []string
			for i := 1; i < len(c.Args); i += 2 {
				if k, ok := c.Args[i].(*ast.BasicLit); ok && k.Kind == token.STRING {
					s, _ := strconv.Unquote(k.Value)
					keys = append(keys, s)
				} else {
					keys = append(keys, "?")
				}
			}
			pos := fset.Position(c.Pos())
			calls[msg] = append(calls[msg], logCall{level: strings.ToUpper(sel.Sel.Name), keys: strings.Join(keys, ","),
				at: fmt.Sprintf("%s:%d", filepath.Base(pos.Filename), pos.Line)})
			return true
		})
	}
	return calls, literals
}

// hashicorpNotLogged are hashicorp/raft v1.7.3's messages this library does
// not log, each with the reason: the event does not exist here.
var hashicorpNotLogged = map[string]string{
	"could not get configuration for stats":                         "Stats reads a published copy of the configuration; it cannot fail",
	"failed to append entry":                                        "entries are read back from the log tail in memory, not the store, after storing",
	"failed to decode incoming command":                             "the transport logs \"closing inbound connection\" with the decode error",
	"failed to flush response":                                      "the transport logs \"closing inbound connection: failed to write a response\"",
	"failed to get last log index":                                  "the last index is kept in memory",
	"failed to get last vote candidate":                             "vote decisions log \"cannot decide vote\" with the store's error",
	"failed to get last vote term":                                  "vote decisions log \"cannot decide vote\" with the store's error",
	"failed to get log":                                             "replication reports \"failed to prepare entries\" with the index; startup fails NewRaft with the error",
	"failed to remove old logs":                                     "no MonotonicLogStore special case: compaction is the same for every store",
	"removing all old logs from log store":                          "no MonotonicLogStore special case: compaction is the same for every store",
	"failed to reset logs":                                          "an installed snapshot keeps or discards the log through compaction (\"failed to clear log\")",
	"new leader elected, stepping down":                             "VerifyLeader rounds never step a leader down; a newer term does (\"a follower has a newer term, stepping down\")",
	"rejecting pre-vote request since node is not in configuration": "a candidate outside the configuration is judged by its log (see README, Differences)",
	"rejecting vote request since node is not in configuration":     "a candidate outside the configuration is judged by its log (see README, Differences)",
	"skipping application of old log":                               "commits below the applied index are never dispatched",
	"failed to create state file":                                   "FileSnapshotStore logs \"failed to create state file\" through a helper (with path)",
	"failed to write metadata":                                      "FileSnapshotStore logs \"failed to write metadata\" through a helper (with path)",
	"failed to move snapshot into place":                            "FileSnapshotStore logs \"failed to move snapshot into place\" through a helper (with path)",
	"failed to open snapshot parent directory":                      "the parent directory is synced through one helper that logs \"failed syncing parent directory\"",
	"failed to scan snapshot directory":                             "List logs \"failed to get snapshots\" with the error",
	"state file seek failed":                                        "the state file is opened and read, not seeked",
}

// keyDifferences are events logged here with keys other than hashicorp's,
// and why.
var keyDifferences = map[string]string{
	"failed to contact": "hashicorp logs it at DEBUG and WARN from two places; here WARN only, when a quorum is missing",
}

// Every event that both libraries log has hashicorp/raft's message, level
// and key names here; every hashicorp message that is not logged here says
// why (hashicorpNotLogged). Events this library logs beyond hashicorp's are
// free.
func TestLogEventsMatchHashicorp(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-json", "github.com/hashicorp/raft").Output()
	if err != nil {
		t.Skipf("go list of hashicorp/raft: %v", err)
	}
	var mod struct{ Dir, Version string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Skipf("hashicorp/raft's source is not downloaded (%v)", err)
	}
	theirs, _ := logCalls(t, mod.Dir)
	ours, ourLiterals := logCalls(t, "..")
	if len(theirs) < 100 || len(ours) < 80 {
		t.Fatalf("found %d hashicorp and %d of our log messages: the scan is broken", len(theirs), len(ours))
	}
	for _, msg := range slices.Sorted(func(yield func(string) bool) {
		for m := range theirs {
			if !yield(m) {
				return
			}
		}
	}) {
		hc := theirs[msg]
		oc, logged := ours[msg]
		if !logged {
			if _, why := hashicorpNotLogged[msg]; !why && !ourLiterals[msg] {
				t.Errorf("hashicorp logs %q (%s %s at %s); this library does not, and hashicorpNotLogged does not say why",
					msg, hc[0].level, hc[0].keys, hc[0].at)
			}
			continue
		}
		if _, ok := keyDifferences[msg]; ok {
			continue
		}
		// Every way hashicorp logs the message is one of ours, and ours
		// are all among hashicorp's.
		want := map[string]bool{}
		for _, c := range hc {
			want[c.level+" "+c.keys] = true
		}
		for _, c := range oc {
			if !want[c.level+" "+c.keys] {
				t.Errorf("%q at %s is %s with keys [%s]; hashicorp logs it as %v", msg, c.at, c.level, c.keys, keysOf(want))
			}
		}
	}
	for msg := range hashicorpNotLogged {
		if _, ok := theirs[msg]; !ok {
			t.Errorf("hashicorpNotLogged lists %q, which hashicorp does not log", msg)
		}
	}
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
