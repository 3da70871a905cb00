package conformance

import (
	"context"
	"os"
	"strings"
	"testing"
)

// vectorsPath is PyHall's recorded decisions; testdata/ keeps a copy so
// the repository tests itself.
const vectorsPath = "../../testdata/vectors/random.json"

func TestVectors(t *testing.T) {
	f, err := os.Open(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vs, err := ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) < 300 {
		t.Fatalf("expected at least 300 vectors, read %d", len(vs))
	}
	failed := 0
	for i := range vs {
		v := &vs[i]
		out, err := Run(context.Background(), v)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			failed++
			continue
		}
		diffs, err := Compare(v.Expect, out)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if len(diffs) > 0 {
			failed++
			t.Errorf("%s:\n  %s", v.Name, strings.Join(diffs, "\n  "))
		}
	}
	t.Logf("%d passed, %d failed", len(vs)-failed, failed)
}
