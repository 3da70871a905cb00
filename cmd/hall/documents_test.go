package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hall rules|config|policy get|set on the files of a folder: set
// validates, records a change and writes the file; get prints it back;
// an invalid document or a stale --if-match changes nothing.
func TestDocumentGetSetFiles(t *testing.T) {
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(quickstart, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "new-rules.json", string(rules))
	if r := hall(t, dir, "", "rules", "set", "new-rules.json"); r.code != 0 {
		t.Fatalf("rules set: %+v", r)
	}
	if r := hall(t, dir, "", "rules", "get"); r.code != 0 || r.stdout != string(rules) {
		t.Fatalf("rules get: %+v", r)
	}
	write(t, dir, "cfg.json", `{"default_tenant": "org.acme"}`)
	if r := hall(t, dir, "", "config", "set", "cfg.json"); r.code != 0 {
		t.Fatalf("config set: %+v", r)
	}
	got, err := os.ReadFile(filepath.Join(dir, "hall.json"))
	if err != nil || !strings.Contains(string(got), "org.acme") {
		t.Fatalf("hall.json after config set: %q %v", got, err)
	}
	write(t, dir, "bad.json", `{"bogus": 1}`)
	if r := hall(t, dir, "", "config", "set", "bad.json"); r.code == 0 || !strings.Contains(r.stderr, "bogus") {
		t.Fatalf("config set of an invalid configuration: %+v", r)
	}
	if r := hall(t, dir, "", "config", "set", "--if-match", "none", "cfg.json"); r.code == 0 || !strings.Contains(r.stderr, "PRECONDITION_FAILED") {
		t.Fatalf("config set with a stale --if-match: %+v", r)
	}
	if r := hall(t, dir, "", "config", "get"); r.code != 0 || !strings.Contains(r.stdout, "org.acme") {
		t.Fatalf("config get: %+v", r)
	}
	if r := hall(t, dir, "", "policy", "get"); r.code == 0 {
		t.Fatalf("policy get with no policy set: %+v", r)
	}
}
