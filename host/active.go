package host

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wcphall/hall/host/wcp"
)

// ActiveDispatch is a dispatch holding a slot: admitted, its worker
// running or about to (GET /dispatches/active).
type ActiveDispatch struct {
	DecisionID    string
	CorrelationID string
	TenantID      string
	CapabilityID  string
	WorkerID      string
	StartedAt     time.Time
}

// activeSet is the Hall's dispatches in flight. The zero value is ready.
type activeSet struct {
	mu   sync.Mutex
	seq  uint64
	runs map[uint64]ActiveDispatch
}

// add lists a dispatch from the moment it holds a slot; the returned
// function removes it.
func (a *activeSet) add(dec *wcp.RouteDecision, workerID string) func() {
	a.mu.Lock()
	if a.runs == nil {
		a.runs = map[uint64]ActiveDispatch{}
	}
	a.seq++
	k := a.seq
	a.runs[k] = ActiveDispatch{DecisionID: dec.DecisionID.String(), CorrelationID: dec.CorrelationID, TenantID: dec.TenantID,
		CapabilityID: dec.CapabilityID, WorkerID: workerID, StartedAt: time.Now().UTC()}
	a.mu.Unlock()
	return func() {
		a.mu.Lock()
		delete(a.runs, k)
		a.mu.Unlock()
	}
}

// ActiveDispatches lists the dispatches holding a slot now, of tenant (of
// every tenant when all is set), oldest first.
func (h *Hall) ActiveDispatches(tenant string, all bool) []ActiveDispatch {
	h.active.mu.Lock()
	out := make([]ActiveDispatch, 0, len(h.active.runs))
	for _, d := range h.active.runs {
		if all || d.TenantID == tenant {
			out = append(out, d)
		}
	}
	h.active.mu.Unlock()
	slices.SortFunc(out, func(a, b ActiveDispatch) int {
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.DecisionID, b.DecisionID)
	})
	return out
}
