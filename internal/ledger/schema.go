package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migration is one step of the schema. Steps are append-only: a released
// step is never edited, a change is a new step. PRAGMA user_version holds
// the number of steps applied; schema_migrations keeps when each ran.
type migration struct {
	name string
	sql  string
}

var migrations = []migration{
	{"initial schema", `
CREATE TABLE schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TEXT NOT NULL
);

CREATE TABLE decisions (
	decision_id    TEXT PRIMARY KEY,
	correlation_id TEXT NOT NULL,
	tenant_id      TEXT NOT NULL,
	capability_id  TEXT NOT NULL,
	denied         INTEGER NOT NULL,
	deny_code      TEXT NOT NULL,
	dry_run        INTEGER NOT NULL,
	decided_at     TEXT NOT NULL,
	decision       TEXT NOT NULL
);
CREATE INDEX decisions_correlation ON decisions (correlation_id);
CREATE INDEX decisions_tenant ON decisions (tenant_id, decided_at);

-- Telemetry: the envelopes of each decision (source 'decision') and the
-- events workers emit (source 'worker').
CREATE TABLE events (
	id             INTEGER PRIMARY KEY,
	correlation_id TEXT NOT NULL,
	decision_id    TEXT,
	source         TEXT NOT NULL,
	event_id       TEXT NOT NULL,
	recorded_at    TEXT NOT NULL,
	event          TEXT NOT NULL
);
CREATE INDEX events_correlation ON events (correlation_id, id);

-- body is the canonical JSON receipt_hash covers; the other columns are
-- copies for lookups, checked against body by Verify.
CREATE TABLE receipts (
	id                INTEGER PRIMARY KEY,
	tenant_id         TEXT NOT NULL,
	seq               INTEGER NOT NULL,
	receipt_id        TEXT NOT NULL UNIQUE,
	correlation_id    TEXT NOT NULL,
	worker_id         TEXT NOT NULL,
	dispatched_at     TEXT NOT NULL,
	prev_receipt_hash TEXT,
	receipt_hash      TEXT NOT NULL,
	signing_key_id    TEXT NOT NULL,
	signature         TEXT NOT NULL,
	body              TEXT NOT NULL,
	UNIQUE (tenant_id, seq)
);
CREATE INDEX receipts_correlation ON receipts (correlation_id);
CREATE INDEX receipts_worker ON receipts (worker_id);
CREATE INDEX receipts_dispatched ON receipts (dispatched_at);

-- The newest receipt of each stream, written in the same transaction as
-- the receipt: it is what makes deleting the newest receipt visible.
CREATE TABLE stream_heads (
	tenant_id    TEXT PRIMARY KEY,
	seq          INTEGER NOT NULL,
	receipt_id   TEXT NOT NULL,
	receipt_hash TEXT NOT NULL
);

-- Guard rails against accidents, not attackers (who can drop them).
CREATE TRIGGER receipts_no_update BEFORE UPDATE ON receipts
BEGIN SELECT RAISE(ABORT, 'receipts are append-only'); END;
CREATE TRIGGER receipts_no_delete BEFORE DELETE ON receipts
BEGIN SELECT RAISE(ABORT, 'receipts are append-only'); END;
`},
	{"change chain", `
-- The Hall's change chain: enrollments and replaced rules or configuration,
-- one chain for the whole ledger. body is the canonical JSON hash covers;
-- the other columns are copies for lookups, checked against body by Verify.
CREATE TABLE changes (
	id             INTEGER PRIMARY KEY,
	seq            INTEGER NOT NULL UNIQUE,
	change_id      TEXT NOT NULL UNIQUE,
	kind           TEXT NOT NULL,
	subject        TEXT NOT NULL,
	recorded_at    TEXT NOT NULL,
	prev_hash      TEXT,
	hash           TEXT NOT NULL,
	signing_key_id TEXT NOT NULL,
	signature      TEXT NOT NULL,
	body           TEXT NOT NULL
);
CREATE INDEX changes_kind ON changes (kind, seq);

-- The newest change, written in the same transaction: it is what makes
-- deleting the newest change visible. One row at most.
CREATE TABLE change_head (
	chain     INTEGER PRIMARY KEY CHECK (chain = 1),
	seq       INTEGER NOT NULL,
	change_id TEXT NOT NULL,
	hash      TEXT NOT NULL
);

CREATE TRIGGER changes_no_update BEFORE UPDATE ON changes
BEGIN SELECT RAISE(ABORT, 'changes are append-only'); END;
CREATE TRIGGER changes_no_delete BEFORE DELETE ON changes
BEGIN SELECT RAISE(ABORT, 'changes are append-only'); END;
`},
	{"decision chains, signing keys, checkpoints", `
-- Every decision (allowed, denied, dry run) and every batch of worker
-- telemetry, chained per tenant (stream = tenant id, '' for none) and
-- signed: format version 2. body is the canonical JSON hash covers; the
-- other columns are copies for lookups, checked against body by Verify.
CREATE TABLE entries (
	id             INTEGER PRIMARY KEY,
	stream         TEXT NOT NULL,
	seq            INTEGER NOT NULL,
	entry_id       TEXT NOT NULL UNIQUE,
	kind           TEXT NOT NULL,
	correlation_id TEXT NOT NULL,
	recorded_at    TEXT NOT NULL,
	prev_hash      TEXT,
	hash           TEXT NOT NULL,
	signing_key_id TEXT NOT NULL,
	signature      TEXT NOT NULL,
	body           TEXT NOT NULL,
	UNIQUE (stream, seq)
);
CREATE TABLE entry_heads (
	stream   TEXT PRIMARY KEY,
	seq      INTEGER NOT NULL,
	entry_id TEXT NOT NULL,
	hash     TEXT NOT NULL
);
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'entries are append-only'); END;

-- Decisions and events rows written from now on name their chain entry;
-- rows recorded before this step have NULL there (unchained).
ALTER TABLE decisions ADD COLUMN entry_seq INTEGER;
ALTER TABLE events ADD COLUMN entry_id TEXT;
CREATE INDEX events_entry ON events (entry_id);

-- The key that signs from now on; a rotation changes it in the same
-- transaction as the signed rotation entry, so every process sees it at
-- its next write.
CREATE TABLE signing_key (
	slot   INTEGER PRIMARY KEY CHECK (slot = 1),
	key_id TEXT NOT NULL
);

-- Signed checkpoints (also written to the witness directory, if any).
CREATE TABLE checkpoints (
	id             INTEGER PRIMARY KEY,
	checkpoint_id  TEXT NOT NULL UNIQUE,
	created_at     TEXT NOT NULL,
	hash           TEXT NOT NULL,
	signing_key_id TEXT NOT NULL,
	signature      TEXT NOT NULL,
	body           TEXT NOT NULL
);
`},
	{"drop indexes no query uses", `
-- Reviewed against every query the package makes (RATIONALE.md,
-- "Indexes"): nothing looks decisions up by tenant and time, nor events
-- by entry id; each index cost a B-tree insert per row on the write path.
DROP INDEX IF EXISTS decisions_tenant;
DROP INDEX IF EXISTS events_entry;
`},
	{"events found through their entries", `
-- Telemetry events are read from the signed entries that hold them, found
-- by correlation id (RATIONALE.md, "Stored once"); the events table keeps
-- the rows written before, and gets no new ones.
CREATE INDEX entries_correlation ON entries (correlation_id, id);
`},
	{"approvals", `
-- Human approvals (approvals.go): every state of an approval is the body
-- of a signed change of the change chain; this row, written in the same
-- transaction, indexes them (change_id names the newest).
CREATE TABLE approvals (
	id         TEXT PRIMARY KEY,
	state      TEXT NOT NULL,
	tenant_id  TEXT NOT NULL,
	created_at INTEGER NOT NULL, -- unix microseconds
	expires_at INTEGER NOT NULL,
	change_id  TEXT NOT NULL
) STRICT;
CREATE INDEX approvals_state ON approvals (state, created_at);
CREATE INDEX changes_subject ON changes (subject, seq);
-- Approvals recorded in the chain by an earlier Hall (whose rows were in
-- approvals.db) get their row from their newest change (times to the
-- millisecond); a body that does not read is left without one.
INSERT OR IGNORE INTO approvals (id, state, tenant_id, created_at, expires_at, change_id)
SELECT c.subject, json_extract(c.body, '$.body.state'), json_extract(c.body, '$.body.tenant_id'),
	CAST(unixepoch(json_extract(c.body, '$.body.created_at'), 'subsec') * 1000000 AS INTEGER),
	CAST(unixepoch(json_extract(c.body, '$.body.expires_at'), 'subsec') * 1000000 AS INTEGER),
	c.change_id
FROM changes c
WHERE c.kind IN ('approval_requested', 'approval_approved', 'approval_denied', 'approval_expired', 'approval_used')
	AND json_valid(c.body)
	AND c.seq = (SELECT max(d.seq) FROM changes d WHERE d.subject = c.subject
		AND d.kind IN ('approval_requested', 'approval_approved', 'approval_denied', 'approval_expired', 'approval_used'))
	AND json_type(c.body, '$.body.state') = 'text' AND json_type(c.body, '$.body.tenant_id') = 'text'
	AND unixepoch(json_extract(c.body, '$.body.created_at'), 'subsec') IS NOT NULL
	AND unixepoch(json_extract(c.body, '$.body.expires_at'), 'subsec') IS NOT NULL;
`},
}

// schemaVersion is the schema version this package writes and reads.
var schemaVersion = len(migrations)

func userVersion(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

// stepsApplied is the highest version table schema_migrations records (0
// when the table does not exist yet).
func stepsApplied(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n)
	if err != nil || n == 0 {
		return 0, err
	}
	err = db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&n)
	return n, err
}

// migrate brings the database to schemaVersion. The check is repeated
// inside a BEGIN IMMEDIATE transaction so that two processes opening a new
// state directory at once apply each step exactly once. record, called in
// that transaction with the version found, signs the version now in
// force into the change chain (verify_rows.go); it also runs for a
// database already at schemaVersion whose chain does not say so yet.
func migrate(ctx context.Context, db *sql.DB, readOnly bool, record func(context.Context, *sql.Tx, int) error) error {
	return migrateSteps(ctx, db, migrations, readOnly, record)
}

// migrateSteps is migrate with the steps of a dialect (pgMigrations),
// as many as migrations.
func migrateSteps(ctx context.Context, db *sql.DB, migrations []migration, readOnly bool, record func(context.Context, *sql.Tx, int) error) error {
	v, err := userVersion(ctx, db)
	if err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("%w: database schema version %d is newer than this Hall's %d", ErrSchemaTooNew, v, schemaVersion)
	}
	if n, err := stepsApplied(ctx, db); err != nil {
		return err
	} else if n > v {
		return fmt.Errorf("%w: database schema version (PRAGMA user_version) %d is behind the %d steps table schema_migrations records: it was set back outside the Hall; run hall audit verify", ErrSchemaTooNew, v, n)
	}
	if v == schemaVersion {
		if ok, err := schemaRecorded(ctx, db); readOnly || ok || err != nil {
			return err
		}
	}
	if readOnly {
		return fmt.Errorf("%w: database schema version %d needs migrating to %d; open it read-write once", ErrReadOnly, v, schemaVersion)
	}
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see _txlock)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if v, err = userVersion(ctx, tx); err != nil {
		return err
	}
	for i := v; i < len(migrations); i++ {
		m := migrations[i]
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %d (%s): %w", i+1, m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			i+1, m.name, time.Now().UTC().Format(time.RFC3339Nano)); err != nil {
			return fmt.Errorf("migration %d (%s): %w", i+1, m.name, err)
		}
	}
	if err := record(ctx, tx, v); err != nil {
		return fmt.Errorf("record schema version %d: %w", len(migrations), err)
	}
	if v < len(migrations) {
		// PRAGMA takes no bound parameters; the value is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return err
		}
	}
	return tx.Commit()
}
