package approval

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// DBFile is the approvals database's file name in the Hall's state
// directory.
const DBFile = "approvals.db"

// SQLite is the Store in one SQLite file.
type SQLite struct{ db *sql.DB }

var _ Store = (*SQLite)(nil)

const schema = `
CREATE TABLE IF NOT EXISTS approvals (
	id         TEXT PRIMARY KEY,
	state      TEXT NOT NULL,
	tenant_id  TEXT NOT NULL,
	created_at INTEGER NOT NULL, -- unix microseconds
	expires_at INTEGER NOT NULL,
	doc        TEXT NOT NULL     -- the Approval as JSON
) STRICT;
CREATE INDEX IF NOT EXISTS approvals_state ON approvals (state, created_at);`

// OpenSQLite opens (creating it when missing, mode 0600) the approvals
// database at path.
func OpenSQLite(path string) (*SQLite, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	f.Close()
	q := url.Values{}
	q.Set("_busy_timeout", "5000")
	q.Set("_journal_mode", "WAL")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("approvals: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("approvals: open %s: %w", path, err)
	}
	return &SQLite{db: db}, nil
}

func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

// Close releases the database.
func (s *SQLite) Close() error { return s.db.Close() }

// Create implements Store.
func (s *SQLite) Create(ctx context.Context, a *Approval) error {
	if !ValidID(a.ID) {
		return fmt.Errorf("approvals: id %q is not apr_<32 hex>", a.ID)
	}
	a.State = Pending
	a.CreatedAt = a.CreatedAt.UTC().Truncate(time.Microsecond)
	a.ExpiresAt = a.ExpiresAt.UTC().Truncate(time.Microsecond)
	doc, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO approvals (id, state, tenant_id, created_at, expires_at, doc) VALUES (?, ?, ?, ?, ?, ?)`,
		a.ID, string(a.State), a.TenantID, micros(a.CreatedAt), micros(a.ExpiresAt), string(doc))
	if err != nil {
		return fmt.Errorf("approvals: creating %s: %w", a.ID, err)
	}
	return nil
}

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, id string) (*Approval, error) {
	return get(ctx, s.db, id)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func get(ctx context.Context, q queryer, id string) (*Approval, error) {
	var doc string
	err := q.QueryRowContext(ctx, `SELECT doc FROM approvals WHERE id = ?`, id).Scan(&doc)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	var a Approval
	if err := json.Unmarshal([]byte(doc), &a); err != nil {
		return nil, fmt.Errorf("approvals: %s: %w", id, err)
	}
	return &a, nil
}

// List implements Store.
func (s *SQLite) List(ctx context.Context, f Filter) ([]Approval, error) {
	q := `SELECT doc FROM approvals WHERE 1=1`
	var args []any
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, string(f.State))
	}
	if f.TenantID != "" {
		q += ` AND tenant_id = ?`
		args = append(args, f.TenantID)
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q += ` ORDER BY created_at DESC, id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	defer rows.Close()
	var out []Approval
	for rows.Next() {
		var doc string
		if err := rows.Scan(&doc); err != nil {
			return nil, fmt.Errorf("approvals: %w", err)
		}
		var a Approval
		if err := json.Unmarshal([]byte(doc), &a); err != nil {
			return nil, fmt.Errorf("approvals: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// transition applies change to the approval id when it is in state from
// (and, when now is not zero, has not expired at now), in one immediate
// transaction.
func (s *SQLite) transition(ctx context.Context, id string, from, want State, now time.Time, change func(*Approval)) (*Approval, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	defer tx.Rollback()
	a, err := get(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if a.State != from {
		return a, &ConflictError{ID: id, State: a.State, Want: from}
	}
	if !now.IsZero() && !now.Before(a.ExpiresAt) {
		return a, &ConflictError{ID: id, State: Expired, Want: from}
	}
	change(a)
	a.State = want
	doc, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE approvals SET state = ?, doc = ? WHERE id = ?`, string(want), string(doc), id); err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	return a, nil
}

// Decide implements Store.
func (s *SQLite) Decide(ctx context.Context, id string, to State, by, comment string, now time.Time) (*Approval, error) {
	if to != Approved && to != Denied {
		return nil, fmt.Errorf("approvals: a decision is approved or denied, not %q", to)
	}
	now = now.UTC().Truncate(time.Microsecond)
	return s.transition(ctx, id, Pending, to, now, func(a *Approval) {
		a.DecidedBy, a.DecidedAt, a.Comment = by, now, comment
	})
}

// Use implements Store.
func (s *SQLite) Use(ctx context.Context, id, decisionID string, now time.Time) (*Approval, error) {
	now = now.UTC().Truncate(time.Microsecond)
	return s.transition(ctx, id, Approved, Used, now, func(a *Approval) {
		a.UsedBy, a.UsedAt = decisionID, now
	})
}

// Revert implements Store.
func (s *SQLite) Revert(ctx context.Context, id string, from, to State) error {
	_, err := s.transition(ctx, id, from, to, time.Time{}, func(a *Approval) {
		switch from {
		case Approved, Denied:
			a.DecidedBy, a.DecidedAt, a.Comment = "", time.Time{}, ""
		case Used:
			a.UsedBy, a.UsedAt = "", time.Time{}
		}
	})
	return err
}

// Expire implements Store.
func (s *SQLite) Expire(ctx context.Context, now time.Time) ([]Approval, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, state FROM approvals WHERE state IN ('pending', 'approved') AND expires_at <= ?`, micros(now))
	if err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	type cand struct {
		id    string
		state State
	}
	var cands []cand
	for rows.Next() {
		var c cand
		if err := rows.Scan(&c.id, &c.state); err != nil {
			rows.Close()
			return nil, fmt.Errorf("approvals: %w", err)
		}
		cands = append(cands, c)
	}
	rows.Close()
	var out []Approval
	for _, c := range cands {
		a, err := s.transition(ctx, c.id, c.state, Expired, time.Time{}, func(*Approval) {})
		if errors.Is(err, ErrConflict) {
			continue // decided or used meanwhile
		}
		if err != nil {
			return out, err
		}
		out = append(out, *a)
	}
	return out, nil
}

// Pending implements Store.
func (s *SQLite) Pending(ctx context.Context) (int, time.Time, error) {
	var n int
	var oldest sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM approvals WHERE state = 'pending'`).Scan(&n, &oldest)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("approvals: %w", err)
	}
	if !oldest.Valid {
		return n, time.Time{}, nil
	}
	return n, time.UnixMicro(oldest.Int64).UTC(), nil
}
