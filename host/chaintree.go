package host

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/wcphall/hall/internal/ledger"
)

// ReceiptReader is what ReceiptTree reads: a Hall's Evidence, or the
// ledger the hall CLI opens.
type ReceiptReader interface {
	Receipt(ctx context.Context, id string) (*ledger.Receipt, error)
	Receipts(ctx context.Context, f ledger.Filter) ([]ledger.Receipt, error)
}

// ChainNode is one dispatch of a chain (a root or a hop, chain.go) in its
// evidence tree: what ran, how it ended, its blast score, and the hops it
// made that ran, in dispatch order.
type ChainNode struct {
	ReceiptID    string  `json:"receipt_id"`
	DecisionID   string  `json:"decision_id"`
	WorkerID     string  `json:"worker_id"`
	CapabilityID string  `json:"capability_id"`
	ArtifactHash string  `json:"artifact_hash"`
	Outcome      string  `json:"outcome"`
	DurationMS   float64 `json:"duration_ms"`
	BlastScore   *int    `json:"blast_score"`
	Depth        int     `json:"depth"`
	// ChainHops and ChainBlast are the root's record of its chain.
	ChainHops  int `json:"chain_hops,omitempty"`
	ChainBlast int `json:"chain_blast,omitempty"`
	// Requested marks the receipt the tree was asked for.
	Requested bool         `json:"requested,omitempty"`
	Hops      []*ChainNode `json:"hops"`
}

// ReceiptTree returns the chain the receipt id belongs to, from its root:
// every receipt of the same tenant and correlation id linked to it by
// parent_decision_id (docs/EVIDENCE.md, "Chains of dispatches"). A
// receipt outside any chain is a tree of one node.
//
// # Notes
//
//   - The tree shows what the ledger holds; hall audit verify is what
//     checks that the links and the root's totals are consistent. A hop
//     whose parent's receipt is missing is the root of what is found.
func ReceiptTree(ctx context.Context, rr ReceiptReader, id string) (*ChainNode, error) {
	r, err := rr.Receipt(ctx, id)
	if err != nil {
		return nil, err
	}
	all := []ledger.Receipt{*r}
	if r.ParentDecisionID != "" || r.BlastScore != nil {
		if all, err = rr.Receipts(ctx, ledger.Filter{CorrelationID: r.CorrelationID, TenantID: r.TenantID}); err != nil {
			return nil, err
		}
	}
	nodes := map[string]*ChainNode{}
	parents := map[string]string{}
	order := make([]*ledger.Receipt, 0, len(all))
	for i := range all {
		order = append(order, &all[i])
	}
	// Dispatch order, oldest first (Receipts answers newest first).
	slices.SortStableFunc(order, func(a, b *ledger.Receipt) int { return a.DispatchedAt.Compare(b.DispatchedAt) })
	for _, x := range order {
		nodes[x.DecisionID] = &ChainNode{
			ReceiptID: x.ReceiptID, DecisionID: x.DecisionID, WorkerID: x.WorkerID, CapabilityID: x.CapabilityID,
			ArtifactHash: x.ArtifactHash, Outcome: x.Outcome, DurationMS: x.DurationMS, BlastScore: x.BlastScore,
			Depth: x.ChainDepth, ChainHops: x.ChainHops, ChainBlast: x.ChainBlast, Requested: x.ReceiptID == id, Hops: []*ChainNode{},
		}
		parents[x.DecisionID] = x.ParentDecisionID
	}
	for _, x := range order {
		if p := nodes[parents[x.DecisionID]]; p != nil {
			p.Hops = append(p.Hops, nodes[x.DecisionID])
		}
	}
	// Up from the requested receipt to the highest ancestor the ledger
	// holds (bounded: a cycle of forged links stops at its first repeat).
	top, seen := r.DecisionID, map[string]bool{}
	for !seen[top] {
		seen[top] = true
		p := parents[top]
		if nodes[p] == nil {
			break
		}
		top = p
	}
	return nodes[top], nil
}

// WriteTree writes n as an indented text tree, one dispatch a line:
// receipt, worker, capability, outcome, duration, blast score and module
// digest; the root's line ends with its chain totals.
func (n *ChainNode) WriteTree(b *strings.Builder) {
	n.write(b, "", "")
}

func (n *ChainNode) write(b *strings.Builder, first, rest string) {
	blast := "-"
	if n.BlastScore != nil {
		blast = fmt.Sprint(*n.BlastScore)
	}
	mark := ""
	if n.Requested {
		mark = "  <"
	}
	fmt.Fprintf(b, "%s%s  %s  %s  %s  %.2fms  blast %s  %s", first, n.ReceiptID, n.WorkerID, n.CapabilityID, n.Outcome, n.DurationMS, blast, n.ArtifactHash)
	if n.Depth == 0 && (n.ChainHops > 0 || n.ChainBlast > 0) {
		fmt.Fprintf(b, "  (chain: %d hops, blast %d)", n.ChainHops, n.ChainBlast)
	}
	b.WriteString(mark + "\n")
	for i, h := range n.Hops {
		if i == len(n.Hops)-1 {
			h.write(b, rest+"└─ ", rest+"   ")
		} else {
			h.write(b, rest+"├─ ", rest+"│  ")
		}
	}
}
