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

// eventStreams lists the streams of the events entries of s, in order.
func eventStreams(t *testing.T, s *SQLite) []string {
	t.Helper()
	rows, err := s.r.Query(`SELECT stream FROM entries WHERE kind = 'events' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var st string
		if err := rows.Scan(&st); err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	return out
}

// A decision recorded before decisions were chained still chooses the
// stream of its correlation id's events in a ledger whose first schema
// change sealed it; in a ledger born at a schema version, such a row is
// forged and chooses nothing (the events go to the stream "", as for a
// correlation id no decision has), and naming it as the decision is
// refused.
func TestEventsStreamFromLegacyDecisionRows(t *testing.T) {
	ctx := context.Background()
	ev := []json.RawMessage{json.RawMessage(`{"event_id":"w.new"}`)}
	const legacy = `INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision)
		VALUES ('old-1', 'c-old', 'org.a', 'cap.x', 1, 'DENY_NO_MATCHING_RULE', 0, '2025-01-01T00:00:00Z', '{"denied":true}')`

	t.Run("upgraded ledger", func(t *testing.T) {
		dir := t.TempDir()
		db, err := sql.Open("sqlite", dir+"/"+DBFile)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{migrations[0].sql, migrations[1].sql, legacy, `PRAGMA user_version = 2`} {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		db.Close()
		s := openT(t, dir)
		if err := s.RecordEvents(ctx, "c-old", ev); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordDecisionEvents(ctx, "old-1", "c-old", ev); err != nil {
			t.Fatal(err)
		}
		if got := eventStreams(t, s); len(got) != 2 || got[0] != "org.a" || got[1] != "org.a" {
			t.Fatalf("events streams %q, want org.a twice", got)
		}
		verifyOK(t, s, nil)
	})

	t.Run("born ledger", func(t *testing.T) {
		s := openT(t, t.TempDir())
		db, err := sql.Open("sqlite", s.Path()+"?_busy_timeout=5000")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(legacy); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordEvents(ctx, "c-old", ev); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordDecisionEvents(ctx, "old-1", "c-old", ev); err == nil {
			t.Fatal("events of a forged legacy decision were recorded")
		}
		if got := eventStreams(t, s); len(got) != 1 || got[0] != "" {
			t.Fatalf("events streams %q, want the stream \"\" once", got)
		}
	})
}

// The events of a dispatch, recorded one batch at a time after their
// decision (the decision's tenant is read from its signed entry).
func BenchmarkRecordDecisionEvents(b *testing.B) {
	ctx := context.Background()
	s := openT(b, b.TempDir())
	decision := json.RawMessage(`{"decision_id":"d","telemetry_envelopes":[{"event_id":"evt.os.task.routed"}]}`)
	if err := s.RecordDecision(ctx, DecisionRecord{DecisionID: "d", CorrelationID: "c", TenantID: "org.a", CapabilityID: "cap.x", Decision: decision}); err != nil {
		b.Fatal(err)
	}
	ev := []json.RawMessage{json.RawMessage(`{"event_id":"w.1"}`)}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.RecordDecisionEvents(ctx, "d", "c", ev); err != nil {
			b.Fatal(err)
		}
	}
}
