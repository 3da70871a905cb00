package main

import (
	"fmt"
	"strings"
)

// The README's generated blocks sit between these markers, each on a line
// of its own: "<!-- bench:begin dispatch -->" … "<!-- bench:end -->". The
// id names what the block holds (an area's table, or "run"); the prose
// around the blocks is written by hand.
const (
	beginMarker = "<!-- bench:begin "
	endMarker   = "<!-- bench:end -->"
	section     = "Performance" // the heading (any level) of the generated section
)

// A span is one generated block of a document: its id and the lines it
// covers, markers excluded ([from, to) of the document's lines).
type span struct {
	id       string
	from, to int
}

// headingText returns the text of a Markdown ATX heading line ("# X",
// "## X"), and whether line is one.
func headingText(line string) (string, bool) {
	t := strings.TrimLeft(line, "#")
	if len(t) == len(line) || len(line)-len(t) > 6 || !strings.HasPrefix(t, " ") {
		return "", false
	}
	return strings.TrimSpace(t), true
}

// blocks finds the generated blocks of doc. Every block must be closed,
// not nested, carry an id, appear once, and lie inside the
// "Performance" section (docs/PERFORMANCE.md is one): the tables there
// are the only generated text.
func blocks(doc string) ([]span, error) {
	lines := strings.Split(doc, "\n")
	var out []span
	seen := map[string]bool{}
	inPerf, open := false, -1
	var id string
	for i, line := range lines {
		t := strings.TrimSpace(line)
		heading, isHeading := headingText(line)
		if isHeading {
			inPerf = heading == section
		}
		switch {
		case strings.HasPrefix(t, beginMarker) && strings.HasSuffix(t, "-->"):
			if open >= 0 {
				return nil, fmt.Errorf("line %d: block %q begins inside block %q", i+1, t, id)
			}
			id = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(t, beginMarker), "-->"))
			if id == "" {
				return nil, fmt.Errorf("line %d: a bench:begin marker without an id", i+1)
			}
			if !inPerf {
				return nil, fmt.Errorf("line %d: block %q is outside %q", i+1, id, section)
			}
			if seen[id] {
				return nil, fmt.Errorf("line %d: block %q appears twice", i+1, id)
			}
			seen[id], open = true, i
		case t == endMarker:
			if open < 0 {
				return nil, fmt.Errorf("line %d: bench:end without bench:begin", i+1)
			}
			out = append(out, span{id, open + 1, i})
			open = -1
		case isHeading && open >= 0:
			return nil, fmt.Errorf("line %d: block %q is not closed before the next section", open+1, id)
		}
	}
	if open >= 0 {
		return nil, fmt.Errorf("line %d: block %q is not closed", open+1, id)
	}
	return out, nil
}

// splice replaces the content of every generated block of doc with
// gen[id], framed by blank lines. Every block needs generated text and
// every generated text needs its block, so that neither a stale table nor
// a new area goes unnoticed.
func splice(doc string, gen map[string]string) (string, error) {
	spans, err := blocks(doc)
	if err != nil {
		return "", err
	}
	have := map[string]bool{}
	for _, s := range spans {
		if _, ok := gen[s.id]; !ok {
			return "", fmt.Errorf("README block %q: no such generated block", s.id)
		}
		have[s.id] = true
	}
	for id := range gen {
		if !have[id] {
			return "", fmt.Errorf("README has no block %q (%s%s -->)", id, beginMarker, id)
		}
	}
	lines := strings.Split(doc, "\n")
	var out []string
	prev := 0
	for _, s := range spans {
		out = append(out, lines[prev:s.from]...)
		out = append(out, "")
		out = append(out, strings.Split(strings.TrimRight(gen[s.id], "\n"), "\n")...)
		out = append(out, "")
		prev = s.to
	}
	out = append(out, lines[prev:]...)
	return strings.Join(out, "\n"), nil
}
