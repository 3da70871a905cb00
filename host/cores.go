package host

import "github.com/wcphall/hall/internal/cpushare"

// Fair cores (issue 25). The dispatch slots (admission.go) bound how many
// dispatches are in flight and share them between tenants, but slots are
// not cores: eight spinning dispatches of one tenant on two cores left
// another tenant's call a ninth of a core, its p99 16× its p99 alone
// (345× at --max-concurrent 4, where it was also refused). So guest code
// runs only while its dispatch holds one of the Hall's cores
// (internal/cpushare, GOMAXPROCS of them):
//
//   - A core goes to the waiting tenant that has used the least CPU for
//     its weight (hall.json tenants.<id>.weight, default 1; part of the
//     sealed snapshot like every setting), within a tenant to its oldest
//     waiter.
//   - A dispatch that waits on I/O — an HTTP exchange (hall_http, Extism's
//     http_request), a sleep — gives its core back meanwhile: waiting is
//     not using a core.
//   - Guest code is pre-empted cooperatively: every module is compiled
//     with yield points (internal/wasmmod, GuardStackYielding), at which a
//     dispatch gives its core to a tenant that has used less, or, after
//     a 10 ms slice, to another dispatch of its own tenant.
//   - The time a dispatch waited for its slot and for cores is its queue
//     wait: in its receipt (queue_wait_ms) and in the metrics
//     (hall_dispatch_queue_wait_seconds).
//
// Measured on 2 cores (BenchmarkFairCPU, docs/RATIONALE or `make bench`):
// see docs/PERFORMANCE.md.

// CoreStats is a moment's view of the Hall's cores.
type CoreStats struct {
	// Cores is how many dispatches may run guest code at once; Running
	// and Waiting count dispatches holding and waiting for a core; Tenants
	// the tenants with either.
	Cores   int `json:"cores"`
	Running int `json:"running"`
	Waiting int `json:"waiting"`
	Tenants int `json:"tenants"`
}

// Cores returns the state of the Hall's cores.
func (h *Hall) Cores() CoreStats {
	st := h.cores.Stats()
	return CoreStats{Cores: st.Cores, Running: st.Running, Waiting: st.Waiting, Tenants: st.Tenants}
}

// coreClaim is a dispatch's claim on the cores, for tenant under s.
func (h *Hall) coreClaim(s *snapshot, tenant string) *cpushare.Claim {
	return h.cores.Claim(tenant, s.tenantWeight(tenant))
}

// tenantWeight is tenant's weight in the snapshot s (1 when unset).
func (s *snapshot) tenantWeight(tenant string) int {
	return max(s.cfg.Tenants[tenant].Weight, 1)
}
