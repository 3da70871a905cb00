// Package suggest finds the names closest to a misspelt one ("did you
// mean"): for capabilities in a denial, flags of a command, keys of a
// configuration file. One implementation, so that the CLI, the HTTP API
// and the MCP server suggest the same names.
package suggest

import "slices"

// Closest returns at most n of candidates within edit distance 3 of s
// (and not equal to it), nearest first; candidates at the same distance
// keep their order.
func Closest(s string, candidates []string, n int) []string {
	type cand struct {
		s string
		d int
	}
	var cs []cand
	for _, c := range candidates {
		if d := Distance(s, c); d <= 3 && d > 0 {
			cs = append(cs, cand{c, d})
		}
	}
	slices.SortStableFunc(cs, func(a, b cand) int { return a.d - b.d })
	var out []string
	for _, c := range cs {
		if len(out) == n {
			break
		}
		out = append(out, c.s)
	}
	return out
}

// Distance is the Levenshtein distance of a and b, in runes.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
