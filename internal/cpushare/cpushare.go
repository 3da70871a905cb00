// Package cpushare shares a host's cores between tenants: a dispatch
// claims a core before its guest code runs, gives it back while it waits
// (I/O, sleeps) and offers it at its guest's yield points, and a freed or
// offered core goes to the tenant that has used the least CPU for its
// weight.
//
// Why: dispatch slots (bounded concurrency) are shared fairly, but cores
// are not: 16 spinning dispatches of one tenant on 2 cores left another
// tenant's call 1/17 of a core (issue 25). Go's scheduler time-slices
// every runnable goroutine equally; only dispatches that wait for a core
// here are kept off the CPU.
//
// The rules:
//
//   - There are Cores claims at once (GOMAXPROCS by default).
//   - Each tenant has a virtual time: the CPU time its dispatches used
//     divided by its weight. A free core goes to the waiting tenant with
//     the smallest virtual time (ties: the oldest waiter), and within a
//     tenant to its oldest waiter (fair queueing by weight; start-time fair
//     queueing in effect).
//   - A tenant that becomes active (its first claim since it had none)
//     starts at the smallest virtual time of the active tenants: idle time
//     is not credit, and a newcomer is served before the tenants that have
//     been using the cores meanwhile.
//   - While more than one tenant is active (has a claim open: a dispatch
//     in flight, whether or not it wants a core now), a tenant holds at
//     most its share of the cores, by weight, at least one: the others'
//     dispatches find a core for their work outside guest code too.
//   - A dispatch holding a core gives it up at a yield point when its
//     tenant holds more than its share, when a waiting tenant's virtual
//     time is below its own tenant's, or when its own tenant has a waiter
//     and it has held the core for a Slice.
//
// # Notes
//
//   - Pre-emption is cooperative: a guest is paused only at its yield
//     points (every few hundred microseconds of a tight loop, see
//     sandbox.YieldEvery) and while it waits in a host call.
//   - A Scheduler is safe for concurrent use; a Claim belongs to one
//     dispatch's goroutine.
package cpushare

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Slice is how long a dispatch keeps a core while another dispatch of the
// same tenant waits for one.
const Slice = 10 * time.Millisecond

// Scheduler hands out cores. The zero value is not usable; see New.
type Scheduler struct {
	cores int
	// waiting counts claims waiting for a core, contended is 1 while more
	// than one tenant is active; Yield reads them without the lock (its
	// fast path).
	waiting, contended atomic.Int64

	// now is the clock (time.Now; tests give a fake one).
	now func() time.Time

	mu      sync.Mutex
	running int
	seq     uint64
	tenants map[string]*tenant
}

type tenant struct {
	name    string
	weight  int
	vtime   float64 // CPU nanoseconds used / weight
	running int
	waiters []*Claim // oldest first
	// active counts the tenant's open claims (between Claim and Done):
	// its dispatches in flight, whether or not they want a core now.
	active int
}

// New returns a Scheduler of cores cores (≤ 0: GOMAXPROCS).
func New(cores int) *Scheduler {
	if cores <= 0 {
		cores = runtime.GOMAXPROCS(0)
	}
	return &Scheduler{cores: cores, tenants: map[string]*tenant{}, now: time.Now}
}

// Cores is the number of claims that may hold a core at once.
func (s *Scheduler) Cores() int { return s.cores }

// Stats is a moment's view of the cores.
type Stats struct {
	Cores   int `json:"cores"`
	Running int `json:"running"`
	Waiting int `json:"waiting"`
	Tenants int `json:"tenants"`
}

// Stats returns the state of the cores now.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Cores: s.cores, Running: s.running, Waiting: int(s.waiting.Load()), Tenants: len(s.tenants)}
}

// Claim is one dispatch's use of a core for tenant with weight (< 1: 1).
// It implements sandbox.CPU. From Claim to Done the tenant counts as
// active: while it is, every other tenant is held to its share of the
// cores, so that the dispatch's own work outside guest code (deciding,
// recording evidence, making an instance) finds a core too.
func (s *Scheduler) Claim(tenant string, weight int) *Claim {
	c := &Claim{s: s, tenant: tenant, weight: max(weight, 1)}
	s.mu.Lock()
	c.t = s.tenantLocked(tenant, c.weight)
	c.t.active++
	s.mu.Unlock()
	return c
}

// Claim is a dispatch's claim on a core; see Scheduler.Claim.
type Claim struct {
	s      *Scheduler
	tenant string
	weight int

	// Set under s.mu.
	t       *tenant
	seq     uint64
	ready   chan struct{}
	granted time.Time // when the core was granted
	charged time.Time // up to when its use is charged
	done    bool

	waited time.Duration // read by the claim's goroutine only
}

// Waited is how long the claim has waited for a core, in all.
func (c *Claim) Waited() time.Duration { return c.waited }

// Done ends the claim: its tenant no longer counts it as active. The
// claim must not hold a core (Release first).
func (c *Claim) Done() {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.done {
		return
	}
	c.done = true
	c.t.active--
	s.forgetLocked(c.t)
	s.grantLocked()
}

// Acquire waits for a core until ctx is done.
func (c *Claim) Acquire(ctx context.Context) error {
	s := c.s
	s.mu.Lock()
	c.enqueueLocked()
	s.grantLocked()
	s.mu.Unlock()
	return c.wait(ctx)
}

// wait waits for c's core, counting the time it waited.
func (c *Claim) wait(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	default:
	}
	start := time.Now()
	defer func() { c.waited += time.Since(start) }()
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
	}
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-c.ready:
		// Granted while giving up: hand it on.
		c.releaseLocked()
	default:
		t := c.t
		for i, w := range t.waiters {
			if w == c {
				t.waiters = append(t.waiters[:i], t.waiters[i+1:]...)
				break
			}
		}
		s.waiting.Add(-1)
		s.forgetLocked(t)
		s.grantLocked()
	}
	return context.Cause(ctx)
}

// Release gives the core back.
func (c *Claim) Release() {
	s := c.s
	s.mu.Lock()
	c.releaseLocked()
	s.mu.Unlock()
}

// Yield gives the core up if the rules say another claim deserves it more
// (or that its tenant holds more than its share while another tenant is
// active), and waits for one again; it returns at once otherwise. An error
// (ctx done) means the claim no longer holds a core.
func (c *Claim) Yield(ctx context.Context) error {
	s := c.s
	if s.waiting.Load() == 0 && s.contended.Load() == 0 {
		return nil
	}
	s.mu.Lock()
	now := s.now()
	c.chargeLocked(now)
	if !s.preemptsLocked(c, now) {
		s.mu.Unlock()
		return nil
	}
	// In line before the core is freed: its tenant stays active and keeps
	// its virtual time.
	c.enqueueLocked()
	c.releaseLocked()
	s.mu.Unlock()
	return c.wait(ctx)
}

// enqueueLocked puts c at the back of its tenant's line.
func (c *Claim) enqueueLocked() {
	s := c.s
	t := s.tenantLocked(c.tenant, c.weight)
	c.t = t
	s.seq++
	c.seq = s.seq
	c.ready = make(chan struct{})
	t.waiters = append(t.waiters, c)
	s.waiting.Add(1)
}

// tenantLocked returns the tenant's state, starting it if it has none.
func (s *Scheduler) tenantLocked(name string, weight int) *tenant {
	t := s.tenants[name]
	if t == nil {
		t = &tenant{name: name}
		// Idle time is not credit: start at the least-served active
		// tenant's virtual time.
		first := true
		for _, o := range s.tenants {
			if first || o.vtime < t.vtime {
				t.vtime, first = o.vtime, false
			}
		}
		s.tenants[name] = t
		s.updateContendedLocked()
	}
	t.weight = weight
	return t
}

// updateContendedLocked keeps the Yield fast path's flag: whether more
// than one tenant is active.
func (s *Scheduler) updateContendedLocked() {
	if len(s.tenants) > 1 {
		s.contended.Store(1)
	} else {
		s.contended.Store(0)
	}
}

// shareLocked is how many cores t may hold while other tenants are
// active: its weight's part of the cores, at least one.
func (s *Scheduler) shareLocked(t *tenant) int {
	if len(s.tenants) < 2 {
		return s.cores
	}
	total := 0
	for _, o := range s.tenants {
		total += o.weight
	}
	return max(1, s.cores*t.weight/max(total, 1))
}

// releaseLocked charges c's use, frees its core and grants it on.
func (c *Claim) releaseLocked() {
	s := c.s
	c.chargeLocked(s.now())
	t := c.t
	t.running--
	s.running--
	s.forgetLocked(t)
	s.grantLocked()
}

// chargeLocked adds the CPU c used since its last charge to its tenant's
// virtual time.
func (c *Claim) chargeLocked(now time.Time) {
	if d := now.Sub(c.charged); d > 0 {
		c.t.vtime += float64(d) / float64(c.t.weight)
		c.charged = now
	}
}

// preemptsLocked says whether c should give its core up now.
func (s *Scheduler) preemptsLocked(c *Claim, now time.Time) bool {
	if c.t.running > s.shareLocked(c.t) {
		return true // over its share while another tenant is active
	}
	next := s.nextLocked()
	if next == nil {
		return false
	}
	if next != c.t && next.vtime < c.t.vtime {
		return true
	}
	return len(c.t.waiters) > 0 && now.Sub(c.granted) >= Slice
}

// nextLocked is the tenant whose waiter gets the next free core: the
// smallest virtual time, ties to the oldest waiter; a tenant at its share
// is passed over.
func (s *Scheduler) nextLocked() *tenant {
	var next *tenant
	for _, t := range s.tenants {
		if len(t.waiters) == 0 || t.running >= s.shareLocked(t) {
			continue
		}
		if next == nil || t.vtime < next.vtime || (t.vtime == next.vtime && t.waiters[0].seq < next.waiters[0].seq) {
			next = t
		}
	}
	return next
}

// grantLocked hands free cores to waiters, by the rules.
func (s *Scheduler) grantLocked() {
	for s.running < s.cores {
		t := s.nextLocked()
		if t == nil {
			return
		}
		c := t.waiters[0]
		t.waiters = t.waiters[1:]
		s.waiting.Add(-1)
		t.running++
		s.running++
		now := s.now()
		c.granted, c.charged = now, now
		close(c.ready)
	}
}

// forgetLocked drops a tenant that neither holds, waits for a core nor has
// a claim open. When it comes back it starts at the least-served active
// tenant's virtual time, as any newcomer does.
func (s *Scheduler) forgetLocked(t *tenant) {
	if t.running == 0 && len(t.waiters) == 0 && t.active == 0 {
		delete(s.tenants, t.name)
		s.updateContendedLocked()
	}
}
