package main

import (
	"strings"
	"testing"
)

func TestChunk(t *testing.T) {
	for _, tc := range []struct {
		name   string
		text   string
		tokens int
		want   []string
	}{
		{"empty", "  \n ", 3, []string{}},
		{"one short", "a b", 3, []string{"a b"}},
		{"exact", "a b c d e f", 3, []string{"a b c", "d e f"}},
		{"rest", "a  b\nc d", 3, []string{"a b c", "d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Chunk(tc.text, tc.tokens)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("Chunk = %q, want %q", got, tc.want)
			}
		})
	}
	if n := len(Chunk(strings.Repeat("w ", 1200), 0)); n != 3 {
		t.Fatalf("1,200 words in default chunks: %d chunks, want 3", n)
	}
}
