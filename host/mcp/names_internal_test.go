package mcp

import (
	"slices"
	"testing"
)

// TestAssignNamesRefusesWhatStillCollides: names that still coincide after
// renaming are refused, every one of them, whatever the order of the ids;
// nothing else changes.
func TestAssignNamesRefusesWhatStillCollides(t *testing.T) {
	base := func(c string) string {
		return map[string]string{"cap.a": "x", "cap.b": "x", "cap.c": "y", "cap.d": "z"}[c]
	}
	long := func(c string) string { return map[string]string{"cap.a": "x_long", "cap.b": "y"}[c] }
	for _, order := range [][]string{{"cap.a", "cap.b", "cap.c", "cap.d"}, {"cap.d", "cap.c", "cap.b", "cap.a"}} {
		got := assignNames(order, base, long)
		if got["cap.a"].name != "x_long" || got["cap.a"].renamedFrom != "x" || !slices.Equal(got["cap.a"].collidesWith, []string{"cap.b"}) {
			t.Errorf("cap.a: %+v, want renamed x → x_long because of cap.b", got["cap.a"])
		}
		// cap.b's long name "y" is cap.c's base name: both are refused.
		if got["cap.b"].name != "" || got["cap.c"].name != "" {
			t.Errorf("cap.b %+v, cap.c %+v: want both refused", got["cap.b"], got["cap.c"])
		}
		if !slices.Contains(got["cap.c"].collidesWith, "cap.b") || got["cap.c"].renamedFrom != "y" {
			t.Errorf("cap.c: %+v, want it to name cap.b", got["cap.c"])
		}
		if d := got["cap.d"]; d.name != "z" || d.renamedFrom != "" || d.collidesWith != nil {
			t.Errorf("cap.d: %+v, want z untouched", got["cap.d"])
		}
	}
}
