package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host/ledger"
)

// TestAuditVerifyReportsForgedLegacyRows: a decisions row without a signed
// entry, written with database/sql into a ledger the Hall created at the
// current schema version, makes hall audit verify fail (issue 21: it
// exited 0 and only counted it as "recorded before decisions were
// chained").
func TestAuditVerifyReportsForgedLegacyRows(t *testing.T) {
	dir := t.TempDir()
	evidenceHome(t, dir)
	mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "audit verify")
	db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision, entry_seq)
		VALUES ('forged-1', 'corr-0', 'org.acme', 'cap.doc.summarize', 0, '', 0, '2025-01-01T00:00:00.000000Z', '{"decision_id":"forged-1","denied":false}', NULL)`); err != nil {
		t.Fatal(err)
	}
	r := hallIn(t, dir, "", nil, "audit", "verify")
	if r.code != exitError || !strings.Contains(r.stdout, "forged-1") {
		t.Fatalf("audit verify with a forged unchained decision: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
