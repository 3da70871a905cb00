package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestValidatePyHallGoldenFormat: hall validate reads PyHall's
// {"tests": [... "expected_rule_id" ...]} fixtures as well as its own, in
// text and --json, and reports failures by name.
func TestValidatePyHallGoldenFormat(t *testing.T) {
	dir := t.TempDir()
	copyFiles(t, routedir, dir, "rules.json")
	in := func(capability, env string) string {
		return `{"capability_id":"` + capability + `","env":"` + env + `","data_label":"INTERNAL","tenant_risk":"low","qos_class":"P2","tenant_id":"org.acme","correlation_id":"c-1","request":{}}`
	}
	write(t, dir, "golden.json", `{"tests": [
	  {"name": "dev routes", "input": `+in("cap.doc.summarize", "dev")+`, "expected_rule_id": "rr_doc_summarize_dev"},
	  {"name": "nothing", "input": `+in("cap.nothing", "dev")+`, "expected_denied": true, "expected_rule_id": "NO_MATCH"},
	  {"name": "wrong", "input": `+in("cap.doc.summarize", "prod")+`, "expected_rule_id": "rr_doc_summarize_dev"}
	]}`)
	args := []string{"validate", "--registry-dir", filepath.Join(routedir, "enrolled"), "rules.json", "golden.json"}
	r := hall(t, dir, "", args...)
	if r.code != exitError || !strings.Contains(r.stdout, "FAIL wrong") || !strings.Contains(r.stdout, "2 passed, 1 failed") ||
		!strings.Contains(r.stdout, `matched_rule_id: want "rr_doc_summarize_dev", got "rr_doc_summarize_prod"`) {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "FAIL dev routes") || strings.Contains(r.stdout, "FAIL nothing") {
		t.Errorf("a passing PyHall fixture failed:\n%s", r.stdout)
	}
	r = hall(t, dir, "", append(args, "--json")...)
	var res validateResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if r.code != exitError || res.Passed != 2 || res.Failed != 1 || res.OK || res.Failures[0]["name"] != "wrong" {
		t.Errorf("exit %d, %+v", r.code, res)
	}
	// A misspelt expectation is refused, not ignored.
	write(t, dir, "typo.json", `{"tests": [{"name": "x", "input": `+in("cap.doc.summarize", "dev")+`, "expect_rule_id": "rr"}]}`)
	if r := hall(t, dir, "", "validate", "rules.json", "typo.json"); r.code != exitError || !strings.Contains(r.stderr, "unknown member(s) expect_rule_id") {
		t.Errorf("exit %d stderr %s", r.code, r.stderr)
	}
}

// TestValidateWarningsOnStderr: warnings and shadowed rules are problems,
// on standard error; standard output keeps the summary.
func TestValidateWarningsOnStderr(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "rules.json", `{"rules":[
	  {"rule_id":"a","match":{"capability_id":"cap.x","env":{"eq":"dev"}},"decision":{}},
	  {"rule_id":"b","match":{"capability_id":"cap.y"},"decision":{}},
	  {"rule_id":"c","match":{"capability_id":"cap.y"},"decision":{}}]}`)
	r := hall(t, dir, "", "validate", "rules.json")
	if strings.Contains(r.stdout, "warning") || strings.Contains(r.stdout, "shadowed by") {
		t.Errorf("warnings on standard output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "hall: warning: rules.json") || !strings.Contains(r.stderr, "rule c is shadowed by rule b") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
}
