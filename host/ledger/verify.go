package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

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
func (s *SQLite) Verify(ctx context.Context, pub ed25519.PublicKey) (*Report, error) {
	if pub == nil {
		if s.pub == nil {
			return nil, fmt.Errorf("ledger: verify: no public key given and %w", s.keyError)
		}
		pub = s.pub
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("ledger: verify: %w: public key has %d bytes, want %d", ErrKey, len(pub), ed25519.PublicKeySize)
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

	rep := &Report{}
	w := walker{pub: pub, keyID: KeyID(pub)}
	seen := map[string]bool{}
	finish := func() {
		if w.tenant == "" && w.count == 0 {
			return
		}
		if b, ok := w.end(heads); !ok {
			rep.Breaks = append(rep.Breaks, b)
		}
	}
	for rows.Next() {
		var row storedRow
		var seq int64
		var prev sql.NullString
		if err := rows.Scan(&row.tenant, &seq, &row.receiptID, &row.correlationID, &row.workerID, &row.dispatchedAt,
			&prev, &row.receiptHash, &row.keyID, &row.signature, &row.body); err != nil {
			return nil, s.wrap("verify", err)
		}
		row.seq, row.prev, row.prevNull = uint64(seq), prev.String, !prev.Valid
		if !seen[row.tenant] {
			finish()
			seen[row.tenant] = true
			rep.Streams++
			w.start(row.tenant)
		}
		rep.Receipts++
		if b, ok := w.step(&row); !ok {
			rep.Breaks = append(rep.Breaks, b)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("verify", err)
	}
	finish()
	for _, t := range headOrder {
		h := heads[t]
		rep.Heads = append(rep.Heads, h)
		if !seen[t] {
			rep.Streams++
			rep.Breaks = append(rep.Breaks, Break{Tenant: t, ReceiptID: h.ReceiptID, Sequence: h.Sequence,
				Reason: fmt.Sprintf("stream head names receipt %d but the stream has no receipts: all were deleted", h.Sequence)})
		}
	}
	sortBreaks(rep.Breaks)
	return rep, nil
}

type storedRow struct {
	tenant, receiptID, correlationID, workerID, dispatchedAt string
	seq                                                      uint64
	prev                                                     string
	prevNull                                                 bool
	receiptHash, keyID, signature, body                      string
}

// walker checks one stream at a time.
type walker struct {
	pub   ed25519.PublicKey
	keyID string

	tenant   string
	count    int
	broken   bool
	lastSeq  uint64
	lastHash string
	lastID   string
}

func (w *walker) start(tenant string) {
	*w = walker{pub: w.pub, keyID: w.keyID, tenant: tenant}
}

func (w *walker) brk(row *storedRow, format string, args ...any) (Break, bool) {
	w.broken = true
	return Break{Tenant: w.tenant, ReceiptID: row.receiptID, Sequence: row.seq, Reason: fmt.Sprintf(format, args...)}, false
}

func (w *walker) step(row *storedRow) (Break, bool) {
	w.count++
	if w.broken {
		return Break{}, true
	}
	body := []byte(row.body)
	if c, err := canonical(body); err != nil || !bytes.Equal(c, body) {
		return w.brk(row, "stored receipt is not canonical JSON: altered")
	}
	if got := hashBody(body); got != row.receiptHash {
		return w.brk(row, "content hashes to %s, not its receipt_hash %s: receipt altered", got, row.receiptHash)
	}
	if row.keyID != w.keyID {
		return w.brk(row, "signed by key %s, not by %s", row.keyID, w.keyID)
	}
	sig, err := base64.StdEncoding.DecodeString(row.signature)
	if err != nil || !ed25519.Verify(w.pub, []byte(row.receiptHash), sig) {
		return w.brk(row, "signature does not verify with key %s: receipt_hash or signature altered", w.keyID)
	}
	var r Receipt
	if err := json.Unmarshal(body, &r); err != nil {
		return w.brk(row, "signed receipt does not decode: %v", err)
	}
	cols := []struct{ name, col, signed string }{
		{"receipt_id", row.receiptID, r.ReceiptID},
		{"tenant_id", row.tenant, r.TenantID},
		{"seq", fmt.Sprint(row.seq), fmt.Sprint(r.Sequence)},
		{"correlation_id", row.correlationID, r.CorrelationID},
		{"worker_id", row.workerID, r.WorkerID},
		{"dispatched_at", row.dispatchedAt, r.DispatchedAt.Format(wcp.TimeLayout)},
		{"prev_receipt_hash", row.prev, r.PrevReceiptHash},
		{"signing_key_id", row.keyID, r.SigningKeyID},
	}
	for _, c := range cols {
		if c.col != c.signed {
			return w.brk(row, "column %s is %q but the signed receipt says %q: row altered or moved", c.name, c.col, c.signed)
		}
	}
	if row.prevNull != (r.PrevReceiptHash == "") {
		return w.brk(row, "column prev_receipt_hash nullness disagrees with the signed receipt")
	}
	if want := w.lastSeq + 1; r.Sequence != want {
		if r.Sequence > want {
			return w.brk(row, "sequence %d follows %d: receipts %d..%d are missing", r.Sequence, w.lastSeq, want, r.Sequence-1)
		}
		return w.brk(row, "sequence %d follows %d: receipts reordered or duplicated", r.Sequence, w.lastSeq)
	}
	if r.PrevReceiptHash != w.lastHash {
		if w.lastHash == "" {
			return w.brk(row, "first receipt of the stream has prev_receipt_hash %s, want null", r.PrevReceiptHash)
		}
		return w.brk(row, "prev_receipt_hash %s does not link to receipt %s (%s)", r.PrevReceiptHash, w.lastID, w.lastHash)
	}
	w.lastSeq, w.lastHash, w.lastID = r.Sequence, row.receiptHash, row.receiptID
	return Break{}, true
}

// end checks the stream's head row once its receipts are walked.
func (w *walker) end(heads map[string]Head) (Break, bool) {
	if w.broken {
		return Break{}, true
	}
	h, ok := heads[w.tenant]
	if !ok {
		return Break{Tenant: w.tenant, ReceiptID: w.lastID, Sequence: w.lastSeq,
			Reason: "stream has no head record: head row deleted"}, false
	}
	if h.Sequence != w.lastSeq || h.ReceiptHash != w.lastHash || h.ReceiptID != w.lastID {
		reason := fmt.Sprintf("stream head names receipt %d (%s) but the chain ends at receipt %d (%s)", h.Sequence, h.ReceiptID, w.lastSeq, w.lastID)
		if h.Sequence > w.lastSeq {
			reason += ": newest receipts deleted"
		}
		return Break{Tenant: w.tenant, ReceiptID: h.ReceiptID, Sequence: h.Sequence, Reason: reason}, false
	}
	return Break{}, true
}

func sortBreaks(b []Break) {
	slices.SortStableFunc(b, func(x, y Break) int { return strings.Compare(x.Tenant, y.Tenant) })
}

// CheckHeads compares the ledger with heads saved earlier (from
// [Report.Heads], kept where the database's writers cannot reach). Verify
// proves each stream is consistent up to its current head; CheckHeads
// proves each stream still contains the saved head unchanged, which
// together rule out cutting or rewriting a stream's end back past the
// saved point. It returns one break per stream that fails.
func (s *SQLite) CheckHeads(ctx context.Context, saved []Head) ([]Break, error) {
	var breaks []Break
	for _, h := range saved {
		var id, hash string
		err := s.r.QueryRowContext(ctx, `SELECT receipt_id, receipt_hash FROM receipts WHERE tenant_id = ? AND seq = ?`,
			h.Tenant, int64(h.Sequence)).Scan(&id, &hash)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			breaks = append(breaks, Break{Tenant: h.Tenant, ReceiptID: h.ReceiptID, Sequence: h.Sequence,
				Reason: fmt.Sprintf("saved head receipt %d is gone: stream truncated", h.Sequence)})
		case err != nil:
			return nil, s.wrap("check heads", err)
		case id != h.ReceiptID || hash != h.ReceiptHash:
			breaks = append(breaks, Break{Tenant: h.Tenant, ReceiptID: h.ReceiptID, Sequence: h.Sequence,
				Reason: fmt.Sprintf("receipt %d is now %s (%s), not the saved %s (%s): stream rewritten", h.Sequence, id, hash, h.ReceiptID, h.ReceiptHash)})
		}
	}
	return breaks, nil
}
