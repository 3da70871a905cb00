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
	)
	brk = func(id string, seq uint64, format string, args ...any) {
		broken = true
		rep.Breaks = append(rep.Breaks, Break{Chain: ChainDecisions, Tenant: cur, ReceiptID: id, Sequence: seq, Reason: fmt.Sprintf(format, args...)})
	}
	endStream = func() {
		if !started || broken {
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
	for rows.Next() {
		var stream, id, kind, corr, at, hash, keyID, sig, body string
		var seq int64
		var prev sql.NullString
		var dID, dTenant, dCorr, dCap, dCode, dAt, dDec sql.NullString
		var dDenied, dDry sql.NullBool
		var dSeq sql.NullInt64
		if err := rows.Scan(&stream, &seq, &id, &kind, &corr, &at, &prev, &hash, &keyID, &sig, &body,
			&dID, &dTenant, &dCorr, &dCap, &dDenied, &dCode, &dDry, &dAt, &dDec, &dSeq); err != nil {
			return s.wrap("verify", err)
		}
		if !seen[stream] {
			endStream()
			seen[stream] = true
			cur, started, broken, lastSeq, lastHash, lastID = stream, true, false, 0, "", ""
			rep.DecisionStreams++
		}
		rep.Decisions++
		if broken {
			continue
		}
		useq := uint64(seq)
		b := []byte(body)
		if got := hashBody(b); got != hash {
			brk(id, useq, "content hashes to %s, not its hash %s: entry altered", got, hash)
			continue
		}
		if reason := ring.check(ChainDecisions, stream, useq, keyID, hash, sig); reason != "" {
			brk(id, useq, "%s", reason)
			continue
		}
		var e entryJSON
		if err := json.Unmarshal(b, &e); err != nil {
			brk(id, useq, "signed entry does not decode: %v", err)
			continue
		}
		if c, err := canonical(b); err != nil || !bytes.Equal(c, b) || e.Version != formatV2 {
			brk(id, useq, "stored entry is not canonical version 2 JSON: altered")
			continue
		}
		ePrev := ""
		if e.PrevHash != nil {
			ePrev = *e.PrevHash
		}
		cols := []struct{ name, col, signed string }{
			{"entry_id", id, e.EntryID},
			{"stream", stream, e.TenantID},
			{"seq", strconv.FormatUint(useq, 10), strconv.FormatUint(e.Sequence, 10)},
			{"kind", kind, e.Kind},
			{"correlation_id", corr, e.CorrelationID},
			{"recorded_at", at, e.RecordedAt},
			{"prev_hash", prev.String, ePrev},
			{"signing_key_id", keyID, e.SigningKeyID},
		}
		bad := false
		for _, c := range cols {
			if c.col != c.signed {
				brk(id, useq, "column %s is %q but the signed entry says %q: row altered or moved", c.name, c.col, c.signed)
				bad = true
				break
			}
		}
		if bad {
			continue
		}
		if !prev.Valid != (e.PrevHash == nil) {
			brk(id, useq, "column prev_hash nullness disagrees with the signed entry")
			continue
		}
		if want := lastSeq + 1; e.Sequence != want {
			if e.Sequence > want {
				brk(id, useq, "sequence %d follows %d: entries %d..%d are missing", e.Sequence, lastSeq, want, e.Sequence-1)
			} else {
				brk(id, useq, "sequence %d follows %d: entries reordered or duplicated", e.Sequence, lastSeq)
			}
			continue
		}
		if ePrev != lastHash {
			if lastHash == "" {
				brk(id, useq, "first entry of the chain has prev_hash %s, want null", ePrev)
			} else {
				brk(id, useq, "prev_hash %s does not link to entry %s (%s)", ePrev, lastID, lastHash)
			}
			continue
		}
		if e.Kind == entryDecision {
			if reason := checkDecisionRow(&e, useq, dID, dTenant, dCorr, dCap, dCode, dAt, dDec, dDenied, dDry, dSeq); reason != "" {
				brk(id, useq, "%s", reason)
				continue
			}
		}
		lastSeq, lastHash, lastID = e.Sequence, hash, id
	}
	if err := rows.Err(); err != nil {
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
		WHERE d.entry_seq IS NOT NULL AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.entry_id = d.decision_id)`)
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
			Reason: "decision row has no signed entry: entry deleted or row forged"})
	}
	orow.Close()
	if err := orow.Err(); err != nil {
		return s.wrap("verify", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM decisions WHERE entry_seq IS NULL`).Scan(&rep.Unchained); err != nil {
		return s.wrap("verify", err)
	}
	return nil
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
