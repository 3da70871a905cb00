package router

import (
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/pyval"
)

// computeBlastScore is PyHall's blast heuristic (0–100): a base of 10, plus
// the data label, prod/edge, P0, and request flags for egress and writes.
// Nothing else (not blast_radius, not tenant_risk) is read.
func computeBlastScore(in *wcp.RouteInput) int {
	score := 10
	switch in.DataLabel {
	case "INTERNAL":
		score += 20
	case "RESTRICTED":
		score += 40
	}
	if prodOrEdge(in.Env) {
		score += 15
	}
	if in.QoSClass == "P0" {
		score += 10
	}
	if len(in.Request) > 2 { // more than "{}"
		if v, err := pyval.Decode(in.Request); err == nil {
			if req, ok := v.(map[string]any); ok {
				if pyval.Truthy(req["egress"]) || pyval.Truthy(req["external_call"]) {
					score += 15
				}
				if pyval.Truthy(req["writes"]) || pyval.Truthy(req["mutates_state"]) {
					score += 15
				}
			}
		}
	}
	return min(score, 100)
}

// BlastScore is PyHall's blast heuristic for in (0–100), raised to
// in.blast_score when that is higher, as the router gates it: the score a
// dispatch of in adds to its chain's sum (host chain.go).
func BlastScore(in *wcp.RouteInput) int {
	s := computeBlastScore(in)
	if in.BlastScore != nil && in.BlastScore.IsInt64() && in.BlastScore.Int64() > int64(s) && in.BlastScore.Int64() <= 100 {
		s = int(in.BlastScore.Int64())
	}
	return s
}
