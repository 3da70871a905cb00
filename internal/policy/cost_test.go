package policy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/policy"
)

// costBomb is issue 25's cost bomb: nested exists/filter over the
// request's items. Over ~59 KB of items it took 10.8 s per decision, and
// kept burning CPU after the caller left.
const costBomb = `input.request.items.exists(a, input.request.items.filter(b, b == a).size() > 1)`

// bombItems is ~59 KB of request.items, all distinct (the bomb scans all).
func bombItems() map[string]any {
	items := make([]any, 5000)
	for i := range items {
		items[i] = fmt.Sprintf("item-%05d", i)
	}
	return map[string]any{"items": items}
}

// A policy whose estimated cost grows faster than the request (nested
// comprehensions over input) is refused at load, naming the policy.
// Before issue 25 it loaded.
func TestCostBombRefusedAtLoad(t *testing.T) {
	doc := `{"policies": [{"id": "fine", "when": "input.env == 'prod'", "effect": "DENY"},
	  {"id": "bomb", "when": "` + costBomb + `", "effect": "DENY"}]}`
	_, err := policy.Parse("policy.json", []byte(doc))
	if err == nil {
		t.Fatal("the cost bomb loaded")
	}
	if msg := err.Error(); !strings.Contains(msg, "policies[1] (bomb).when") || !strings.Contains(msg, "cost") || strings.Contains(msg, "(fine)") {
		t.Fatalf("error %q, want the bomb named, and only it, for its cost", msg)
	}
}

// Policies linear in the request still load.
func TestLinearPoliciesLoad(t *testing.T) {
	for _, when := range []string{
		`input.request.items.exists(x, x == 'a')`,
		`input.request.items.all(x, x in worker.capabilities)`,
		`input.request.?name.orValue('').startsWith('x') && worker.capabilities.exists(c, c.startsWith('cap.admin'))`,
		`size(input.request) > 3 && input.request.all(k, k.startsWith('a'))`,
	} {
		doc := `{"policies": [{"id": "p", "when": "` + when + `", "effect": "DENY"}]}`
		if _, err := policy.Parse("policy.json", []byte(doc)); err != nil {
			t.Errorf("%s: %v", when, err)
		}
	}
}

// The cost bomb, had it been loaded, is stopped by the per-evaluation cost
// limit and denies with POLICY_COST_EXCEEDED's code, naming the policy.
func TestCostBombStoppedByLimit(t *testing.T) {
	set := policy.ParseUnchecked(t, `{"policies": [{"id": "bomb", "when": "`+costBomb+`", "effect": "REQUIRE_HUMAN"}]}`)
	f := facts()
	f.Input.Request = bombItems()
	res := set.EvaluateContext(context.Background(), f, false)
	if res.Outcome != policy.Deny || res.Policy != "bomb" || res.Code != policy.CodeCostExceeded {
		t.Fatalf("got %+v, want a DENY by bomb with %s", res, policy.CodeCostExceeded)
	}
	if !strings.Contains(res.Reason, "cost limit") {
		t.Errorf("reason %q does not name the cost limit", res.Reason)
	}
	var steps []policy.Step
	for st := range set.Steps(res, false) {
		steps = append(steps, st)
	}
	if len(steps) != 1 || steps[0] != (policy.Step{ID: "bomb", Effect: policy.RequireHuman, Result: policy.StepCostExceeded}) {
		t.Errorf("steps %+v, want bomb cost_exceeded", steps)
	}
}

// An evaluation whose context is done stops at once and fails closed.
func TestEvaluationHonoursContext(t *testing.T) {
	set, err := policy.ParseLimits("policy.json", []byte(`{"policies": [{"id": "scan", "when": "input.request.items.exists(x, x == 'none')", "effect": "DENY"}]}`), policy.Limits{CostLimit: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	f := facts()
	f.Input.Request = bombItems()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := set.EvaluateContext(ctx, f, false)
	if res.Outcome != policy.Deny || res.Policy != "scan" || !strings.Contains(res.Reason, "interrupted") {
		t.Fatalf("got %+v, want a DENY saying the evaluation was interrupted", res)
	}
}

// BenchmarkCostLimit: the cost bomb over ~59 KB of request.items, stopped
// by the default cost limit (it took 10.8 s per decision before issue 25),
// beside a linear scan of the same items that stays within it.
func BenchmarkCostLimit(b *testing.B) {
	for _, bc := range []struct {
		name, when string
		code       string
	}{
		{"bomb-59KB", costBomb, policy.CodeCostExceeded},
		{"scan-59KB", `input.request.items.exists(x, x == 'none')`, ""},
	} {
		b.Run(bc.name, func(b *testing.B) {
			set := policy.ParseUnchecked(b, `{"policies": [{"id": "p", "when": "`+bc.when+`", "effect": "DENY"}]}`)
			f := facts()
			f.Input.Request = bombItems()
			b.ReportAllocs()
			for b.Loop() {
				if res := set.EvaluateContext(context.Background(), f, false); res.Code != bc.code {
					b.Fatalf("got %+v, want code %q", res, bc.code)
				}
			}
		})
	}
}
