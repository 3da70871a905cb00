package ledger

import (
	"context"
	"database/sql"
)

// The hot write statements, prepared once on the writer's connection:
// without it SQLite parsed every statement of every write again (~9% of a
// decision's cost at /wcp/route, issue 12).
const (
	qSavepoint     = `SAVEPOINT item`
	qRelease       = `RELEASE item`
	qRollbackTo    = `ROLLBACK TO item`
	qSigningKey    = `SELECT key_id FROM signing_key WHERE slot = 1`
	qStreamHead    = `SELECT seq, receipt_hash FROM stream_heads WHERE tenant_id = ?`
	qInsertReceipt = `INSERT INTO receipts (tenant_id, seq, receipt_id, correlation_id, worker_id, dispatched_at, prev_receipt_hash, receipt_hash, signing_key_id, signature, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpsertStream  = `INSERT INTO stream_heads (tenant_id, seq, receipt_id, receipt_hash) VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, receipt_id = excluded.receipt_id, receipt_hash = excluded.receipt_hash`
	// A decision's signed entry, by id and by correlation id: the stream of
	// a worker's events (decision_lookup.go).
	qDecisionTenant = `SELECT stream, hash, body FROM entries WHERE entry_id = ?`
	qNewestDecision = `SELECT entry_id, stream, hash, body FROM entries WHERE correlation_id = ? AND kind = 'decision' ORDER BY id DESC LIMIT 1`
	qEntryHead      = `SELECT seq, hash FROM entry_heads WHERE stream = ?`
	qInsertEntry    = `INSERT INTO entries (stream, seq, entry_id, kind, correlation_id, recorded_at, prev_hash, hash, signing_key_id, signature, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qUpsertEntry    = `INSERT INTO entry_heads (stream, seq, entry_id, hash) VALUES (?, ?, ?, ?) ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, entry_id = excluded.entry_id, hash = excluded.hash`
	qInsertDecision = `INSERT INTO decisions (decision_id, correlation_id, tenant_id, capability_id, denied, deny_code, dry_run, decided_at, decision, entry_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// prepareWrites prepares the hot statements on the writer's connection.
// It runs in the committer goroutine before its first transaction (a
// statement cannot be prepared on the one connection while a transaction
// holds it). A statement that fails to prepare is left out and runs
// unprepared: preparing is an optimisation, never a condition for writing.
func (s *SQLite) prepareWrites() {
	if s.stmts != nil {
		return
	}
	s.stmts = map[string]*sql.Stmt{}
	qs := []string{qSavepoint, qRelease, qRollbackTo, qSigningKey, qStreamHead, qInsertReceipt, qUpsertStream,
		qDecisionTenant, qNewestDecision, qEntryHead, qInsertEntry, qUpsertEntry, qInsertDecision}
	for _, q := range qs {
		if st, err := s.w.Prepare(q); err == nil {
			s.stmts[q] = st
		}
	}
}

// txStmt returns q bound to tx: the prepared statement when there is one
// (bound once per transaction), nil otherwise.
func (s *SQLite) txStmt(tx *sql.Tx, q string) *sql.Stmt {
	if s.txStmts == nil || s.stmtTx != tx {
		clear(s.txStmts)
		if s.txStmts == nil {
			s.txStmts = map[string]*sql.Stmt{}
		}
		s.stmtTx = tx
	}
	if st := s.txStmts[q]; st != nil {
		return st
	}
	p := s.stmts[q]
	if p == nil {
		return nil
	}
	st := tx.StmtContext(context.Background(), p)
	s.txStmts[q] = st
	return st
}

// execTx runs a write statement inside tx, prepared when it can be. Only
// the committer goroutine calls it.
func (s *SQLite) execTx(tx *sql.Tx, q string, args ...any) error {
	var err error
	if st := s.txStmt(tx, q); st != nil {
		_, err = st.Exec(args...)
	} else {
		_, err = tx.ExecContext(context.Background(), q, args...)
	}
	return err
}

// queryRowTx is execTx for a query of one row.
func (s *SQLite) queryRowTx(tx *sql.Tx, q string, args ...any) *sql.Row {
	if st := s.txStmt(tx, q); st != nil {
		return st.QueryRow(args...)
	}
	return tx.QueryRowContext(context.Background(), q, args...)
}

// closeStmts releases the prepared statements (at Close, after the
// committer has stopped).
func (s *SQLite) closeStmts() {
	for _, st := range s.stmts {
		st.Close()
	}
}
