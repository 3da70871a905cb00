package ledger

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestIndexesServeTheQueries pins the index review of issue 12: a
// database created at schema step 3 (with the two unused indexes) is
// upgraded, loses them, keeps its data, and every lookup the package
// makes is served by an index rather than a scan of its table.
func TestIndexesServeTheQueries(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:3] {
		if _, err := db.Exec(m.sql); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'a', 't'), (2, 'b', 't'), (3, 'c', 't')`,
		`INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision) VALUES ('d0', 'c0', 'org.a', 'cap.x', 0, '', 1, '2025-01-01T00:00:00Z', '{}')`,
		`PRAGMA user_version = 3`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := openT(t, dir)
	if d, err := s.Decision(context.Background(), "d0"); err != nil || d.TenantID != "org.a" {
		t.Fatalf("decision recorded before the upgrade: %+v, %v", d, err)
	}
	var names []string
	rows, err := s.r.Query(`SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	rows.Close()
	slices.Sort(names)
	want := []string{"approvals_state", "changes_kind", "changes_subject", "decisions_correlation", "entries_correlation", "events_correlation", "receipts_correlation", "receipts_dispatched", "receipts_worker"}
	if !slices.Equal(names, want) {
		t.Errorf("indexes = %v, want %v", names, want)
	}
	for _, q := range []struct{ sql, index string }{
		{qStreamHead, "sqlite_autoindex_stream_heads_1"},
		{qEntryHead, "sqlite_autoindex_entry_heads_1"},
		{qDecisionTenant, "sqlite_autoindex_entries_1"},
		{qNewestDecision, "entries_correlation"},
		{qLegacyDecisionTenant, "sqlite_autoindex_decisions_1"},
		{qLegacyNewestDecision, "decisions_correlation"},
		{`SELECT event FROM events WHERE correlation_id = ? AND entry_id IS NULL ORDER BY id`, "events_correlation"},
		{`SELECT entry_id, body FROM entries WHERE correlation_id = ? ORDER BY id`, "entries_correlation"},
		{`SELECT body FROM receipts WHERE receipt_id = ?`, "sqlite_autoindex_receipts_1"},
		{`SELECT body FROM receipts WHERE correlation_id = ? ORDER BY id DESC LIMIT 5`, "receipts_correlation"},
		{`SELECT body FROM receipts WHERE worker_id = ? ORDER BY id DESC LIMIT 5`, "receipts_worker"},
		{`SELECT body FROM receipts WHERE tenant_id = ? ORDER BY seq DESC LIMIT 5`, "sqlite_autoindex_receipts_2"},
		{`SELECT body FROM receipts ORDER BY tenant_id, seq`, "sqlite_autoindex_receipts_2"},
		{`SELECT body FROM entries ORDER BY stream, seq`, "sqlite_autoindex_entries_2"},
		{qSignedApproval, "changes_subject"},
		{`SELECT count(*), min(created_at) FROM approvals WHERE state = 'pending'`, "approvals_state"},
		{`SELECT state FROM approvals WHERE id = ?`, "sqlite_autoindex_approvals_1"},
	} {
		plan := queryPlan(t, s.r, q.sql)
		if !strings.Contains(plan, q.index) || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s\n  plan: %s\n  want index %s and no sort", q.sql, plan, q.index)
		}
	}
}

func queryPlan(t *testing.T, db *sql.DB, q string) string {
	t.Helper()
	args := make([]any, strings.Count(q, "?"))
	for i := range args {
		args[i] = "x"
	}
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}
