package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMessagesNewcomer is the newcomer's list of messages (issue 27), each
// through the real binary: flag typos got no suggestion; a typo inside
// hall.json's limits listed the top-level keys; --since yesterday said
// "parse error"; LIMIT_MEMORY repeated its prefix and never said how to
// raise the limit; output without a trailing newline ran into the outcome
// line.
func TestMessagesNewcomer(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "rules.json", `{"rules": []}`)

	if r := hallIn(t, dir, "", nil, "run", "--tenat", "org.acme", "cap.x"); r.code != exitError || !strings.Contains(r.stderr, "unknown flag --tenat; did you mean --tenant?") {
		t.Errorf("flag typo: exit %d %s", r.code, r.stderr)
	}

	write(t, dir, "hall.json", `{"limits": {"memroy_mb": 8}}`)
	r := hallIn(t, dir, "", nil, "route", "--capability", "cap.x")
	if r.code != exitError || !strings.Contains(r.stderr, `limits.memroy_mb: unknown key; did you mean "limits.memory_mb"?`) || !strings.Contains(r.stderr, "keys of limits: ") || strings.Contains(r.stderr, "enforce_correlation_id") {
		t.Errorf("nested hall.json typo: exit %d %s", r.code, r.stderr)
	}
	if err := os.Remove(filepath.Join(dir, "hall.json")); err != nil {
		t.Fatal(err)
	}

	// A worker that grows its memory past the limit, and Extism's
	// count_vowels, whose output has no trailing newline.
	write(t, dir, "hog.wat", `(module (memory (export "memory") 1)
	  (func (export "run") (result i32)
	    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
	    unreachable))`)
	if out, err := exec.Command("wat2wasm", filepath.Join(dir, "hog.wat"), "-o", filepath.Join(dir, "hog.wasm")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v %s", err, out)
	}
	write(t, dir, "hog.json", `{"worker_id": "org.test.hog", "worker_species_id": "wrk.test.hog", "capabilities": ["cap.test.hog"], "risk_tier": "low", "allowed_environments": ["dev"], "limits": {"memory_mb": 4}}`)
	// Progress of a step past HALL_PROGRESS_AFTER (1 s by default; 0 here,
	// so that the test does not depend on how long the step takes).
	r = hallIn(t, dir, "", []string{"HALL_PROGRESS_AFTER=0"}, "enroll", "hog.wasm", "--record", "hog.json", "--add-rule")
	mustOK(t, r, "enroll hog")
	if !strings.Contains(r.stderr, "hall: enrolling hog.wasm (validating, storing and compiling the module)…") || !strings.Contains(r.stderr, "hall: enrolling hog.wasm (validating, storing and compiling the module): done in") {
		t.Errorf("enroll announces no progress:\n%s", r.stderr)
	}
	r = hallIn(t, dir, "", nil, "run", "cap.test.hog", "--tenant", "org.acme")
	if r.code != exitWorkerFailed || strings.Count(r.stderr, "LIMIT_MEMORY") != 1 || strings.Count(r.stderr, "org.test.hog") != 1 ||
		!strings.Contains(r.stderr, `"limits": {"memory_mb": N} in the worker's registry record`) {
		t.Errorf("LIMIT_MEMORY: exit %d\n%s", r.code, r.stderr)
	}

	src, err := os.ReadFile(extismWasm(t, "count_vowels.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "cv.wasm", string(src))
	mustOK(t, hallIn(t, dir, "", nil, "enroll", "cv.wasm", "--record", filepath.Join(repoRoot, "testdata", "extism", "count_vowels.json"), "--add-rule"), "enroll count_vowels")
	cmd := exec.Command("bash", "-c", "echo -n hello | hall run cap.extism.count-vowels --tenant org.acme 2>&1")
	cmd.Dir, cmd.Env = dir, testEnv("HALL_HOME="+filepath.Join(dir, ".hall"))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "}\nhall: ok org.extism.count-vowels") {
		t.Errorf("output without a newline, 2>&1: %v\n%q", err, out)
	}

	for _, since := range []string{"1h", "2d", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339), time.Now().UTC().Format(time.DateOnly)} {
		if r := hallIn(t, dir, "", nil, "receipts", "--since", since); r.code != 0 {
			t.Errorf("receipts --since %s: exit %d %s", since, r.code, r.stderr)
		}
	}
	if r := hallIn(t, dir, "", nil, "receipts", "--since", "yesterday"); r.code != exitError || !strings.Contains(r.stderr, "RFC 3339") || !strings.Contains(r.stderr, "2d") {
		t.Errorf("receipts --since yesterday: exit %d %s", r.code, r.stderr)
	}
}
