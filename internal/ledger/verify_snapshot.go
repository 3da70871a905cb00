package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// verifySnapshots checks, inside tx, that every decision entry and every
// receipt that names a snapshot names one the change chain recorded
// (kind [ChangeSnapshot]) no later than the decision or dispatch, and that
// none recorded after the first snapshot entry names none: a Hall decides
// only under a snapshot that is evidence (docs/EVIDENCE.md, "Snapshots").
// It reports the first offending entry of each stream.
//
// The signatures of the entries it reads are checked by the chain walks;
// this check reads what they sign.
func (s *SQLite) verifySnapshots(ctx context.Context, tx *sql.Tx, rep *Report) error {
	recorded, first, err := snapshotTimes(ctx, tx)
	if err != nil {
		return s.wrap("verify", err)
	}
	rep.Snapshots = len(recorded)
	check := func(chain, stream, id string, seq uint64, snapshot, at string) (Break, bool) {
		b := Break{Chain: chain, Tenant: stream, ReceiptID: id, Sequence: seq}
		what := "decision"
		if chain == ChainReceipts {
			what = "receipt"
		}
		when, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return Break{}, true // malformed times are the chain walks' to report
		}
		if snapshot == "" {
			if !first.IsZero() && when.After(first) {
				b.Reason = fmt.Sprintf("%s names no snapshot, although snapshots are recorded since %s: it was made under governance that is not in the change chain", what, first.Format(time.RFC3339Nano))
				return b, false
			}
			return Break{}, true // recorded before snapshots were
		}
		at0, ok := recorded[snapshot]
		switch {
		case !ok:
			b.Reason = fmt.Sprintf("%s names snapshot %s, which no change entry records: it was made under rules, policies or configuration that are not evidence", what, snapshot)
			return b, false
		case at0.After(when):
			b.Reason = fmt.Sprintf("%s names snapshot %s, first recorded at %s, after the %s (%s)", what, snapshot, at0.Format(time.RFC3339Nano), what, at)
			return b, false
		}
		return Break{}, true
	}

	// Decision entries.
	rows, err := tx.QueryContext(ctx, `SELECT stream, seq, entry_id, body FROM entries WHERE kind = ? ORDER BY stream, seq`, entryDecision)
	if err != nil {
		return s.wrap("verify", err)
	}
	broken := map[string]bool{}
	for rows.Next() {
		var stream, id, body string
		var seq int64
		if err := rows.Scan(&stream, &seq, &id, &body); err != nil {
			rows.Close()
			return s.wrap("verify", err)
		}
		if broken[stream] {
			continue
		}
		var e struct {
			Snapshot   string `json:"snapshot"`
			RecordedAt string `json:"recorded_at"`
		}
		if json.Unmarshal([]byte(body), &e) != nil {
			continue // reported by the decision chain walk
		}
		if b, ok := check(ChainDecisions, stream, id, uint64(seq), e.Snapshot, e.RecordedAt); !ok {
			broken[stream] = true
			rep.Breaks = append(rep.Breaks, b)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return s.wrap("verify", err)
	}

	// Receipts.
	rows, err = tx.QueryContext(ctx, `SELECT tenant_id, seq, receipt_id, body FROM receipts ORDER BY tenant_id, seq`)
	if err != nil {
		return s.wrap("verify", err)
	}
	defer rows.Close()
	broken = map[string]bool{}
	var replays []replayClaim
	var links chainLinks
	for rows.Next() {
		var tenant, id, body string
		var seq int64
		if err := rows.Scan(&tenant, &seq, &id, &body); err != nil {
			return s.wrap("verify", err)
		}
		if broken[tenant] {
			continue
		}
		var r replayCols
		if json.Unmarshal([]byte(body), &r) != nil {
			continue // reported by the receipt walk
		}
		if b, ok := check(ChainReceipts, tenant, id, uint64(seq), r.Snapshot, r.DispatchedAt); !ok {
			broken[tenant] = true
			rep.Breaks = append(rep.Breaks, b)
			continue
		}
		if r.ReplayOf != "" {
			replays = append(replays, replayClaim{tenant, id, uint64(seq), r})
		}
		links.add(tenant, id, uint64(seq), &r)
	}
	if err := rows.Err(); err != nil {
		return s.wrap("verify", err)
	}
	rows.Close()
	if err := s.verifyReplays(ctx, tx, replays, broken, rep); err != nil {
		return err
	}
	return s.verifyChainLinks(ctx, tx, &links, broken, rep)
}

// replayCols are the members of a receipt the snapshot and replay checks
// read.
type replayCols struct {
	Snapshot     string `json:"snapshot"`
	DispatchedAt string `json:"dispatched_at"`
	ReplayOf     string `json:"replay_of"`
	ArtifactHash string `json:"artifact_hash"`
	RecordDigest string `json:"record_digest"`
	DecisionID   string `json:"decision_id"`
	// The chain members (verify_chain.go).
	CorrelationID    string `json:"correlation_id"`
	ParentDecisionID string `json:"parent_decision_id"`
	ChainDepth       int    `json:"chain_depth"`
	BlastScore       *int   `json:"blast_score"`
	ChainHops        int    `json:"chain_hops"`
	ChainBlast       int    `json:"chain_blast"`
}

// replayFields are the routing fields of a decision a replay is decided
// for (host.Hall.Replay): the original decision's.
var replayFields = []string{"tenant_id", "capability_id", "env", "data_label", "tenant_risk", "qos_class", "correlation_id"}

// signedDecision is the decision object of the signed decision entry id,
// nil when there is none (a decision recorded before decisions were
// chained).
func signedDecision(ctx context.Context, tx *sql.Tx, id string) (map[string]json.RawMessage, error) {
	var body string
	err := tx.QueryRowContext(ctx, `SELECT body FROM entries WHERE entry_id = ? AND kind = ?`, id, entryDecision).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var e struct {
		Decision map[string]json.RawMessage `json:"decision"`
	}
	if json.Unmarshal([]byte(body), &e) != nil {
		return nil, nil // reported by the decision chain walk
	}
	return e.Decision, nil
}

type replayClaim struct {
	tenant, id string
	seq        uint64
	r          replayCols
}

// verifyReplays checks that every receipt naming replay_of names a
// recorded receipt and that receipt's module and record, and that its
// decision was made for the original decision's routing fields: a replay
// runs the original's module under its record for its request
// (host.Hall.Replay), so a replay receipt naming another module ran code
// that no enrollment sealed for that dispatch, and one decided for other
// fields read an altered decision. It reports
// the first offending receipt of each stream not already broken.
func (s *SQLite) verifyReplays(ctx context.Context, tx *sql.Tx, replays []replayClaim, broken map[string]bool, rep *Report) error {
	for _, b := range rep.Breaks {
		if b.Chain == ChainReceipts {
			broken[b.Tenant] = true // one break per stream: checkReplays may have reported it
		}
	}
	for _, p := range replays {
		if broken[p.tenant] {
			continue
		}
		var body string
		err := tx.QueryRowContext(ctx, `SELECT body FROM receipts WHERE receipt_id = ?`, p.r.ReplayOf).Scan(&body)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return s.wrap("verify", err)
		}
		var o replayCols
		reason := ""
		switch {
		case err != nil:
			reason = fmt.Sprintf("replays receipt %s, which is not recorded", p.r.ReplayOf)
		case json.Unmarshal([]byte(body), &o) != nil:
			continue // reported by the receipt walk
		case o.ArtifactHash != p.r.ArtifactHash || o.RecordDigest != p.r.RecordDigest:
			reason = fmt.Sprintf("replays receipt %s but ran module %s under record %s, not its module %s under record %s: the replayed receipt, or the sealed record it names, was altered for the replay",
				p.r.ReplayOf, p.r.ArtifactHash, p.r.RecordDigest, o.ArtifactHash, o.RecordDigest)
		default:
			// Decided for the original request's routing fields.
			mine, err := signedDecision(ctx, tx, p.r.DecisionID)
			if err != nil {
				return s.wrap("verify", err)
			}
			theirs, err := signedDecision(ctx, tx, o.DecisionID)
			if err != nil {
				return s.wrap("verify", err)
			}
			if mine == nil || theirs == nil {
				continue
			}
			for _, f := range replayFields {
				if string(mine[f]) != string(theirs[f]) {
					reason = fmt.Sprintf("replays receipt %s but was decided for %s %s, not the original decision's %s: the original decision was altered for the replay", p.r.ReplayOf, f, mine[f], theirs[f])
					break
				}
			}
			if reason == "" {
				continue
			}
		}
		broken[p.tenant] = true
		rep.Breaks = append(rep.Breaks, Break{Chain: ChainReceipts, Tenant: p.tenant, ReceiptID: p.id, Sequence: p.seq, Reason: reason})
	}
	return nil
}

// snapshotTimes maps each snapshot digest the change chain records to
// when it was first recorded, and returns when the first was.
func snapshotTimes(ctx context.Context, tx *sql.Tx) (map[string]time.Time, time.Time, error) {
	rows, err := tx.QueryContext(ctx, `SELECT body FROM changes WHERE kind = ? ORDER BY seq`, ChangeSnapshot)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	var first time.Time
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, time.Time{}, err
		}
		var c struct {
			Digest string `json:"digest"`
			At     string `json:"at"`
		}
		if json.Unmarshal([]byte(body), &c) != nil {
			continue // reported by the change chain walk
		}
		at, err := time.Parse(time.RFC3339Nano, c.At)
		if err != nil {
			continue
		}
		if _, seen := out[c.Digest]; !seen {
			out[c.Digest] = at
		}
		if first.IsZero() {
			first = at
		}
	}
	return out, first, rows.Err()
}
