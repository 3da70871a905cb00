package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestApprovalsShowPayloadCLI: issue 25 — an approver approved blind: the
// approval showed the payload's hash, never the payload. `hall approvals
// show` now prints what the approval kept — printable text indented, and
// anything else (an escape sequence here) as hex, so nothing reaches the
// terminal as control characters — and a denial needs a comment.
func TestApprovalsShowPayloadCLI(t *testing.T) {
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
	hold := func(correlation, payload string) string {
		t.Helper()
		if r := run(payload, "run", "cap.test.noop", "--tenant", "org.acme", "--correlation-id", correlation); r.code != exitPending {
			t.Fatalf("held run: %d %s", r.code, r.stderr)
		}
		r := run("", "approvals", "list", "--state", "pending", "--json")
		var list struct {
			Approvals []struct {
				ID            string `json:"approval_id"`
				CorrelationID string `json:"correlation_id"`
			} `json:"approvals"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatal(err)
		}
		for _, a := range list.Approvals {
			if a.CorrelationID == correlation {
				return a.ID
			}
		}
		t.Fatalf("no pending approval of %s: %s", correlation, r.stdout)
		return ""
	}
	text := hold("hold-text", "transfer 100 EUR\nto <b>account</b> 42")
	r := run("", "approvals", "show", text)
	if r.code != 0 || !strings.Contains(r.stdout, "bytes, text:\n    | transfer 100 EUR\n    | to <b>account</b> 42\n") {
		t.Fatalf("show of a text payload: %d\n%s", r.code, r.stdout)
	}
	esc := hold("hold-esc", "\x1b[2J\x1b[31mred")
	r = run("", "approvals", "show", esc)
	if r.code != 0 || strings.Contains(r.stdout, "\x1b") || !strings.Contains(r.stdout, "hex (not printable text)") || !strings.Contains(r.stdout, "| 1b5b324a1b5b33316d726564") {
		t.Fatalf("show of a payload with escape sequences: %d\n%q", r.code, r.stdout)
	}
	var shown struct {
		Payload struct {
			Size     int    `json:"size"`
			Encoding string `json:"encoding"`
			Shown    string `json:"shown"`
		} `json:"payload"`
	}
	r = run("", "approvals", "show", text, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil || shown.Payload.Encoding != "text" || shown.Payload.Size < 36 {
		t.Fatalf("show --json: %v %s", err, r.stdout)
	}
	approver := strings.TrimSpace(run("", "tokens", "create", "--approver").stdout)
	if r := run("", "approvals", "deny", esc, "--token", approver); r.code != 1 || !strings.Contains(r.stderr, "comment") {
		t.Fatalf("a denial without a comment: %d %s", r.code, r.stderr)
	}
	if r := run("", "approvals", "deny", esc, "--token", approver, "--comment", "escape sequences"); r.code != 0 {
		t.Fatalf("a denial with a comment: %d %s", r.code, r.stderr)
	}
	// The approvals with their payloads verify as signed changes.
	if r := run("", "audit", "verify"); r.code != 0 {
		t.Fatalf("audit verify: %d %s %s", r.code, r.stdout, r.stderr)
	}
}
