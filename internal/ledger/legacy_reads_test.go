package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// What Decision and Events return is signed content (issue 21): in a
// ledger born at a schema version, which never wrote a row no entry signs,
// a forged legacy row (a decisions row holding its own JSON, an events
// row with no entry) is refused with an error naming it, and the lookup
// columns of a decisions row are not trusted over its signed entry.
func TestReadPathsRefuseForgedLegacyRows(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	ds := recordDecisions(t, s, "org.a", "allowed", "denied")
	db := rawDB(t, s)

	mustExec(t, db, `INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision, entry_seq)
		VALUES ('forged-1', 'c-forged', 'org.a', 'cap.doc.summarize', 0, '', 0, '2025-01-01T00:00:00.000000Z', '{"decision_id":"forged-1","denied":false}', NULL)`)
	d, err := s.Decision(ctx, "forged-1")
	if err == nil || !strings.Contains(err.Error(), "forged") || !errors.Is(err, ErrNotFound) {
		t.Errorf("Decision of a forged unsigned row: %+v, %v; want an ErrNotFound naming the row forged", d, err)
	}

	mustExec(t, db, `INSERT INTO events (correlation_id, decision_id, source, event_id, recorded_at, event, entry_id)
		VALUES (?, NULL, 'worker', 'w.forged', '2025-01-01T00:00:00Z', '{"event_id":"w.forged"}', NULL)`, ds[0].CorrelationID)
	evs, err := s.Events(ctx, ds[0].CorrelationID)
	if err == nil || !strings.Contains(err.Error(), "forged") {
		t.Errorf("Events with a forged events row: %s, %v; want an error naming the row forged", evs, err)
	}

	// A signed decision whose row was edited reads as signed.
	mustExec(t, db, `UPDATE decisions SET denied = 0, deny_code = '', tenant_id = 'org.evil', capability_id = 'cap.evil' WHERE decision_id = ?`, ds[1].DecisionID)
	d, err = s.Decision(ctx, ds[1].DecisionID)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Denied || d.DenyCode != ds[1].DenyCode || d.TenantID != "org.a" || d.CapabilityID != ds[1].CapabilityID {
		t.Errorf("Decision of an edited row: denied %v %q tenant %q capability %q, want the signed entry's (denied %q, org.a, %q)",
			d.Denied, d.DenyCode, d.TenantID, d.CapabilityID, ds[1].DenyCode, ds[1].CapabilityID)
	}
}

// In a ledger upgraded from before decisions were chained, the rows its
// first schema change sealed read as before.
func TestReadPathsReturnSealedLegacyRows(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", dir+"/"+DBFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0].sql, migrations[1].sql,
		`INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision)
			VALUES ('old-1', 'c-old', 'org.a', 'cap.x', 1, 'DENY_NO_MATCHING_RULE', 0, '2025-01-01T00:00:00Z', '{"denied":true}')`,
		`INSERT INTO events (correlation_id, decision_id, source, event_id, recorded_at, event) VALUES ('c-old', 'old-1', 'decision', 'e1', '2025-01-01T00:00:00Z', '{"event_id":"e1"}')`,
		`PRAGMA user_version = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := openT(t, dir)
	d, err := s.Decision(ctx, "old-1")
	if err != nil || string(d.Decision) != `{"denied":true}` || !d.Denied {
		t.Fatalf("sealed legacy decision: %+v, %v", d, err)
	}
	// Events recorded before decision chains come first, as written.
	if err := s.RecordEvents(ctx, "c-old", []json.RawMessage{json.RawMessage(`{"event_id":"w.new"}`)}); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, "c-old")
	if err != nil || len(evs) != 2 || string(evs[0]) != `{"event_id":"e1"}` || string(evs[1]) != `{"event_id":"w.new"}` {
		t.Fatalf("sealed legacy events: %s, %v", evs, err)
	}
	verifyOK(t, s, nil)
}
