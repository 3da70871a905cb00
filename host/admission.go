package host

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/wcphall/hall/host/wcp"
)

// Fair admission of dispatches (issue 10). Every dispatch that is going to
// run guest code takes one of the Hall's dispatch slots first, in Run: the
// one path that POST /wcp/run, MCP's tools/call and an embedder's Run all
// take, so no entry point can bypass it.
//
// Why per tenant: the slots were one Hall-wide semaphore, first come first
// served. A tenant flooding the Hall with dispatches took every slot and the
// others were refused (503) or, below the bound, slowed by its CPU load:
// in the soak test (cmd/hall/soak_test.go) eight hostile goroutines of one
// tenant raised the benign tenant's p99 from 154 ms to 1,441 ms.
//
// The rules:
//
//   - A free slot goes to the waiting tenant with the fewest dispatches
//     holding slots; among tenants holding as many, to the one whose
//     oldest waiter came first (round-robin in effect).
//   - While another tenant holds or waits for a slot, one tenant holds at
//     most its share (Options.TenantShare of the slots, at least one).
//     Alone, a tenant may take every slot: the share is not a quota.
//   - A dispatch waits for a slot within its worker's time limit (as the
//     memory budget does), then is refused with HALL_SATURATED; nothing
//     ran and no decision was recorded. A tenant that already has as many
//     dispatches waiting as there are slots is refused at once: its queue
//     cannot grow without bound. (Refusing at once as soon as a tenant's
//     running and waiting dispatches filled the slots was measured worse:
//     a flooding client that ignores Retry-After turns each refusal into
//     a new request at once, and with 4 slots the soak's hostile tenant
//     sent ~500 refused requests a second, CPU the benign tenant lacked.)
//
// Running dispatches keep their slots: a tenant over its share keeps
// what it holds until those dispatches end (each bounded by its time
// limit), and the freed slots go to the others first. Meanwhile (issue 25)
// a tenant below its share is not kept waiting for them: while another
// tenant holds more than its share, a tenant below its own is admitted
// even when every slot is taken, borrowing against the over-share
// tenant's excess (so at most twice the slots run at once, and only while
// a tenant is over its share). Before, at --max-concurrent 4, a tenant
// whose four loops held every slot kept another tenant waiting up to
// their 10 s time limit, and refused (503). What the extra dispatches cost
// is bounded elsewhere: the cores are shared by tenant (cores.go), the
// memory by the Hall's memory budget.

// DefaultMaxConcurrent is the number of dispatch slots when
// Options.MaxConcurrent is zero: 16 per CPU. A dispatch is CPU-bound in
// the sandbox, so more in flight only adds latency.
func DefaultMaxConcurrent() int { return 16 * runtime.GOMAXPROCS(0) }

// DefaultTenantShare is the share of the dispatch slots one tenant may hold
// while another tenant holds or waits for one (Options.TenantShare zero).
const DefaultTenantShare = 0.5

// SaturatedError refuses a dispatch that found no dispatch slot it could
// take: its tenant already has as many dispatches waiting as there are
// slots, or no slot was granted within the worker's time limit. Nothing ran; the decision was
// not recorded. Its code is HALL_SATURATED.
type SaturatedError struct {
	Tenant string
	// Slots is the Hall's number of dispatch slots; Waited how long the
	// dispatch waited (zero: refused at once).
	Slots  int
	Waited time.Duration
}

func (e *SaturatedError) Error() string {
	if e.Waited == 0 {
		return fmt.Sprintf("%s: tenant %q already has %d dispatches waiting for the Hall's dispatch slots, as many as there are; retry when some have finished",
			wcp.CodeHallSaturated, e.Tenant, e.Slots)
	}
	return fmt.Sprintf("%s: no dispatch slot of the Hall's %d was free for tenant %q within the worker's time limit (%v); the worker was not run, retry later",
		wcp.CodeHallSaturated, e.Slots, e.Tenant, e.Waited.Round(time.Millisecond))
}

// Code returns HALL_SATURATED.
func (e *SaturatedError) Code() wcp.Code { return wcp.CodeHallSaturated }

// AdmissionStats is a moment's view of the dispatch slots.
type AdmissionStats struct {
	// Slots is the bound on dispatches running at once; TenantSlots the
	// most one tenant holds while another holds or waits for one.
	Slots       int `json:"max_concurrent"`
	TenantSlots int `json:"tenant_max_concurrent"`
	// Running and Waiting count dispatches holding and waiting for a slot;
	// Tenants the tenants with either.
	Running int `json:"running"`
	Waiting int `json:"waiting"`
	Tenants int `json:"tenants"`
}

// admission is the fair semaphore described above. The zero value is not
// usable; see newAdmission.
type admission struct {
	slots, share int

	mu      sync.Mutex
	running int
	seq     uint64
	tenants map[string]*tenantSlots
}

// tenantSlots is one tenant's holding and queue.
type tenantSlots struct {
	held    int
	waiters []*slotWaiter // first come first
}

type slotWaiter struct {
	tenant string
	seq    uint64
	ready  chan struct{}
}

// newAdmission makes slots dispatch slots (≤ 0: DefaultMaxConcurrent) of
// which one tenant holds at most share (a fraction of 1; ≤ 0:
// DefaultTenantShare) while others want one.
func newAdmission(slots int, share float64) *admission {
	if slots <= 0 {
		slots = DefaultMaxConcurrent()
	}
	if share <= 0 || share > 1 {
		share = DefaultTenantShare
	}
	return &admission{slots: slots, share: max(1, int(share*float64(slots))), tenants: map[string]*tenantSlots{}}
}

// acquire takes a slot for tenant, waiting until the rules above grant one
// or ctx is done. The returned release gives it back (once).
func (a *admission) acquire(ctx context.Context, tenant string) (release func(), err error) {
	release, _, err = a.acquireQueued(ctx, tenant)
	return release, err
}

// acquireQueued is acquire, and whether the dispatch queued: it was not
// granted its slot at once (the admission span is made only then).
func (a *admission) acquireQueued(ctx context.Context, tenant string) (release func(), queued bool, err error) {
	w, err := a.enqueue(tenant)
	if err != nil {
		return nil, false, err
	}
	select {
	case <-w.ready:
	default:
		queued = true
	}
	release, err = a.wait(ctx, w)
	return release, queued, err
}

// enqueue puts a waiter for tenant in line and grants what can be granted;
// its ready channel is closed once it holds a slot.
func (a *admission) enqueue(tenant string) (*slotWaiter, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tenants[tenant]
	if t == nil {
		t = &tenantSlots{}
		a.tenants[tenant] = t
	}
	if len(t.waiters) >= a.slots {
		a.forgetLocked(tenant, t)
		return nil, &SaturatedError{Tenant: tenant, Slots: a.slots}
	}
	a.seq++
	w := &slotWaiter{tenant: tenant, seq: a.seq, ready: make(chan struct{})}
	t.waiters = append(t.waiters, w)
	a.grantLocked()
	return w, nil
}

// wait waits for w's slot until ctx is done, when it leaves the line.
func (a *admission) wait(ctx context.Context, w *slotWaiter) (release func(), err error) {
	release = sync.OnceFunc(func() { a.release(w.tenant) })
	select {
	case <-w.ready:
		return release, nil
	default:
	}
	started := time.Now()
	select {
	case <-w.ready:
		return release, nil
	case <-ctx.Done():
	}
	a.mu.Lock()
	select {
	case <-w.ready:
		// Granted while giving up: hand it back.
		a.mu.Unlock()
		release()
	default:
		t := a.tenants[w.tenant]
		for i, x := range t.waiters {
			if x == w {
				t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
				break
			}
		}
		a.forgetLocked(w.tenant, t)
		// This waiter leaving may make another tenant eligible (it no
		// longer counts as another tenant wanting a slot).
		a.grantLocked()
		a.mu.Unlock()
	}
	return nil, &SaturatedError{Tenant: w.tenant, Slots: a.slots, Waited: max(time.Since(started), time.Millisecond)}
}

func (a *admission) release(tenant string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.tenants[tenant]
	t.held--
	a.running--
	a.forgetLocked(tenant, t)
	a.grantLocked()
}

// overShareLocked reports whether some tenant holds more than its share
// while another holds or waits.
func (a *admission) overShareLocked() bool {
	if len(a.tenants) < 2 {
		return false
	}
	for _, t := range a.tenants {
		if t.held > a.share {
			return true
		}
	}
	return false
}

// forgetLocked drops a tenant that neither holds nor waits.
func (a *admission) forgetLocked(name string, t *tenantSlots) {
	if t.held == 0 && len(t.waiters) == 0 {
		delete(a.tenants, name)
	}
}

// grantLocked hands free slots to waiters, by the rules above.
func (a *admission) grantLocked() {
	for {
		full := a.running >= a.slots
		if full && !a.overShareLocked() {
			return
		}
		var next *tenantSlots
		for _, t := range a.tenants {
			// Every tenant in the map holds or waits: another one wants a
			// slot when there is more than one.
			if len(t.waiters) == 0 || (t.held >= a.share && len(a.tenants) > 1) {
				continue
			}
			if full && t.held >= a.share {
				continue // borrowing is for tenants below their share
			}
			if next == nil || t.held < next.held || (t.held == next.held && t.waiters[0].seq < next.waiters[0].seq) {
				next = t
			}
		}
		if next == nil {
			return
		}
		w := next.waiters[0]
		next.waiters = next.waiters[1:]
		next.held++
		a.running++
		close(w.ready)
	}
}

func (a *admission) stats() AdmissionStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := AdmissionStats{Slots: a.slots, TenantSlots: a.share, Running: a.running, Tenants: len(a.tenants)}
	for _, t := range a.tenants {
		st.Waiting += len(t.waiters)
	}
	return st
}
