package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/auth"
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
// the SHA-256 of the enrolled module, and a fresh process took that file
// as the code to run without checking where it came from. Replacing it
// with another module ran that module under the enrolled worker's name:
// the receipt named the enrolled artifact, and hall audit verify exited 0.
// The same held for the merged form and for wazero's compilation cache
// beside them, which holds machine code the Hall executes (its entries
// carry only a CRC32). Now each derived form carries an HMAC under a key
// derived from the signing key (a replaced entry is discarded, logged as
// altered and rebuilt from the verified module), and wazero's machine
// code is kept outside the state directory (Options.CompilationCacheDir).
func TestRedteamCompiledFormCacheIsEvidence(t *testing.T) {
	dir := noopHall(t)
	mustOK(t, hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme"), "first run (fills the cache)")
	guarded, _ := filepath.Glob(filepath.Join(dir, ".hall", "cache", "guarded-*.form"))
	if len(guarded) != 1 {
		t.Fatalf("guarded forms in the cache: %v", guarded)
	}
	if native, _ := filepath.Glob(filepath.Join(dir, ".hall", "*", "wazero-*")); len(native) != 0 {
		t.Fatalf("wazero's machine code is in the state directory: %v", native)
	}
	write(t, dir, "pwn.wat", sayWAT("PWNED"))
	if out, err := exec.Command("wat2wasm", filepath.Join(dir, "pwn.wat"), "-o", filepath.Join(dir, "pwn.wasm")).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	planted, err := os.ReadFile(filepath.Join(dir, "pwn.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(guarded[0], planted, 0o600); err != nil {
		t.Fatal(err)
	}
	r := hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme")
	ran := strings.Contains(r.stdout, "PWNED")
	v := hallIn(t, dir, "", nil, "audit", "verify")
	if ran && v.code == 0 {
		t.Fatalf("a module written into .hall/cache ran as org.test.noop (stdout %q) and hall audit verify exited 0:\n%s", r.stdout, v.stdout)
	}
	if ran {
		t.Fatalf("a module written into .hall/cache ran as org.test.noop (stdout %q)", r.stdout)
	}
	mustOK(t, r, "run after the cache entry was replaced")
	mustOK(t, v, "audit verify")
	// The planted file was discarded and the form rebuilt in its place
	// (the sandbox's TestFormCacheTamperedEntryIsRebuilt checks the log
	// line; the one-shot CLI discards the Hall's log).
	now, err := os.ReadFile(guarded[0])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(now, planted) {
		t.Fatal("the planted cache entry was left in place")
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

// pwnedArtifact stores, in dir's artifact store and named by its SHA-256
// as the store names modules, a module that was never enrolled; it
// returns its artifact hash.
func pwnedArtifact(t *testing.T, dir string) string {
	t.Helper()
	write(t, dir, "pwn.wat", sayWAT("PWNED"))
	wasm := filepath.Join(dir, "pwn.wasm")
	if out, err := exec.Command("wat2wasm", filepath.Join(dir, "pwn.wat"), "-o", wasm).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, out)
	}
	b, err := os.ReadFile(wasm)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	write(t, filepath.Join(dir, ".hall", "artifacts", "sha256"), hex.EncodeToString(sum[:])+".wasm", string(b))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// lastReceipt is the newest receipt of dir's ledger.
func lastReceipt(t *testing.T, dir string) ledger.Receipt {
	t.Helper()
	var rs []ledger.Receipt
	if err := json.Unmarshal([]byte(hallIn(t, dir, "", nil, "receipts", "--json").stdout), &rs); err != nil || len(rs) == 0 {
		t.Fatalf("receipts --json: %v (%d)", err, len(rs))
	}
	return rs[0]
}

// TestRedteamReplayOfAlteredReceipt: hall replay read the receipt it
// replays without checking its hash or signature, and ran the module its
// artifact_hash names under the worker's sealed record. An attacker who
// stored a module in .hall/artifacts, pointed a receipt's body at it,
// and restored the body once the replay had run, had a module that no
// enrollment sealed run as org.test.noop, and hall audit verify exited 0.
// The Hall now refuses a receipt whose hash or signature does not verify.
func TestRedteamReplayOfAlteredReceipt(t *testing.T) {
	dir := noopHall(t)
	mustOK(t, hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme"), "run")
	orig := lastReceipt(t, dir)
	pwn := pwnedArtifact(t, dir)
	var body string
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.QueryRow(`SELECT body FROM receipts WHERE receipt_id = ?`, orig.ReceiptID).Scan(&body); err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(body, orig.ArtifactHash, pwn, 1)
	if _, err := db.Exec("DROP TRIGGER receipts_no_update"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE receipts SET body = ? WHERE receipt_id = ?`, forged, orig.ReceiptID); err != nil {
		t.Fatal(err)
	}
	r := hallIn(t, dir, "x", nil, "replay", orig.ReceiptID)
	if _, err := db.Exec(`UPDATE receipts SET body = ? WHERE receipt_id = ?`, body, orig.ReceiptID); err != nil {
		t.Fatal(err)
	}
	ran := lastReceipt(t, dir).ArtifactHash == pwn
	v := hallIn(t, dir, "", nil, "audit", "verify")
	if ran && v.code == 0 {
		t.Fatalf("replay of the altered receipt ran %s (exit %d: %s%s) and audit verify exited 0 once the body was restored:\n%s", pwn, r.code, r.stdout, r.stderr, v.stdout)
	}
	if ran || r.code == 0 || r.code == 3 || !strings.Contains(r.stderr, "does not verify") {
		t.Fatalf("replay of an altered receipt: exit %d, ran the forged artifact: %v\n%s%s", r.code, ran, r.stdout, r.stderr)
	}
}

// TestRedteamReplayReceiptNamesOtherModule: a receipt whose replay_of
// names a receipt must name that receipt's module and record (a replay
// runs the original's); one naming another module is what a replay of a
// receipt altered for the occasion leaves, and both verifiers report it.
func TestRedteamReplayReceiptNamesOtherModule(t *testing.T) {
	dir := noopHall(t)
	mustOK(t, hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme"), "run")
	orig := lastReceipt(t, dir)
	mustOK(t, hallIn(t, dir, "x", nil, "replay", orig.ReceiptID), "an honest replay")
	mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "audit verify of an honest replay")
	s, err := ledger.Open(filepath.Join(dir, ".hall"))
	if err != nil {
		t.Fatal(err)
	}
	forged := orig
	forged.ReplayOf, forged.ArtifactHash = orig.ReceiptID, pwnedArtifact(t, dir)
	err = s.Append(context.Background(), &forged)
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	// Either replay check may report it first (one break per stream): the
	// stream check names replay_of, the evidence check "replays receipt".
	r := hallIn(t, dir, "", nil, "audit", "verify")
	if r.code != exitError || !strings.Contains(r.stdout, "replay") || !strings.Contains(r.stdout, orig.ReceiptID) || !strings.Contains(r.stdout, forged.ArtifactHash) {
		t.Fatalf("audit verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	mustOK(t, hallIn(t, dir, "", nil, "audit", "export", "--bundle", bundle), "audit export --bundle")
	if script := nodeVerifierScript(t); script != "" {
		out, err := exec.Command("node", script, bundle).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "replay") {
			t.Fatalf("node verifier: %v\n%s", err, out)
		}
	}
}

// TestRedteamReplayUnderEditedSealedRecord: hall replay takes the sealed
// record a receipt names from the enroll change's body without checking
// the change's hash or signature. Editing that body (here: granting the
// secret HOME) made the replay run under the edited envelope; once the
// body was restored, hall audit verify exited 0 although the replay's
// receipt names a record that no enrollment sealed. Both verifiers now
// report a replay whose record is not its original's.
func TestRedteamReplayUnderEditedSealedRecord(t *testing.T) {
	dir := noopHall(t)
	mustOK(t, hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme"), "run")
	orig := lastReceipt(t, dir)
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var body string
	if err := db.QueryRow(`SELECT body FROM changes WHERE kind = 'enroll'`).Scan(&body); err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(body, `"secrets_access":[]`, `"secrets_access":["HOME"]`, 1)
	if forged == body {
		t.Fatalf("enroll body without an empty secrets_access: %s", body)
	}
	if _, err := db.Exec("DROP TRIGGER changes_no_update"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE changes SET body = ? WHERE kind = 'enroll'`, forged); err != nil {
		t.Fatal(err)
	}
	r := hallIn(t, dir, "x", nil, "replay", orig.ReceiptID)
	if _, err := db.Exec(`UPDATE changes SET body = ? WHERE kind = 'enroll'`, body); err != nil {
		t.Fatal(err)
	}
	last := lastReceipt(t, dir)
	if last.ReplayOf == "" || !strings.Contains(string(last.Envelope), "HOME") {
		t.Logf("the replay did not run under the edited record (exit %d %s%s)", r.code, r.stdout, r.stderr)
		return
	}
	v := hallIn(t, dir, "", nil, "audit", "verify")
	if v.code != exitError || !strings.Contains(v.stdout, "replays receipt "+orig.ReceiptID) {
		t.Fatalf("the replay ran under an edited sealed record (envelope %s) and audit verify: exit %d\n%s", last.Envelope, v.code, v.stdout)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	mustOK(t, hallIn(t, dir, "", nil, "audit", "export", "--bundle", bundle), "audit export --bundle")
	if script := nodeVerifierScript(t); script != "" {
		out, err := exec.Command("node", script, bundle).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "replays receipt "+orig.ReceiptID) {
			t.Fatalf("node verifier: %v\n%s", err, out)
		}
	}
}

// TestRedteamSnapshotSwitchBackHidden: the Hall records a snapshot only
// when it differs from the newest snapshot change, which it found by the
// kind column of the changes table. With snapshot A (no policy) and then
// B (a policy holding hold-* requests) recorded, an attacker deleted
// policy.json and renamed B's kind column: the Hall took A for the
// snapshot last recorded, recorded nothing, and ran a request B holds;
// with the column restored, both verifiers passed (the decision names A,
// which the chain records, earlier). The Hall now reads the changes from
// the newest of that kind to the head with their hashes, links and kinds
// checked, and refuses to decide when they do not hold.
func TestRedteamSnapshotSwitchBackHidden(t *testing.T) {
	dir := noopHall(t)
	mustOK(t, hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme", "--correlation-id", "hold-0"), "run under A")
	write(t, dir, "policy.json", heldPolicy)
	if r := hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme", "--correlation-id", "hold-1"); r.code != exitPending {
		t.Fatalf("run under B: exit %d %s", r.code, r.stderr)
	}
	if err := os.Remove(filepath.Join(dir, "policy.json")); err != nil {
		t.Fatal(err)
	}
	const hide = "UPDATE changes SET kind = 'snapshoT' WHERE seq = (SELECT max(seq) FROM changes WHERE kind = 'snapshot')"
	ledgerExec(t, dir, "DROP TRIGGER changes_no_update", hide)
	r := hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme", "--correlation-id", "hold-2")
	ledgerExec(t, dir, "UPDATE changes SET kind = 'snapshot' WHERE kind = 'snapshoT'")
	if r.code != 0 {
		if !strings.Contains(r.stderr, "SNAPSHOT_UNRECORDED") {
			t.Fatalf("run under a hidden snapshot change: exit %d %s", r.code, r.stderr)
		}
		return // refused, nothing decided
	}
	v := hallIn(t, dir, "", nil, "audit", "verify")
	if v.code == 0 {
		t.Fatalf("hold-2 ran with the policy deleted and no snapshot change recording the deletion, and audit verify exited 0:\n%s%s", r.stderr, v.stdout)
	}
}

// TestRedteamReplayOfForgedDecision: hall replay decides for the original
// request's routing fields, read from the decisions row's decision column
// when it is not empty, a column no signature covers. A request held for
// a human (tenant_risk high) ran once, approved; with the column set to
// the signed decision with tenant_risk low, its replay was allowed with no
// approval, and once the column was emptied again both verifiers passed.
// They now report a replay decided for other routing fields than its
// original.
func TestRedteamReplayOfForgedDecision(t *testing.T) {
	dir := noopHall(t)
	write(t, dir, "policy.json", `{"approvals": {"enabled": true, "expires_after": "1h"},
	 "policies": [{"id": "risky", "when": "input.tenant_risk == 'high'", "effect": "REQUIRE_HUMAN", "reason": "high risk"}]}`)
	req := []string{"run", "cap.test.noop", "--tenant", "org.acme", "--tenant-risk", "high", "--correlation-id", "c-risky"}
	r := hallIn(t, dir, "x", nil, req...)
	i := strings.Index(r.stderr, "Pending approval apr_")
	if r.code != exitPending || i < 0 {
		t.Fatalf("held run: %d %s", r.code, r.stderr)
	}
	id := r.stderr[i+len("Pending approval ") : i+len("Pending approval ")+36]
	approver := strings.TrimSpace(hallIn(t, dir, "", nil, "tokens", "create", "--approver").stdout)
	mustOK(t, hallIn(t, dir, "", nil, "approvals", "approve", id, "--token", approver), "approve")
	mustOK(t, hallIn(t, dir, "x", nil, append(req, "--approval", id)...), "approved run")
	orig := lastReceipt(t, dir)
	if r := hallIn(t, dir, "x", nil, "replay", orig.ReceiptID); r.code != exitPending {
		t.Fatalf("replay of a held request: exit %d %s", r.code, r.stderr)
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var body string
	if err := db.QueryRow(`SELECT body FROM entries WHERE entry_id = ?`, orig.DecisionID).Scan(&body); err != nil {
		t.Fatal(err)
	}
	var e struct {
		Decision map[string]any `json:"decision"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Decision["tenant_risk"] != "high" {
		t.Fatalf("signed decision: %v %v", err, e.Decision["tenant_risk"])
	}
	e.Decision["tenant_risk"] = "low"
	forged, _ := json.Marshal(e.Decision)
	if _, err := db.Exec(`UPDATE decisions SET decision = ? WHERE decision_id = ?`, string(forged), orig.DecisionID); err != nil {
		t.Fatal(err)
	}
	r = hallIn(t, dir, "x", nil, "replay", orig.ReceiptID)
	if _, err := db.Exec(`UPDATE decisions SET decision = '' WHERE decision_id = ?`, orig.DecisionID); err != nil {
		t.Fatal(err)
	}
	if r.code != 0 && r.code != 3 {
		return // not run: nothing to report
	}
	const want = "replays receipt "
	v := hallIn(t, dir, "", nil, "audit", "verify")
	if v.code != exitError || !strings.Contains(v.stdout, want+orig.ReceiptID) || !strings.Contains(v.stdout, "tenant_risk") {
		t.Fatalf("the replay of a held request ran, decided for tenant_risk low, with no approval (%s), and audit verify: exit %d\n%s", r.stdout, v.code, v.stdout)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	mustOK(t, hallIn(t, dir, "", nil, "audit", "export", "--bundle", bundle), "audit export --bundle")
	if script := nodeVerifierScript(t); script != "" {
		out, err := exec.Command("node", script, bundle).CombinedOutput()
		if err == nil || !strings.Contains(string(out), want+orig.ReceiptID) || !strings.Contains(string(out), "tenant_risk") {
			t.Fatalf("node verifier: %v\n%s", err, out)
		}
	}
}

// TestRedteamApproverTokenMintedInStateDir: tokens were not evidence. An
// attacker with write access to the state directory minted an approver
// token by writing only .hall/auth.db (here through internal/auth, as a
// row written with SQL does), approved a held request with it, and ran
// it: the change chain held requested -> approved by token:<id> -> used,
// which is what an honest approval looks like, and hall audit verify
// exited 0. Now token issuance is a signed "token" change (hall tokens
// create records it), the Hall refuses an approver whose issuance no
// change records, and verify reports an approval by such a token.
func TestRedteamApproverTokenMintedInStateDir(t *testing.T) {
	dir, id := heldHall(t)
	st, err := auth.Open(filepath.Join(dir, ".hall", auth.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	minted, _, err := st.Create(context.Background(), auth.ApproverScope(""), "minted")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := hallIn(t, dir, "", nil, "approvals", "approve", id, "--token", minted)
	if r.code == 0 {
		r = hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme", "--correlation-id", "hold-rt", "--approval", id)
		if r.code == 0 {
			if v := hallIn(t, dir, "", nil, "audit", "verify"); v.code == 0 {
				t.Fatalf("a held request approved by a token no change records ran, and audit verify exited 0:\n%s", v.stdout)
			}
		}
		t.Fatalf("the Hall accepted an approval by a token no change records (exit 0)")
	}
	if !strings.Contains(r.stderr, "APPROVAL_FORBIDDEN") || !strings.Contains(r.stderr, "no signed") {
		t.Errorf("approval by a minted token: exit %d, want APPROVAL_FORBIDDEN naming the missing issuance:\n%s", r.code, r.stderr)
	}
	// The legitimate path: hall tokens create records the issuance.
	legit := strings.TrimSpace(hallIn(t, dir, "", nil, "tokens", "create", "--approver").stdout)
	mustOK(t, hallIn(t, dir, "", nil, "approvals", "approve", id, "--token", legit), "approve with a recorded token")
	mustOK(t, hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme", "--correlation-id", "hold-rt", "--approval", id), "run the approved request")
	mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "audit verify")
}

// TestRedteamUserVersionSetBack: PRAGMA user_version set back below the
// steps schema_migrations records made every command fail with an SQLite
// error ("table approvals already exists"), and hall audit verify advise
// opening the ledger read-write "once" (which fails the same way). It
// failed closed, but not with the refusal docs/EVIDENCE.md describes:
// both now say LEDGER_SCHEMA_TOO_NEW, the version set back.
func TestRedteamUserVersionSetBack(t *testing.T) {
	dir := noopHall(t)
	mustOK(t, hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme"), "run")
	for _, v := range []string{"0", "3", "5"} {
		ledgerExec(t, dir, "PRAGMA user_version = "+v)
		for _, args := range [][]string{{"run", "cap.test.noop", "--tenant", "org.acme"}, {"audit", "verify"}} {
			r := hallIn(t, dir, "x", nil, args...)
			if r.code == 0 || !strings.Contains(r.stderr, "LEDGER_SCHEMA_TOO_NEW") || !strings.Contains(r.stderr, "set back") {
				t.Fatalf("user_version %s, hall %s: exit %d\n%s%s", v, args[0], r.code, r.stdout, r.stderr)
			}
		}
	}
}

// TestRedteamAdminTokenMintedInStateDir: a token of admin scope written
// into .hall/auth.db alone (no signed issuance) replaced the rules over
// PUT /admin/rules of a running hall serve; the change was recorded with
// its actor and nothing checked that actor against the evidence. The Hall
// now refuses it (403 ADMIN_TOKEN_UNRECORDED) and a recorded admin token
// still may.
func TestRedteamAdminTokenMintedInStateDir(t *testing.T) {
	dir := noopHall(t)
	// One recorded token, so the chain holds a token change.
	mustOK(t, hallIn(t, dir, "", nil, "tokens", "create", "--approver"), "tokens create --approver")
	st, err := auth.Open(filepath.Join(dir, ".hall", auth.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	minted, _, err := st.Create(context.Background(), auth.AdminScope(), "minted")
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	base, _, _ := startServe(t, dir)
	rules := []byte(`{"rules": []}`)
	r := curl(t, "PUT", base+"/admin/rules", minted, "application/json", rules)
	if r.status/100 == 2 {
		if v := hallIn(t, dir, "", nil, "audit", "verify"); v.code == 0 {
			t.Fatalf("rules replaced by a token no change records, and audit verify exited 0:\n%s", v.stdout)
		}
		t.Fatalf("the Hall accepted PUT /admin/rules by an admin token no change records: %d %s", r.status, r.raw)
	}
	if r.status != 403 || !strings.Contains(r.raw, "ADMIN_TOKEN_UNRECORDED") {
		t.Errorf("PUT /admin/rules by a minted admin token: %d %s, want 403 ADMIN_TOKEN_UNRECORDED", r.status, r.raw)
	}
	legit := strings.TrimSpace(hallIn(t, dir, "", nil, "tokens", "create", "--admin").stdout)
	if r := curl(t, "PUT", base+"/admin/rules", legit, "application/json", rules); r.status/100 != 2 {
		t.Fatalf("PUT /admin/rules by a recorded admin token: %d %s", r.status, r.raw)
	}
	mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "audit verify")
	// The recorded admin token's hash swapped for the attacker's secret's.
	forged := legit[:len(legit)-43] + strings.Repeat("B", 43)
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", auth.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(forged))
	_, err = db.Exec(`UPDATE tokens SET hash = ? WHERE id = ?`, h[:], "tok_"+legit[len(legit)-43-1-12:len(legit)-43-1])
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if r := curl(t, "PUT", base+"/admin/rules", forged, "application/json", rules); r.status != 403 || !strings.Contains(r.raw, "ADMIN_TOKEN_UNRECORDED") || !strings.Contains(r.raw, "binds") {
		t.Errorf("PUT /admin/rules by a forged secret under a recorded admin token: %d %s, want 403 ADMIN_TOKEN_UNRECORDED naming the binding", r.status, r.raw)
	}
}

// TestRedteamRecordedTokenHashSwapped: keeping a recorded approver token's
// id and replacing its hash in .hall/auth.db with the hash of the
// attacker's own secret made that secret authenticate as the recorded
// token, and it answered approvals. The issuance now binds the stored
// hash (HMAC under a key derived from the signing key): approve refused.
func TestRedteamRecordedTokenHashSwapped(t *testing.T) {
	dir, id := heldHall(t)
	legit := strings.TrimSpace(hallIn(t, dir, "", nil, "tokens", "create", "--approver").stdout)
	// The attacker's secret under the recorded token's id.
	forged := legit[:len(legit)-43] + strings.Repeat("A", 43)
	if forged == legit {
		t.Fatal("the forged token is the legitimate one")
	}
	// hall_<12 hex id>_<43 characters>: the id is the row's, tok_<hex>.
	tokID := "tok_" + legit[len(legit)-43-1-12:len(legit)-43-1]
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", auth.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(forged))
	res, err := db.Exec(`UPDATE tokens SET hash = ? WHERE id = ?`, h[:], tokID)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("token %s: %d rows updated, want 1 (token %q)", tokID, n, legit)
	}
	r := hallIn(t, dir, "", nil, "approvals", "approve", id, "--token", forged)
	if r.code == 0 {
		t.Fatalf("the Hall accepted an approval by a forged secret under recorded token %s (its hash swapped in auth.db)", tokID)
	}
	if !strings.Contains(r.stderr, "APPROVAL_FORBIDDEN") || !strings.Contains(r.stderr, "not the one its signed issuance binds") {
		t.Errorf("approval by a swapped hash: exit %d, want APPROVAL_FORBIDDEN naming the binding:\n%s", r.code, r.stderr)
	}
}
