package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
)

// chainNode is a receipt of a chain of dispatches (a root that made hops,
// or a hop) as the chain check reads it.
type chainNode struct {
	tenant, receiptID string
	seq               uint64
	r                 replayCols
	children          []*chainNode
}

// chainLinks collects the chain receipts of a ledger (those with a
// blast_score or a parent_decision_id), by decision id.
type chainLinks struct {
	byDecision map[string]*chainNode
	order      []*chainNode
}

func (l *chainLinks) add(tenant, id string, seq uint64, r *replayCols) {
	if r.BlastScore == nil && r.ParentDecisionID == "" {
		return
	}
	if l.byDecision == nil {
		l.byDecision = map[string]*chainNode{}
	}
	n := &chainNode{tenant: tenant, receiptID: id, seq: seq, r: *r}
	l.byDecision[r.DecisionID] = n
	l.order = append(l.order, n)
}

// verifyChainLinks checks the links of every chain of dispatches
// (docs/EVIDENCE.md, "Chains of dispatches"):
//
//   - a hop's parent_decision_id names the receipt of a dispatch of the
//     same tenant and correlation id, one level up (a hop without its
//     parent is reported), and the hop's own signed decision names the
//     same parent at the same depth;
//   - a root's chain_hops is the number of hop receipts below it and its
//     chain_blast the sum of its and their blast scores.
//
// It reports the first offending receipt of each stream not already
// broken.
func (s *SQLite) verifyChainLinks(ctx context.Context, tx *sql.Tx, l *chainLinks, broken map[string]bool, rep *Report) error {
	report := func(n *chainNode, format string, args ...any) {
		if broken[n.tenant] {
			return
		}
		broken[n.tenant] = true
		rep.Breaks = append(rep.Breaks, Break{Chain: ChainReceipts, Tenant: n.tenant, ReceiptID: n.receiptID, Sequence: n.seq, Reason: fmt.Sprintf(format, args...)})
	}
	for _, n := range l.order {
		if n.r.ParentDecisionID == "" {
			continue
		}
		p := l.byDecision[n.r.ParentDecisionID]
		switch {
		case p == nil:
			report(n, "hop at depth %d names parent decision %s, which no receipt of a chain records: a hop without its parent", n.r.ChainDepth, n.r.ParentDecisionID)
			continue
		case p.tenant != n.tenant || p.r.CorrelationID != n.r.CorrelationID:
			report(n, "hop names parent decision %s of tenant %q and correlation id %q, not its own %q and %q: a hop inherits its parent's", n.r.ParentDecisionID, p.tenant, p.r.CorrelationID, n.tenant, n.r.CorrelationID)
			continue
		case p.r.ChainDepth+1 != n.r.ChainDepth:
			report(n, "hop at depth %d names a parent at depth %d", n.r.ChainDepth, p.r.ChainDepth)
			continue
		}
		d, err := signedDecision(ctx, tx, n.r.DecisionID)
		if err != nil {
			return s.wrap("verify", err)
		}
		if d != nil {
			var c struct {
				ParentDecisionID string `json:"parent_decision_id"`
				Depth            int    `json:"depth"`
			}
			if raw, ok := d["chain"]; !ok || json.Unmarshal(raw, &c) != nil || c.ParentDecisionID != n.r.ParentDecisionID || c.Depth != n.r.ChainDepth {
				report(n, "hop's receipt names parent decision %s at depth %d, but its signed decision %s names %s", n.r.ParentDecisionID, n.r.ChainDepth, n.r.DecisionID, d["chain"])
				continue
			}
		}
		p.children = append(p.children, n)
	}
	var walk func(n *chainNode) (hops, blast int)
	walk = func(n *chainNode) (hops, blast int) {
		if n.r.BlastScore != nil {
			blast = *n.r.BlastScore
		}
		for _, c := range n.children {
			h, b := walk(c)
			hops, blast = hops+h+1, blast+b
		}
		return hops, blast
	}
	roots := make([]*chainNode, 0)
	for _, n := range l.order {
		if n.r.ParentDecisionID == "" {
			roots = append(roots, n)
		}
	}
	sort.SliceStable(roots, func(i, j int) bool { return roots[i].seq < roots[j].seq })
	for _, n := range roots {
		hops, blast := walk(n)
		if hops != n.r.ChainHops || blast != n.r.ChainBlast {
			report(n, "chain root records %d hops and a chain blast of %d, but the ledger holds %d hop receipts below it summing %d", n.r.ChainHops, n.r.ChainBlast, hops, blast)
		}
	}
	return nil
}
