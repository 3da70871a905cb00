package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/approval"
)

const policyRules = `{"rules": [
  {"rule_id": "pick", "match": {"capability_id": "cap.test.pick"},
   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.pick"}]}}]}`

const pickRecord = `{"worker_id": "org.acme.pick", "worker_species_id": "wrk.test.pick", "capabilities": ["cap.test.pick"], "risk_tier": "high",
  "privilege_envelope": {"filesystem_writes": ["/tmp/hall-policy-test-out"]}}`

// prodWrites is docs/POLICY.md's worked example.
const prodWrites = `{
  "approvals": {"enabled": true, "expires_after": "%TTL%"},
  "policies": [
    {"id": "prod-writes-need-a-human", "when": "input.env == 'prod' && worker.risk_tier == 'high' && size(worker.envelope.filesystem_writes) > 0",
     "effect": "REQUIRE_HUMAN", "reason": "prod writes by a high-risk worker need a human"},
    {"id": "no-restricted-in-dev", "when": "input.env == 'dev' && input.data_label == 'RESTRICTED'", "effect": "DENY", "reason": "RESTRICTED data stays out of dev"}
  ]}`

func policyHall(t *testing.T, ttl string) *host.Hall {
	t.Helper()
	m := integModules(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(policyRules), 0o644); err != nil {
		t.Fatal(err)
	}
	if ttl != "" {
		if err := os.WriteFile(filepath.Join(dir, "policy.json"), []byte(strings.ReplaceAll(prodWrites, "%TTL%", ttl)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h, err := host.Open(context.Background(), host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	if _, err := h.Enroll(context.Background(), host.EnrollRequest{Module: m.pa, Record: []byte(pickRecord)}); err != nil {
		t.Fatal(err)
	}
	issueApprover(t, h)
	return h
}

// issueApprover records the issuance of approver's token in h's evidence
// ledger: only a token the chain issues answers approvals.
func issueApprover(t *testing.T, h *host.Hall) {
	t.Helper()
	if err := host.RecordTokenIssued(h, strings.TrimPrefix(approver.Actor, "token:"), "approver:"+approver.Tenant); err != nil {
		t.Fatal(err)
	}
}

func pickInput(t *testing.T, env, label string) *wcp.RouteInput {
	t.Helper()
	in, err := wcp.ParseRouteInput([]byte(`{"capability_id": "cap.test.pick", "env": "` + env + `", "data_label": "` + label + `", "tenant_risk": "low", "qos_class": "P2", "tenant_id": "org.acme", "correlation_id": "c-pick"}`))
	if err != nil {
		t.Fatal(err)
	}
	return &in
}

var approver = host.Approver{Actor: "token:tok_approver01", Tenant: "org.other"}

// pend runs a prod request and returns the pending approval id.
func pend(t *testing.T, h *host.Hall) (string, *wcp.RouteInput) {
	t.Helper()
	in := pickInput(t, "prod", "INTERNAL")
	res, err := h.Run(context.Background(), host.RunRequest{Input: in, Payload: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	d := res.Decision
	if !d.Denied || d.Code() != wcp.DenyRequiresHumanApproval || res.Ran {
		t.Fatalf("want a held request, got %s ran=%v", d.Code(), res.Ran)
	}
	id := host.PendingApproval(&d)
	if id == "" || d.DenyReason.ApprovalExpiresAt == nil || !d.DenyReason.SupervisorRequired {
		t.Fatalf("no pending approval in %+v", d.DenyReason)
	}
	if d.Policy == nil || d.Policy.PolicyID != "prod-writes-need-a-human" || d.Policy.Outcome != "REQUIRE_HUMAN" || !strings.HasPrefix(d.Policy.SetDigest, "sha256:") {
		t.Fatalf("policy evidence %+v", d.Policy)
	}
	return id, in
}

func TestPolicyApprovalRunsOnce(t *testing.T) {
	h := policyHall(t, "1h")
	ctx := context.Background()
	id, in := pend(t, h)
	a, err := h.Approval(ctx, id)
	if err != nil || a.State != approval.Pending || a.WorkerID != "org.acme.pick" || !strings.HasPrefix(a.ModuleDigest, "sha256:") {
		t.Fatalf("%+v %v", a, err)
	}
	// Not approved yet: presenting the id does not run.
	res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
	if err != nil || res.Ran || !strings.Contains(res.Decision.DenyReason.Message, "is pending, not approved") {
		t.Fatalf("pending approval ran: %v %+v", err, res.Decision.DenyReason)
	}
	if _, err := h.DecideApproval(ctx, id, true, approver, "looks right"); err != nil {
		t.Fatal(err)
	}
	// Another payload is not what was approved.
	res, err = h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("y"), ApprovalID: id})
	if err != nil || res.Ran || !strings.Contains(res.Decision.DenyReason.Message, "another payload") {
		t.Fatalf("other payload: %v %+v", err, res.Decision.DenyReason)
	}
	res, err = h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
	if err != nil || !res.Ran || string(res.Output) != "from p-a" || res.Decision.Policy.ApprovalID != id {
		t.Fatalf("approved run: %v ran=%v %q %+v", err, res.Ran, res.Output, res.Decision.DenyReason)
	}
	// A second run is impossible.
	res, err = h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
	if err != nil || res.Ran || !strings.Contains(res.Decision.DenyReason.Message, "is used") {
		t.Fatalf("second run: %v ran=%v %+v", err, res.Ran, res.Decision.DenyReason)
	}
	// The evidence: requested, approved, used, chained in the ledger.
	store, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{host.ChangeApprovalRequested, host.ChangeApprovalApproved, host.ChangeApprovalUsed} {
		cs, err := store.Changes(ctx, kind)
		if err != nil || len(cs) != 1 || cs[0].Subject != id {
			t.Fatalf("%s: %v %v", kind, cs, err)
		}
		if kind == host.ChangeApprovalApproved && cs[0].Actor != approver.Actor {
			t.Fatalf("approved by %q", cs[0].Actor)
		}
	}
}

func TestPolicyApprovalRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("requesting tenant cannot approve", func(t *testing.T) {
		h := policyHall(t, "1h")
		id, _ := pend(t, h)
		_, err := h.DecideApproval(ctx, id, true, host.Approver{Actor: "token:tok_x", Tenant: "org.acme"}, "")
		var ae *host.ApprovalError
		if !errors.As(err, &ae) || ae.Code != wcp.CodeApprovalForbidden {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("double approval", func(t *testing.T) {
		h := policyHall(t, "1h")
		id, _ := pend(t, h)
		if _, err := h.DecideApproval(ctx, id, true, approver, ""); err != nil {
			t.Fatal(err)
		}
		_, err := h.DecideApproval(ctx, id, true, approver, "")
		var ae *host.ApprovalError
		if !errors.As(err, &ae) || ae.Code != wcp.CodeApprovalConflict {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("concurrent approve and deny", func(t *testing.T) {
		h := policyHall(t, "1h")
		id, _ := pend(t, h)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() { _, errs[i] = h.DecideApproval(ctx, id, i == 0, approver, "") })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("want exactly one answer to win: %v", errs)
		}
		a, _ := h.Approval(ctx, id)
		if (errs[0] == nil && a.State != approval.Approved) || (errs[1] == nil && a.State != approval.Denied) {
			t.Fatalf("state %s after %v", a.State, errs)
		}
	})
	t.Run("module re-enrolled since", func(t *testing.T) {
		h := policyHall(t, "1h")
		id, in := pend(t, h)
		if _, err := h.DecideApproval(ctx, id, true, approver, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Enroll(ctx, host.EnrollRequest{Module: integModules(t).pb, Record: []byte(pickRecord)}); err != nil {
			t.Fatal(err)
		}
		res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
		if err != nil || res.Ran || !strings.Contains(res.Decision.DenyReason.Message, "enrolled again") {
			t.Fatalf("%v ran=%v %+v", err, res.Ran, res.Decision.DenyReason)
		}
	})
	t.Run("expired", func(t *testing.T) {
		h := policyHall(t, "50ms")
		id, in := pend(t, h)
		deadline := time.Now().Add(10 * time.Second)
		for {
			a, err := h.Approval(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if a.State == approval.Expired {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the approval never expired")
			}
			time.Sleep(10 * time.Millisecond) // polling an observable state
		}
		_, err := h.DecideApproval(ctx, id, true, approver, "")
		var ae *host.ApprovalError
		if !errors.As(err, &ae) || ae.Code != wcp.CodeApprovalConflict {
			t.Fatalf("approving an expired approval: %v", err)
		}
		res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
		if err != nil || res.Ran {
			t.Fatalf("%v ran=%v", err, res.Ran)
		}
		store, _ := h.Evidence()
		if cs, _ := store.Changes(ctx, host.ChangeApprovalExpired); len(cs) != 1 {
			t.Fatalf("expiry not recorded: %v", cs)
		}
	})
}

func TestPolicyDenyHasGatePayload(t *testing.T) {
	h := policyHall(t, "1h")
	d := h.Decide(context.Background(), pickInput(t, "dev", "RESTRICTED"))
	r := d.DenyReason
	if d.Code() != wcp.DenyPolicyGate || r.Reason == nil || *r.Reason != "RESTRICTED data stays out of dev" || r.PolicyVersion == nil || *r.PolicyVersion != d.Policy.SetDigest ||
		d.SelectedWorkerSpeciesID != "" || d.ArtifactHash != "" || len(d.TelemetryEnvelopes) != 1 || d.EscalationEffective.Rationale == nil {
		t.Fatalf("%+v %+v", d, r)
	}
	allowed := h.Decide(context.Background(), pickInput(t, "dev", "INTERNAL"))
	if allowed.Denied || allowed.Policy == nil || allowed.Policy.Outcome != "ALLOW" {
		t.Fatalf("%+v", allowed)
	}
	for _, e := range allowed.TelemetryEnvelopes {
		if e.PolicyVersion != "" && e.PolicyVersion != allowed.Policy.SetDigest {
			t.Fatalf("telemetry policy_version %q", e.PolicyVersion)
		}
	}
}

func TestNoPolicyFileIsPyHall(t *testing.T) {
	h := policyHall(t, "")
	d := h.Decide(context.Background(), pickInput(t, "prod", "INTERNAL"))
	if d.Denied || d.Policy != nil || h.Policies() != nil {
		t.Fatalf("%+v", d)
	}
}

func TestBadPolicyFileFailsOpen(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.json"), []byte(policyRules), 0o644)
	os.WriteFile(filepath.Join(dir, "policy.json"), []byte(`{"policies": [{"id": "typo", "when": "input.env == 'prod' && wrker.id == 'x'", "effect": "DENY"}]}`), 0o644)
	_, err := host.Open(context.Background(), host.Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "policy.json: policies[0] (typo).when at 1:24: undeclared reference to 'wrker'") {
		t.Fatalf("got %v", err)
	}
}

// TestWatchFollowsPolicyFile: Watch reloads when policy.json changes, so
// an edited policy set comes into force without a restart.
func TestWatchFollowsPolicyFile(t *testing.T) {
	h := policyHall(t, "1h")
	before := h.Policies().Digest()
	watching(t, h)
	path := h.PolicyFile()
	edited := strings.ReplaceAll(prodWrites, "%TTL%", "2h")
	// Written until seen: the watch may start after the first write.
	eventually(t, "the edited policy.json in force", func() bool {
		if err := os.WriteFile(path, []byte(edited), 0o644); err != nil {
			t.Fatal(err)
		}
		return h.Policies().Digest() != before
	})
	if got := h.Policies().ApprovalTTL(); got != 2*time.Hour {
		t.Fatalf("approval TTL after the reload: %v", got)
	}
}

// Issue 13: with approvals on, a prod/edge blast score at or above 85 is
// held for a human (DENY_REQUIRES_HUMAN with PyHall's blast payload and a
// pending approval bound to the worker), and runs once approved; without
// approvals, PyHall's plain denial stands.
func TestHighBlastHeldForApproval(t *testing.T) {
	ctx := context.Background()
	edge := func(t *testing.T) *wcp.RouteInput {
		in, err := wcp.ParseRouteInput([]byte(`{"capability_id": "cap.test.pick", "env": "edge", "data_label": "INTERNAL", "tenant_risk": "low",
		  "qos_class": "P2", "tenant_id": "org.acme", "correlation_id": "c-blast", "blast_score": 90}`))
		if err != nil {
			t.Fatal(err)
		}
		return &in
	}
	t.Run("approvals on", func(t *testing.T) {
		h := policyHall(t, "1h")
		in := edge(t)
		res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		d := res.Decision
		id := host.PendingApproval(&d)
		if !d.Denied || d.Code() != wcp.DenyRequiresHuman || res.Ran || id == "" || d.DenyReason.BlastScore == nil || d.DenyReason.BlastScore.Int64() != 90 {
			t.Fatalf("want a held high-blast request: %s ran=%v approval %q %+v", d.Code(), res.Ran, id, d.DenyReason)
		}
		if _, err := h.DecideApproval(ctx, id, true, approver, "blast accepted"); err != nil {
			t.Fatal(err)
		}
		res, err = h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
		if err != nil || !res.Ran || res.Outcome != "ok" {
			t.Fatalf("approved run: %v ran=%v %+v", err, res.Ran, res.Decision.DenyReason)
		}
		res, err = h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
		if err != nil || res.Ran {
			t.Fatalf("a second run of one approval: %v ran=%v", err, res.Ran)
		}
	})
	t.Run("no approvals: PyHall", func(t *testing.T) {
		h := policyHall(t, "")
		res, err := h.Run(ctx, host.RunRequest{Input: edge(t), Payload: []byte("x")})
		d := res.Decision
		if err != nil || !d.Denied || d.Code() != wcp.DenyRequiresHuman || res.Ran || host.PendingApproval(&d) != "" {
			t.Fatalf("%v %s ran=%v", err, d.Code(), res.Ran)
		}
	})
}
