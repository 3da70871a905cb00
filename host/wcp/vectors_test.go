package wcp_test

import (
	"context"
	"os"
	"testing"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/conformance"
)

// TestDecisionJSONVectors makes the decision of every conformance vector
// (PyHall's recorded cases) and checks both its encodings against the
// reference encoders.
func TestDecisionJSONVectors(t *testing.T) {
	data, err := os.ReadFile("../../testdata/vectors/random.json")
	if err != nil {
		t.Fatal(err)
	}
	vectors, err := conformance.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	decided, denied := 0, 0
	for i := range vectors {
		out, err := conformance.Run(context.Background(), &vectors[i])
		if err != nil {
			t.Fatal(err)
		}
		d, ok := out.(*wcp.RouteDecision)
		if !ok {
			continue // an input PyHall refuses: no decision
		}
		wcp.CheckDecision(t, d)
		decided++
		if d.Denied {
			denied++
		}
	}
	if decided < 200 || denied == 0 || denied == decided {
		t.Fatalf("too weak: %d of %d vectors decided, %d denied", decided, len(vectors), denied)
	}
	t.Logf("%d of %d vectors decided, %d denied", decided, len(vectors), denied)
}
