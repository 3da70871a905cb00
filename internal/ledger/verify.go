package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wcphall/hall/host/wcp"
)

// Verify implements [Store.Verify]. Within one read snapshot it walks each
// stream in sequence order and checks, for every receipt:
//
//   - the stored body is canonical JSON and hashes to receipt_hash (a
//     changed field);
//   - signing_key_id names pub and the signature verifies (a recomputed
//     hash without the key);
//   - the lookup columns agree with the signed body (a row edited outside
//     the body, or two rows' positions swapped);
//   - sequence numbers run 1, 2, 3… and each prev_receipt_hash is the
//     previous receipt's hash (a deleted or reordered receipt);
//
// and, at the end of each stream, that the stream_heads row names the last
// receipt (deleted newest receipts). Only the first break of a stream is
// reported: after it, every later receipt would also fail its link.
//
// A receipt whose replay_of does not name a receipt recorded before it in
// its own stream is that stream's break too (checkReplays).
//
// The change chain is checked the same way against its change_head row;
// its break, if any, has Tenant [ChangeChain]. Receipts additionally must
// carry a well-formed record_digest and privilege_envelope when they have
// them (the signature already covers both).
//
// Rows no entry signs are checked against the change chain's schema
// changes (verify_rows.go): decisions and events rows of the ledger's
// older form must be exactly those sealed when schema versions began to be
// recorded (none in a ledger born with them), and the signing-key slot
// must name the key the chain says signs now.
func (s *SQLite) Verify(ctx context.Context, pub ed25519.PublicKey) (*Report, error) {
	var keys map[string]ed25519.PublicKey
	if pub != nil {
		if len(pub) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ledger: verify: %w: public key has %d bytes, want %d", ErrKey, len(pub), ed25519.PublicKeySize)
		}
		keys = map[string]ed25519.PublicKey{KeyID(pub): pub}
	}
	return s.VerifyWith(ctx, VerifyOptions{Keys: keys})
}

// VerifyOptions are what [SQLite.VerifyWith] trusts and checks.
type VerifyOptions struct {
	// Keys are the trusted public keys by key id (nil: the ledger's own
	// current key). Older keys are trusted too when a rotation entry
	// carries a trusted newer key's proof for them.
	Keys map[string]ed25519.PublicKey
	// Checkpoints are checkpoints kept outside the database (a witness
	// directory): each must be signed by a trusted key, and every head it
	// names must still be in the ledger, unchanged.
	Checkpoints []Checkpoint
}

// VerifyWith is Verify with a trusted key set and outside checkpoints.
func (s *SQLite) VerifyWith(ctx context.Context, o VerifyOptions) (*Report, error) {
	if o.Keys == nil {
		k := s.key.Load()
		if k == nil {
			return nil, fmt.Errorf("ledger: verify: no public key given and %w", s.keyError)
		}
		o.Keys = map[string]ed25519.PublicKey{k.id: k.pub}
	}
	for id, k := range o.Keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ledger: verify: %w: VerifyOptions.Keys[%q] has %d bytes, want %d (the raw Ed25519 public key)", ErrKey, id, len(k), ed25519.PublicKeySize)
		}
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // heads and receipts from one snapshot
	if err != nil {
		return nil, s.wrap("verify", err)
	}
	defer tx.Rollback()

	heads := map[string]Head{}
	var headOrder []string
	hrows, err := tx.QueryContext(ctx, `SELECT tenant_id, seq, receipt_id, receipt_hash FROM stream_heads ORDER BY tenant_id`)
	if err != nil {
		return nil, s.wrap("verify", err)
	}
	for hrows.Next() {
		var h Head
		var seq int64
		if err := hrows.Scan(&h.Tenant, &seq, &h.ReceiptID, &h.ReceiptHash); err != nil {
			hrows.Close()
			return nil, s.wrap("verify", err)
		}
		h.Sequence = uint64(seq)
		heads[h.Tenant] = h
		headOrder = append(headOrder, h.Tenant)
	}
	hrows.Close()
	if err := hrows.Err(); err != nil {
		return nil, s.wrap("verify", err)
	}

	rows, err := tx.QueryContext(ctx, `SELECT tenant_id, seq, receipt_id, correlation_id, worker_id, dispatched_at,
		prev_receipt_hash, receipt_hash, signing_key_id, signature, body FROM receipts ORDER BY tenant_id, seq`)
	if err != nil {
		return nil, s.wrap("verify", err)
	}
	defer rows.Close()

	rots, err := rotations(ctx, tx)
	if err != nil {
		return nil, s.wrap("verify", err)
	}
	evs, first, err := keyEvents(ctx, tx)
	if err != nil {
		return nil, s.wrap("verify", err)
	}
	ring := newKeyRing(o.Keys, rots).withAdmissions(evs, first, rots)
	rep := &Report{}
	w := walker{ring: ring}
	pre := &walker{ring: ring} // used by the checkers, never changed
	seen := map[string]bool{}
	var replays []replayRef // receipts with replay_of, in chain order
	finish := func() {
		if w.tenant == "" && w.count == 0 {
			return
		}
		if b, ok := w.end(heads); !ok {
			rep.Breaks = append(rep.Breaks, b)
		}
	}
	// Each receipt's own checks (hash, signature, decoding) run on all
	// cores; the links between receipts are then checked in chain order.
	err = checkInOrder(func(emit func(storedRow) bool) error {
		for rows.Next() {
			var row storedRow
			var seq int64
			var prev sql.NullString
			if err := rows.Scan(&row.tenant, &seq, &row.receiptID, &row.correlationID, &row.workerID, &row.dispatchedAt,
				&prev, &row.receiptHash, &row.keyID, &row.signature, &row.body); err != nil {
				return err
			}
			row.seq, row.prev, row.prevNull = uint64(seq), prev.String, !prev.Valid
			if !emit(row) {
				return nil
			}
		}
		return rows.Err()
	}, func(row *storedRow) {
		row.reason = pre.precheck(row)
	}, finishReceiptSigs, func(row *storedRow) {
		if !seen[row.tenant] {
			finish()
			seen[row.tenant] = true
			rep.Streams++
			w.start(row.tenant)
		}
		rep.Receipts++
		if b, ok := w.step(row); !ok {
			rep.Breaks = append(rep.Breaks, b)
		} else if !w.broken && row.replayOf != "" {
			replays = append(replays, replayRef{tenant: row.tenant, receiptID: row.receiptID, seq: row.sequence, of: row.replayOf})
		}
	})
	if err != nil {
		return nil, s.wrap("verify", err)
	}
	finish()
	if err := checkReplays(ctx, tx, replays, rep); err != nil {
		return nil, s.wrap("verify", err)
	}
	if err := s.verifyChanges(ctx, tx, ring, rep); err != nil {
		return nil, err
	}
	if err := s.verifyDecisions(ctx, tx, ring, rep); err != nil {
		return nil, err
	}
	if err := s.verifyRows(ctx, tx, rots, rep); err != nil {
		return nil, err
	}
	if err := s.verifyStoredCheckpoints(ctx, tx, ring, rep); err != nil {
		return nil, err
	}
	if err := s.verifySnapshots(ctx, tx, rep); err != nil {
		return nil, err
	}
	for _, t := range headOrder {
		h := heads[t]
		h.Chain = ChainReceipts
		rep.Heads = append(rep.Heads, h)
		if !seen[t] {
			rep.Streams++
			rep.Breaks = append(rep.Breaks, Break{Chain: ChainReceipts, Tenant: t, ReceiptID: h.ReceiptID, Sequence: h.Sequence,
				Reason: fmt.Sprintf("stream head names receipt %d but the stream has no receipts: all were deleted", h.Sequence)})
		}
	}
	if len(o.Checkpoints) > 0 {
		if err := s.checkCheckpoints(ctx, tx, ring, o.Checkpoints, rep); err != nil {
			return nil, err
		}
	}
	sortBreaks(rep.Breaks)
	rep.Signers = ring.signers()
	return rep, nil
}

type storedRow struct {
	tenant, receiptID, correlationID, workerID, dispatchedAt string
	seq                                                      uint64
	prev                                                     string
	prevNull                                                 bool
	receiptHash, keyID, signature, body                      string
	// Set by precheck: the signed receipt's chain fields, or why the
	// receipt fails on its own.
	sequence           uint64
	signedPrev, reason string
	replayOf           string // the signed replay_of, "" when not a replay
	// sigPending: the signature's last step waits in sig for
	// finishReceiptSigs, which replaces reason when it fails.
	sigPending bool
	sig        sigCheck
}

// finishReceiptSigs completes the signature checks precheck left pending
// in rows, sharing one field inversion among them; a receipt whose
// signature fails gets that reason, which precedes any other (the order
// keyRing.check and precheck check in).
func finishReceiptSigs(rows []storedRow) {
	var cs []*sigCheck
	for i := range rows {
		if rows[i].sigPending {
			cs = append(cs, &rows[i].sig)
		}
	}
	finishSigChecks(cs)
	for i := range rows {
		if r := &rows[i]; r.sigPending && !r.sig.valid {
			r.reason = badSignature(r.keyID)
		}
	}
}

// walker checks one stream at a time.
type walker struct {
	ring *keyRing

	tenant   string
	count    int
	broken   bool
	lastSeq  uint64
	lastHash string
	lastID   string
}

func (w *walker) start(tenant string) {
	*w = walker{ring: w.ring, tenant: tenant}
}

func (w *walker) brk(row *storedRow, format string, args ...any) (Break, bool) {
	w.broken = true
	return Break{Chain: ChainReceipts, Tenant: w.tenant, ReceiptID: row.receiptID, Sequence: row.seq, Reason: fmt.Sprintf(format, args...)}, false
}

// precheck checks what a receipt proves on its own: its hash, its
// signature, its form and its columns against its signed body. It returns
// why it fails, or "". It reads nothing of w but the key ring, so receipts
// are prechecked in parallel.
func (w *walker) precheck(row *storedRow) string {
	body := []byte(row.body)
	if got := hashBody(body); got != row.receiptHash {
		return fmt.Sprintf("content hashes to %s, not its receipt_hash %s: receipt altered", got, row.receiptHash)
	}
	reason, pending := w.ring.checkDeferred(ChainReceipts, row.tenant, row.seq, row.keyID, row.receiptHash, row.signature, &row.sig)
	row.sigPending = pending
	if reason != "" {
		return reason
	}
	// Only the members checked below are decoded. The body is not
	// re-canonicalized: once its hash and signature verify, these are the
	// bytes the key holder signed, and the Hall writes canonical bodies
	// only (RATIONALE.md, "Parallel verification").
	var r receiptCols
	if err := decodeReceiptCols(body, &r); err != nil {
		return fmt.Sprintf("signed receipt does not decode: %v", err)
	}
	signedPrev := ""
	if r.PrevReceiptHash != nil {
		signedPrev = *r.PrevReceiptHash
	}
	at := r.DispatchedAt
	if at != row.dispatchedAt {
		// Compared as instants written in the Hall's layout, as before.
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			at = t.Format(wcp.TimeLayout)
		}
	}
	cols := []struct{ name, col, signed string }{
		{"receipt_id", row.receiptID, r.ReceiptID},
		{"tenant_id", row.tenant, r.TenantID},
		{"seq", strconv.FormatUint(row.seq, 10), strconv.FormatUint(r.Sequence, 10)},
		{"correlation_id", row.correlationID, r.CorrelationID},
		{"worker_id", row.workerID, r.WorkerID},
		{"dispatched_at", row.dispatchedAt, at},
		{"prev_receipt_hash", row.prev, signedPrev},
		{"signing_key_id", row.keyID, r.SigningKeyID},
	}
	for _, c := range cols {
		if c.col != c.signed {
			return fmt.Sprintf("column %s is %q but the signed receipt says %q: row altered or moved", c.name, c.col, c.signed)
		}
	}
	if row.prevNull != (signedPrev == "") {
		return "column prev_receipt_hash nullness disagrees with the signed receipt"
	}
	if r.RecordDigest != "" && !wcp.ValidArtifactHash(r.RecordDigest) {
		return fmt.Sprintf("signed record_digest %q is not sha256:<64 lowercase hex>", r.RecordDigest)
	}
	if len(r.Envelope) > 0 && (r.Envelope[0] != '{') {
		// Valid JSON (the decode checked it) starting with '{' is an object.
		return "signed privilege_envelope is not a JSON object"
	}
	row.sequence, row.signedPrev, row.replayOf = r.Sequence, signedPrev, r.ReplayOf
	return ""
}

// replayRef is a verified receipt that names, in replay_of, the receipt
// it replayed.
type replayRef struct {
	tenant, receiptID string
	seq               uint64
	of                string
}

// checkReplays checks that each replay's replay_of names a receipt
// recorded before it in its own stream (docs/EVIDENCE.md, "Replays": a
// replay is decided for the original's tenant, so the original precedes
// it in the same stream), of the same worker, correlation_id and
// artifact_hash. A receipt that names nothing, a later receipt, itself,
// another tenant's receipt or another dispatch's is reported as its
// stream's break,
// unless the stream already broke at an earlier receipt. The lookups
// read the receipts table inside tx: its rows were just verified against
// their signed bodies, so a receipt_id column there is one a signed
// receipt holds.
func checkReplays(ctx context.Context, tx *sql.Tx, refs []replayRef, rep *Report) error {
	done := map[string]bool{}
	for _, r := range refs {
		if done[r.tenant] {
			continue
		}
		var tenant string
		var seq int64
		var orig, replay replayFacts
		reason := ""
		err := tx.QueryRowContext(ctx, `SELECT tenant_id, seq, body FROM receipts WHERE receipt_id = ?`, r.of).Scan(&tenant, &seq, &orig.body)
		if err == nil {
			err = tx.QueryRowContext(ctx, `SELECT body FROM receipts WHERE receipt_id = ?`, r.receiptID).Scan(&replay.body)
		}
		if err == nil {
			orig.decode()
			replay.decode()
		}
		switch {
		case errors.Is(err, sql.ErrNoRows):
			reason = fmt.Sprintf("replay_of names receipt %s, which the ledger does not hold: a replay of a receipt that was never recorded", r.of)
		case err != nil:
			return err
		case tenant != r.tenant:
			reason = fmt.Sprintf("replay_of names receipt %s of stream %q: a replay is decided for the original's tenant and recorded in its stream", r.of, tenant)
		case uint64(seq) >= r.seq:
			reason = fmt.Sprintf("replay_of names receipt %s (#%d), which is not recorded before this receipt (#%d)", r.of, seq, r.seq)
		case replay.WorkerID != orig.WorkerID || replay.CorrelationID != orig.CorrelationID || replay.ArtifactHash != orig.ArtifactHash:
			reason = fmt.Sprintf("replay_of names receipt %s of worker %q, correlation_id %q and artifact_hash %s, but this replay ran worker %q, correlation_id %q, artifact_hash %s: a replay runs the original's module for its request",
				r.of, orig.WorkerID, orig.CorrelationID, orig.ArtifactHash, replay.WorkerID, replay.CorrelationID, replay.ArtifactHash)
		}
		if reason == "" {
			continue
		}
		done[r.tenant] = true
		b := Break{Chain: ChainReceipts, Tenant: r.tenant, ReceiptID: r.receiptID, Sequence: r.seq, Reason: reason}
		i := slices.IndexFunc(rep.Breaks, func(x Break) bool { return chainOf(x.Chain, x.Tenant) == ChainReceipts && x.Tenant == r.tenant })
		switch {
		case i < 0:
			rep.Breaks = append(rep.Breaks, b)
		case rep.Breaks[i].Sequence > r.seq:
			rep.Breaks[i] = b // the stream's first break is reported
		}
	}
	return nil
}

// replayFacts are the members a replay shares with the receipt it
// replays (docs/EVIDENCE.md, "Replays"), read from a verified body.
type replayFacts struct {
	body          string
	WorkerID      string `json:"worker_id"`
	CorrelationID string `json:"correlation_id"`
	ArtifactHash  string `json:"artifact_hash"`
}

func (f *replayFacts) decode() {
	if json.Unmarshal([]byte(f.body), f) != nil {
		f.WorkerID = "(undecodable)" // the walk reported the body already
	}
}

// receiptCols are the members of a signed receipt Verify compares.
type receiptCols struct {
	ReceiptID       string          `json:"receipt_id"`
	Sequence        uint64          `json:"sequence"`
	PrevReceiptHash *string         `json:"prev_receipt_hash"`
	SigningKeyID    string          `json:"signing_key_id"`
	CorrelationID   string          `json:"correlation_id"`
	DispatchedAt    string          `json:"dispatched_at"`
	WorkerID        string          `json:"worker_id"`
	TenantID        string          `json:"tenant_id"`
	RecordDigest    string          `json:"record_digest"`
	Envelope        json.RawMessage `json:"privilege_envelope"`
	ReplayOf        string          `json:"replay_of"`
}

// step links a prechecked receipt to the one before it in its stream.
func (w *walker) step(row *storedRow) (Break, bool) {
	w.count++
	if w.broken {
		return Break{}, true
	}
	if row.reason != "" {
		return w.brk(row, "%s", row.reason)
	}
	if want := w.lastSeq + 1; row.sequence != want {
		if row.sequence > want {
			return w.brk(row, "sequence %d follows %d: receipts %d..%d are missing", row.sequence, w.lastSeq, want, row.sequence-1)
		}
		return w.brk(row, "sequence %d follows %d: receipts reordered or duplicated", row.sequence, w.lastSeq)
	}
	if row.signedPrev != w.lastHash {
		if w.lastHash == "" {
			return w.brk(row, "first receipt of the stream has prev_receipt_hash %s, want null", row.signedPrev)
		}
		return w.brk(row, "prev_receipt_hash %s does not link to receipt %s (%s)", row.signedPrev, w.lastID, w.lastHash)
	}
	w.lastSeq, w.lastHash, w.lastID = row.sequence, row.receiptHash, row.receiptID
	return Break{}, true
}

// end checks the stream's head row once its receipts are walked.
func (w *walker) end(heads map[string]Head) (Break, bool) {
	if w.broken {
		return Break{}, true
	}
	h, ok := heads[w.tenant]
	if !ok {
		return Break{Chain: ChainReceipts, Tenant: w.tenant, ReceiptID: w.lastID, Sequence: w.lastSeq,
			Reason: "stream has no head record: head row deleted"}, false
	}
	if h.Sequence != w.lastSeq || h.ReceiptHash != w.lastHash || h.ReceiptID != w.lastID {
		reason := fmt.Sprintf("stream head names receipt %d (%s) but the chain ends at receipt %d (%s)", h.Sequence, h.ReceiptID, w.lastSeq, w.lastID)
		if h.Sequence > w.lastSeq {
			reason += ": newest receipts deleted"
		}
		return Break{Chain: ChainReceipts, Tenant: w.tenant, ReceiptID: h.ReceiptID, Sequence: h.Sequence, Reason: reason}, false
	}
	return Break{}, true
}

// verifyChanges walks the change chain in seq order inside tx, the
// snapshot the receipts were read from, and adds its count, its first
// break and its head to rep.
func (s *SQLite) verifyChanges(ctx context.Context, tx *sql.Tx, ring *keyRing, rep *Report) error {
	var head Head
	var headSeq int64
	err := tx.QueryRowContext(ctx, `SELECT seq, change_id, hash FROM change_head WHERE chain = 1`).Scan(&headSeq, &head.ReceiptID, &head.ReceiptHash)
	hasHead := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return s.wrap("verify", err)
	}
	head.Chain, head.Tenant, head.Sequence = ChainChanges, ChangeChain, uint64(headSeq)

	rows, err := tx.QueryContext(ctx, `SELECT seq, change_id, kind, subject, recorded_at, prev_hash, hash, signing_key_id, signature, body
		FROM changes ORDER BY seq`)
	if err != nil {
		return s.wrap("verify", err)
	}
	defer rows.Close()
	w := changeWalker{ring: ring}
	var aw approvalWalk // approvals_verify.go
	var brk *Break
	for rows.Next() {
		var row changeRow
		var seq int64
		var prev sql.NullString
		if err := rows.Scan(&seq, &row.changeID, &row.kind, &row.subject, &row.at, &prev, &row.hash, &row.keyID, &row.signature, &row.body); err != nil {
			return s.wrap("verify", err)
		}
		row.seq, row.prev, row.prevNull = uint64(seq), prev.String, !prev.Valid
		rep.Changes++
		if brk == nil {
			if reason := w.step(&row); reason != "" {
				brk = &Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: row.changeID, Sequence: row.seq, Reason: reason}
			} else {
				brk = aw.step(&row)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap("verify", err)
	}
	if brk == nil {
		switch {
		case !hasHead && rep.Changes > 0:
			brk = &Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: w.lastID, Sequence: w.lastSeq, Reason: "change chain has no head record: head row deleted"}
		case hasHead && rep.Changes == 0:
			brk = &Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: head.ReceiptID, Sequence: head.Sequence,
				Reason: fmt.Sprintf("change head names change %d but there are no changes: all were deleted", head.Sequence)}
		case hasHead && (head.Sequence != w.lastSeq || head.ReceiptHash != w.lastHash || head.ReceiptID != w.lastID):
			reason := fmt.Sprintf("change head names change %d (%s) but the chain ends at change %d (%s)", head.Sequence, head.ReceiptID, w.lastSeq, w.lastID)
			if head.Sequence > w.lastSeq {
				reason += ": newest changes deleted"
			}
			brk = &Break{Chain: ChainChanges, Tenant: ChangeChain, ReceiptID: head.ReceiptID, Sequence: head.Sequence, Reason: reason}
		}
	}
	if brk == nil {
		if brk, err = aw.end(ctx, tx); err != nil {
			return s.wrap("verify", err)
		}
	}
	if brk != nil {
		rep.Breaks = append(rep.Breaks, *brk)
	}
	if hasHead {
		rep.Heads = append(rep.Heads, head)
	}
	return nil
}

type changeRow struct {
	changeID, kind, subject, at string
	seq                         uint64
	prev                        string
	prevNull                    bool
	hash, keyID, signature      string
	body                        string
}

// changeWalker checks the change chain as walker checks a stream.
type changeWalker struct {
	ring     *keyRing
	lastSeq  uint64
	lastHash string
	lastID   string
}

// step checks one change and returns why it breaks the chain, or "".
func (w *changeWalker) step(row *changeRow) string {
	body := []byte(row.body)
	if got := hashBody(body); got != row.hash {
		return fmt.Sprintf("content hashes to %s, not its hash %s: change altered", got, row.hash)
	}
	if reason := w.ring.check(ChainChanges, ChangeChain, row.seq, row.keyID, row.hash, row.signature); reason != "" {
		return reason
	}
	var c Change
	if err := json.Unmarshal(body, &c); err != nil {
		return fmt.Sprintf("signed change does not decode: %v", err)
	}
	if cb, err := canonicalFor(c.Version, body); err != nil || !bytes.Equal(cb, body) {
		return fmt.Sprintf("stored change is not in the canonical form of version %d: altered", max(c.Version, 1))
	}
	cols := []struct{ name, col, signed string }{
		{"change_id", row.changeID, c.ChangeID},
		{"seq", fmt.Sprint(row.seq), fmt.Sprint(c.Sequence)},
		{"kind", row.kind, c.Kind},
		{"subject", row.subject, c.Subject},
		{"recorded_at", row.at, c.At.Format(wcp.TimeLayout)},
		{"prev_hash", row.prev, c.PrevHash},
		{"signing_key_id", row.keyID, c.SigningKeyID},
	}
	for _, col := range cols {
		if col.col != col.signed {
			return fmt.Sprintf("column %s is %q but the signed change says %q: row altered or moved", col.name, col.col, col.signed)
		}
	}
	if row.prevNull != (c.PrevHash == "") {
		return "column prev_hash nullness disagrees with the signed change"
	}
	if want := w.lastSeq + 1; c.Sequence != want {
		if c.Sequence > want {
			return fmt.Sprintf("sequence %d follows %d: changes %d..%d are missing", c.Sequence, w.lastSeq, want, c.Sequence-1)
		}
		return fmt.Sprintf("sequence %d follows %d: changes reordered or duplicated", c.Sequence, w.lastSeq)
	}
	if c.PrevHash != w.lastHash {
		if w.lastHash == "" {
			return fmt.Sprintf("first change has prev_hash %s, want null", c.PrevHash)
		}
		return fmt.Sprintf("prev_hash %s does not link to change %s (%s)", c.PrevHash, w.lastID, w.lastHash)
	}
	w.lastSeq, w.lastHash, w.lastID = c.Sequence, row.hash, row.changeID
	return ""
}

// sortBreaks orders breaks: checkpoints, the change chain, receipt
// streams by tenant, decision chains by tenant.
func sortBreaks(b []Break) {
	rank := map[string]int{"checkpoint": 0, ChainChanges: 1, ChainReceipts: 2, ChainDecisions: 3}
	slices.SortStableFunc(b, func(x, y Break) int {
		if rx, ry := rank[chainOf(x.Chain, x.Tenant)], rank[chainOf(y.Chain, y.Tenant)]; rx != ry {
			return rx - ry
		}
		return strings.Compare(x.Tenant, y.Tenant)
	})
}

// CheckHeads compares the ledger with heads saved earlier (from
// [Report.Heads], kept where the database's writers cannot reach). Verify
// proves each stream is consistent up to its current head; CheckHeads
// proves each stream still contains the saved head unchanged, which
// together rule out cutting or rewriting a stream's end back past the
// saved point. A head with Tenant [ChangeChain] is checked against the
// change chain the same way. It returns one break per chain that fails.
func (s *SQLite) CheckHeads(ctx context.Context, saved []Head) ([]Break, error) {
	var breaks []Break
	for _, h := range saved {
		var id, hash string
		var err error
		what, chain := "receipt", "stream"
		switch chainOf(h.Chain, h.Tenant) {
		case ChainChanges:
			what, chain = "change", "change chain"
			err = s.r.QueryRowContext(ctx, `SELECT change_id, hash FROM changes WHERE seq = ?`, int64(h.Sequence)).Scan(&id, &hash)
		case ChainDecisions:
			what, chain = "entry", "decision chain"
			err = s.r.QueryRowContext(ctx, `SELECT entry_id, hash FROM entries WHERE stream = ? AND seq = ?`, h.Tenant, int64(h.Sequence)).Scan(&id, &hash)
		default:
			err = s.r.QueryRowContext(ctx, `SELECT receipt_id, receipt_hash FROM receipts WHERE tenant_id = ? AND seq = ?`,
				h.Tenant, int64(h.Sequence)).Scan(&id, &hash)
		}
		switch {
		case errors.Is(err, sql.ErrNoRows):
			breaks = append(breaks, Break{Chain: h.Chain, Tenant: h.Tenant, ReceiptID: h.ReceiptID, Sequence: h.Sequence,
				Reason: fmt.Sprintf("saved head %s %d is gone: %s truncated", what, h.Sequence, chain)})
		case err != nil:
			return nil, s.wrap("check heads", err)
		case id != h.ReceiptID || hash != h.ReceiptHash:
			breaks = append(breaks, Break{Chain: h.Chain, Tenant: h.Tenant, ReceiptID: h.ReceiptID, Sequence: h.Sequence,
				Reason: fmt.Sprintf("%s %d is now %s (%s), not the saved %s (%s): %s rewritten", what, h.Sequence, id, hash, h.ReceiptID, h.ReceiptHash, chain)})
		}
	}
	return breaks, nil
}
