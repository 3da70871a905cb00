package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wcphall/hall/host/wcp"
)

// Chains of the ledger, as [Head.Chain] and [Break.Chain] name them.
const (
	// ChainReceipts: one stream of receipts per tenant (the zero value).
	ChainReceipts = "receipts"
	// ChainDecisions: one stream per tenant of every decision (allowed,
	// denied, dry run) and every batch of telemetry events, in the order
	// they were recorded. Decisions without a tenant go to the stream "".
	ChainDecisions = "decisions"
	// ChainChanges: the Hall's one change chain (Tenant [ChangeChain]).
	ChainChanges = "changes"
)

// Kinds of decision-chain entries.
const (
	entryDecision = "decision"
	entryEvents   = "events"
)

// entryJSON is the signed form of a decision-chain entry (format version
// 2, docs/EVIDENCE.md "Decision entries"). Decision is set for kind
// "decision", Events for kind "events".
type entryJSON struct {
	Version       int               `json:"version"`
	EntryID       string            `json:"entry_id"`
	Kind          string            `json:"kind"`
	TenantID      string            `json:"tenant_id"`
	Sequence      uint64            `json:"sequence"`
	PrevHash      *string           `json:"prev_hash"`
	Hash          string            `json:"hash,omitempty"`
	SigningKeyID  string            `json:"signing_key_id"`
	Signature     string            `json:"signature,omitempty"`
	CorrelationID string            `json:"correlation_id"`
	RecordedAt    string            `json:"recorded_at"`
	DecisionID    string            `json:"decision_id"`
	CapabilityID  string            `json:"capability_id,omitempty"`
	Denied        *bool             `json:"denied,omitempty"`
	DenyCode      *string           `json:"deny_code,omitempty"`
	DryRun        *bool             `json:"dry_run,omitempty"`
	Decision      json.RawMessage   `json:"decision,omitempty"`
	Events        []json.RawMessage `json:"events,omitempty"`
	// Snapshot is the digest of the snapshot a decision was made under
	// (kind decision; omitted before snapshots were recorded).
	Snapshot string `json:"snapshot,omitempty"`
}

// pendingEntry is a decision-chain entry checked and waiting for its
// batch: the chain fields are filled inside the transaction.
type pendingEntry struct {
	e entryJSON
	// decision row columns (kind decision).
	d *DecisionRecord
	// lookupTenant: a worker's events name no tenant; the stream is the
	// tenant of the newest decision with the correlation id.
	lookupTenant bool
	// decisionID, when set, names the decision the events belong to: the
	// stream is that decision's tenant, whatever other tenants did with
	// the same correlation id.
	decisionID string
}

// sealEntry chains p to the head of its stream, signs it and stores it
// with the decision row and the event rows it carries, inside the batch's
// BEGIN IMMEDIATE transaction.
func (s *SQLite) sealEntry(tx *sql.Tx, op string, p *pendingEntry) error {
	e := &p.e
	if p.decisionID != "" {
		tenant, err := s.decisionTenant(tx, op, p.decisionID)
		if err != nil {
			return err
		}
		e.TenantID, e.DecisionID = tenant, p.decisionID
	} else if p.lookupTenant {
		tenant, dec, err := s.newestDecision(tx, op, e.CorrelationID)
		if err != nil {
			return err
		}
		e.TenantID, e.DecisionID = tenant, dec
	}
	var seq uint64
	var head string
	tail, inBatch := s.tails.get(e.TenantID)
	if inBatch {
		seq, head = tail.seq, tail.hash
	} else if h, ok := s.tails.head("e:" + e.TenantID); ok {
		seq, head = h.seq, h.hash
	} else if err := s.queryRowTx(tx, qEntryHead, e.TenantID).Scan(&seq, &head); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.wrap(op, err)
	}
	e.Sequence = seq + 1
	e.PrevHash = nil
	if head != "" {
		h := head
		e.PrevHash = &h
	}
	k := s.key.Load()
	e.SigningKeyID = k.id
	e.Hash, e.Signature = "", ""
	// Written directly in canonical form: the decision and the events in
	// it are canonical already, so encoding the entry with encoding/json
	// and canonicalizing the result parsed the decision twice more
	// (TestEntryBodyIsCanonical holds the two forms equal).
	body := appendEntryBody(make([]byte, 0, 640+len(e.Decision)), e) // 640: the members around the decision, a snapshot digest included
	hash := hashBody(body)
	var prev any
	if head != "" {
		prev = head
	}
	row := entryInsert{stream: e.TenantID, seq: e.Sequence, id: e.EntryID, kind: e.Kind, corr: e.CorrelationID,
		at: e.RecordedAt, prev: prev, hash: hash, body: string(body), key: k}
	if s.tails.on {
		// A batch without savepoints: the entry is inserted, and signed
		// if it is its stream's last of the batch, when the batch ends
		// (flushEntries).
		s.tails.add(row)
	} else {
		row.sig = k.sign(hash)
		if err := s.insertEntry(tx, &row); err != nil {
			return s.wrap(op, err)
		}
		if err := s.execTx(tx, qUpsertEntry, e.TenantID, int64(e.Sequence), e.EntryID, hash); err != nil {
			return s.wrap(op, err)
		}
	}
	if d := p.d; d != nil && s.pg && s.tails.on {
		// With the batch's entries, in one statement (flushEntriesPG).
		s.tails.decisions = append(s.tails.decisions, decisionInsert{id: d.DecisionID, corr: d.CorrelationID, tenant: d.TenantID,
			capability: d.CapabilityID, denied: d.Denied, code: d.DenyCode, dry: d.DryRun, at: e.RecordedAt, seq: e.Sequence})
	} else if d != nil {
		if err := s.execTx(tx, qInsertDecision,
			d.DecisionID, d.CorrelationID, d.TenantID, d.CapabilityID, d.Denied, d.DenyCode, d.DryRun,
			e.RecordedAt, "", int64(e.Sequence)); err != nil {
			return s.wrap(op, err)
		}
	}
	return nil
}

// RecordDecision implements [Store.RecordDecision]: the decision becomes
// the next entry of its tenant's decision chain, signed, with its
// telemetry envelopes inside.
func (s *SQLite) RecordDecision(ctx context.Context, d DecisionRecord) error {
	p, err := s.prepareDecision(d)
	if err != nil {
		return err
	}
	op := "record decision " + d.DecisionID
	return s.submit(ctx, onChains(newPureWrite(op, func(tx *sql.Tx) error { return s.sealEntry(tx, op, p) }, nil), "e:"+p.e.TenantID))
}

// prepareDecision checks d and makes its pending entry: everything
// RecordDecision does before the committer.
func (s *SQLite) prepareDecision(d DecisionRecord) (*pendingEntry, error) {
	if d.DecisionID == "" {
		return nil, fmt.Errorf("ledger: record decision: %w", invalid("decision_id", "is required"))
	}
	if s.key.Load() == nil {
		return nil, fmt.Errorf("ledger: record decision: %w", s.keyError)
	}
	at := d.Timestamp
	if at.IsZero() {
		at = time.Now()
	}
	if y := at.UTC().Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("ledger: record decision %s: %w", d.DecisionID, invalid("timestamp", "year must be between 1 and 9999"))
	}
	dec, err := canonical(d.Decision)
	if err != nil {
		return nil, fmt.Errorf("ledger: record decision %s: %w", d.DecisionID, invalid("decision", err.Error()))
	}
	if len(dec) == 0 || dec[0] != '{' {
		// The canonical form of an object starts with '{' (no whitespace).
		return nil, fmt.Errorf("ledger: record decision %s: %w", d.DecisionID, invalid("decision", "must be a JSON object"))
	}
	// The decisions row keeps the lookup columns only: its JSON is the
	// signed entry's (Decision reads it there), not a second copy of
	// every decision in the database (RATIONALE.md, "Stored once").
	if d.Snapshot != "" && !wcp.ValidArtifactHash(d.Snapshot) {
		return nil, fmt.Errorf("ledger: record decision %s: %w", d.DecisionID, invalid("snapshot", fmt.Sprintf("%q is not sha256:<64 lowercase hex>", d.Snapshot)))
	}
	d.Decision = nil
	d.Telemetry = nil
	denied, dry, code := d.Denied, d.DryRun, d.DenyCode
	p := &pendingEntry{d: &d, e: entryJSON{
		Version: formatV2, EntryID: d.DecisionID, Kind: entryDecision, TenantID: d.TenantID,
		CorrelationID: d.CorrelationID, RecordedAt: at.UTC().Format(wcp.TimeLayout), DecisionID: d.DecisionID,
		CapabilityID: d.CapabilityID, Denied: &denied, DenyCode: &code, DryRun: &dry, Decision: dec, Snapshot: d.Snapshot,
	}}
	return p, nil
}

// RecordEvents implements [Store.RecordEvents]. Each event must be a JSON
// object; none is stored unless all are. The batch becomes one entry of
// the decision chain of the tenant whose newest decision has the
// correlation id (the stream "" when none has).
func (s *SQLite) RecordEvents(ctx context.Context, correlationID string, events []json.RawMessage) error {
	return s.recordEvents(ctx, "", correlationID, events)
}

// RecordDecisionEvents stores the events a worker emitted while serving the
// dispatch of decision decisionID, in that decision's tenant chain: two
// tenants that use the same correlation id never share a stream.
func (s *SQLite) RecordDecisionEvents(ctx context.Context, decisionID, correlationID string, events []json.RawMessage) error {
	return s.recordEvents(ctx, decisionID, correlationID, events)
}

func (s *SQLite) recordEvents(ctx context.Context, decisionID, correlationID string, events []json.RawMessage) error {
	if len(events) == 0 {
		return nil
	}
	p, err := s.prepareEvents(decisionID, correlationID, events)
	if err != nil {
		return err
	}
	return s.submit(ctx, newPureWrite("record events", func(tx *sql.Tx) error { return s.sealEntry(tx, "record events", p) }, nil))
}

// prepareEvents checks a batch of events and makes its pending entry.
func (s *SQLite) prepareEvents(decisionID, correlationID string, events []json.RawMessage) (*pendingEntry, error) {
	if s.key.Load() == nil {
		return nil, fmt.Errorf("ledger: record events: %w", s.keyError)
	}
	signed := make([]json.RawMessage, len(events))
	for i, ev := range events {
		c, err := canonical(ev)
		if err != nil {
			return nil, fmt.Errorf("ledger: record events: %w", invalid(fmt.Sprintf("events[%d]", i), "must be a JSON object: "+err.Error()))
		}
		if c[0] != '{' {
			return nil, fmt.Errorf("ledger: record events: %w", invalid(fmt.Sprintf("events[%d]", i), "must be a JSON object"))
		}
		signed[i] = c
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("ledger: record events: %w", err)
	}
	return &pendingEntry{lookupTenant: decisionID == "", decisionID: decisionID, e: entryJSON{
		Version: formatV2, EntryID: "evt_" + hex.EncodeToString(id[:]), Kind: entryEvents,
		CorrelationID: correlationID, RecordedAt: time.Now().UTC().Format(wcp.TimeLayout), Events: signed,
	}}, nil
}

// Decision returns the decision recorded with the given id, or an error
// wrapping [ErrNotFound]. Everything it returns is read from the
// decision's signed entry (the row's lookup columns only find it), except
// for a decision the ledger recorded before decisions were chained: such
// a row is returned only when the ledger's first schema change sealed it
// (an upgraded ledger). In a ledger born at a schema version, which never
// wrote one, a row no entry signs is refused as forged (an error wrapping
// [ErrNotFound]; Verify reports the row).
func (s *SQLite) Decision(ctx context.Context, id string) (*DecisionRecord, error) {
	var d DecisionRecord
	var at, body string
	var entry sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT d.decision_id, d.correlation_id, d.tenant_id, d.capability_id, d.denied, d.deny_code, d.dry_run, d.decided_at, d.decision,
		(SELECT e.body FROM entries e WHERE d.decision = '' AND e.entry_id = d.decision_id)
		FROM decisions d WHERE d.decision_id = ?`, id).Scan(&d.DecisionID, &d.CorrelationID, &d.TenantID, &d.CapabilityID,
		&d.Denied, &d.DenyCode, &d.DryRun, &at, &body, &entry)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("ledger: decision %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, s.wrap("decision", err)
	}
	if body != "" {
		// A row of the ledger's older form, holding its own copy.
		if err := legacyReadable(ctx, s.r, "a decisions row no entry signs"); err != nil {
			return nil, fmt.Errorf("ledger: decision %q: %w: %w", id, ErrNotFound, err)
		}
		d.Decision = json.RawMessage(body)
	} else {
		// Recorded once, in its signed entry.
		if !entry.Valid {
			return nil, fmt.Errorf("ledger: decision %q: its signed entry is missing", id)
		}
		var e entryJSON
		if err := json.Unmarshal([]byte(entry.String), &e); err != nil {
			return nil, fmt.Errorf("ledger: decision %q: its signed entry does not decode: %w", id, err)
		}
		if e.Kind != entryDecision || e.DecisionID != id || e.Denied == nil || e.DenyCode == nil || e.DryRun == nil {
			return nil, fmt.Errorf("ledger: decision %q: the entry the row names is not this decision's signed entry (hall audit verify reports it)", id)
		}
		d.CorrelationID, d.TenantID, d.CapabilityID = e.CorrelationID, e.TenantID, e.CapabilityID
		d.Denied, d.DenyCode, d.DryRun, at = *e.Denied, *e.DenyCode, *e.DryRun, e.RecordedAt
		d.Decision, d.Snapshot = e.Decision, e.Snapshot
	}
	if d.Timestamp, err = time.Parse(time.RFC3339Nano, at); err != nil {
		return nil, fmt.Errorf("ledger: decision %q: decided_at: %w", id, err)
	}
	return &d, nil
}

// legacyReadable reports whether rows of the ledger's older form (what) may
// be read: only in a ledger whose first schema change sealed them (it was
// upgraded from before decisions were chained, docs/EVIDENCE.md "Schema
// versions and rows no entry signs"), or that records no schema change
// yet (a ledger last written before schema versions were recorded, opened
// read-only). In a ledger born at a schema version such a row was never
// written: the error says it is forged.
func legacyReadable(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, what string) error {
	var changeID, body string
	err := q.QueryRowContext(ctx, `SELECT change_id, body FROM changes WHERE kind = ? ORDER BY seq LIMIT 1`, ChangeSchema).Scan(&changeID, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	var c struct {
		Body SchemaVersion `json:"body"`
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return fmt.Errorf("%s, and the ledger's first schema change %s does not decode (%v): not read; run hall audit verify", what, changeID, err)
	}
	if c.Body.Born != 0 {
		return fmt.Errorf("%s, in a ledger born at schema version %d (change %s), which never wrote one: row forged, not read; hall audit verify reports it", what, c.Body.Born, changeID)
	}
	return nil
}

// Events returns the telemetry recorded for a correlation id in the order
// it was recorded: decision envelopes and worker events alike, read from
// the signed entries that hold them, in canonical form (RFC 8785). Events
// recorded before decision chains existed come first, as they were
// written, in a ledger whose first schema change sealed them; in a ledger
// born at a schema version, an events row is forged and Events refuses
// it with an error naming it.
func (s *SQLite) Events(ctx context.Context, correlationID string) ([]json.RawMessage, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.wrap("events", err)
	}
	defer tx.Rollback()
	var out []json.RawMessage
	// Unchained rows (no entry holds them) keep their own copy; rows of
	// chained events are found again through their entries below.
	rows, err := tx.QueryContext(ctx, `SELECT event FROM events WHERE correlation_id = ? AND entry_id IS NULL ORDER BY id`, correlationID)
	if err != nil {
		return nil, s.wrap("events", err)
	}
	for rows.Next() {
		var ev string
		if err := rows.Scan(&ev); err != nil {
			rows.Close()
			return nil, s.wrap("events", err)
		}
		out = append(out, json.RawMessage(ev))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap("events", err)
	}
	if len(out) > 0 {
		if err := legacyReadable(ctx, tx, fmt.Sprintf("%d events row(s) no entry signs", len(out))); err != nil {
			return nil, fmt.Errorf("ledger: events of %q: %w", correlationID, err)
		}
	}
	rows, err = tx.QueryContext(ctx, `SELECT entry_id, body FROM entries WHERE correlation_id = ? ORDER BY id`, correlationID)
	if err != nil {
		return nil, s.wrap("events", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, body string
		if err := rows.Scan(&id, &body); err != nil {
			return nil, s.wrap("events", err)
		}
		held, err := heldEvents(id, body)
		if err != nil {
			return nil, fmt.Errorf("ledger: events of %q: %w", correlationID, err)
		}
		out = append(out, held...)
	}
	return out, s.wrap("events", rows.Err())
}

// heldEvents returns the events a decision-chain entry holds: a
// decision's telemetry envelopes, or an events entry's batch.
func heldEvents(entryID, body string) ([]json.RawMessage, error) {
	var e struct {
		Decision struct {
			TelemetryEnvelopes []json.RawMessage `json:"telemetry_envelopes"`
		} `json:"decision"`
		Events []json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return nil, fmt.Errorf("entry %s does not decode: %w", entryID, err)
	}
	if e.Events != nil {
		return e.Events, nil
	}
	return e.Decision.TelemetryEnvelopes, nil
}
