package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMEBenchBlocks: docs/PERFORMANCE.md keeps a generated block
// for the run and for every area, inside its "Performance" section, each in the
// shape `make bench-readme` writes, so that regenerating replaces tables
// and never prose. It fails if a marker vanishes.
func TestREADMEBenchBlocks(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "PERFORMANCE.md"))
	if err != nil {
		t.Fatal(err)
	}
	spans, err := blocks(string(doc))
	if err != nil {
		t.Fatalf("docs/PERFORMANCE.md: %v", err)
	}
	lines := strings.Split(string(doc), "\n")
	current := map[string]string{}
	for _, s := range spans {
		current[s.id] = strings.Trim(strings.Join(lines[s.from:s.to], "\n"), "\n")
	}
	want := []string{"run"}
	for _, a := range areas {
		want = append(want, a.id)
	}
	for _, id := range want {
		body, ok := current[id]
		if !ok {
			t.Errorf("docs/PERFORMANCE.md has no generated block %q (%s%s --> … %s in %q)", id, beginMarker, id, endMarker, section)
			continue
		}
		if id != "run" && !strings.Contains(body, "| anchor (same run) |") {
			t.Errorf("docs/PERFORMANCE.md block %q holds no generated table:\n%s", id, body)
		}
	}
	if len(current) != len(want) {
		t.Errorf("docs/PERFORMANCE.md has %d generated blocks, want %d (%v)", len(current), len(want), want)
	}
	// Regenerating with the README's own tables changes nothing: the
	// blocks are framed as splice writes them.
	if again, err := splice(string(doc), current); err != nil || again != string(doc) {
		t.Errorf("splicing the README's own blocks back: err %v, changed %v", err, again != string(doc))
	}
}
