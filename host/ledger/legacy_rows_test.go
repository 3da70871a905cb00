package ledger

import (
	"context"
	"database/sql"
	"strings"
	"testing"
)

// TestForgedLegacyRowsAreBreaks: rows of the forms the ledger wrote before
// decisions were chained (a decisions row with no entry, an events row
// with no entry id) and an edited signing-key slot, written with
// database/sql into a ledger created at the current schema version, are
// breaks: that ledger never wrote such rows, and nothing signs them.
func TestForgedLegacyRowsAreBreaks(t *testing.T) {
	cases := []struct {
		name   string
		forge  func(t *testing.T, db *sql.DB, d DecisionRecord)
		chain  string
		reason string
	}{
		{"unchained decision row", func(t *testing.T, db *sql.DB, d DecisionRecord) {
			mustExec(t, db, `INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision, entry_seq)
				VALUES ('forged-1', ?, 'org.a', 'cap.doc.summarize', 0, '', 0, '2025-01-01T00:00:00.000000Z', '{"decision_id":"forged-1","denied":false}', NULL)`, d.CorrelationID)
		}, ChainDecisions, "never wrote"},
		{"events row without entry id", func(t *testing.T, db *sql.DB, d DecisionRecord) {
			mustExec(t, db, `INSERT INTO events (correlation_id, decision_id, source, event_id, recorded_at, event, entry_id)
				VALUES (?, NULL, 'worker', 'w.forged', '2025-01-01T00:00:00Z', '{"event_id":"w.forged"}', NULL)`, d.CorrelationID)
		}, ChainDecisions, "never wrote"},
		{"events row naming an entry", func(t *testing.T, db *sql.DB, d DecisionRecord) {
			mustExec(t, db, `INSERT INTO events (correlation_id, decision_id, source, event_id, recorded_at, event, entry_id)
				VALUES (?, ?, 'decision', 'evt.os.task.routed', '2025-01-01T00:00:00Z', '{"event_id":"evt.os.task.routed"}', ?)`, d.CorrelationID, d.DecisionID, d.DecisionID)
		}, ChainDecisions, "never wrote"},
		{"signing-key slot edited", func(t *testing.T, db *sql.DB, d DecisionRecord) {
			mustExec(t, db, `UPDATE signing_key SET key_id = 'ed25519:0123456789abcdef' WHERE slot = 1`)
		}, ChainChanges, "signing_key"},
		{"signing-key slot deleted", func(t *testing.T, db *sql.DB, d DecisionRecord) {
			mustExec(t, db, `DELETE FROM signing_key`)
		}, ChainChanges, "signing_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			ds := recordDecisions(t, s, "org.a", "allowed", "denied")
			appendN(t, s, "org.a", 2)
			recordChanges(t, s, 1)
			verifyOK(t, s, nil)

			tc.forge(t, rawDB(t, s), ds[0])

			rep, err := s.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Breaks) != 1 {
				t.Fatalf("breaks %+v, want exactly one", rep.Breaks)
			}
			if b := rep.Breaks[0]; chainOf(b.Chain, b.Tenant) != tc.chain || !strings.Contains(b.Reason, tc.reason) {
				t.Errorf("break %+v, want chain %s and a reason containing %q", b, tc.chain, tc.reason)
			}
		})
	}
}
