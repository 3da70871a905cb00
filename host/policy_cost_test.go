package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// Issue 25, item 2: a policy whose cost grows faster than the request
// (issue 25's nested exists/filter bomb) does not come into force: Open
// refuses it, naming the policy. Before, it loaded, and each decision over
// a 59 KB request.items took seconds of CPU.
func TestPolicyCostBombRefusedAtOpen(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.json"), []byte(policyRules), 0o644)
	os.WriteFile(filepath.Join(dir, "policy.json"), []byte(`{"policies": [{"id": "bomb", "effect": "DENY",
	  "when": "input.request.items.exists(a, input.request.items.filter(b, b == a).size() > 1)"}]}`), 0o644)
	_, err := host.Open(context.Background(), host.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "policy.json: policies[0] (bomb).when: its estimated cost grows faster than the request") {
		t.Fatalf("got %v", err)
	}
}

// Issue 25, item 2: hall.json's policy.cost_limit bounds each evaluation;
// a request that makes a policy go over it is denied with
// DENY_POLICY_COST_EXCEEDED, naming the policy, and the denial is recorded.
// The limit is part of the sealed snapshot.
func TestPolicyCostLimitDeniesAndIsRecorded(t *testing.T) {
	m := integModules(t)
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rules.json", policyRules)
	write("hall.json", `{"policy": {"cost_limit": 5000}}`)
	write("policy.json", `{"policies": [{"id": "no-forbidden-item", "effect": "DENY", "when": "input.request.items.exists(x, x == 'forbidden')"}]}`)
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: m.pa, Record: []byte(pickRecord)}); err != nil {
		t.Fatal(err)
	}
	withItems := func(n int) *wcp.RouteInput {
		items := make([]string, n)
		for i := range items {
			items[i] = fmt.Sprintf("item-%05d", i)
		}
		req, _ := json.Marshal(map[string]any{"items": items})
		in, err := wcp.ParseRouteInput([]byte(`{"capability_id": "cap.test.pick", "env": "dev", "data_label": "INTERNAL", "tenant_risk": "low", "qos_class": "P2", "tenant_id": "org.acme", "correlation_id": "c-cost", "request": ` + string(req) + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return &in
	}
	if d := h.Decide(ctx, withItems(10)); d.Denied {
		t.Fatalf("a small request is denied: %+v", d.DenyReason)
	}
	d, raw, err := h.RouteJSON(ctx, withItems(5000))
	if err != nil {
		t.Fatal(err)
	}
	if d.Code() != wcp.DenyPolicyCostExceeded || d.Policy == nil || d.Policy.PolicyID != "no-forbidden-item" ||
		d.DenyReason.Reason == nil || !strings.Contains(*d.DenyReason.Reason, "cost limit of 5000") {
		t.Fatalf("got %s %+v %+v", d.Code(), d.DenyReason, d.Policy)
	}
	if !strings.Contains(string(raw), `"DENY_POLICY_COST_EXCEEDED"`) {
		t.Fatalf("the recorded decision does not carry the code: %s", raw)
	}
	if got := string(lastSealed(t, h).Changed["config"]); !strings.Contains(got, `"cost_limit":5000`) {
		t.Fatalf("the sealed configuration lacks the policy cost limit: %s", got)
	}
}
