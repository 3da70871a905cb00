package policy

import "testing"

// ParseUnchecked compiles doc (default Limits) without the load-time cost
// check, to test the evaluation-time bound on what the check refuses.
func ParseUnchecked(tb testing.TB, doc string) *Set {
	tb.Helper()
	s, err := parse("policy.json", []byte(doc), Limits{}, false)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}
