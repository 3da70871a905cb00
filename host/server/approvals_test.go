package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/auth"
)

func (r *response) errMessage() string {
	e, _ := r.body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

// approverToken issues an approver token in the shared store, recorded
// in h's evidence ledger (only a token the chain issues answers
// approvals).
func approverToken(t *testing.T, h *host.Hall, tenant string) string {
	t.Helper()
	secret, _, err := h.IssueToken(context.Background(), fx.tokens, auth.ApproverScope(tenant), "approver", "local:test")
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestApproverIsNoTenant is the regression test of the approver scope: an
// approver token has an empty tenant, and must never pass a tenant check
// with it (an empty tenant filter reads every tenant's receipts).
func TestApproverIsNoTenant(t *testing.T) {
	base := start(t, server.Config{})
	r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "appr-noten"), article))
	if r.status != 200 {
		t.Fatal(r)
	}
	receiptID := r.body["receipt_id"].(string)
	for _, tok := range []struct{ name, secret string }{
		{"approver", approverToken(t, fx.hall, "")},
		{"approver of org.acme", approverToken(t, fx.hall, "org.acme")},
	} {
		t.Run(tok.name, func(t *testing.T) {
			for _, ep := range []struct{ method, path string }{
				{"GET", "/wcp/receipts"},
				{"GET", "/wcp/receipts?correlation_id=appr-noten"},
				{"GET", "/wcp/receipts/" + receiptID},
				{"GET", "/wcp/receipts/" + uuid.NewString()},
				{"POST", "/wcp/route"},
				{"POST", "/wcp/run"},
				{"POST", "/mcp"},
				{"POST", "/enroll"},
				{"GET", "/admin/rules"},
			} {
				r := call(t, base, req{method: ep.method, path: ep.path, token: tok.secret, ctype: "application/json", body: strings.NewReader(`{"input": {"capability_id": "cap.doc.summarize"}}`)})
				if r.status != 403 || r.errCode() != server.CodeForbidden {
					t.Errorf("%s %s: %v", ep.method, ep.path, r)
				}
				if strings.Contains(string(r.raw), "appr-noten") {
					t.Errorf("%s %s: an approver read a tenant's receipt", ep.method, ep.path)
				}
			}
			// What is not a tenant's stays readable.
			for _, path := range []string{"/wcp/workers", "/wcp/capabilities", "/wcp/health"} {
				if r := get(t, base, path, tok.secret); r.status != 200 {
					t.Errorf("%s: %v", path, r)
				}
			}
		})
	}
}

// approvalsPolicy holds every request whose correlation id starts with
// "hold-" for a human.
const approvalsPolicy = `{"approvals": {"enabled": true, "expires_after": "1h"},
 "policies": [{"id": "hold-for-a-human", "when": "input.correlation_id.startsWith('hold-')",
   "effect": "REQUIRE_HUMAN", "reason": "a human looks at every hold- request"}]}`

// approvalsHall is a Hall of its own with the policy above and the noop
// worker (cap.test.noop, dev), served over the shared token store.
func approvalsHall(t *testing.T) (*host.Hall, string) {
	t.Helper()
	return approvalsHallConfig(t, "")
}

// approvalsHallConfig is approvalsHall with hallJSON as its hall.json
// ("": none).
func approvalsHallConfig(t *testing.T, hallJSON string) (*host.Hall, string) {
	t.Helper()
	dir := t.TempDir()
	if hallJSON != "" {
		if err := os.WriteFile(filepath.Join(dir, "hall.json"), []byte(hallJSON), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(`{"rules": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.json"), []byte(approvalsPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir, Home: filepath.Join(dir, "home"), Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	mod, err := wat(t.TempDir(), "testdata/noop.wat")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := os.ReadFile("testdata/noop.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: mod, Record: rec, RecordSource: "noop.json", AddRule: true}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(h, server.Config{Tokens: fx.tokens}))
	t.Cleanup(ts.Close)
	return h, ts.URL
}

// holdRun submits a run the policy holds and returns the approval id.
func holdRun(t *testing.T, base, correlation string) string {
	t.Helper()
	r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.test.noop", correlation), "x"))
	if r.status != 202 || r.body["status"] != "pending_approval" || r.body["ran"] != false {
		t.Fatalf("held run: %v", r)
	}
	id, _ := r.body["approval_id"].(string)
	if !strings.HasPrefix(id, "apr_") || r.body["approval_expires_at"] == nil || r.header.Get("Location") != "/wcp/approvals/"+id {
		t.Fatalf("pending answer: %v %v", r, r.header)
	}
	return id
}

func TestApprovalsHTTP(t *testing.T) {
	h, base := approvalsHall(t)
	approver := approverToken(t, h, "")
	acmeApprover := approverToken(t, h, "org.acme")
	id := holdRun(t, base, "hold-http-1")

	if m := metric(t, base, "hall_approvals_pending"); m != "1" {
		t.Errorf("hall_approvals_pending = %q", m)
	}
	if m := metric(t, base, "hall_approvals_oldest_pending_age_seconds"); m == "" || m == "0" {
		t.Errorf("hall_approvals_oldest_pending_age_seconds = %q", m)
	}

	// Who reads it: approvers, admins and the requesting tenant.
	for _, tok := range []string{approver, fx.admin, fx.acme} {
		if r := get(t, base, "/wcp/approvals?state=pending", tok); r.status != 200 || r.body["count"] != 1.0 {
			t.Fatalf("list: %v", r)
		}
		r := get(t, base, "/wcp/approvals/"+id, tok)
		if r.status != 200 || r.body["state"] != "pending" || r.body["worker_id"] != "org.test.noop" || r.body["tenant_id"] != "org.acme" || r.body["privilege_envelope"] == nil {
			t.Fatalf("get: %v", r)
		}
	}
	if r := get(t, base, "/wcp/approvals", fx.other); r.status != 200 || r.body["count"] != 0.0 {
		t.Fatalf("another tenant lists acme's approval: %v", r)
	}
	if r := get(t, base, "/wcp/approvals?tenant=org.acme", fx.other); r.status != 403 || r.errCode() != server.CodeTenantMismatch {
		t.Fatalf("another tenant's filter: %v", r)
	}
	if r := get(t, base, "/wcp/approvals/"+id, fx.other); r.status != 404 || r.errCode() != string(wcp.CodeApprovalNotFound) {
		t.Fatalf("another tenant reads acme's approval: %v", r)
	}
	for _, q := range []string{"?state=maybe", "?limit=0", "?limit=x"} {
		if r := get(t, base, "/wcp/approvals"+q, approver); r.status != 400 {
			t.Errorf("%s: %v", q, r)
		}
	}
	if r := get(t, base, "/wcp/approvals/apr_nope", approver); r.status != 404 {
		t.Errorf("bad id: %v", r)
	}

	// Who answers: not a tenant (not even the requesting one), not an
	// approver who belongs to the requesting tenant.
	for _, tok := range []string{fx.acme, fx.other} {
		if r := post(t, base, "/wcp/approvals/"+id+"/approve", tok, map[string]any{}); r.status != 403 || r.errCode() != server.CodeForbidden {
			t.Fatalf("a tenant approves: %v", r)
		}
	}
	if r := post(t, base, "/wcp/approvals/"+id+"/approve", acmeApprover, map[string]any{}); r.status != 403 || r.errCode() != string(wcp.CodeApprovalForbidden) {
		t.Fatalf("acme's own approver approves: %v", r)
	}
	if r := post(t, base, "/wcp/approvals/"+id+"/approve", approver, map[string]any{"comment": "ok", "extra": 1}); r.status != 422 {
		t.Fatalf("unknown field: %v", r)
	}
	// Not approved yet: the re-submission does not run.
	resubmit := runBody(input("cap.test.noop", "hold-http-1"), "x")
	resubmit["approval_id"] = id
	if r := post(t, base, "/wcp/run", fx.acme, resubmit); r.status != 403 || r.errCode() != string(wcp.DenyRequiresHumanApproval) || r.body["ran"] != false {
		t.Fatalf("run before approval: %v", r)
	}
	r := post(t, base, "/wcp/approvals/"+id+"/approve", approver, map[string]any{"comment": "checked by the test"})
	if r.status != 200 || r.body["state"] != "approved" || r.body["comment"] != "checked by the test" || !strings.HasPrefix(r.body["decided_by"].(string), "token:tok_") {
		t.Fatalf("approve: %v", r)
	}
	// Double answer: a conflict, with the approval as it stands.
	if r := post(t, base, "/wcp/approvals/"+id+"/deny", approver, nil); r.status != 409 || r.errCode() != string(wcp.CodeApprovalConflict) || r.body["approval"] == nil {
		t.Fatalf("deny after approve: %v", r)
	}
	// Another tenant cannot use acme's approval.
	if r := post(t, base, "/wcp/run", fx.other, resubmit); r.status == 200 {
		t.Fatalf("another tenant used the approval: %v", r)
	}
	r = post(t, base, "/wcp/run", fx.acme, resubmit)
	if r.status != 200 || r.body["ran"] != true || r.body["receipt_id"] == nil {
		t.Fatalf("approved run: %v", r)
	}
	if pol, _ := r.body["decision"].(map[string]any)["policy"].(map[string]any); pol["approval_id"] != id {
		t.Fatalf("the run's decision does not name its approval: %v", r.body["decision"])
	}
	// Exactly once.
	if r := post(t, base, "/wcp/run", fx.acme, resubmit); r.status != 403 || r.body["ran"] != false || !strings.Contains(r.errMessage(), "is used") {
		t.Fatalf("second run: %v", r)
	}
	if m := metric(t, base, "hall_approvals_pending"); m != "0" {
		t.Errorf("hall_approvals_pending after the answer = %q", m)
	}
}

// TestApprovalsConcurrentAnswers: of an approve and a deny sent at once,
// exactly one wins; the other is a conflict.
func TestApprovalsConcurrentAnswers(t *testing.T) {
	h, base := approvalsHall(t)
	a1, a2 := approverToken(t, h, ""), approverToken(t, h, "")
	for i := range 3 {
		id := holdRun(t, base, fmt.Sprintf("hold-race-%d", i))
		var wg sync.WaitGroup
		status := make([]int, 2)
		for j, p := range []struct{ tok, answer string }{{a1, "approve"}, {a2, "deny"}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A denial needs a comment (issue 25).
				hr, _ := http.NewRequest("POST", base+"/wcp/approvals/"+id+"/"+p.answer, strings.NewReader(`{"comment": "race"}`))
				hr.Header.Set("Authorization", "Bearer "+p.tok)
				hr.Header.Set("Content-Type", "application/json")
				res, err := http.DefaultClient.Do(hr)
				if err != nil {
					t.Error(err)
					return
				}
				res.Body.Close()
				status[j] = res.StatusCode
			}()
		}
		wg.Wait()
		if !(status[0] == 200 && status[1] == 409 || status[0] == 409 && status[1] == 200) {
			t.Fatalf("approve and deny at once: %v", status)
		}
	}
}

// Issue 21: a 4 MiB approval_id holding ESC/BEL gave a 12.6 MB 403 and
// grew the ledger inside signed entries; it is refused first, briefly.
func TestRunApprovalIDChecked(t *testing.T) {
	h, base := approvalsHall(t)
	ev, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ev.Changes(context.Background(), "")
	for _, bad := range []string{"apr_" + strings.Repeat("\x1b\x07", 256<<10), "apr_0123", "apr_0123456789abcdef0123456789abcdeg"} {
		body := runBody(input("cap.test.noop", "hold-bad-id"), "x")
		body["approval_id"] = bad
		r := post(t, base, "/wcp/run", fx.acme, body)
		if r.status != http.StatusUnprocessableEntity || r.errCode() != "INVALID_REQUEST" || len(r.raw) > 1024 || !strings.Contains(r.errMessage(), "approval_id") {
			t.Fatalf("approval_id %.20q: %d %s, %d bytes", bad, r.status, r.errCode(), len(r.raw))
		}
	}
	after, _ := ev.Changes(context.Background(), "")
	if len(after) != len(before) {
		t.Fatalf("refused requests wrote %d changes", len(after)-len(before))
	}
}
