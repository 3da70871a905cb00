package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestApprovalResumeAsHinted is the newcomer's report (issue 27): hall run
// printed "submit the same request again with approval_id apr_…", and
// hall run … --approval apr_… then failed (exit 2, "given for another
// request") because each run draws a new correlation id. The held run's
// hint must print a command that, run as printed once an approver has
// approved, resumes the held request (exit 0), and only once.
func TestApprovalResumeAsHinted(t *testing.T) {
	dir := t.TempDir()
	env := []string{"HALL_HOME=" + filepath.Join(dir, "home")}
	if out, err := exec.Command("wat2wasm", "../../host/server/testdata/noop.wat", "-o", filepath.Join(dir, "noop.wasm")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	write(t, dir, "rules.json", `{"rules": []}`)
	write(t, dir, "policy.json", `{"approvals": {"enabled": true, "expires_after": "1h"},
 "policies": [{"id": "hold", "when": "input.tenant_id == 'org.acme'", "effect": "REQUIRE_HUMAN", "reason": "a human looks"}]}`)
	write(t, dir, "in.txt", "the payload")
	rec, _ := filepath.Abs("../../host/server/testdata/noop.json")
	if r := hallWith(t, dir, "", env, "enroll", "--record", rec, "--add-rule", "noop.wasm"); r.code != 0 {
		t.Fatalf("enroll: %d %s", r.code, r.stderr)
	}
	// As a newcomer runs it: no correlation id.
	r := hallWith(t, dir, "the payload", env, "run", "cap.test.noop", "--tenant", "org.acme")
	if r.code != exitPending {
		t.Fatalf("held run: exit %d %s", r.code, r.stderr)
	}
	id := regexp.MustCompile(`apr_[0-9a-f]{32}`).FindString(r.stderr)
	m := regexp.MustCompile(`(?m)resume it with: (hall run .*)$`).FindStringSubmatch(r.stderr)
	if id == "" || m == nil {
		t.Fatalf("the held run prints no command to resume it:\n%s", r.stderr)
	}
	cmdline := m[1]
	if !strings.Contains(cmdline, "--approval "+id) || strings.Contains(cmdline, "--correlation-id") {
		t.Fatalf("resume command %q: want --approval %s and no correlation id to copy", cmdline, id)
	}
	approver := strings.TrimSpace(hallWith(t, dir, "", env, "tokens", "create", "--approver").stdout)
	if r := hallWith(t, dir, "", env, "approvals", "approve", id, "--token", approver); r.code != 0 {
		t.Fatalf("approve: %d %s", r.code, r.stderr)
	}
	// The command as printed, standard input as the hint says.
	resume := func() result {
		cmd := exec.Command("bash", "-c", strings.Replace(cmdline, "< INPUT", "< in.txt", 1))
		cmd.Dir = dir
		cmd.Env = testEnv(env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{stderr: string(out), code: code}
	}
	if r := resume(); r.code != 0 || !strings.Contains(r.stderr, "hall: ok org.test.noop") {
		t.Fatalf("the hinted command %q: exit %d\n%s", cmdline, r.code, r.stderr)
	}
	if r := resume(); r.code != exitDenied || !strings.Contains(r.stderr, "is used") {
		t.Fatalf("the hinted command again: exit %d\n%s", r.code, r.stderr)
	}
}
