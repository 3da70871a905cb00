package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/ledger"
)

const heldPolicy = `{"approvals": {"enabled": true, "expires_after": "1h"},
 "policies": [{"id": "hold", "when": "input.correlation_id.startsWith('hold-')", "effect": "REQUIRE_HUMAN", "reason": "a human looks"}]}`

// TestApprovalsCLI drives a held request through the real binary: run
// exits 4, route exits 4, an approver of the requesting tenant is refused,
// an approver approves, the re-submission runs once and only once.
func TestApprovalsCLI(t *testing.T) {
	dir := t.TempDir()
	env := []string{"HALL_HOME=" + filepath.Join(dir, "home")}
	if out, err := exec.Command("wat2wasm", "../../host/server/testdata/noop.wat", "-o", filepath.Join(dir, "noop.wasm")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	write(t, dir, "rules.json", `{"rules": []}`)
	write(t, dir, "policy.json", heldPolicy)
	rec, _ := filepath.Abs("../../host/server/testdata/noop.json")
	run := func(stdin string, args ...string) result {
		t.Helper()
		return hallWith(t, dir, stdin, env, args...)
	}
	if r := run("", "enroll", "--record", rec, "--add-rule", "noop.wasm"); r.code != 0 {
		t.Fatalf("enroll: %d %s", r.code, r.stderr)
	}
	if r := run("", "validate", "rules.json"); r.code != 0 || !strings.Contains(r.stdout, "1 policies") {
		t.Fatalf("validate: %d %s %s", r.code, r.stdout, r.stderr)
	}
	req := []string{"run", "cap.test.noop", "--tenant", "org.acme", "--correlation-id", "hold-cli"}
	if r := run("x", req...); r.code != exitPending || !strings.Contains(r.stderr, "Pending approval apr_") {
		t.Fatalf("held run: %d %s", r.code, r.stderr)
	}
	if r := run("", "route", "--capability", "cap.test.noop", "--tenant", "org.acme", "--correlation-id", "hold-cli"); r.code != exitPending {
		t.Fatalf("route of a held request: %d %s", r.code, r.stderr)
	}
	r := run("", "approvals", "list", "--state", "pending", "--json")
	var list struct {
		Approvals []struct {
			ID string `json:"approval_id"`
		} `json:"approvals"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Approvals) != 1 {
		t.Fatalf("approvals list: %v %s", err, r.stdout)
	}
	id := list.Approvals[0].ID
	if r := run("", "approvals", "show", id); r.code != 0 || !strings.Contains(r.stdout, "org.test.noop") || !strings.Contains(r.stdout, "pending") {
		t.Fatalf("show: %d %s", r.code, r.stdout)
	}
	approver := strings.TrimSpace(run("", "tokens", "create", "--approver").stdout)
	acmeApprover := strings.TrimSpace(run("", "tokens", "create", "--approver", "--approver-tenant", "org.acme").stdout)
	tenant := strings.TrimSpace(run("", "tokens", "create", "--tenant", "org.acme").stdout)
	if r := run("", "approvals", "approve", id, "--token", tenant); r.code != 1 || !strings.Contains(r.stderr, "approver or admin token") {
		t.Fatalf("a tenant token approves: %d %s", r.code, r.stderr)
	}
	if r := run("", "approvals", "approve", id, "--token", acmeApprover); r.code != 1 || !strings.Contains(r.stderr, "APPROVAL_FORBIDDEN") {
		t.Fatalf("acme's approver approves: %d %s", r.code, r.stderr)
	}
	if r := run("", "approvals", "approve", id, "--token", approver, "--comment", "fine"); r.code != 0 || !strings.Contains(r.stdout, "approved") {
		t.Fatalf("approve: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := run("", "approvals", "deny", id, "--token", approver); r.code != 1 || !strings.Contains(r.stderr, "APPROVAL_CONFLICT") {
		t.Fatalf("double answer: %d %s", r.code, r.stderr)
	}
	if r := run("x", append(req, "--approval", id)...); r.code != 0 || !strings.Contains(r.stderr, "hall: ok org.test.noop") {
		t.Fatalf("approved run: %d %s", r.code, r.stderr)
	}
	if r := run("x", append(req, "--approval", id)...); r.code != exitDenied || !strings.Contains(r.stderr, "is used") {
		t.Fatalf("second run: %d %s", r.code, r.stderr)
	}
}

func TestPolicyTestFixtures(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "policy.json", heldPolicy)
	write(t, dir, "ok.json", `[{"name": "held", "input": {"correlation_id": "hold-1"}, "expect": {"outcome": "REQUIRE_HUMAN", "policy_id": "hold"}},
	  {"name": "free", "input": {"correlation_id": "c-1"}, "worker": {"risk_tier": "high"}, "expect": {"outcome": "ALLOW"}}]`)
	write(t, dir, "bad.json", `[{"name": "wrong", "input": {"correlation_id": "c-1"}, "expect": {"outcome": "DENY"}},
	  {"name": "typo", "input": {"corelation_id": "c-1"}, "expect": {"outcome": "ALLOW"}}]`)
	if r := hall(t, dir, "", "policy", "test", "ok.json"); r.code != 0 || !strings.Contains(r.stdout, "2 passed, 0 failed") {
		t.Fatalf("passing fixtures: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r := hall(t, dir, "", "policy", "test", "bad.json")
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL wrong") || !strings.Contains(r.stdout, "outcome: got ALLOW") ||
		!strings.Contains(r.stdout, `unknown field "corelation_id"`) || !strings.Contains(r.stdout, "0 passed, 2 failed") {
		t.Fatalf("failing fixtures: %d %s", r.code, r.stdout)
	}
	write(t, dir, "broken.json", `{"policies": [{"id": "typo", "when": "wrker.id == 'x'", "effect": "DENY"}]}`)
	if r := hall(t, dir, "", "policy", "test", "--policies", "broken.json", "ok.json"); r.code != 1 || !strings.Contains(r.stderr, "policies[0] (typo).when at 1:1") {
		t.Fatalf("broken policy file: %d %s", r.code, r.stderr)
	}
}

// Issue 21: an approval_id of any size and content reached the decision,
// its message and the ledger; hall run refuses it, briefly, first.
func TestRunApprovalFlagChecked(t *testing.T) {
	dir := t.TempDir()
	env := []string{"HALL_HOME=" + filepath.Join(dir, "home")}
	write(t, dir, "rules.json", `{"rules": []}`)
	for _, bad := range []string{"apr_" + strings.Repeat("\x1b\x07", 32<<10), "apr_123", "APR_0123456789abcdef0123456789abcdef"} {
		r := hallWith(t, dir, "x", env, "run", "cap.test.noop", "--tenant", "org.acme", "--approval", bad)
		if r.code != 1 || !strings.Contains(r.stderr, "--approval:") || len(r.stderr) > 400 {
			t.Fatalf("--approval %.20q: exit %d, %d bytes of stderr: %.400s", bad, r.code, len(r.stderr), r.stderr)
		}
	}
}

// Issue 21: a change chain holding approval_requested -> approval_used with
// no approval_approved (what the Hall signed after an approvals row was
// flipped with SQL) verified: hall audit verify exited 0. Both the Go
// verifier and the Node verifier of an exported bundle report it.
func TestAuditReportsApprovalUsedWithoutApproved(t *testing.T) {
	dir := t.TempDir()
	s, err := ledger.Open(filepath.Join(dir, ".hall"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const id = "apr_0123456789abcdef0123456789abcdef"
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, k := range []string{"approval_requested", "approval_used"} {
		state := map[string]string{"approval_requested": "pending", "approval_used": "used"}[k]
		body, _ := json.Marshal(map[string]any{"approval_id": id, "state": state, "tenant_id": "org.acme", "request_hash": digest,
			"decided_by": "token:tok_forged", "used_by_decision_id": "0190a5d2-0000-7000-8000-000000000000"})
		if err := s.RecordChange(ctx, &ledger.Change{Kind: k, Subject: id, Digest: digest, Body: body, Actor: "tenant:org.acme"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	r := hallIn(t, dir, "", nil, "audit", "verify")
	if r.code != exitError || !strings.Contains(r.stdout, "no signed approval_approved precedes this use") {
		t.Fatalf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	r = hallIn(t, dir, "", nil, "audit", "export", "--bundle", bundle)
	if r.code != 0 {
		t.Fatalf("audit export --bundle: exit %d %s", r.code, r.stderr)
	}
	if script := nodeVerifierScript(t); script != "" {
		out, err := exec.Command("node", script, bundle).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "no signed approval_approved precedes this use") {
			t.Fatalf("node verifier: %v\n%s", err, out)
		}
	}
}
