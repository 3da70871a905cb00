package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// extismWasm is a module of the Extism go-sdk's test plugins (built by
// Extism from Rust, Haskell, C…), from the module cache.
func extismWasm(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/extism/go-sdk").Output()
	if err != nil {
		t.Fatalf("locating the extism go-sdk module (run go mod download): %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "wasm", name)
}

// TestRecordsForAnyLanguage is the newcomer's report (issue 27): a Rust or
// JavaScript Extism plugin could not get an embedded record (hall build is
// Go-only; hall inspect said record: none), and no module could be called
// ad hoc. Extism's Rust count_vowels gets its record with hall record
// embed, is called with hall call (outside governance: no grants,
// nothing recorded, no state created), then enrolled without --record and
// run.
func TestRecordsForAnyLanguage(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(extismWasm(t, "count_vowels.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "count_vowels.wasm", string(src))
	copyFiles(t, filepath.Join(repoRoot, "testdata", "extism"), dir, "count_vowels.json")

	// Enrolling it as it is: nothing announced that does not happen.
	r := hallIn(t, dir, "", nil, "enroll", "count_vowels.wasm")
	if r.code != exitError || strings.Contains(r.stderr, "creat") || !strings.Contains(r.stderr, "hall record embed") {
		t.Fatalf("enroll of a module without a record: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "rules.json")); err == nil {
		t.Fatal("a refused enrollment created rules.json")
	}

	if err := os.RemoveAll(filepath.Join(dir, ".hall")); err != nil { // what the refused enroll opened
		t.Fatal(err)
	}
	r = hallWith(t, dir, "", nil, "record", "embed", "count_vowels.wasm", "--record", "count_vowels.json")
	if r.code != 0 {
		t.Fatalf("record embed: exit %d %s", r.code, r.stderr)
	}
	r = hallWith(t, dir, "", nil, "inspect", "count_vowels.wasm", "--json")
	var ins inspectResult
	if err := json.Unmarshal([]byte(r.stdout), &ins); err != nil || !strings.Contains(string(ins.Record), "org.extism.count-vowels") {
		t.Fatalf("inspect after record embed: %v %s", err, r.stdout)
	}
	// Embedding again replaces the section: still one record.
	if r := hallWith(t, dir, "", nil, "record", "embed", "count_vowels.wasm", "--record", "count_vowels.json"); r.code != 0 {
		t.Fatalf("record embed again: exit %d %s", r.code, r.stderr)
	}

	r = hallWith(t, dir, "", nil, "call", "count_vowels.wasm", "count_vowels", "--input", "hello world")
	if r.code != 0 || strings.TrimSpace(r.stdout) != `{"count":3,"total":3,"vowels":"aeiouAEIOU"}` || !strings.Contains(r.stderr, "outside governance") {
		t.Fatalf("call: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".hall")); err == nil {
		t.Fatal("hall record embed or hall call created a state directory")
	}
	if r := hallWith(t, dir, "", nil, "call", "count_vowels.wasm", "count_vowel"); r.code != exitError || !strings.Contains(r.stderr, "count_vowels") {
		t.Fatalf("call of a missing export: exit %d %s", r.code, r.stderr)
	}

	if r := hallIn(t, dir, "", nil, "enroll", "count_vowels.wasm", "--add-rule"); r.code != 0 {
		t.Fatalf("enroll with the embedded record: exit %d %s", r.code, r.stderr)
	}
	r = hallIn(t, dir, "hello world", nil, "run", "cap.extism.count-vowels", "--tenant", "org.acme")
	if r.code != 0 || !strings.HasPrefix(r.stdout, `{"count":3,`) {
		t.Fatalf("run: exit %d stdout %q stderr %s", r.code, r.stdout, r.stderr)
	}
}
