package host

import (
	"context"
	"errors"
	"testing"

	"github.com/wcphall/hall/host/wcp"
)

// granted reports, without waiting, whether w holds its slot.
func granted(w *slotWaiter) bool {
	select {
	case <-w.ready:
		return true
	default:
		return false
	}
}

// slotsHeld enqueues n waiters of tenant that must be granted at once and
// returns their release functions.
func slotsHeld(t *testing.T, a *admission, tenant string, n int) []func() {
	t.Helper()
	var rel []func()
	for i := range n {
		w, err := a.enqueue(tenant)
		if err != nil || !granted(w) {
			t.Fatalf("%s's dispatch %d: granted %v, error %v; want a slot at once", tenant, i, err == nil && granted(w), err)
		}
		r, err := a.wait(context.Background(), w)
		if err != nil {
			t.Fatal(err)
		}
		rel = append(rel, r)
	}
	return rel
}

// Issue 10: one tenant flooding the dispatch slots; the next free slots go
// to the waiting tenants with the fewest dispatches in flight, the oldest
// waiter first among equals, and the flooding tenant is held to its share
// while others want slots.
func TestAdmissionOrder(t *testing.T) {
	a := newAdmission(4, 0.5) // share: 2 slots

	// Alone, a tenant takes slots beyond its share: the share is not a
	// quota. beta takes the last one.
	evil := slotsHeld(t, a, "org.evil", 3)
	slotsHeld(t, a, "org.beta", 1)

	// Queued in this order: evil, acme, beta, acme.
	e1, _ := a.enqueue("org.evil")
	a1, _ := a.enqueue("org.acme")
	b1, _ := a.enqueue("org.beta")
	a2, _ := a.enqueue("org.acme")
	for _, w := range []*slotWaiter{e1, a1, b1, a2} {
		if granted(w) {
			t.Fatalf("%s granted with every slot held", w.tenant)
		}
	}
	if st := a.stats(); st.Running != 4 || st.Waiting != 4 || st.Tenants != 3 {
		t.Fatalf("stats %+v", st)
	}

	// evil 2 (at its share), beta 1, acme 0: acme, though evil came first.
	evil[0]()
	if !granted(a1) || granted(e1) || granted(b1) || granted(a2) {
		t.Fatalf("first free slot: acme %v evil %v beta %v; want acme's first", granted(a1), granted(e1), granted(b1))
	}
	// evil 1, beta 1, acme 1: all equal, the oldest waiter (evil's).
	evil[1]()
	if !granted(e1) || granted(b1) || granted(a2) {
		t.Fatalf("second free slot: evil %v beta %v acme %v; want evil", granted(e1), granted(b1), granted(a2))
	}
	// evil 1, beta 1, acme 1 again: beta's waiter is older than acme's.
	evil[2]()
	if !granted(b1) || granted(a2) {
		t.Fatalf("third free slot: beta %v acme %v; want beta", granted(b1), granted(a2))
	}
	if st := a.stats(); st.Running != 4 || st.Waiting != 1 {
		t.Fatalf("stats %+v", st)
	}
	// A slot freed by acme goes back to acme's waiter.
	r, err := a.wait(context.Background(), a1)
	if err != nil {
		t.Fatal(err)
	}
	r()
	r() // a release runs once
	if !granted(a2) {
		t.Fatal("acme's second waiter not granted the free slot")
	}
	if st := a.stats(); st.Running != 4 || st.Waiting != 0 {
		t.Fatalf("stats after a double release %+v", st)
	}
}

// While another tenant holds a slot, a tenant at its share is not granted
// a free one, even with nobody else waiting; once the other tenant is gone
// it may take every slot again.
func TestAdmissionShareWhileOthersHold(t *testing.T) {
	a := newAdmission(4, 0.5)
	acme := slotsHeld(t, a, "org.acme", 1)
	slotsHeld(t, a, "org.evil", 2)
	e3, err := a.enqueue("org.evil")
	if err != nil {
		t.Fatal(err)
	}
	if granted(e3) {
		t.Fatal("a tenant at its share took a third slot while another tenant held one")
	}
	// acme keeps a free slot to take without waiting.
	acme = append(acme, slotsHeld(t, a, "org.acme", 1)...)
	for _, r := range acme {
		r()
	}
	if !granted(e3) {
		t.Fatal("alone again, the tenant was not granted a free slot beyond its share")
	}
}

// A tenant with as many dispatches waiting as there are slots is refused
// at once; a waiter that gives up leaves the line and is refused with
// HALL_SATURATED.
func TestAdmissionRefusals(t *testing.T) {
	a := newAdmission(2, 0.5)
	slotsHeld(t, a, "org.evil", 2)
	for i := range 2 {
		if w, err := a.enqueue("org.evil"); err != nil || granted(w) {
			t.Fatalf("evil's waiter %d: %v; want a place in line", i, err)
		}
	}
	_, err := a.enqueue("org.evil")
	var se *SaturatedError
	if !errors.As(err, &se) || se.Code() != wcp.CodeHallSaturated || se.Waited != 0 {
		t.Fatalf("a fifth dispatch of a tenant holding both slots with two waiting: %v; want HALL_SATURATED at once", err)
	}
	w, err := a.enqueue("org.acme")
	if err != nil || granted(w) {
		t.Fatalf("acme: %v granted %v; want a place in line", err, err == nil && granted(w))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.wait(ctx, w); !errors.As(err, &se) || se.Waited == 0 || se.Tenant != "org.acme" {
		t.Fatalf("a waiter that gave up: %v; want HALL_SATURATED after waiting", err)
	}
	if st := a.stats(); st.Waiting != 2 || st.Tenants != 1 {
		t.Fatalf("the waiter did not leave the line: %+v", st)
	}
}

func TestNewAdmissionDefaults(t *testing.T) {
	for _, tc := range []struct {
		name         string
		slots        int
		share        float64
		wantSlots    int
		wantTenantSl int
	}{
		{"defaults", 0, 0, DefaultMaxConcurrent(), DefaultMaxConcurrent() / 2},
		{"one slot", 1, 0.5, 1, 1},
		{"no cap", 8, 1, 8, 8},
		{"quarter", 8, 0.25, 8, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newAdmission(tc.slots, tc.share).stats()
			if st.Slots != tc.wantSlots || st.TenantSlots != tc.wantTenantSl {
				t.Fatalf("%+v; want %d slots, %d per tenant", st, tc.wantSlots, tc.wantTenantSl)
			}
		})
	}
}
