package mcp_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/auth"
)

// holdPolicy holds every call of cap.test.approve for a human.
const holdPolicy = `{"approvals": {"enabled": true, "expires_after": "1h"},
 "policies": [{"id": "approve-needs-a-human", "when": "input.capability_id.startsWith('cap.test.approve')",
   "effect": "REQUIRE_HUMAN", "reason": "a human looks at every approve call"}]}`

// approvalsHall is a Hall of its own with approvals on and the approve
// worker, served over the shared token store; it returns the Hall and
// its /mcp endpoint.
func approvalsHall(t *testing.T, hallJSON string) (*host.Hall, string) {
	t.Helper()
	dir := t.TempDir()
	if hallJSON != "" {
		if err := os.WriteFile(filepath.Join(dir, "hall.json"), []byte(hallJSON), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rules := `{"rules": [{"rule_id": "rr_approve", "match": {"capability_id": "cap.test.approve", "env": "dev"},
	  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.approve", "score_hint": 1.0}]}},
	  {"rule_id": "rr_approve_schema", "match": {"capability_id": "cap.test.approveschema", "env": "dev"},
	  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.approveschema", "score_hint": 1.0}]}}]}`
	for name, body := range map[string]string{"rules.json": rules, "policy.json": holdPolicy} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir, Home: filepath.Join(dir, "home"), Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	for _, name := range []string{"approve.json", "approve_schema.json"} {
		rec, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Enroll(ctx, host.EnrollRequest{Module: fx.noop, Record: rec, RecordSource: name}); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(server.New(h, server.Config{Tokens: fx.tokens}))
	t.Cleanup(ts.Close)
	return h, ts.URL + "/mcp"
}

// TestCallHeldThenResumed: issue 25 — over MCP a held call's retry made a
// new pending approval: the agent was not told how to resume, and a retry
// with _meta.approval_id but without the held call's correlation id (which
// the agent never chose: the server drew it) was refused as another
// request. The held call's result now carries, as structured content, the
// approval id, its expiry and how to resume; once approved, the same call
// with _meta.approval_id alone runs it, once, with a receipt.
func TestCallHeldThenResumed(t *testing.T) {
	h, endpoint := approvalsHall(t, "")
	cs := connect(t, endpoint, fx.acme, nil)
	args := map[string]any{"input": "please"}
	held := call(t, cs, "test_approve", args, nil)
	if !held.IsError || metaString(held, "status") != "pending_approval" {
		t.Fatalf("held call: isError %v _meta %v text %q", held.IsError, held.Meta, text(held))
	}
	var sc struct {
		Status     string `json:"status"`
		ApprovalID string `json:"approval_id"`
		ExpiresAt  string `json:"approval_expires_at"`
		Resume     struct {
			Tool      string         `json:"tool"`
			Meta      map[string]any `json:"_meta"`
			Arguments string         `json:"arguments"`
		} `json:"resume"`
	}
	raw, _ := json.Marshal(held.StructuredContent)
	if err := json.Unmarshal(raw, &sc); err != nil || held.StructuredContent == nil {
		t.Fatalf("held call: structuredContent %s: %v", raw, err)
	}
	if !strings.HasPrefix(sc.ApprovalID, "apr_") || sc.ApprovalID != metaString(held, "approval_id") || sc.Status != "pending_approval" {
		t.Fatalf("structuredContent %s does not name the approval of _meta %v", raw, held.Meta)
	}
	if exp, err := time.Parse(time.RFC3339, sc.ExpiresAt); err != nil || !exp.After(time.Now()) {
		t.Errorf("approval_expires_at %q: want a future RFC 3339 time", sc.ExpiresAt)
	}
	if sc.Resume.Tool != "test_approve" || sc.Resume.Meta["approval_id"] != sc.ApprovalID || sc.Resume.Arguments == "" {
		t.Errorf("resume %s: want the tool, _meta.approval_id and what to do with the arguments", raw)
	}
	if !strings.Contains(text(held), "_meta.approval_id") {
		t.Errorf("text %q does not say how to resume", text(held))
	}

	// Before an approver answers, the retry is still held, and makes no
	// second approval.
	again := call(t, cs, "test_approve", args, map[string]any{"approval_id": sc.ApprovalID})
	if !again.IsError || metaString(again, "receipt_id") != "" {
		t.Fatalf("retry before approval ran: %v %q", again.Meta, text(again))
	}
	appr, _, err := h.IssueToken(context.Background(), fx.tokens, auth.ApproverScope(""), "approver", "local:test")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := fx.tokens.Authenticate(context.Background(), appr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.DecideApproval(context.Background(), sc.ApprovalID, true, server.Approver(&tok), "fine"); err != nil {
		t.Fatal(err)
	}
	res := call(t, cs, "test_approve", args, map[string]any{"approval_id": sc.ApprovalID})
	if res.IsError || metaString(res, "status") != "ok" || metaString(res, "receipt_id") == "" {
		t.Fatalf("resumed call: isError %v _meta %v text %q", res.IsError, res.Meta, text(res))
	}
	// Used once: a second resume does not run.
	if r := call(t, cs, "test_approve", args, map[string]any{"approval_id": sc.ApprovalID}); !r.IsError {
		t.Fatalf("an approval ran twice: %v", r.Meta)
	}
	// Another tenant cannot resume it, nor learn its correlation id.
	other := connect(t, endpoint, fx.other, nil)
	if r := call(t, other, "test_approve", args, map[string]any{"approval_id": sc.ApprovalID}); !r.IsError || strings.Contains(text(r), metaString(held, "correlation_id")) {
		t.Fatalf("another tenant's resume: %v %q", r.Meta, text(r))
	}
}

// TestCallHeldOverQuota: a tenant at its bound of pending approvals gets a
// refusal with code APPROVAL_QUOTA, the decision recorded, no approval.
func TestCallHeldOverQuota(t *testing.T) {
	h, endpoint := approvalsHall(t, `{"quotas": {"pending_approvals_per_tenant": 1}}`)
	cs := connect(t, endpoint, fx.acme, nil)
	if r := call(t, cs, "test_approve", map[string]any{"input": "one"}, nil); metaString(r, "status") != "pending_approval" {
		t.Fatalf("first held call: %v %q", r.Meta, text(r))
	}
	r := call(t, cs, "test_approve", map[string]any{"input": "two"}, nil)
	if !r.IsError || metaString(r, "code") != "APPROVAL_QUOTA" || metaString(r, "decision_id") == "" || !strings.Contains(text(r), "pending_approvals_per_tenant") {
		t.Fatalf("held call over the quota: %v %q", r.Meta, text(r))
	}
	list, err := h.Approvals(context.Background(), host.ApprovalFilter{State: "pending"})
	if err != nil || len(list) != 1 {
		t.Fatalf("pending approvals: %d %v, want 1", len(list), err)
	}
}

// TestCallHeldWithOutputSchema: a held call of a tool with an output
// schema carries the approval and how to resume in _meta, not as
// structuredContent, which clients validate against the output schema
// even in an error result (the TypeScript SDK then throws instead of
// showing the tool error).
func TestCallHeldWithOutputSchema(t *testing.T) {
	_, endpoint := approvalsHall(t, "")
	cs := connect(t, endpoint, fx.acme, nil)
	r := call(t, cs, "test_approveschema", map[string]any{"input": "x"}, nil)
	resume, _ := r.Meta["resume"].(map[string]any)
	if !r.IsError || metaString(r, "status") != "pending_approval" || r.StructuredContent != nil || resume == nil || resume["tool"] != "test_approveschema" {
		t.Fatalf("held call of a tool with an output schema: structuredContent %v _meta %v", r.StructuredContent, r.Meta)
	}
}
