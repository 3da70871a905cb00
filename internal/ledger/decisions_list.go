package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wcphall/hall/host/wcp"
)

// DecisionFilter selects decisions for [SQLite.Decisions] and
// [SQLite.DecisionCounts].
type DecisionFilter struct {
	// TenantID is the decision chain read; with AllTenants every chain is.
	TenantID   string
	AllTenants bool
	// Since, when non-zero, keeps decisions recorded at or after it
	// (DecisionCounts' "since" count).
	Since time.Time
	// Limit bounds Decisions' answer (0: 50).
	Limit int
	// External keeps only decisions ingested from elsewhere (host's
	// IngestDecision): those whose decision is the wrapper
	// {"decided_by_this_hall": false, …, "external": true, …}.
	External bool
}

// externalMark is how an ingested decision's entry body begins its
// decision member, canonical JSON sorting decided_by_this_hall first; no
// decision of the Hall's own has that member. Decisions confirms the mark
// on the decoded entry.
const externalMark = `%"decision":{"decided_by_this_hall":false,%`

// Decisions returns the newest decisions of f's chain (or of every
// chain), newest first, read from their signed entries: every field of a
// returned record is what the entry's hash covers. An entry whose body
// does not hash to its recorded hash is an error naming it (hall audit
// verify reports it as a break).
func (s *SQLite) Decisions(ctx context.Context, f DecisionFilter) ([]DecisionRecord, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	q, args := `SELECT entry_id, hash, body FROM entries WHERE stream = ? AND kind = ? ORDER BY seq DESC LIMIT ?`, []any{f.TenantID, entryDecision, limit}
	if f.AllTenants {
		q, args = `SELECT entry_id, hash, body FROM entries WHERE kind = ? ORDER BY id DESC LIMIT ?`, []any{entryDecision, limit}
	}
	if f.External {
		q = strings.Replace(q, "kind = ?", "kind = ? AND body LIKE ?", 1)
		args = append(args[:len(args)-1:len(args)-1], externalMark, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.wrap("decisions", err)
	}
	defer rows.Close()
	var out []DecisionRecord
	for rows.Next() {
		var id, hash, body string
		if err := rows.Scan(&id, &hash, &body); err != nil {
			return nil, s.wrap("decisions", err)
		}
		if hashBody([]byte(body)) != hash {
			return nil, fmt.Errorf("ledger: decisions: entry %s does not hash to its hash (hall audit verify reports it)", id)
		}
		var e entryJSON
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			return nil, fmt.Errorf("ledger: decisions: entry %s does not decode: %w", id, err)
		}
		if f.External {
			var w struct {
				External          bool  `json:"external"`
				DecidedByThisHall *bool `json:"decided_by_this_hall"`
			}
			if json.Unmarshal(e.Decision, &w) != nil || !w.External || w.DecidedByThisHall == nil || *w.DecidedByThisHall {
				continue
			}
		}
		at, _ := time.Parse(time.RFC3339Nano, e.RecordedAt)
		d := DecisionRecord{DecisionID: e.DecisionID, CorrelationID: e.CorrelationID, TenantID: e.TenantID,
			CapabilityID: e.CapabilityID, Decision: e.Decision, Timestamp: at, Snapshot: e.Snapshot}
		if e.Denied != nil {
			d.Denied = *e.Denied
		}
		if e.DenyCode != nil {
			d.DenyCode = *e.DenyCode
		}
		if e.DryRun != nil {
			d.DryRun = *e.DryRun
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DecisionCounts counts the decisions of f's chain (or of every chain):
// all of them, those recorded since f.Since, and those of them denied. The
// counts are read from the decisions table's lookup columns, which no
// signature covers: they are for dashboards, the signed entries are the
// evidence.
func (s *SQLite) DecisionCounts(ctx context.Context, f DecisionFilter) (total, since, deniedSince int, err error) {
	where, args := `WHERE tenant_id = ?`, []any{f.TenantID}
	if f.AllTenants {
		where, args = ``, nil
	}
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM decisions `+where, args...).Scan(&total); err != nil {
		return 0, 0, 0, s.wrap("decision counts", err)
	}
	cut := f.Since.UTC().Format(wcp.TimeLayout)
	if where == "" {
		where = `WHERE decided_at >= ?`
	} else {
		where += ` AND decided_at >= ?`
	}
	args = append(args, cut)
	var denied *int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), SUM(denied) FROM decisions `+where, args...).Scan(&since, &denied); err != nil {
		return 0, 0, 0, s.wrap("decision counts", err)
	}
	if denied != nil {
		deniedSince = *denied
	}
	return total, since, deniedSince, nil
}
