package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
