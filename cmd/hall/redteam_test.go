package main

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/ledger"
)

// Red-team regressions for issue 21's "Done when": an attacker with write
// access to the state directory can make the Hall decide or run nothing
// that hall audit verify does not report.

// noopHall is a folder with the noop worker enrolled under a dev rule and
// its state directory at dir/.hall; it returns the folder.
func noopHall(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("wat2wasm", "../../host/server/testdata/noop.wat", "-o", filepath.Join(dir, "noop.wasm")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	write(t, dir, "rules.json", `{"rules": []}`)
	rec, _ := filepath.Abs("../../host/server/testdata/noop.json")
	mustOK(t, hallIn(t, dir, "", nil, "enroll", "--record", rec, "--add-rule", "noop.wasm"), "enroll")
	return dir
}

// TestRedteamCompiledFormCacheIsEvidence: the Hall keeps the guarded
// (stack-bounded) form of every module it loads in .hall/cache, named by
// the SHA-256 of the enrolled module, and a fresh process takes that file
// as the code to run without checking where it came from. Replacing it
// with another module ran that module under the enrolled worker's name:
// the receipt names the enrolled artifact, and hall audit verify exited 0.
// The same holds for the merged form (merged-<sha256>.wasm) and for
// wazero's compilation cache beside them, which holds machine code the
// Hall executes (its entries carry only a CRC32).
func TestRedteamCompiledFormCacheIsEvidence(t *testing.T) {
	t.Skip("known hole: .hall/cache (guarded/merged wasm forms and wazero's machine code) is trusted without integrity; see the red-team report (move the cache out of the state directory or authenticate its entries)")
	dir := noopHall(t)
	mustOK(t, hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme"), "first run (fills the cache)")
	guarded, _ := filepath.Glob(filepath.Join(dir, ".hall", "cache", "guarded-v3-*.wasm"))
	if len(guarded) != 1 {
		t.Fatalf("guarded forms in the cache: %v", guarded)
	}
	write(t, dir, "pwn.wat", sayWAT("PWNED"))
	if out, err := exec.Command("wat2wasm", filepath.Join(dir, "pwn.wat"), "-o", guarded[0]).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	r := hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme")
	ran := strings.Contains(r.stdout, "PWNED")
	v := hallIn(t, dir, "", nil, "audit", "verify")
	if ran && v.code == 0 {
		t.Fatalf("a module written into .hall/cache ran as org.test.noop (stdout %q) and hall audit verify exited 0:\n%s", r.stdout, v.stdout)
	}
	if _, err := os.Stat(guarded[0]); err != nil {
		t.Fatal(err)
	}
}

// heldHall is noopHall with heldPolicy and one pending approval (held
// request of org.acme, correlation hold-rt); it returns the folder and
// the approval id.
func heldHall(t *testing.T) (dir, id string) {
	t.Helper()
	dir = noopHall(t)
	write(t, dir, "policy.json", heldPolicy)
	r := hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme", "--correlation-id", "hold-rt")
	i := strings.Index(r.stderr, "Pending approval apr_")
	if r.code != exitPending || i < 0 {
		t.Fatalf("held run: %d %s", r.code, r.stderr)
	}
	return dir, r.stderr[i+len("Pending approval ") : i+len("Pending approval ")+36]
}

// ledgerExec runs SQL statements on dir's ledger with database/sql, as an
// attacker with write access to the state directory does.
func ledgerExec(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestRedteamApprovalsRowDeleted: deleting the approvals row of a pending
// approval hid it from hall approvals list (and from expiry), and hall
// audit verify exited 0, although the chain records the approval and
// docs/EVIDENCE.md says a row disagreeing with the chain is reported.
func TestRedteamApprovalsRowDeleted(t *testing.T) {
	dir, id := heldHall(t)
	mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "audit verify before")
	ledgerExec(t, dir, "DELETE FROM approvals WHERE id = '"+id+"'")
	r := hallIn(t, dir, "", nil, "audit", "verify")
	if r.code != exitError || !strings.Contains(r.stdout, "approvals row "+id+" is missing") {
		t.Fatalf("audit verify after deleting the approvals row: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
