package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	b, err := Lines("http://x/doc", "c-1", []Chunk{{Index: 0, Hash: "sha256:aa", Words: 2, Embedding: []float64{0.5}}, {Index: 1, Hash: "sha256:bb"}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	var first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first["source"] != "http://x/doc" || first["correlation_id"] != "c-1" || first["hash"] != "sha256:aa" {
		t.Fatalf("first line %s (%v)", lines[0], err)
	}
}
