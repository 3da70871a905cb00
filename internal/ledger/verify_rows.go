package ledger

import (
	"bufio"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// ChangeSchema is the [Change] kind that records the ledger's schema
// version: one when the ledger is created and one at every migration,
// in the same transaction as the migration's DDL. Subject is [DBFile],
// Digest the SHA-256 of the SQL of every schema step in force, Body a
// [SchemaVersion]. Actor is "hall".
const ChangeSchema = "schema"

// SchemaVersion is the body of a [ChangeSchema] change.
type SchemaVersion struct {
	// Version is the schema version in force from this change on.
	Version int `json:"version"`
	// From is the version the database was at before: 0 when the ledger
	// was created by this change's transaction.
	From int `json:"from"`
	// Born is the version the ledger was created at, when a schema change
	// recorded its creation; 0 when it was created before schema versions
	// were recorded (at version From of its first schema change, or
	// earlier).
	Born int `json:"born,omitempty"`
	// Steps are the rows of table schema_migrations this change covers,
	// oldest first: the steps it applied, and, on the ledger's first
	// schema change, every step applied before too (as found).
	Steps []SchemaStep `json:"steps,omitempty"`
	// Legacy, on the ledger's first schema change only, seals the rows
	// that no entry signs: decisions and events rows written before
	// decisions were chained (schema step 3). A ledger born with a
	// schema change has none, and never writes any.
	Legacy *LegacyRows `json:"legacy,omitempty"`
}

// SchemaStep is one row of table schema_migrations: a schema step and
// when it was applied.
type SchemaStep struct {
	Version   int64  `json:"version"`
	Name      string `json:"name"`
	AppliedAt string `json:"applied_at"`
}

// schemaSteps reads the rows of schema_migrations after version after
// (every row when after is 0).
func schemaSteps(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, after int) ([]SchemaStep, error) {
	query := `SELECT CAST(version AS INTEGER), CAST(name AS TEXT), CAST(applied_at AS TEXT) FROM schema_migrations`
	var args []any
	if after > 0 {
		query += ` WHERE version > ?`
		args = append(args, after)
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY version, rowid`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SchemaStep
	for rows.Next() {
		var st SchemaStep
		var name, at sql.NullString
		if err := rows.Scan(&st.Version, &name, &at); err != nil {
			return nil, err
		}
		st.Name, st.AppliedAt = name.String, at.String
		out = append(out, st)
	}
	return out, rows.Err()
}

// LegacyRows is the seal of the rows of a ledger's older form that no
// entry signs (docs/EVIDENCE.md, "Rows no entry signs").
type LegacyRows struct {
	// Decisions counts decisions rows without an entry (entry_seq NULL);
	// Events counts events rows.
	Decisions int `json:"decisions"`
	Events    int `json:"events"`
	// Digest is "sha256:<hex>" of the rows' lines (legacyLine), each
	// followed by a newline: decisions by decision_id, then events by id.
	// A bundle carries the same lines as legacy.jsonl.
	Digest string `json:"digest"`
}

// schemaActor is the actor of schema changes: the Hall itself.
const schemaActor = "hall"

// schemaDigest is the digest of the schema in force at version v: the SQL
// of steps 1..v, each followed by a NUL.
func schemaDigest(v int) string {
	h := sha256.New()
	for _, m := range migrations[:min(v, len(migrations))] {
		h.Write([]byte(m.sql))
		h.Write([]byte{0})
	}
	return "sha256:" + fmt.Sprintf("%x", h.Sum(nil))
}

// schemaEntry is a signed schema change as Verify and migrate read it.
type schemaEntry struct {
	SchemaVersion
	changeID string
	seq      uint64
	keyID    string
	bad      string // why the body does not decode, or ""
}

// schemaEntries reads the schema changes of the change chain in order.
// Their hashes and signatures are checked by the change chain's walk.
func schemaEntries(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]schemaEntry, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, change_id, signing_key_id, body FROM changes WHERE kind = ? ORDER BY seq`, ChangeSchema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []schemaEntry
	for rows.Next() {
		var e schemaEntry
		var seq int64
		var body string
		if err := rows.Scan(&seq, &e.changeID, &e.keyID, &body); err != nil {
			return nil, err
		}
		e.seq = uint64(seq)
		var c struct {
			Body SchemaVersion `json:"body"`
		}
		if err := json.Unmarshal([]byte(body), &c); err != nil {
			e.bad = err.Error()
		}
		e.SchemaVersion = c.Body
		out = append(out, e)
	}
	return out, rows.Err()
}

// schemaRecorded reports whether the change chain's last schema change
// names the current schema version (the common case of Open).
func schemaRecorded(ctx context.Context, db *sql.DB) (bool, error) {
	var body string
	err := db.QueryRowContext(ctx, `SELECT body FROM changes WHERE kind = ? ORDER BY seq DESC LIMIT 1`, ChangeSchema).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var c struct {
		Body SchemaVersion `json:"body"`
	}
	return json.Unmarshal([]byte(body), &c) == nil && c.Body.Version == schemaVersion, nil
}

// recordSchema runs inside migrate's transaction, after the steps from
// version from on were applied: it signs a [ChangeSchema] change naming
// the version now in force, unless the chain already names it. The
// ledger's first schema change seals its legacy rows; a chain that names
// another version than from (PRAGMA user_version edited behind the
// Hall's back) is refused.
func (s *SQLite) recordSchema(ctx context.Context, tx *sql.Tx, from int) error {
	if s.key.Load() == nil {
		return fmt.Errorf("%w: recording the schema version needs the signing key", s.keyError)
	}
	es, err := schemaEntries(ctx, tx)
	if err != nil {
		return err
	}
	sv := SchemaVersion{Version: schemaVersion, From: from}
	after := from // the steps this change covers: those it applied...
	if n := len(es); n > 0 {
		last := es[n-1]
		if last.Version == schemaVersion && from == schemaVersion {
			return nil // another process recorded it first
		}
		if last.bad != "" || last.Version != from {
			return fmt.Errorf("%w: the change chain records schema version %d (change %s) but the database said %d: PRAGMA user_version was changed outside the Hall; restore the database from a copy",
				ErrSchemaTooNew, last.Version, last.changeID, from)
		}
		sv.Born = es[0].Born
	} else {
		if from == 0 {
			sv.Born = schemaVersion
		}
		lr, _, err := legacyRows(ctx, tx)
		if err != nil {
			return err
		}
		sv.Legacy = &lr
		after = 0 // ...and, on the first, those applied before
	}
	if sv.Steps, err = schemaSteps(ctx, tx, after); err != nil {
		return err
	}
	k := s.key.Load()
	if k == nil {
		return s.keyError
	}
	if err := s.syncKeyWith(tx, tx.QueryRowContext(ctx, qSigningKey, k.id, k.id)); err != nil {
		return err
	}
	body, err := canonicalMarshal(sv)
	if err != nil {
		return err
	}
	c := Change{Kind: ChangeSchema, Subject: DBFile, Digest: schemaDigest(schemaVersion), Body: body, Actor: schemaActor,
		At: time.Now().UTC().Truncate(time.Microsecond), Version: formatV2, ChangeID: newChangeID()}
	return s.linkChange(tx, "record schema version", &c)
}

// legacyRow is one row no entry signs, as Verify reports it.
type legacyRow struct {
	table, id, tenant string
}

// legacyLine is the sealed form of one row: the canonical JSON object of
// its table name and every column, each column as SQLite's quote() of
// its value (type and bytes exact, whatever an attacker stored).
func legacyLine(table string, cols []string, vals []string) ([]byte, error) {
	m := make(map[string]string, len(cols)+1)
	m["table"] = table
	for i, c := range cols {
		m[c] = vals[i]
	}
	return canonicalMarshal(m)
}

var (
	legacyDecisionCols = []string{"decision_id", "correlation_id", "tenant_id", "capability_id", "denied", "deny_code", "dry_run", "decided_at", "decision", "entry_seq"}
	legacyEventCols    = []string{"id", "correlation_id", "decision_id", "source", "event_id", "recorded_at", "event", "entry_id"}
)

// legacyQuery selects the quoted columns of table's rows no entry signs,
// then the row's id and tenant for reports.
func legacyQuery(table string, cols []string, where, order, id, tenant string) string {
	q := make([]string, len(cols))
	for i, c := range cols {
		q[i] = "quote(" + c + ")"
	}
	return "SELECT " + strings.Join(q, ", ") + ", CAST(" + id + " AS TEXT), " + tenant + " FROM " + table + where + " ORDER BY " + order
}

// legacyRows reads the rows no entry signs and returns their seal, the
// rows, and, through writeLine when non-nil, their lines.
func legacyRows(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, writeLine ...func([]byte)) (LegacyRows, []legacyRow, error) {
	var lr LegacyRows
	var out []legacyRow
	h := sha256.New()
	for _, t := range []struct {
		table string
		cols  []string
		sql   string
		count *int
	}{
		{"decisions", legacyDecisionCols, legacyQuery("decisions", legacyDecisionCols, " WHERE entry_seq IS NULL", "decision_id", "decision_id", "CAST(tenant_id AS TEXT)"), &lr.Decisions},
		{"events", legacyEventCols, legacyQuery("events", legacyEventCols, "", "id", "id", "''"), &lr.Events},
	} {
		rows, err := q.QueryContext(ctx, t.sql)
		if err != nil {
			return lr, nil, err
		}
		vals := make([]string, len(t.cols))
		dest := make([]any, len(t.cols)+2)
		for i := range vals {
			dest[i] = &vals[i]
		}
		var r legacyRow
		var id, tenant sql.NullString
		dest[len(vals)], dest[len(vals)+1] = &id, &tenant
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return lr, nil, err
			}
			line, err := legacyLine(t.table, t.cols, vals)
			if err != nil {
				rows.Close()
				return lr, nil, err
			}
			line = append(line, '\n')
			h.Write(line)
			for _, w := range writeLine {
				w(line)
			}
			r = legacyRow{table: t.table, id: id.String, tenant: tenant.String}
			out = append(out, r)
			*t.count++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return lr, nil, err
		}
	}
	lr.Digest = fmt.Sprintf("sha256:%x", h.Sum(nil))
	return lr, out, nil
}

// verifyRows checks, inside tx, what no chain walk covers: the schema
// versions recorded in the change chain against the database's, the rows
// no entry signs against the seal of the first schema change (none at
// all in a ledger born with one), and the signing-key slot against the
// key the change chain says signs now. rots are the chain's rotations.
func (s *SQLite) verifyRows(ctx context.Context, tx *sql.Tx, rots []rotation, rep *Report) error {
	es, err := schemaEntries(ctx, tx)
	if err != nil {
		return s.wrap("verify", err)
	}
	lr, legacy, err := legacyRows(ctx, tx)
	if err != nil {
		return s.wrap("verify", err)
	}
	rep.Unchained = lr.Decisions
	brk := func(id string, seq uint64, format string, args ...any) {
		rep.Breaks = append(rep.Breaks, Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: id, Sequence: seq, Reason: fmt.Sprintf(format, args...)})
	}
	if len(es) == 0 {
		// A ledger last written before schema versions were recorded: its
		// legacy rows are as unprotected as they always were (the first
		// read-write Open seals them).
		return nil
	}
	var uv int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&uv); err != nil {
		return s.wrap("verify", err)
	}
	first := es[0]
	for i, e := range es {
		switch {
		case e.bad != "":
			brk(e.changeID, e.seq, "signed schema change does not decode: %s", e.bad)
			return nil
		case i == 0 && e.From == 0 && e.Born != e.Version:
			brk(e.changeID, e.seq, "schema change records the ledger's creation at version %d but names born version %d", e.Version, e.Born)
			return nil
		case i > 0 && (e.From != es[i-1].Version || e.Born != first.Born):
			brk(e.changeID, e.seq, "schema change from version %d (born %d) does not follow change %s at version %d (born %d): version rolled back",
				e.From, e.Born, es[i-1].changeID, es[i-1].Version, first.Born)
			return nil
		case e.Version <= e.From:
			brk(e.changeID, e.seq, "schema change goes from version %d to %d, not forward", e.From, e.Version)
			return nil
		}
	}
	if last := es[len(es)-1]; last.Version != uv {
		brk(last.changeID, last.seq, "the database says schema version %d but the change chain's last schema change says %d: PRAGMA user_version edited", uv, last.Version)
	}
	var recorded []SchemaStep
	for _, e := range es {
		recorded = append(recorded, e.Steps...)
	}
	steps, err := schemaSteps(ctx, tx, 0)
	if err != nil {
		return s.wrap("verify", err)
	}
	if !slices.Equal(steps, recorded) {
		brk(first.changeID, first.seq, "table schema_migrations holds %d row(s), not the %d the schema changes record: a row was added, altered or deleted", len(steps), len(recorded))
	}

	// Rows no entry signs.
	if first.Born != 0 {
		for _, r := range legacy {
			what := "decisions row without a signed entry"
			if r.table == "events" {
				what, r.id = "events row (no entry signs events rows)", "events#"+r.id
			}
			rep.Breaks = append(rep.Breaks, Break{Chain: ChainDecisions, Tenant: r.tenant, ReceiptID: r.id,
				Reason: fmt.Sprintf("%s in a ledger born at schema version %d (change %s), which never wrote one: row forged", what, first.Born, first.changeID)})
		}
	} else {
		seal := LegacyRows{}
		if first.Legacy != nil {
			seal = *first.Legacy
		}
		if seal.Digest != "" && lr != seal || seal.Digest == "" && (lr.Decisions != 0 || lr.Events != 0) {
			brk(first.changeID, first.seq, "%d unsigned decisions row(s) and %d events row(s) (%s) are not the %d and %d (%s) sealed when schema versions began to be recorded: a row was added, altered or deleted",
				lr.Decisions, lr.Events, lr.Digest, seal.Decisions, seal.Events, seal.Digest)
		}
	}

	// The signing-key slot: the key the newest rotation made current, or
	// the key that signed the first schema change.
	want, by, bySeq := first.keyID, first.changeID, first.seq
	if n := len(rots); n > 0 {
		want, by, bySeq = rots[n-1].NewKeyID, rots[n-1].changeID, rots[n-1].seq
	}
	var slots []string
	srows, err := tx.QueryContext(ctx, `SELECT CAST(key_id AS TEXT) FROM signing_key`)
	if err != nil {
		return s.wrap("verify", err)
	}
	for srows.Next() {
		var id sql.NullString
		if err := srows.Scan(&id); err != nil {
			srows.Close()
			return s.wrap("verify", err)
		}
		slots = append(slots, id.String)
	}
	srows.Close()
	if err := srows.Err(); err != nil {
		return s.wrap("verify", err)
	}
	switch {
	case len(slots) == 0:
		brk(by, bySeq, "the signing_key slot is empty but the change chain says key %s signs: slot deleted", want)
	case len(slots) > 1 || slots[0] != want:
		brk(by, bySeq, "the signing_key slot names %s but the change chain says key %s signs: slot edited", strings.Join(slots, ", "), want)
	}
	return nil
}

// writeLegacyRows writes the rows no entry signs to path, as their seal
// hashes them (a bundle's legacy.jsonl).
func writeLegacyRows(ctx context.Context, tx *sql.Tx, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if _, _, err := legacyRows(ctx, tx, func(line []byte) { w.Write(line) }); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// verifyStoredCheckpoints checks the checkpoints kept in the database as
// signed statements: each hashes to its hash, is signed by a trusted key
// (not past its retirement), and its columns are its signed body's. The
// heads they name are checked only for checkpoints given from outside
// (VerifyOptions.Checkpoints): whoever can cut a chain can delete the
// rows naming its end too.
func (s *SQLite) verifyStoredCheckpoints(ctx context.Context, tx *sql.Tx, ring *keyRing, rep *Report) error {
	rows, err := tx.QueryContext(ctx, `SELECT CAST(checkpoint_id AS TEXT), CAST(created_at AS TEXT), CAST(hash AS TEXT), CAST(signing_key_id AS TEXT), CAST(signature AS TEXT), CAST(body AS TEXT) FROM checkpoints ORDER BY id`)
	if err != nil {
		return s.wrap("verify", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, at, hash, keyID, sig, body sql.NullString
		if err := rows.Scan(&id, &at, &hash, &keyID, &sig, &body); err != nil {
			return s.wrap("verify", err)
		}
		if reason := checkStoredCheckpoint(ring, id.String, at.String, hash.String, keyID.String, sig.String, body.String); reason != "" {
			rep.Breaks = append(rep.Breaks, Break{Chain: "checkpoint", ReceiptID: id.String, Reason: "stored checkpoint: " + reason})
		}
	}
	return s.wrap("verify", rows.Err())
}

func checkStoredCheckpoint(ring *keyRing, id, at, hash, keyID, sig, body string) string {
	var cp Checkpoint
	if err := json.Unmarshal([]byte(body), &cp); err != nil {
		return fmt.Sprintf("does not decode: %v", err)
	}
	if got, err := cp.ComputeHash(); err != nil || got != cp.Hash {
		return fmt.Sprintf("content hashes to %s, not its hash %s: checkpoint altered", got, cp.Hash)
	}
	for _, c := range []struct{ name, col, signed string }{
		{"checkpoint_id", id, cp.CheckpointID}, {"created_at", at, cp.CreatedAt}, {"hash", hash, cp.Hash},
		{"signing_key_id", keyID, cp.SigningKeyID}, {"signature", sig, cp.Signature},
	} {
		if c.col != c.signed {
			return fmt.Sprintf("column %s is %q but the signed checkpoint says %q: row altered", c.name, c.col, c.signed)
		}
	}
	if reason := ring.verifySig(cp.SigningKeyID, cp.Hash, cp.Signature); reason != "" {
		return reason
	}
	if reason := ring.checkpointSigner(cp.SigningKeyID, cp.Heads); reason != "" {
		return reason
	}
	if u, ok := ring.until[cp.SigningKeyID]; ok {
		for _, h := range cp.Heads {
			if h.Sequence > u[posKey(h.Chain, h.Tenant)] {
				return fmt.Sprintf("signed by key %s, which was rotated out before the heads it names", cp.SigningKeyID)
			}
		}
	}
	return ""
}
