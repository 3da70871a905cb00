package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shellInfo are the info strings of fenced blocks that are shell: every
// such block of README.md and examples/*/README.md is run as written.
// Illustrations (output, error messages) go in ```text blocks.
var shellInfo = map[string]bool{"sh": true, "bash": true, "shell": true, "console": true, "zsh": true}

// ranElsewhere are READMEs whose blocks another test runs as written (and
// checks further).
var ranElsewhere = map[string]string{
	"examples/authoring/README.md": "TestAuthoringREADME",
}

// shellBlocks returns the shell blocks of a Markdown file, in order.
func shellBlocks(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var cur []string
	fence, in := "", false
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && strings.HasPrefix(trimmed, "```"):
			fence, in = strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), true
			cur = nil
		case in && trimmed == "```":
			in = false
			if shellInfo[fence] {
				blocks = append(blocks, strings.Join(cur, "\n"))
			}
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}

// TestREADMEBlocks runs every shell block of README.md and of each
// examples/*/README.md, in order, as one bash script per file, in a clean
// folder: hall (this package's build) on PATH, HALL_SRC naming this
// checkout, HALL_ADDR a free port, no other HALL_* variable. A block that
// fails fails the test with the script's output.
func TestREADMEBlocks(t *testing.T) {
	files := []string{filepath.Join(repoRoot, "README.md")}
	more, _ := filepath.Glob(filepath.Join(repoRoot, "examples", "*", "README.md"))
	files = append(files, more...)
	for _, path := range files {
		rel, _ := filepath.Rel(repoRoot, path)
		blocks := shellBlocks(t, path)
		if other := ranElsewhere[rel]; other != "" {
			if len(blocks) == 0 {
				t.Errorf("%s has no shell block for %s to run", rel, other)
			}
			continue
		}
		if len(blocks) == 0 {
			continue
		}
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			runBlocks(t, rel, blocks)
		})
	}
}

func runBlocks(t *testing.T, name string, blocks []string, env ...string) {
	dir := t.TempDir()
	tmp := t.TempDir()
	script := "set -euo pipefail\n" + strings.Join(blocks, "\n")
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = testEnv(append([]string{"HALL_SRC=" + repoRoot, "HALL_ADDR=" + freeAddr(t), "TMPDIR=" + tmp}, env...)...)
	newProcessGroup(cmd)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever the blocks left running (a server) goes with the test.
	t.Cleanup(func() { killProcessGroup(cmd) })
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: the shell blocks fail: %v\n--- script\n%s\n--- output\n%s", name, err, script, out.String())
	}
	if strings.Contains(out.String(), "panic:") || strings.Contains(out.String(), "goroutine ") {
		t.Fatalf("%s: a command printed a Go stack trace:\n%s", name, out.String())
	}
	t.Logf("%s output:\n%s", name, out.String())
}

// freeAddr is a 127.0.0.1 address with a port nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
