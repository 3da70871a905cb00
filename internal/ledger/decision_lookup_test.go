package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"testing"
)

// Issue 21 (red team): sealEntry put a worker's events in the stream of
// the tenant a decisions row names, and that row is a lookup column no
// signature covers. A forged row (a newer decision for the correlation
// id, or the decision's own row with another tenant) steered the events
// into another tenant's stream. The Hall now takes the stream from the
// decision's signed entry; a row no entry signs is used only in a ledger
// whose first schema change sealed such rows (an upgraded ledger).
func TestEventsStreamFromTheSignedDecision(t *testing.T) {
	ctx := context.Background()
	ev := []json.RawMessage{json.RawMessage(`{"event_id":"w.1"}`)}
	for _, tc := range []struct {
		name   string
		forge  string
		record func(s *SQLite) error
	}{
		{"newer forged row, chained-looking", `INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision, entry_seq)
			VALUES ('d-forged', 'c1', 'org.victim', 'cap.x', 0, '', 0, '2026-01-01T00:00:00Z', '', 1)`,
			func(s *SQLite) error { return s.RecordEvents(ctx, "c1", ev) }},
		{"newer forged row, legacy-looking", `INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision, entry_seq)
			VALUES ('d-forged', 'c1', 'org.victim', 'cap.x', 0, '', 0, '2026-01-01T00:00:00Z', '{}', NULL)`,
			func(s *SQLite) error { return s.RecordEvents(ctx, "c1", ev) }},
		{"decision's row re-tenanted, by correlation", `UPDATE decisions SET tenant_id = 'org.victim' WHERE decision_id = 'd1'`,
			func(s *SQLite) error { return s.RecordEvents(ctx, "c1", ev) }},
		{"decision's row re-tenanted, by decision id", `UPDATE decisions SET tenant_id = 'org.victim' WHERE decision_id = 'd1'`,
			func(s *SQLite) error { return s.RecordDecisionEvents(ctx, "d1", "c1", ev) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			if err := s.RecordDecision(ctx, DecisionRecord{DecisionID: "d1", CorrelationID: "c1", TenantID: "org.a", CapabilityID: "cap.x", Decision: json.RawMessage(`{"decision_id":"d1"}`)}); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordDecision(ctx, DecisionRecord{DecisionID: "dv", CorrelationID: "cv", TenantID: "org.victim", CapabilityID: "cap.x", Decision: json.RawMessage(`{"decision_id":"dv"}`)}); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("sqlite", s.Path()+"?_busy_timeout=5000")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(tc.forge); err != nil {
				t.Fatal(err)
			}
			err = tc.record(s)
			var streams []string
			rows, qerr := db.Query(`SELECT stream FROM entries WHERE kind = 'events'`)
			if qerr != nil {
				t.Fatal(qerr)
			}
			for rows.Next() {
				var st string
				rows.Scan(&st)
				streams = append(streams, st)
			}
			rows.Close()
			for _, st := range streams {
				if st != "org.a" {
					t.Fatalf("the events went to stream %q (err %v): a forged decisions row chose the stream", st, err)
				}
			}
			if err == nil && len(streams) != 1 {
				t.Fatalf("events recorded without error in %d entries", len(streams))
			}
		})
	}
}
