package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/wcphall/hall/internal/ledger"
)

// hostile is what a tenant can put in its ids to attack an operator's
// terminal: clear the screen, retitle the window, return to the start of
// the line, fake a table row, reverse the text direction.
const hostile = "t\x1b[2J\x1b]0;pwned\x07\r\nFAKE ROW\u2028\u202e\x7f\u009b<&>\U0001F600"

// trickyHome writes receipts whose tenant, correlation id, worker and
// error strings are hostile into dir/.hall.
func trickyHome(t *testing.T, dir string) []*ledger.Receipt {
	t.Helper()
	s, err := ledger.Open(filepath.Join(dir, ".hall"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rs []*ledger.Receipt
	for i := range 2 {
		r := &ledger.Receipt{
			TenantID: "org." + hostile, CorrelationID: "corr-" + hostile, DecisionID: "dec-" + hostile,
			DispatchedAt: time.Now(), WorkerID: "org.acme." + hostile, CapabilityID: "cap.doc.summarize",
			PolicyDecision: "ALLOW", ArtifactHash: evDigest("module"), RequestHash: evDigest("request"),
			InputHash: evDigest("input"), Outcome: "WORKER_TRAP", ErrorMessage: "trap " + hostile,
			RecordDigest: evDigest("record"), Envelope: json.RawMessage(`{"filesystem_reads":["/x` + "\u2028\\u001b[2J" + `"]}`),
		}
		if i == 1 {
			r.Outcome = "ok"
		}
		if err := s.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

// assertTerminalSafe fails when out holds a byte or character a terminal
// would act on, other than the newlines the Hall itself writes.
func assertTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == '\u202e') {
			t.Errorf("%s prints %U raw:\n%q", what, r, out)
			return
		}
	}
	if strings.Contains(out, "\nFAKE ROW") {
		t.Errorf("%s lets a tenant string start a line of its own:\n%s", what, out)
	}
}

// TestCLIEscapesTenantStrings: every command that prints tenant-supplied
// strings as a table or human text escapes control characters (issue 10,
// item 9), run with the real binary.
func TestCLIEscapesTenantStrings(t *testing.T) {
	dir := t.TempDir()
	rs := trickyHome(t, dir)

	r := hallIn(t, dir, "", nil, "receipts")
	mustOK(t, r, "receipts")
	assertTerminalSafe(t, "hall receipts", r.stdout)
	if !strings.Contains(r.stdout, `org.t\x1b[2J\x1b]0;pwned\x07\x0d\x0aFAKE ROW\u2028\u202e\x7f\x9b<&>😀`) {
		t.Errorf("hall receipts does not show the escaped tenant:\n%s", r.stdout)
	}

	r = hallIn(t, dir, "", nil, "receipts", "--json")
	mustOK(t, r, "receipts --json")
	assertTerminalSafe(t, "hall receipts --json", r.stdout)
	var listed []ledger.Receipt
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 2 || listed[0].TenantID != rs[0].TenantID {
		t.Errorf("receipts --json does not read back as the receipts (%v):\n%s", err, r.stdout)
	}

	r = hallIn(t, dir, "", nil, "receipts", "show", rs[0].ReceiptID)
	mustOK(t, r, "receipts show")
	human, _, _ := strings.Cut(r.stdout, "signed receipt:")
	assertTerminalSafe(t, "hall receipts show", human)
	for _, want := range []string{`error          trap t\x1b[2J`, `correlation    corr-t\x1b[2J`, `"/x\u2028\u001b[2J"`} {
		if !strings.Contains(human, want) {
			t.Errorf("receipts show lacks %q:\n%s", want, human)
		}
	}
	// The signed receipt below is JSON, whose escapes cover the rest.
	assertTerminalSafe(t, "hall receipts show (JSON part)", r.stdout)

	// A break names the tenant; audit verify escapes it too.
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"DROP TRIGGER receipts_no_delete", "DELETE FROM receipts WHERE seq = 2"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	r = hallIn(t, dir, "", nil, "audit", "verify")
	if r.code != exitError || !strings.Contains(r.stdout, "BROKEN tenant org.t\\x1b[2J") {
		t.Fatalf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	assertTerminalSafe(t, "hall audit verify", r.stdout+r.stderr)

	r = hallIn(t, dir, "", nil, "receipts", "show", "no\x1b[2Jsuch")
	if r.code != exitError {
		t.Fatalf("receipts show of a missing id: exit %d", r.code)
	}
	assertTerminalSafe(t, "hall receipts show (missing)", r.stderr)
}

// TestEvidenceCLI drives the evidence commands of issue 15 with the real
// binary: a denied decision is evidence, a checkpoint in a witness
// directory catches truncation, verification works across a key rotation
// with the published key set, and the exported bundle verifies with the
// independent Node verifier.
func TestEvidenceCLI(t *testing.T) {
	dir, witness := t.TempDir(), t.TempDir()
	rules, err := os.ReadFile(filepath.Join(quickstart, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "rules.json", string(rules))
	// Receipts as older Halls wrote them (no snapshot) come before the
	// first snapshot is recorded.
	evidenceHome(t, dir)
	r := hallIn(t, dir, "", nil, "route", "--capability", "cap.nothing", "--tenant", "org.acme", "--correlation-id", "c-denied")
	if r.code != exitDenied {
		t.Fatalf("route: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = hallIn(t, dir, "", nil, "audit", "verify")
	mustOK(t, r, "audit verify")
	if !strings.Contains(r.stdout, "1 decision entr(ies) in 1 chain(s)") {
		t.Errorf("audit verify: %s", r.stdout)
	}

	r = hallIn(t, dir, "", nil, "audit", "checkpoint", "--dir", witness)
	mustOK(t, r, "audit checkpoint")
	if !strings.Contains(r.stdout, "checkpoint cp_") || !strings.Contains(r.stdout, witness) {
		t.Errorf("audit checkpoint: %s", r.stdout)
	}
	r = hallIn(t, dir, "", nil, "audit", "verify", "--checkpoints", witness)
	mustOK(t, r, "audit verify --checkpoints")

	r = hallIn(t, dir, "", nil, "keys", "rotate")
	mustOK(t, r, "keys rotate")
	r = hallIn(t, dir, "", nil, "route", "--capability", "cap.nothing", "--tenant", "org.acme", "--correlation-id", "c-denied-2")
	if r.code != exitDenied {
		t.Fatalf("route after rotation: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = hallIn(t, dir, "", nil, "keys", "show", "--all", "--json")
	mustOK(t, r, "keys show --all --json")
	var ks ledger.KeySet
	if err := json.Unmarshal([]byte(r.stdout), &ks); err != nil || len(ks.Keys) != 2 || ks.Keys[0].ValidUntil == "" {
		t.Fatalf("key set %+v (%v):\n%s", ks, err, r.stdout)
	}
	keyset := filepath.Join(t.TempDir(), "keys.json")
	write(t, filepath.Dir(keyset), "keys.json", r.stdout)
	r = hallIn(t, dir, "", nil, "audit", "verify", "--public-key", keyset, "--checkpoints", witness)
	mustOK(t, r, "audit verify across the rotation")
	if !strings.Contains(r.stdout, "2 decision entr(ies)") {
		t.Errorf("audit verify: %s", r.stdout)
	}

	bundle := filepath.Join(t.TempDir(), "bundle")
	r = hallIn(t, dir, "", nil, "audit", "export", "--bundle", bundle)
	mustOK(t, r, "audit export --bundle")
	if script := nodeVerifierScript(t); script != "" {
		out, err := exec.Command("node", script, bundle, "--keys", keyset).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "verified") {
			t.Fatalf("node verifier: %v\n%s", err, out)
		}
	}

	// Delete the denied decision: audit verify reports it.
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM decisions WHERE correlation_id = 'c-denied'`); err != nil {
		t.Fatal(err)
	}
	r = hallIn(t, dir, "", nil, "audit", "verify")
	if r.code != exitError || !strings.Contains(r.stdout, `decisions: entry`) || !strings.Contains(r.stdout, "missing: deleted") {
		t.Fatalf("audit verify after deleting a denied decision: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestAuditVerifyDetectsTruncationAgainstCheckpoints: cutting the newest
// receipt and rolling its head back passes a plain verify and fails
// against the witness directory.
func TestAuditVerifyDetectsTruncationAgainstCheckpoints(t *testing.T) {
	dir, witness := t.TempDir(), t.TempDir()
	rs := evidenceHome(t, dir)
	mustOK(t, hallIn(t, dir, "", nil, "audit", "checkpoint", "--dir", witness), "audit checkpoint")
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"DROP TRIGGER receipts_no_delete", "DELETE FROM receipts WHERE seq = 3",
		"UPDATE stream_heads SET seq = 2, receipt_id = '" + rs[1].ReceiptID + "', receipt_hash = '" + rs[1].ReceiptHash + "'"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "audit verify without checkpoints")
	r := hallIn(t, dir, "", nil, "audit", "verify", "--checkpoints", witness)
	if r.code != exitError || !strings.Contains(r.stdout, "truncated or rolled back") {
		t.Fatalf("audit verify --checkpoints: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = hallIn(t, dir, "", nil, "audit", "verify", "--checkpoints", t.TempDir())
	if r.code != exitError || !strings.Contains(r.stderr, "holds no checkpoint") {
		t.Errorf("empty witness directory: exit %d %s", r.code, r.stderr)
	}
}

// nodeVerifierScript is the Node verifier's path, "" (skipped check) when
// Node or its packages are missing, unless HALL_REQUIRE_NODE_VERIFIER is
// set, where that fails the test.
func nodeVerifierScript(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../testdata/verifier-node")
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "canonicalize"))
	if nodeErr != nil || modErr != nil {
		if os.Getenv("HALL_REQUIRE_NODE_VERIFIER") != "" {
			t.Fatalf("the Node verifier needs node and `npm ci` in %s", dir)
		}
		t.Logf("Node verifier skipped: node %v, packages %v", nodeErr, modErr)
		return ""
	}
	return filepath.Join(dir, "verify.mjs")
}
