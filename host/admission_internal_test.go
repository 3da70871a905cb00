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

// Issue 10: the next free slots go to the waiting tenants with the
// fewest dispatches in flight, the oldest waiter first among equals, and a
// tenant is held to its share while others want slots.
func TestAdmissionOrder(t *testing.T) {
	a := newAdmission(4, 0.5) // share: 2 slots

	// Every slot held, nobody over its share: nobody borrows.
	evil := slotsHeld(t, a, "org.evil", 2)
	slotsHeld(t, a, "org.beta", 2)

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

	// evil 1, beta 2 (at its share), acme 0: acme, though evil came first.
	evil[0]()
	if !granted(a1) || granted(e1) || granted(b1) || granted(a2) {
		t.Fatalf("first free slot: acme %v evil %v beta %v; want acme's first", granted(a1), granted(e1), granted(b1))
	}
	// evil 0, acme 1: evil's.
	evil[1]()
	if !granted(e1) || granted(b1) || granted(a2) {
		t.Fatalf("second free slot: evil %v beta %v acme %v; want evil", granted(e1), granted(b1), granted(a2))
	}
	if st := a.stats(); st.Running != 4 || st.Waiting != 2 {
		t.Fatalf("stats %+v", st)
	}
	// A slot freed by acme goes back to acme's waiter (beta is at its
	// share).
	r, err := a.wait(context.Background(), a1)
	if err != nil {
		t.Fatal(err)
	}
	r()
	r() // a release runs once
	if !granted(a2) || granted(b1) {
		t.Fatal("acme's second waiter not granted the free slot")
	}
	if st := a.stats(); st.Running != 4 || st.Waiting != 1 {
		t.Fatalf("stats after a double release %+v", st)
	}
}

// Issue 25: a tenant whose dispatches hold every slot (alone, it may) does
// not keep another tenant waiting for them to end: while it is over its
// share, a tenant below its own is admitted at once, up to its share.
// Before, the other tenant waited up to the first tenant's time limit and
// was refused.
func TestAdmissionBorrowsBelowShare(t *testing.T) {
	a := newAdmission(4, 0.5) // share: 2 slots
	evil := slotsHeld(t, a, "org.evil", 4)
	slotsHeld(t, a, "org.acme", 2) // borrowed
	a3, err := a.enqueue("org.acme")
	if err != nil || granted(a3) {
		t.Fatalf("acme's third: %v granted %v; want a place in line (acme is at its share)", err, err == nil && granted(a3))
	}
	e5, _ := a.enqueue("org.evil")
	if granted(e5) {
		t.Fatal("evil, over its share, got a fifth slot")
	}
	if st := a.stats(); st.Running != 6 || st.Waiting != 2 {
		t.Fatalf("stats %+v", st)
	}
	// evil's excess ends: the freed slots are not lent again until the
	// running dispatches are back within the slots.
	evil[0]()
	evil[1]()
	if granted(e5) || granted(a3) {
		t.Fatalf("with 4 running of 4 slots: evil %v acme %v granted", granted(e5), granted(a3))
	}
	evil[2]()
	if !granted(e5) || granted(a3) {
		t.Fatalf("a free slot: evil (1 held) %v, acme (2 held, its share) %v; want evil", granted(e5), granted(a3))
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
	slotsHeld(t, a, "org.evil", 1)
	slotsHeld(t, a, "org.beta", 1)
	for i := range 2 {
		if w, err := a.enqueue("org.evil"); err != nil || granted(w) {
			t.Fatalf("evil's waiter %d: %v; want a place in line", i, err)
		}
	}
	_, err := a.enqueue("org.evil")
	var se *SaturatedError
	if !errors.As(err, &se) || se.Code() != wcp.CodeHallSaturated || se.Waited != 0 {
		t.Fatalf("a fourth dispatch of a tenant with two waiting for two slots: %v; want HALL_SATURATED at once", err)
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
	if st := a.stats(); st.Waiting != 2 || st.Tenants != 2 {
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
