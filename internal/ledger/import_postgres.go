package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/wcphall/hall/internal/pgsql"
)

// importTables are the ledger's tables and the columns copied, in an
// order that keeps each table's rows in their SQLite order (rowid).
var importTables = []struct {
	name     string
	cols     []string
	identity string // the column PostgreSQL numbers itself, "" for none
}{
	{"schema_migrations", []string{"version", "name", "applied_at"}, ""},
	{"decisions", []string{"decision_id", "correlation_id", "tenant_id", "capability_id", "denied", "deny_code", "dry_run", "decided_at", "decision", "entry_seq"}, ""},
	{"events", []string{"id", "correlation_id", "decision_id", "source", "event_id", "recorded_at", "event", "entry_id"}, "id"},
	{"receipts", []string{"id", "tenant_id", "seq", "receipt_id", "correlation_id", "worker_id", "dispatched_at", "prev_receipt_hash", "receipt_hash", "signing_key_id", "signature", "body"}, "id"},
	{"stream_heads", []string{"tenant_id", "seq", "receipt_id", "receipt_hash"}, ""},
	{"changes", []string{"id", "seq", "change_id", "kind", "subject", "recorded_at", "prev_hash", "hash", "signing_key_id", "signature", "body"}, "id"},
	{"change_head", []string{"chain", "seq", "change_id", "hash"}, ""},
	{"entries", []string{"id", "stream", "seq", "entry_id", "kind", "correlation_id", "recorded_at", "prev_hash", "hash", "signing_key_id", "signature", "body"}, "id"},
	{"entry_heads", []string{"stream", "seq", "entry_id", "hash"}, ""},
	{"signing_key", []string{"slot", "key_id"}, ""},
	{"checkpoints", []string{"id", "checkpoint_id", "created_at", "hash", "signing_key_id", "signature", "body"}, "id"},
	{"approvals", []string{"id", "state", "tenant_id", "created_at", "expires_at", "change_id"}, ""},
}

// ImportSQLite copies the SQLite ledger of the state directory home into
// the PostgreSQL database dsn, which must hold no ledger yet: every row of
// every table, byte for byte (bodies, hashes, signatures, sequence
// numbers, the change chain with its schema and key changes), in one
// transaction, so that Verify of either reports the same chains and
// heads. The SQLite ledger is first brought to this Hall's schema (as
// Open does). It returns the number of rows copied per table.
func ImportSQLite(ctx context.Context, home, dsn string) (map[string]int, error) {
	if _, err := os.Stat(filepath.Join(home, DBFile)); err != nil {
		return nil, fmt.Errorf("ledger: import: %w (is %s a Hall's state directory?)", err, home)
	}
	src, err := Open(home) // migrates a ledger of an older Hall, creates none that is missing
	if err != nil {
		return nil, err
	}
	src.Close()
	sdb, err := sql.Open("sqlite", "file:"+filepath.Join(home, DBFile)+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		return nil, fmt.Errorf("ledger: import: %w", err)
	}
	defer sdb.Close()
	stx, err := sdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // one snapshot of the source
	if err != nil {
		return nil, fmt.Errorf("ledger: import: %w", err)
	}
	defer stx.Rollback()
	var version int
	if err := stx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return nil, fmt.Errorf("ledger: import: %w", err)
	}
	if version != len(pgMigrations) {
		return nil, fmt.Errorf("ledger: import: the ledger of %s is at schema version %d, this Hall's is %d", home, version, len(pgMigrations))
	}

	cfg, err := pgsql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: database URL: %w", err)
	}
	pdb := pgsql.OpenDB(cfg, pgsql.Dialect{WriteLock: pgLockKey, Statement: pgStatement})
	defer pdb.Close()
	pdb.SetMaxOpenConns(1)
	tx, err := pdb.BeginTx(ctx, nil) // under the ledger's lock
	if err != nil {
		return nil, fmt.Errorf("ledger: import: %w", err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ('changes', 'hall_user_version')`).Scan(&n); err != nil {
		return nil, fmt.Errorf("ledger: import: %w", err)
	}
	if n != 0 {
		return nil, fmt.Errorf("ledger: import: postgres database %s already holds a ledger: import into an empty database (nothing was copied)", cfg.Database)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE hall_user_version (one INTEGER PRIMARY KEY CHECK (one = 1), version BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("ledger: import: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO hall_user_version (one, version) VALUES (1, ?)`, version); err != nil {
		return nil, fmt.Errorf("ledger: import: %w", err)
	}
	for i, m := range pgMigrations {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return nil, fmt.Errorf("ledger: import: migration %d (%s): %w", i+1, m.name, err)
		}
	}
	counts := map[string]int{}
	for _, t := range importTables {
		cols := strings.Join(t.cols, ", ")
		rows, err := stx.QueryContext(ctx, "SELECT "+cols+" FROM "+t.name+" ORDER BY rowid")
		if err != nil {
			return nil, fmt.Errorf("ledger: import: reading %s: %w", t.name, err)
		}
		ins := "INSERT INTO " + t.name + " (" + cols + ") VALUES (" + strings.TrimSuffix(strings.Repeat("?, ", len(t.cols)), ", ") + ")"
		vals := make([]any, len(t.cols))
		ptrs := make([]any, len(t.cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("ledger: import: reading %s: %w", t.name, err)
			}
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					vals[i] = string(b) // every ledger column is text or an integer
				}
			}
			if _, err := tx.ExecContext(ctx, ins, vals...); err != nil {
				rows.Close()
				return nil, fmt.Errorf("ledger: import: writing %s row %d: %w", t.name, counts[t.name]+1, err)
			}
			counts[t.name]++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("ledger: import: reading %s: %w", t.name, err)
		}
		if t.identity != "" {
			if _, err := tx.ExecContext(ctx, "SELECT setval(pg_get_serial_sequence('"+t.name+"', '"+t.identity+"'), coalesce((SELECT max("+t.identity+") FROM "+t.name+"), 0) + 1, false)"); err != nil {
				return nil, fmt.Errorf("ledger: import: %s: %w", t.name, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("ledger: import: %w", err)
	}
	return counts, nil
}
