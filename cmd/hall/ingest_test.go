package main

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/ledger"
)

// TestIngestedDecisionIsEvidence: a decision PyHall made in-process and
// sent to POST /decisions/ingest (PyHall's request shape) is recorded in
// the tenant's decision chain, shows in /dispatches and in `hall receipts
// external`, verifies in `hall audit verify` and in the Node verifier over
// an exported bundle, and an edit of its signed entry is caught.
func TestIngestedDecisionIsEvidence(t *testing.T) {
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(quickstart, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "rules.json", string(rules))
	r := hallIn(t, dir, "", nil, "tokens", "create", "--tenant", "org.test")
	mustOK(t, r, "tokens create")
	tenant := strings.TrimSpace(r.stdout)
	r = hallIn(t, dir, "", nil, "tokens", "create", "--admin")
	mustOK(t, r, "tokens create --admin")
	admin := strings.TrimSpace(r.stdout)
	base, _, _ := startServe(t, dir)

	// A routing-only record enrolled PyHall's way goes into the same
	// bundle (its enroll_record change).
	rec := `{"worker_id":"org.test.hello-worker","worker_species_id":"wrk.test.pyhall","capabilities":["cap.test.pyhall"],"risk_tier":"low","owner":"org.test"}`
	hash, err := host.PyHallRecordHash([]byte(rec))
	if err != nil {
		t.Fatal(err)
	}
	en := curl(t, "POST", base+"/enroll", admin, "application/json", []byte(strings.Replace(rec, "{", `{"artifact_hash":"`+hash+`",`, 1)))
	if en.status != 201 || en.body["routing_only"] != true {
		t.Fatalf("enroll: %d %s", en.status, en.raw)
	}

	body := []byte(`{"decision_id": "pyhall-dec-001", "capability_id": "cap.db.write", "tenant_id": "org.test", "env": "prod",
		"denied": true, "deny_reason": "blast:78", "blast_score": 78, "decided_at": "2026-03-01T10:00:00+00:00"}`)
	res := curl(t, "POST", base+"/decisions/ingest", tenant, "application/json", body)
	if res.status != 201 || res.body["recorded"] != true || res.body["decided_by_this_hall"] != false {
		t.Fatalf("ingest: %d %s", res.status, res.raw)
	}
	entry, _ := res.body["entry_id"].(string)
	if again := curl(t, "POST", base+"/decisions/ingest", tenant, "application/json", body); again.status != 201 || again.body["duplicate"] != true {
		t.Fatalf("second ingest: %d %s", again.status, again.raw)
	}
	d := curl(t, "GET", base+"/dispatches", tenant, "", nil)
	list, _ := d.body["dispatches"].([]any)
	if d.status != 200 || len(list) != 1 || !strings.Contains(d.raw, `"decision_id":"pyhall-dec-001"`) || !strings.Contains(d.raw, `"source":"external"`) ||
		!strings.Contains(d.raw, `"decided_at":"2026-03-01T10:00:00Z"`) {
		t.Fatalf("/dispatches: %d %s", d.status, d.raw)
	}

	r = hallIn(t, dir, "", nil, "receipts", "external")
	mustOK(t, r, "receipts external")
	if !strings.Contains(r.stdout, "pyhall-dec-001") || !strings.Contains(r.stdout, "org.test") || !strings.Contains(r.stdout, "yes blast:78") ||
		!strings.Contains(r.stderr, "1 ingested decision(s), not decided by this Hall") {
		t.Errorf("receipts external:\n%s%s", r.stdout, r.stderr)
	}
	r = hallIn(t, dir, "", nil, "receipts", "external", "--tenant", "org.other", "--json")
	mustOK(t, r, "receipts external --tenant org.other")
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("another tenant's external decisions: %s", r.stdout)
	}

	r = hallIn(t, dir, "", nil, "audit", "verify")
	mustOK(t, r, "audit verify")
	if !strings.Contains(r.stdout, "1 decision entr(ies) in 1 chain(s)") {
		t.Errorf("audit verify: %s", r.stdout)
	}
	r = hallIn(t, dir, "", nil, "keys", "show", "--all", "--json")
	mustOK(t, r, "keys show")
	keyset := filepath.Join(t.TempDir(), "keys.json")
	write(t, filepath.Dir(keyset), "keys.json", r.stdout)
	bundle := filepath.Join(t.TempDir(), "bundle")
	r = hallIn(t, dir, "", nil, "audit", "export", "--bundle", bundle)
	mustOK(t, r, "audit export --bundle")
	b, err := os.ReadFile(filepath.Join(bundle, "entries.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"decided_by_this_hall":false`) || !strings.Contains(string(b), entry) || !strings.Contains(string(b), `"kind":"enroll_record"`) {
		t.Errorf("the bundle does not hold the ingested decision's entry %s", entry)
	}
	if script := nodeVerifierScript(t); script != "" {
		out, err := exec.Command("node", script, bundle, "--keys", keyset).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "verified") {
			t.Fatalf("node verifier: %v\n%s", err, out)
		}
		// The same bundle with the ingested decision's deny reason edited
		// does not verify.
		forged := strings.Replace(string(b), "blast:78", "blast:10", 1)
		write(t, bundle, "entries.jsonl", forged)
		out, err = exec.Command("node", script, bundle, "--keys", keyset).CombinedOutput()
		if err == nil {
			t.Fatalf("node verifier accepted an edited ingested decision:\n%s", out)
		}
	}

	// Edit the signed entry in the database: audit verify reports it.
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"DROP TRIGGER entries_no_update", `UPDATE entries SET body = replace(body, 'blast:78', 'blast:10') WHERE entry_id = '` + entry + `'`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	r = hallIn(t, dir, "", nil, "audit", "verify")
	if r.code != exitError || !strings.Contains(r.stdout, entry) {
		t.Fatalf("audit verify after editing the ingested decision: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
