package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
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
		{"schema step row edited", func(t *testing.T, db *sql.DB, d DecisionRecord) {
			mustExec(t, db, `UPDATE schema_migrations SET applied_at = '2020-01-01T00:00:00Z' WHERE version = 3`)
		}, ChainChanges, "schema_migrations"},
		{"schema step row added", func(t *testing.T, db *sql.DB, d DecisionRecord) {
			mustExec(t, db, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (0, 'forged', '2020-01-01T00:00:00Z')`)
		}, ChainChanges, "schema_migrations"},
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

// schemaChanges is the number of changes a new ledger starts with: the
// schema change recording its creation (verify_rows.go).
const schemaChanges = 1

// schemaHead returns the ledger's first change, its schema change.
func schemaHead(t testing.TB, s *SQLite) Change {
	t.Helper()
	cs, err := s.Changes(context.Background(), ChangeSchema)
	if err != nil || len(cs) == 0 {
		t.Fatalf("schema changes: %v, %v", cs, err)
	}
	return cs[0]
}

// TestUpgradedLegacyRowsAreSealed: a ledger written at schema version 2
// (decisions and events rows that no entry signs) keeps verifying after
// the upgrade, which seals those rows in its first schema change; a row
// added, altered or deleted afterwards, or an edited PRAGMA user_version,
// is a break.
func TestUpgradedLegacyRowsAreSealed(t *testing.T) {
	cases := []struct {
		name   string
		forge  string
		reason string
	}{
		{"unchained decision added", `INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision)
			VALUES ('forged', 'c', 'org.a', 'cap.x', 0, '', 0, '2025-01-01T00:00:00Z', '{}')`, "not the 1 and 1"},
		{"unchained decision altered", `UPDATE decisions SET decision = '{"denied":false}' WHERE decision_id = 'old-1'`, "a row was added, altered or deleted"},
		{"events row deleted", `DELETE FROM events`, "not the 1 and 1"},
		{"user_version rolled back", `PRAGMA user_version = 4`, "PRAGMA user_version edited"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
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
			rep := verifyOK(t, s, nil)
			if rep.Unchained != 1 || rep.Changes != 1 {
				t.Fatalf("after the upgrade: %+v", rep)
			}
			if evs, err := s.Events(context.Background(), "c-old"); err != nil || len(evs) != 1 {
				t.Fatalf("legacy events after the upgrade: %s, %v", evs, err)
			}
			recordDecisions(t, s, "org.a", "allowed")
			verifyOK(t, s, nil)

			raw := rawDB(t, s)
			if _, err := raw.Exec(tc.forge); err != nil {
				t.Fatal(err)
			}
			rep, err = s.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Breaks) != 1 || rep.Breaks[0].Tenant != ChangeChain || !strings.Contains(rep.Breaks[0].Reason, tc.reason) {
				t.Fatalf("breaks %+v, want one in the change chain containing %q", rep.Breaks, tc.reason)
			}
		})
	}
}

// TestForgedDecisionRowNamingAnEventsEntry: a chained decisions row whose
// id is that of an events entry (not a decision entry) is reported.
func TestForgedDecisionRowNamingAnEventsEntry(t *testing.T) {
	s := openT(t, t.TempDir())
	d := recordDecisions(t, s, "org.a", "allowed")[0]
	if err := s.RecordDecisionEvents(context.Background(), d.DecisionID, d.CorrelationID, []json.RawMessage{json.RawMessage(`{"event_id":"w.1"}`)}); err != nil {
		t.Fatal(err)
	}
	var id string
	if err := s.r.QueryRow(`SELECT entry_id FROM entries WHERE kind = 'events'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	mustExec(t, rawDB(t, s), `INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision, entry_seq)
		VALUES (?, ?, 'org.a', 'cap.x', 0, '', 0, '2025-01-01T00:00:00Z', '{"forged":true}', 2)`, id, d.CorrelationID)
	rep, err := s.Verify(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Breaks) != 1 || rep.Breaks[0].ReceiptID != id || !strings.Contains(rep.Breaks[0].Reason, "no signed decision entry") {
		t.Fatalf("breaks %+v, want the forged row %s", rep.Breaks, id)
	}
}

// TestBundleLegacyRowsNode: the bundle of an upgraded ledger carries its
// rows no entry signs (legacy.jsonl), which the independent Node verifier
// checks against the seal of the first schema change, as Verify does.
func TestBundleLegacyRowsNode(t *testing.T) {
	script := nodeVerifier(t)
	dir := t.TempDir()
	db, err := sql.Open("sqlite", dir+"/"+DBFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0].sql, migrations[1].sql,
		`INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision)
			VALUES ('old-1', 'c-old', 'org.a', 'cap.x', 1, 'DENY_NO_MATCHING_RULE', 0, '2025-01-01T00:00:00Z', '{"denied":true,"note":"\u2028<&>"}')`,
		`INSERT INTO events (correlation_id, decision_id, source, event_id, recorded_at, event) VALUES ('c-old', 'old-1', 'decision', 'e1', '2025-01-01T00:00:00Z', '{"event_id":"e1"}')`,
		`PRAGMA user_version = 2`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := openT(t, dir)
	recordDecisions(t, s, "org.a", "allowed")
	verifyOK(t, s, nil)
	bundle := filepath.Join(t.TempDir(), "bundle")
	if _, err := s.ExportBundle(context.Background(), bundle); err != nil {
		t.Fatal(err)
	}
	legacy := filepath.Join(bundle, BundleLegacy)
	orig, err := os.ReadFile(legacy)
	if err != nil || bytes.Count(orig, []byte("\n")) != 2 {
		t.Fatalf("legacy.jsonl %q, %v: want the two rows", orig, err)
	}
	if out, code := runNode(t, script, nil, bundle); code != 0 {
		t.Fatalf("node verifier on an upgraded ledger: exit %d\n%s", code, out)
	}
	os.WriteFile(legacy, bytes.Replace(orig, []byte("DENY_NO_MATCHING_RULE"), []byte("NONE"), 1), 0o644)
	if out, code := runNode(t, script, nil, bundle); code != 1 || !strings.Contains(out, "sealed by change") {
		t.Fatalf("node verifier on an altered legacy row: exit %d\n%s", code, out)
	}
}

// TestOpenRefusesSchemaBehindItsChain: a database whose PRAGMA
// user_version was set back (and the step's index dropped, so that the
// step applies again, its schema_migrations row deleted) is not migrated: the chain records a later version,
// and migrating would seal rows added in between.
func TestOpenRefusesSchemaBehindItsChain(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	recordDecisions(t, s, "org.a", "allowed")
	s.Close()
	db, err := sql.Open("sqlite", filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DROP INDEX entries_correlation`, `DROP TABLE approvals`, `DROP INDEX changes_subject`, `DELETE FROM schema_migrations WHERE version >= 5`, `PRAGMA user_version = 4`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if s, err := Open(dir); err == nil || !strings.Contains(err.Error(), "PRAGMA user_version was changed outside the Hall") {
		if s != nil {
			s.Close()
		}
		t.Fatalf("Open of a database behind its chain: %v", err)
	}
}

// TestForgedStoredCheckpointIsABreak: a checkpoint row kept in the
// database is a signed statement too; one forged with another key, or
// altered, is reported by Verify (the Node verifier, which checks the
// bundle's checkpoints, already refused it).
func TestForgedStoredCheckpointIsABreak(t *testing.T) {
	for _, tc := range []struct{ name, sql, reason string }{
		{"body altered", `UPDATE checkpoints SET body = replace(body, '"version":2', '"version":3')`, "checkpoint altered"},
		{"signature replaced", `UPDATE checkpoints SET signature = 'AAAA', body = replace(body, signature, 'AAAA')`, "signature does not verify"},
		{"column altered", `UPDATE checkpoints SET created_at = '2020-01-01T00:00:00.000000Z'`, "column created_at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			appendN(t, s, "a", 2)
			cp, err := s.Checkpoint(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			verifyOK(t, s, nil)
			mustExec(t, rawDB(t, s), tc.sql)
			rep, err := s.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Breaks) != 1 || rep.Breaks[0].Chain != "checkpoint" || rep.Breaks[0].ReceiptID != cp.CheckpointID || !strings.Contains(rep.Breaks[0].Reason, tc.reason) {
				t.Fatalf("breaks %+v, want checkpoint %s: %q", rep.Breaks, cp.CheckpointID, tc.reason)
			}
		})
	}
}
