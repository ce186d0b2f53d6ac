package raft_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// snippetImports are the packages README snippets may use, by the name they
// are used with; a snippet that is not a whole program is given the imports
// whose names it uses.
var snippetImports = map[string]string{
	"raft":       `"github.com/seed48a2b68f/raft"`,
	"raftboltdb": `raftboltdb "github.com/seed48a2b68f/raft/raftbolt"`,
	"tls":        `"crypto/tls"`,
	"x509":       `"crypto/x509"`,
	"errors":     `"errors"`,
	"filepath":   `"path/filepath"`,
	"fmt":        `"fmt"`,
	"io":         `"io"`,
	"log":        `"log"`,
	"os":         `"os"`,
	"time":       `"time"`,
}

// readmeGoBlocks returns the ```go blocks of a Markdown text.
func readmeGoBlocks(md string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(md, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```go":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// snippetProgram makes a Go file of a snippet: a whole program as it is,
// declarations wrapped in package main with the imports they use and an
// empty main.
func snippetProgram(code string) (src string, whole bool) {
	if strings.HasPrefix(code, "package main") {
		return code, true
	}
	var imports []string
	for name, path := range snippetImports {
		if regexp.MustCompile(`\b` + name + `\.`).MatchString(code) {
			imports = append(imports, path)
		}
	}
	sort.Strings(imports)
	return "package main\n\nimport (\n\t" + strings.Join(imports, "\n\t") + "\n)\n\n" + code + "\nfunc main() {}\n", false
}

// Every Go snippet in the README compiles as written; whole programs also
// run and succeed. (The README's first snippet once called Apply before the
// node led, and ignored BootstrapCluster's error.)
func TestREADMESnippetsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs with the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	md, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeGoBlocks(string(md))
	if len(blocks) < 3 {
		t.Fatalf("found %d Go snippets in README.md, want at least 3", len(blocks))
	}
	repo, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile("go.sum")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for i, code := range blocks {
		t.Run(fmt.Sprintf("snippet%d", i+1), func(t *testing.T) {
			dir := t.TempDir()
			src, whole := snippetProgram(code)
			mod := fmt.Sprintf("module snippet\n\ngo 1.25\n\nrequire github.com/seed48a2b68f/raft v0.0.0\n\nreplace github.com/seed48a2b68f/raft => %s\n", repo)
			for name, data := range map[string][]byte{"go.mod": []byte(mod), "go.sum": sum, "main.go": []byte(src)} {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"build", "-o", filepath.Join(dir, "snippet"), "."}
			if whole {
				args = []string{"run", "."}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, goCmd, args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("go %s: %v\n%s\n--- the program:\n%s", args[0], err, out.String(), src)
			}
			if whole {
				ran++
			}
		})
	}
	if ran == 0 {
		t.Fatal("no snippet is a whole program that runs")
	}
}
