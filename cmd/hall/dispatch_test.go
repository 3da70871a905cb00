package main

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wcphall/hall/internal/wasmmod"
	"github.com/wcphall/hall/internal/wasmtest"

	_ "modernc.org/sqlite" // to tamper with the ledger file in tests
)

var (
	pluginOnce sync.Map // name → *pluginBuild
)

type pluginBuild struct {
	once sync.Once
	path string
	err  error
}

// plugin builds plugins/<name> to .wasm once per test binary.
func plugin(t *testing.T, name string) string {
	t.Helper()
	v, _ := pluginOnce.LoadOrStore(name, &pluginBuild{})
	b := v.(*pluginBuild)
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "hall-plugin")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, name+".wasm")
		b.err = wasmtest.BuildTo("../../plugins/"+name, b.path)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// wat compiles a WebAssembly text module with wat2wasm.
func wat(t *testing.T, src string) string {
	t.Helper()
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatal("wat2wasm not found: install wabt (apt-get install -y wabt); .ci/run does")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(bin, in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	return out
}

// hallDir is a working directory with the quick start's rules.
func hallDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(quickstart, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "rules.json", string(data))
	return dir
}

// hallIn runs hall in dir with HALL_HOME = dir/.hall, so that successive
// commands share the state directory.
func hallIn(t *testing.T, dir, stdin string, env []string, args ...string) result {
	t.Helper()
	return hallWith(t, dir, stdin, append([]string{"HALL_HOME=" + filepath.Join(dir, ".hall")}, env...), args...)
}

func mustOK(t *testing.T, r result, what string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", what, r.code, r.stdout, r.stderr)
	}
}

const document = `The Hall governs workers that run in a WebAssembly sandbox. Every request names a capability, and routing rules decide which worker species may serve it. The sandbox grants a worker only the privileges its registry record declares. No network is reachable unless the record lists a host. Files can be written only under the directories the record names. Every dispatch leaves an evidence receipt that is hashed, chained and signed. Operators verify the receipt chain with a single command. The weather was pleasant on the day this was written.`

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func enrollPlugin(t *testing.T, dir, name string, extra ...string) result {
	t.Helper()
	rec, err := filepath.Abs("../../plugins/" + name + "/registry_record.json")
	if err != nil {
		t.Fatal(err)
	}
	return hallIn(t, dir, "", nil, append([]string{"enroll", plugin(t, name), "--record", rec}, extra...)...)
}

func TestEnrollRunReceiptsAuditReplay(t *testing.T) {
	dir := hallDir(t)
	r := enrollPlugin(t, dir, "summarizer")
	mustOK(t, r, "enroll")
	module, err := os.ReadFile(plugin(t, "summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	digest := sha(module)
	if !strings.Contains(r.stdout, "enrolled org.acme.summarizer (wrk.doc.summarizer)") || !strings.Contains(r.stdout, digest) {
		t.Fatalf("enroll output:\n%s", r.stdout)
	}
	var rec map[string]any
	data, err := os.ReadFile(filepath.Join(dir, "enrolled", "org.acme.summarizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rec); err != nil || rec["artifact_hash"] != digest {
		t.Fatalf("enrolled record artifact_hash = %v (err %v), want %s", rec["artifact_hash"], err, digest)
	}

	r = hallIn(t, dir, document, nil, "run", "cap.doc.summarize", "--tenant", "org.acme", "--correlation-id", "corr-1")
	mustOK(t, r, "run")
	output := r.stdout
	summary := strings.TrimSpace(output)
	if summary == "" || len(summary) >= len(document) {
		t.Fatalf("summary is empty or not shorter than the document: %q", summary)
	}
	for _, s := range strings.SplitAfter(summary, ". ") {
		if !strings.Contains(document, strings.TrimSpace(s)) {
			t.Errorf("summary sentence %q is not from the document", s)
		}
	}
	if !strings.HasPrefix(r.stderr, "hall: ok org.acme.summarizer summarize in ") || !strings.Contains(r.stderr, "correlation corr-1") {
		t.Fatalf("outcome line: %q", r.stderr)
	}

	// A dry run decides but runs nothing and leaves no receipt.
	r = hallIn(t, dir, document, nil, "run", "cap.doc.summarize", "--tenant", "org.acme", "--dry-run", "--correlation-id", "corr-dry")
	mustOK(t, r, "dry run")
	if r.stdout != "" || !strings.Contains(r.stderr, "dry run") {
		t.Fatalf("dry run: stdout %q stderr %q", r.stdout, r.stderr)
	}

	r = hallIn(t, dir, "", nil, "receipts", "--json")
	mustOK(t, r, "receipts")
	var rs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
		t.Fatalf("receipts --json: %v\n%s", err, r.stdout)
	}
	if len(rs) != 1 {
		t.Fatalf("want 1 receipt (the dry run leaves none), got %d", len(rs))
	}
	rc := rs[0]
	for k, want := range map[string]any{
		"input_hash": sha([]byte(document)), "output_hash": sha([]byte(output)), "artifact_hash": digest,
		"worker_id": "org.acme.summarizer", "tenant_id": "org.acme", "outcome": "ok", "policy_decision": "ALLOW",
		"capability_id": "cap.doc.summarize", "prev_receipt_hash": nil, "correlation_id": "corr-1",
	} {
		if rc[k] != want {
			t.Errorf("receipt %s = %v, want %v", k, rc[k], want)
		}
	}
	id, _ := rc["receipt_id"].(string)

	r = hallIn(t, dir, "", nil, "receipts", "show", id)
	mustOK(t, r, "receipts show")
	if !strings.Contains(r.stdout, `"receipt_hash": "sha256:`) || !strings.Contains(r.stdout, `"signature": "`) {
		t.Fatalf("receipts show:\n%s", r.stdout)
	}
	r = hallIn(t, dir, "", nil, "audit", "verify")
	mustOK(t, r, "audit verify")
	if !strings.Contains(r.stdout, "verified 1 receipt(s) in 1 stream(s)") {
		t.Fatalf("audit verify: %s", r.stdout)
	}
	r = hallIn(t, dir, "", nil, "keys", "show")
	mustOK(t, r, "keys show")
	if !strings.Contains(r.stdout, "key id: ed25519:") || !strings.Contains(r.stdout, "BEGIN PUBLIC KEY") {
		t.Fatalf("keys show: %s", r.stdout)
	}
	keyDir := t.TempDir()
	write(t, keyDir, "hall.pub", r.stdout[strings.Index(r.stdout, "-----BEGIN"):])
	mustOK(t, hallIn(t, dir, "", nil, "audit", "verify", "--public-key", filepath.Join(keyDir, "hall.pub")), "audit verify --public-key")

	r = hallIn(t, dir, document, nil, "replay", id)
	mustOK(t, r, "replay")
	if !strings.HasPrefix(r.stdout, "MATCH receipt "+id) || !strings.Contains(r.stdout, "replay receipt:  ") {
		t.Fatalf("replay: %s", r.stdout)
	}
	r = hallIn(t, dir, document+" changed", nil, "replay", id)
	if r.code != exitError || !strings.Contains(r.stderr, "replay needs the same input") {
		t.Fatalf("replay with other input: exit %d %s", r.code, r.stderr)
	}
	// The replay was a dispatch: it has a receipt of its own, linking the
	// one it replayed (issue 21); the refused one (other input) has none.
	r = hallIn(t, dir, "", nil, "audit", "export")
	mustOK(t, r, "audit export")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], id) || !strings.Contains(lines[1], `"replay_of":"`+id+`"`) {
		t.Fatalf("export, want the dispatch's receipt and the replay's linking it:\n%s", r.stdout)
	}
	mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "audit verify after replay")

	// Under rules that no longer route the capability the replay is
	// decided, denied (exit 2) and runs nothing.
	write(t, dir, "rules.json", `{"rules": []}`)
	r = hallIn(t, dir, document, nil, "replay", id)
	if r.code != exitDenied || !strings.Contains(r.stderr, "replay DENIED DENY_") || r.stdout != "" {
		t.Fatalf("replay under empty rules: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = hallIn(t, dir, "", nil, "audit", "export")
	mustOK(t, r, "audit export")
	if n := len(strings.Split(strings.TrimSpace(r.stdout), "\n")); n != 2 {
		t.Fatalf("a denied replay left a receipt: %d lines", n)
	}
}

func TestRunTamperedModuleIsNotRun(t *testing.T) {
	for _, cfg := range []struct{ name, hallJSON string }{
		{"strict defaults (attestation)", ""},
		{"attestation off", `{"require_worker_attestation": false}`},
	} {
		t.Run(cfg.name, func(t *testing.T) {
			dir := hallDir(t)
			if cfg.hallJSON != "" {
				write(t, dir, "hall.json", cfg.hallJSON)
			}
			mustOK(t, enrollPlugin(t, dir, "summarizer"), "enroll")
			module, _ := os.ReadFile(plugin(t, "summarizer"))
			stored := filepath.Join(dir, ".hall", "artifacts", "sha256", strings.TrimPrefix(sha(module), "sha256:")+".wasm")
			if err := os.Chmod(stored, 0o600); err != nil {
				t.Fatal(err)
			}
			tampered := append([]byte(nil), module...)
			tampered[len(tampered)-1] ^= 0xff
			if err := os.WriteFile(stored, tampered, 0o600); err != nil {
				t.Fatal(err)
			}
			r := hallIn(t, dir, document, nil, "run", "cap.doc.summarize", "--tenant", "org.acme")
			if r.code != exitDenied || !strings.Contains(r.stderr, "DENIED DENY_WORKER_TAMPERED") || r.stdout != "" {
				t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
			r = hallIn(t, dir, "", nil, "receipts", "--json")
			if r.code != 0 || strings.TrimSpace(r.stdout) != "[]" {
				t.Fatalf("a refused dispatch left receipts: %s %s", r.stdout, r.stderr)
			}
		})
	}
}

func TestRunDeniedRunsNothing(t *testing.T) {
	dir := hallDir(t)
	mustOK(t, enrollPlugin(t, dir, "summarizer"), "enroll")
	r := hallIn(t, dir, document, nil, "run", "cap.doc.summarize", "--tenant", "org.acme", "--env", "prod", "--data-label", "RESTRICTED")
	if r.code != exitDenied || r.stdout != "" || !strings.Contains(r.stderr, "hall: DENIED DENY_") {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = hallIn(t, dir, "x", nil, "run", "cap.nothing", "--tenant", "org.acme")
	if r.code != exitDenied || !strings.Contains(r.stderr, "DENY_NO_MATCHING_RULE") {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
}

func TestEnrollRefusesRecordForOtherBytes(t *testing.T) {
	dir := hallDir(t)
	src, _ := os.ReadFile("../../plugins/summarizer/registry_record.json")
	var rec map[string]any
	if err := json.Unmarshal(src, &rec); err != nil {
		t.Fatal(err)
	}
	rec["artifact_hash"] = sha([]byte("other bytes"))
	rec["risk_tier"] = "extreme"
	b, _ := json.Marshal(rec)
	write(t, dir, "rec.json", string(b))
	r := hallIn(t, dir, "", nil, "enroll", plugin(t, "summarizer"), "--record", "rec.json")
	if r.code != exitError || !strings.Contains(r.stderr, "rec.json: risk_tier") {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	rec["risk_tier"] = "low"
	b, _ = json.Marshal(rec)
	write(t, dir, "rec.json", string(b))
	r = hallIn(t, dir, "", nil, "enroll", plugin(t, "summarizer"), "--record", "rec.json")
	if r.code != exitError || !strings.Contains(r.stderr, "rec.json: artifact_hash: ") || !strings.Contains(r.stderr, "other bytes") {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "enrolled")); !os.IsNotExist(err) {
		t.Fatalf("a refused enrollment wrote enrolled/: %v", err)
	}
}

func TestEnrollUnroutedCapabilityAndAddRule(t *testing.T) {
	dir := hallDir(t)
	// Members the Hall does not know survive the rewrite of rules.json.
	write(t, dir, "rules.json", `{"x_owner": "platform-team", "rules": [{"rule_id": "sum", "x_ticket": "GOV-12",
	  "match": {"capability_id": "cap.doc.summarize"}, "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.doc.summarizer"}]}}]}`)
	r := enrollPlugin(t, dir, "redactor")
	mustOK(t, r, "enroll")
	if !strings.Contains(r.stderr, "no rule in rules.json routes cap.doc.redact to wrk.doc.redactor") {
		t.Fatalf("no warning about the unrouted capability: %q", r.stderr)
	}
	r = hallIn(t, dir, "mail me at jane@example.com", nil, "run", "cap.doc.redact", "--tenant", "org.acme")
	if r.code != exitDenied || !strings.Contains(r.stderr, "DENY_NO_MATCHING_RULE") {
		t.Fatalf("fail-closed expected: exit %d %q", r.code, r.stderr)
	}
	r = enrollPlugin(t, dir, "redactor", "--add-rule")
	mustOK(t, r, "enroll --add-rule")
	if !strings.Contains(r.stdout, "added rr_doc_redact_dev_enrolled (dev only)") {
		t.Fatalf("enroll --add-rule: %s", r.stdout)
	}
	r = hallIn(t, dir, "mail me at jane@example.com", nil, "run", "cap.doc.redact", "--tenant", "org.acme")
	mustOK(t, r, "run after --add-rule")
	if strings.Contains(r.stdout, "jane@example.com") {
		t.Fatalf("email not redacted: %q", r.stdout)
	}
	r = hallIn(t, dir, "x", nil, "run", "cap.doc.redact", "--tenant", "org.acme", "--env", "stage")
	if r.code != exitDenied {
		t.Fatalf("the added rule must be dev only; stage: exit %d", r.code)
	}
	mustOK(t, hallIn(t, dir, "", nil, "validate", "rules.json"), "validate after --add-rule")
	rules, err := os.ReadFile(filepath.Join(dir, "rules.json"))
	if err != nil || !strings.Contains(string(rules), `"x_owner": "platform-team"`) || !strings.Contains(string(rules), `"x_ticket": "GOV-12"`) {
		t.Fatalf("unknown members lost by --add-rule (%v):\n%s", err, rules)
	}
}

func TestEnrollReplaceSaysSo(t *testing.T) {
	dir := hallDir(t)
	mustOK(t, enrollPlugin(t, dir, "summarizer"), "enroll")
	module, _ := os.ReadFile(plugin(t, "summarizer"))
	// Other bytes, same record: a custom section changes the digest, not the code.
	other, err := wasmmod.SetCustomSection(module, "hall.test", []byte("v2"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "v2.wasm", string(other))
	rec, _ := filepath.Abs("../../plugins/summarizer/registry_record.json")
	r := hallIn(t, dir, "", nil, "enroll", "v2.wasm", "--record", rec)
	mustOK(t, r, "re-enroll")
	if !strings.Contains(r.stdout, "replaced:  the previous module "+sha(module)) {
		t.Fatalf("re-enroll output: %s", r.stdout)
	}
	r = hallIn(t, dir, document, nil, "run", "cap.doc.summarize", "--tenant", "org.acme", "--json")
	mustOK(t, r, "run v2")
	if !strings.Contains(r.stdout, `"artifact_hash": "`+sha(other)+`"`) {
		t.Fatalf("the decision does not name the new module: %s", r.stdout)
	}
}

const loopWAT = `(module
  (memory (export "memory") 1)
  (func (export "run") (result i32)
    (loop $forever (br $forever))
    (i32.const 0)))`

func TestRunRunawayWorkerStoppedAndRecorded(t *testing.T) {
	dir := hallDir(t)
	write(t, dir, "rules.json", `{"rules":[{"rule_id":"loop","match":{"capability_id":"cap.test.loop"},"decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.test.loop"}]}}]}`)
	write(t, dir, "loop.json", `{"worker_id":"org.acme.loop","worker_species_id":"wrk.test.loop","capabilities":["cap.test.loop"],"risk_tier":"low","limits":{"timeout_ms":300}}`)
	write(t, dir, "hall.json", `{"enforce_allowed_environments": true}`)
	mustOK(t, hallIn(t, dir, "", nil, "enroll", wat(t, loopWAT), "--record", "loop.json"), "enroll loop")
	r := hallIn(t, dir, "", nil, "run", "cap.test.loop", "--tenant", "org.acme")
	if r.code != exitWorkerFailed || !strings.Contains(r.stderr, "hall: LIMIT_TIMEOUT org.acme.loop") {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	r = hallIn(t, dir, "", nil, "receipts", "--json")
	mustOK(t, r, "receipts")
	if !strings.Contains(r.stdout, `"outcome": "LIMIT_TIMEOUT"`) {
		t.Fatalf("the failed dispatch has no receipt: %s", r.stdout)
	}
	r = hallIn(t, dir, "", nil, "run", "cap.test.loop", "--tenant", "org.acme", "--timeout", "50ms")
	if r.code != exitWorkerFailed || !strings.Contains(r.stderr, "LIMIT_TIMEOUT") {
		t.Fatalf("--timeout: exit %d stderr %q", r.code, r.stderr)
	}
	mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "audit verify")
}

// An unmodified Extism plugin written by someone else (count_vowels, in
// Rust, shipped with the Extism Go SDK) enrolls with a record and runs.
func TestRunUnmodifiedExtismPlugin(t *testing.T) {
	dir := hallDir(t)
	write(t, dir, "rules.json", `{"rules":[{"rule_id":"vowels","match":{"capability_id":"cap.text.count-vowels","env":{"in":["dev"]}},
	  "decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.text.vowels"}]}}]}`)
	write(t, dir, "vowels.json", `{"worker_id":"org.extism.count-vowels","worker_species_id":"wrk.text.vowels",
	  "capabilities":["cap.text.count-vowels"],"risk_tier":"low","entrypoints":{"cap.text.count-vowels":"count_vowels"},
	  "privilege_envelope":{"network_egress":"none"}}`)
	wasm, err := filepath.Abs("../../testdata/sandbox/count_vowels.wasm")
	if err != nil {
		t.Fatal(err)
	}
	mustOK(t, hallIn(t, dir, "", nil, "enroll", wasm, "--record", "vowels.json"), "enroll count_vowels")
	r := hallIn(t, dir, "Hello, governed world", nil, "run", "cap.text.count-vowels", "--tenant", "org.acme")
	mustOK(t, r, "run count_vowels")
	var out struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Count != 6 {
		t.Fatalf("output %q (%v), want a count of 6 vowels", r.stdout, err)
	}
}

// hall audit verify finds a receipt altered, deleted or reordered in the
// database file behind the Hall's back, names it and exits non-zero.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name string
		sql  []string
	}{
		{"altered output hash", []string{`UPDATE receipts SET body = replace(body, '"outcome":"ok"', '"outcome":"OK"') WHERE seq = 2`}},
		{"deleted receipt", []string{`DELETE FROM receipts WHERE seq = 2`}},
		{"forged signature", []string{`UPDATE receipts SET signature = (SELECT signature FROM receipts WHERE seq = 1) WHERE seq = 2`}},
		{"swapped receipts", []string{
			`UPDATE receipts SET seq = -1 WHERE seq = 1`, `UPDATE receipts SET seq = 1 WHERE seq = 2`, `UPDATE receipts SET seq = 2 WHERE seq = -1`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := hallDir(t)
			mustOK(t, enrollPlugin(t, dir, "summarizer"), "enroll")
			var ids []string
			for range 3 {
				mustOK(t, hallIn(t, dir, document, nil, "run", "cap.doc.summarize", "--tenant", "org.acme"), "run")
			}
			r := hallIn(t, dir, "", nil, "receipts", "--json")
			var rs []map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil || len(rs) != 3 {
				t.Fatalf("receipts: %v %s", err, r.stdout)
			}
			for i := len(rs) - 1; i >= 0; i-- { // newest first → chain order
				ids = append(ids, rs[i]["receipt_id"].(string))
			}
			mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "verify before tampering")

			db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", "hall.db"))
			if err != nil {
				t.Fatal(err)
			}
			for _, q := range append([]string{"DROP TRIGGER receipts_no_update", "DROP TRIGGER receipts_no_delete"}, tc.sql...) {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			db.Close()

			r = hallIn(t, dir, "", nil, "audit", "verify")
			if r.code != exitError || !strings.Contains(r.stdout, "BROKEN tenant org.acme: receipt ") || !strings.Contains(r.stderr, "audit failed") {
				t.Fatalf("tampering not reported: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			named := false
			for _, id := range ids {
				named = named || strings.Contains(r.stdout, id)
			}
			if !named {
				t.Fatalf("the break names no receipt of the chain %v:\n%s", ids, r.stdout)
			}
		})
	}
}

func TestReceiptsFilters(t *testing.T) {
	dir := hallDir(t)
	mustOK(t, enrollPlugin(t, dir, "summarizer"), "enroll")
	for _, tenant := range []string{"org.a", "org.b", "org.b"} {
		mustOK(t, hallIn(t, dir, document, nil, "run", "cap.doc.summarize", "--tenant", tenant, "--correlation-id", "corr-"+tenant), "run")
	}
	count := func(args ...string) int {
		t.Helper()
		r := hallIn(t, dir, "", nil, append([]string{"receipts", "--json"}, args...)...)
		mustOK(t, r, "receipts")
		var rs []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		return len(rs)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 3},
		{[]string{"--tenant", "org.b"}, 2},
		{[]string{"--correlation-id", "corr-org.a"}, 1},
		{[]string{"--worker", "org.acme.summarizer", "--limit", "2"}, 2},
		{[]string{"--worker", "org.acme.other"}, 0},
		{[]string{"--since", "1h"}, 3},
	} {
		if got := count(tc.args...); got != tc.want {
			t.Errorf("receipts %v: %d, want %d", tc.args, got, tc.want)
		}
	}
	r := hallIn(t, dir, "", nil, "receipts", "show", "01890000-0000-7000-8000-000000000000")
	if r.code != exitError || !strings.Contains(r.stderr, "no receipt 01890000-0000-7000-8000-000000000000") {
		t.Fatalf("show unknown: exit %d %q", r.code, r.stderr)
	}
	r = hallIn(t, t.TempDir(), "", nil, "audit", "verify")
	if r.code != exitError || !strings.Contains(r.stderr, "no Hall here") {
		t.Fatalf("verify without a ledger: exit %d %q", r.code, r.stderr)
	}
}
