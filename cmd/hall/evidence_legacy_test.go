package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/ledger"
)

// TestAuditVerifyReportsForgedLegacyRows: rows of the ledger's older form
// (a decisions row without a signed entry, an events row with no entry
// id) and an edited signing-key slot, written with database/sql into a
// ledger the Hall created at the current schema version, make hall audit
// verify fail (issue 21: it exited 0, counting the decision as "recorded
// before decisions were chained").
func TestAuditVerifyReportsForgedLegacyRows(t *testing.T) {
	for _, tc := range []struct{ name, sql, want string }{
		{"unchained decision", `INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision, entry_seq)
			VALUES ('forged-1', 'corr-0', 'org.acme', 'cap.doc.summarize', 0, '', 0, '2025-01-01T00:00:00.000000Z', '{"decision_id":"forged-1","denied":false}', NULL)`, "forged-1"},
		{"events row without entry id", `INSERT INTO events (correlation_id, decision_id, source, event_id, recorded_at, event, entry_id)
			VALUES ('corr-0', NULL, 'worker', 'w.forged', '2025-01-01T00:00:00Z', '{"event_id":"w.forged"}', NULL)`, "never wrote one"},
		{"signing-key slot edited", `UPDATE signing_key SET key_id = 'ed25519:0123456789abcdef'`, "signing_key slot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			evidenceHome(t, dir)
			mustOK(t, hallIn(t, dir, "", nil, "audit", "verify"), "audit verify")
			db, err := sql.Open("sqlite", filepath.Join(dir, ".hall", ledger.DBFile))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			r := hallIn(t, dir, "", nil, "audit", "verify")
			if r.code != exitError || !strings.Contains(r.stdout, tc.want) {
				t.Fatalf("audit verify after the forgery: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}
