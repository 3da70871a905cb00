package suggest

import (
	"slices"
	"testing"
)

func TestClosest(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    string
		in   []string
		n    int
		want []string
	}{
		{"one letter", "cap.doc.summarise", []string{"cap.doc.summarize", "cap.doc.sign"}, 3, []string{"cap.doc.summarize"}},
		{"nearest first", "abcd", []string{"axyd", "abcx", "abxd"}, 3, []string{"abcx", "abxd", "axyd"}},
		{"none near", "cap.x", []string{"cap.doc.summarize"}, 3, nil},
		{"equal is no suggestion", "a", []string{"a"}, 3, nil},
		{"at most n", "ab", []string{"aa", "bb", "ac"}, 2, []string{"aa", "bb"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Closest(tc.s, tc.in, tc.n); !slices.Equal(got, tc.want) {
				t.Errorf("Closest(%q) = %v, want %v", tc.s, got, tc.want)
			}
		})
	}
	if d := Distance("kitten", "sitting"); d != 3 {
		t.Errorf("Distance = %d", d)
	}
}
