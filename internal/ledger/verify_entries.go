package ledger

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
)

// verifyDecisions walks every decision chain inside tx as Verify walks a
// receipt stream, and checks each decision entry against the row of the
// decisions table that `hall` reads (present, same columns, same decision
// JSON): deleting, altering or reordering a decision or an event batch,
// or its row, is a break.
func (s *SQLite) verifyDecisions(ctx context.Context, tx *sql.Tx, ring *keyRing, rep *Report) error {
	heads := map[string]Head{}
	var order []string
	hrows, err := tx.QueryContext(ctx, `SELECT stream, seq, entry_id, hash FROM entry_heads ORDER BY stream`)
	if err != nil {
		return s.wrap("verify", err)
	}
	for hrows.Next() {
		h := Head{Chain: ChainDecisions}
		var seq int64
		if err := hrows.Scan(&h.Tenant, &seq, &h.ReceiptID, &h.ReceiptHash); err != nil {
			hrows.Close()
			return s.wrap("verify", err)
		}
		h.Sequence = uint64(seq)
		heads[h.Tenant] = h
		order = append(order, h.Tenant)
	}
	hrows.Close()
	if err := hrows.Err(); err != nil {
		return s.wrap("verify", err)
	}

	rows, err := tx.QueryContext(ctx, `SELECT e.stream, e.seq, e.entry_id, e.kind, e.correlation_id, e.recorded_at, e.prev_hash,
		e.hash, e.signing_key_id, e.signature, e.body,
		d.decision_id, d.tenant_id, d.correlation_id, d.capability_id, d.denied, d.deny_code, d.dry_run, d.decided_at, d.decision, d.entry_seq
		FROM entries e LEFT JOIN decisions d ON e.kind = 'decision' AND d.decision_id = e.entry_id
		ORDER BY e.stream, e.seq`)
	if err != nil {
		return s.wrap("verify", err)
	}
	defer rows.Close()
	var (
		cur              string
		started, broken  bool
		lastSeq          uint64
		lastHash, lastID string
		brk              func(id string, seq uint64, format string, args ...any)
		seen             = map[string]bool{}
		endStream        func()
		// cover is the run of unsigned entries the walk has accepted since
		// the stream's last signed one: a later signed entry, linked to
		// them and signed by the same key, must cover them.
		cover uncovered
	)
	brk = func(id string, seq uint64, format string, args ...any) {
		broken = true
		rep.Breaks = append(rep.Breaks, Break{Chain: ChainDecisions, Tenant: cur, ReceiptID: id, Sequence: seq, Reason: fmt.Sprintf(format, args...)})
	}
	endStream = func() {
		if !started || broken {
			return
		}
		if cover.n > 0 {
			brk(cover.firstID, cover.first, "%s", cover.reason("the stream ends before a signed entry: the entry that signed their commit was deleted"))
			return
		}
		h, ok := heads[cur]
		switch {
		case !ok:
			brk(lastID, lastSeq, "decision chain has no head record: head row deleted")
		case h.Sequence != lastSeq || h.ReceiptHash != lastHash || h.ReceiptID != lastID:
			reason := fmt.Sprintf("chain head names entry %d (%s) but the chain ends at entry %d (%s)", h.Sequence, h.ReceiptID, lastSeq, lastID)
			if h.Sequence > lastSeq {
				reason += ": newest entries deleted"
			}
			brk(h.ReceiptID, h.Sequence, "%s", reason)
		}
	}
	// Each entry's own checks (hash, signature, decoding, its decisions
	// row) run on all cores; links are then checked in chain order.
	err = checkInOrder(func(emit func(entryRow) bool) error {
		for rows.Next() {
			var r entryRow
			var seq int64
			if err := rows.Scan(&r.stream, &seq, &r.id, &r.kind, &r.corr, &r.at, &r.prev, &r.hash, &r.keyID, &r.sig, &r.body,
				&r.dID, &r.dTenant, &r.dCorr, &r.dCap, &r.dDenied, &r.dCode, &r.dDry, &r.dAt, &r.dDec, &r.dSeq); err != nil {
				return err
			}
			r.seq = uint64(seq)
			if !emit(r) {
				return nil
			}
		}
		return rows.Err()
	}, func(r *entryRow) {
		r.reason = r.precheck(ring)
	}, finishEntrySigs, func(r *entryRow) {
		if !seen[r.stream] {
			endStream()
			seen[r.stream] = true
			cur, started, broken, lastSeq, lastHash, lastID = r.stream, true, false, 0, "", ""
			cover = uncovered{}
			rep.DecisionStreams++
		}
		rep.Decisions++
		if broken {
			return
		}
		id, useq := r.id, r.seq
		// A break ends the stream's walk: unsigned entries before it are
		// covered by nothing the walk trusts.
		brkCover := func() {
			if cover.n > 0 {
				brk(cover.firstID, cover.first, "%s", cover.reason(fmt.Sprintf("entry %d, which would cover them, fails", useq)))
			}
		}
		if r.reason != "" {
			brkCover()
			brk(id, useq, "%s", r.reason)
			return
		}
		if want := lastSeq + 1; r.sequence != want {
			brkCover()
			if r.sequence > want {
				brk(id, useq, "sequence %d follows %d: entries %d..%d are missing", r.sequence, lastSeq, want, r.sequence-1)
			} else {
				brk(id, useq, "sequence %d follows %d: entries reordered or duplicated", r.sequence, lastSeq)
			}
			return
		}
		if r.signedPrev != lastHash {
			brkCover()
			if lastHash == "" {
				brk(id, useq, "first entry of the chain has prev_hash %s, want null", r.signedPrev)
			} else {
				brk(id, useq, "prev_hash %s does not link to entry %s (%s)", r.signedPrev, lastID, lastHash)
			}
			return
		}
		if r.decisionReason != "" {
			brkCover()
			brk(id, useq, "%s", r.decisionReason)
			return
		}
		if reason := cover.next(r.sig == "", r.keyID, id, useq); reason != "" {
			brk(cover.firstID, cover.first, "%s", reason)
			return
		}
		lastSeq, lastHash, lastID = r.sequence, r.hash, id
	})
	if err != nil {
		return s.wrap("verify", err)
	}
	endStream()
	for _, t := range order {
		h := heads[t]
		rep.Heads = append(rep.Heads, h)
		if !seen[t] {
			rep.DecisionStreams++
			rep.Breaks = append(rep.Breaks, Break{Chain: ChainDecisions, Tenant: t, ReceiptID: h.ReceiptID, Sequence: h.Sequence,
				Reason: fmt.Sprintf("chain head names entry %d but the chain has no entries: all were deleted", h.Sequence)})
		}
	}
	// A chained decision row whose entry is gone (the chain walk reports
	// the gap too, unless the whole chain and its head went with it).
	orow, err := tx.QueryContext(ctx, `SELECT d.decision_id, d.tenant_id, d.entry_seq FROM decisions d
		WHERE d.entry_seq IS NOT NULL AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.entry_id = d.decision_id AND e.kind = 'decision')`)
	if err != nil {
		return s.wrap("verify", err)
	}
	for orow.Next() {
		var id, tenant string
		var seq int64
		if err := orow.Scan(&id, &tenant, &seq); err != nil {
			orow.Close()
			return s.wrap("verify", err)
		}
		rep.Breaks = append(rep.Breaks, Break{Chain: ChainDecisions, Tenant: tenant, ReceiptID: id, Sequence: uint64(seq),
			Reason: "decision row has no signed decision entry: entry deleted or row forged"})
	}
	orow.Close()
	if err := orow.Err(); err != nil {
		return s.wrap("verify", err)
	}
	return nil
}

// entryRow is one decision-chain entry as Verify reads it, joined with
// its decisions row.
type entryRow struct {
	stream, id, kind, corr, at, hash, keyID, sig, body string
	seq                                                uint64
	prev                                               sql.NullString
	dID, dTenant, dCorr, dCap, dCode, dAt, dDec        sql.NullString
	dDenied, dDry                                      sql.NullBool
	dSeq                                               sql.NullInt64
	// Set by precheck: the signed chain fields, why the entry fails on
	// its own (reason), and why its decisions row disagrees with it
	// (decisionReason, reported after the links, as the walk did).
	sequence                           uint64
	signedPrev, reason, decisionReason string
	// sigPending: the signature's last step waits in sigCheck for
	// finishEntrySigs, which replaces reason when it fails.
	sigPending bool
	sigCheck   sigCheck
}

// finishEntrySigs is finishReceiptSigs for decision-chain entries. A
// failing signature also clears decisionReason: the entry's own failure
// is reported, as when the signature was checked first.
func finishEntrySigs(rows []entryRow) {
	var cs []*sigCheck
	for i := range rows {
		if rows[i].sigPending {
			cs = append(cs, &rows[i].sigCheck)
		}
	}
	finishSigChecks(cs)
	for i := range rows {
		if r := &rows[i]; r.sigPending && !r.sigCheck.valid {
			r.reason, r.decisionReason = badSignature(r.keyID), ""
		}
	}
}

// precheck checks what an entry proves on its own. It reads nothing but
// r and the key ring, so entries are prechecked in parallel.
func (r *entryRow) precheck(ring *keyRing) string {
	useq, stream := r.seq, r.stream
	b := []byte(r.body)
	if got := hashBody(b); got != r.hash {
		return fmt.Sprintf("content hashes to %s, not its hash %s: entry altered", got, r.hash)
	}
	if r.sig == "" {
		// Covered by the next signed entry of the chain (batchsign.go),
		// which the ordered walk looks for; its key must be one that may
		// sign this position.
		if reason := ring.checkUnsigned(ChainDecisions, stream, useq, r.keyID); reason != "" {
			return reason
		}
	} else {
		reason, pending := ring.checkDeferred(ChainDecisions, stream, useq, r.keyID, r.hash, r.sig, &r.sigCheck)
		r.sigPending = pending
		if reason != "" {
			return reason
		}
	}
	var e entryJSON
	if err := json.Unmarshal(b, &e); err != nil {
		return fmt.Sprintf("signed entry does not decode: %v", err)
	}
	// Not re-canonicalized: hash and signature verified these bytes
	// (RATIONALE.md, "Parallel verification").
	if e.Version != formatV2 {
		return fmt.Sprintf("signed entry has version %d, want 2: altered", e.Version)
	}
	ePrev := ""
	if e.PrevHash != nil {
		ePrev = *e.PrevHash
	}
	cols := []struct{ name, col, signed string }{
		{"entry_id", r.id, e.EntryID},
		{"stream", stream, e.TenantID},
		{"seq", strconv.FormatUint(useq, 10), strconv.FormatUint(e.Sequence, 10)},
		{"kind", r.kind, e.Kind},
		{"correlation_id", r.corr, e.CorrelationID},
		{"recorded_at", r.at, e.RecordedAt},
		{"prev_hash", r.prev.String, ePrev},
		{"signing_key_id", r.keyID, e.SigningKeyID},
	}
	for _, c := range cols {
		if c.col != c.signed {
			return fmt.Sprintf("column %s is %q but the signed entry says %q: row altered or moved", c.name, c.col, c.signed)
		}
	}
	if !r.prev.Valid != (e.PrevHash == nil) {
		return "column prev_hash nullness disagrees with the signed entry"
	}
	r.sequence, r.signedPrev = e.Sequence, ePrev
	if e.Kind == entryDecision {
		r.decisionReason = checkDecisionRow(&e, useq, r.dID, r.dTenant, r.dCorr, r.dCap, r.dCode, r.dAt, r.dDec, r.dDenied, r.dDry, r.dSeq)
	}
	return ""
}

// checkDecisionRow compares a decision entry with its decisions row.
func checkDecisionRow(e *entryJSON, seq uint64, id, tenant, corr, capID, code, at, dec sql.NullString, denied, dry sql.NullBool, dSeq sql.NullInt64) string {
	if !id.Valid {
		return "the decisions row of this signed decision is missing: deleted"
	}
	b2s := func(b *bool) string { return strconv.FormatBool(b != nil && *b) }
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	cols := []struct{ name, col, signed string }{
		{"tenant_id", tenant.String, e.TenantID},
		{"correlation_id", corr.String, e.CorrelationID},
		{"capability_id", capID.String, e.CapabilityID},
		{"denied", strconv.FormatBool(denied.Bool), b2s(e.Denied)},
		{"deny_code", code.String, str(e.DenyCode)},
		{"dry_run", strconv.FormatBool(dry.Bool), b2s(e.DryRun)},
		{"decided_at", at.String, e.RecordedAt},
		{"entry_seq", strconv.FormatInt(dSeq.Int64, 10), strconv.FormatUint(seq, 10)},
	}
	for _, c := range cols {
		if c.col != c.signed {
			return fmt.Sprintf("decisions row column %s is %q but the signed decision says %q: row altered", c.name, c.col, c.signed)
		}
	}
	if dec.String == "" {
		// Stored only in the signed entry (RecordDecision): nothing to
		// disagree with it.
		return ""
	}
	c, err := canonical([]byte(dec.String))
	if err != nil || !bytes.Equal(c, e.Decision) {
		return "decisions row's decision JSON differs from the signed decision: row altered"
	}
	return ""
}

// checkCheckpoints verifies each outside checkpoint's hash and signature
// against the key ring and that every head it names is still in the
// ledger (inside tx, the snapshot Verify walked), unchanged.
func (s *SQLite) checkCheckpoints(ctx context.Context, tx *sql.Tx, ring *keyRing, cps []Checkpoint, rep *Report) error {
	for _, cp := range cps {
		rep.Checkpoints++
		fail := func(format string, args ...any) {
			rep.Breaks = append(rep.Breaks, Break{Chain: "checkpoint", ReceiptID: cp.CheckpointID, Reason: fmt.Sprintf(format, args...)})
		}
		got, err := cp.ComputeHash()
		if err != nil || got != cp.Hash {
			fail("content hashes to %s, not its hash %s: checkpoint altered", got, cp.Hash)
			continue
		}
		if reason := ring.verifySig(cp.SigningKeyID, cp.Hash, cp.Signature); reason != "" {
			fail("%s", reason)
			continue
		}
		if reason := ring.checkpointSigner(cp.SigningKeyID, cp.Heads); reason != "" {
			fail("%s", reason)
			continue
		}
		// A retired key cannot vouch for heads past its retirement.
		if u, ok := ring.until[cp.SigningKeyID]; ok {
			late := false
			for _, h := range cp.Heads {
				if h.Sequence > u[posKey(h.Chain, h.Tenant)] {
					late = true
				}
			}
			if late {
				fail("signed by key %s, which was rotated out before the heads it names", cp.SigningKeyID)
				continue
			}
		}
		for _, h := range cp.Heads {
			var id, hash string
			var err error
			what := "receipt"
			switch chainOf(h.Chain, h.Tenant) {
			case ChainChanges:
				what = "change"
				err = tx.QueryRowContext(ctx, `SELECT change_id, hash FROM changes WHERE seq = ?`, int64(h.Sequence)).Scan(&id, &hash)
			case ChainDecisions:
				what = "decision entry"
				err = tx.QueryRowContext(ctx, `SELECT entry_id, hash FROM entries WHERE stream = ? AND seq = ?`, h.Tenant, int64(h.Sequence)).Scan(&id, &hash)
			default:
				err = tx.QueryRowContext(ctx, `SELECT receipt_id, receipt_hash FROM receipts WHERE tenant_id = ? AND seq = ?`, h.Tenant, int64(h.Sequence)).Scan(&id, &hash)
			}
			b := Break{Chain: chainOf(h.Chain, h.Tenant), Tenant: h.Tenant, ReceiptID: h.ReceiptID, Sequence: h.Sequence}
			switch {
			case err == sql.ErrNoRows:
				b.Reason = fmt.Sprintf("checkpoint %s (%s) names %s %d, which is gone: chain truncated or rolled back", cp.CheckpointID, cp.CreatedAt, what, h.Sequence)
			case err != nil:
				return s.wrap("verify", err)
			case id != h.ReceiptID || hash != h.ReceiptHash:
				b.Reason = fmt.Sprintf("checkpoint %s (%s) names %s %d as %s (%s), but it is now %s (%s): chain rewritten", cp.CheckpointID, cp.CreatedAt, what, h.Sequence, h.ReceiptID, h.ReceiptHash, id, hash)
			default:
				continue
			}
			rep.Breaks = append(rep.Breaks, b)
		}
	}
	return nil
}
