package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// The stream of a worker's events is the tenant of a decision (sealEntry):
// the one the dispatch made (RecordDecisionEvents), or the newest of the
// correlation id (RecordEvents). It is read from the decision's signed
// entry, never from the decisions row, whose columns no signature covers
// (issue 21: a forged or edited decisions row steered a worker's events
// into another tenant's stream). A row no entry signs (a decision recorded
// before decisions were chained) is used only where Decision reads one:
// in a ledger whose first schema change sealed such rows (legacyReadable).

// Queries of the decisions' entries (prepared, stmts.go) and of the rows
// of the ledger's older form (the fallback, rarely run).
const (
	qLegacyDecisionTenant = `SELECT tenant_id FROM decisions WHERE decision_id = ? AND entry_seq IS NULL`
	qLegacyNewestDecision = `SELECT tenant_id, decision_id FROM decisions WHERE correlation_id = ? AND entry_seq IS NULL ORDER BY rowid DESC LIMIT 1`
)

// decisionHead is what the stream lookup checks in a decision entry's
// signed body.
type decisionHead struct {
	EntryID       string `json:"entry_id"`
	Kind          string `json:"kind"`
	TenantID      string `json:"tenant_id"`
	CorrelationID string `json:"correlation_id"`
	DecisionID    string `json:"decision_id"`
}

// decisionEntryTenant checks a decision entry row (entry_id id, in stream,
// with hash and body) and returns the tenant its signed body names: the
// body hashes to hash, is a decision entry of id, and names the stream it
// is stored in (and the correlation id corr, when corr is not "").
func decisionEntryTenant(id, stream, hash, body, corr string) (string, error) {
	if hashBody([]byte(body)) != hash {
		return "", fmt.Errorf("the entry of decision %s does not hash to its hash (hall audit verify reports it)", id)
	}
	var h decisionHead
	if err := json.Unmarshal([]byte(body), &h); err != nil {
		return "", fmt.Errorf("the entry of decision %s does not decode: %v", id, err)
	}
	if h.Kind != entryDecision || h.EntryID != id || h.DecisionID != id || h.TenantID != stream || (corr != "" && h.CorrelationID != corr) {
		return "", fmt.Errorf("the entry row %s is not the signed entry of decision %s in stream %q (hall audit verify reports it)", h.EntryID, id, stream)
	}
	return h.TenantID, nil
}

// decisionTenant is the tenant of decision id, inside the batch's
// transaction: from its entry in the batch, or its signed entry, or a
// sealed row of the ledger's older form. A decision with none of these is
// an error naming decision_id.
func (s *SQLite) decisionTenant(tx *sql.Tx, op, id string) (string, error) {
	if s.tails.on {
		for i := len(s.tails.rows) - 1; i >= 0; i-- {
			if r := &s.tails.rows[i]; r.id == id && r.kind == entryDecision {
				return r.stream, nil
			}
		}
	}
	var stream, hash, body string
	err := s.queryRowTx(tx, qDecisionTenant, id).Scan(&stream, &hash, &body)
	if err == nil {
		t, err := decisionEntryTenant(id, stream, hash, body, "")
		if err != nil {
			return "", fmt.Errorf("ledger: %s: %w", op, invalid("decision_id", err.Error()))
		}
		return t, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", s.wrap(op, err)
	}
	var tenant string
	err = tx.QueryRow(qLegacyDecisionTenant, id).Scan(&tenant)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("ledger: %s: %w", op, invalid("decision_id", "no decision "+id+" is recorded"))
	}
	if err != nil {
		return "", s.wrap(op, err)
	}
	if err := legacyReadable(context.Background(), tx, "decision "+id+" is a decisions row no entry signs"); err != nil {
		return "", fmt.Errorf("ledger: %s: %w", op, invalid("decision_id", err.Error()))
	}
	return tenant, nil
}

// newestDecision is the tenant and id of the newest decision with
// correlation id corr, inside the batch's transaction: in the batch, or
// by the signed entries, or, when no entry holds one, a sealed row of the
// ledger's older form. "" and "" when there is none (a row no entry signs
// in a ledger born at a schema version is forged and taken for none). An
// entry that does not hold is an error: nothing is recorded.
func (s *SQLite) newestDecision(tx *sql.Tx, op, corr string) (tenant, id string, err error) {
	if s.tails.on {
		for i := len(s.tails.rows) - 1; i >= 0; i-- {
			if r := &s.tails.rows[i]; r.kind == entryDecision && r.corr == corr {
				return r.stream, r.id, nil
			}
		}
	}
	var stream, hash, body string
	err = s.queryRowTx(tx, qNewestDecision, corr).Scan(&id, &stream, &hash, &body)
	if err == nil {
		t, err := decisionEntryTenant(id, stream, hash, body, corr)
		if err != nil {
			return "", "", fmt.Errorf("ledger: %s: the newest decision of correlation id %q: %s", op, corr, err)
		}
		return t, id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", "", s.wrap(op, err)
	}
	err = tx.QueryRow(qLegacyNewestDecision, corr).Scan(&tenant, &id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", s.wrap(op, err)
	}
	if legacyReadable(context.Background(), tx, "") != nil {
		return "", "", nil
	}
	return tenant, id, nil
}
