package sandbox

import (
	"context"
	"testing"
)

// A sub-dispatch never waits for the memory budget (its ancestors hold
// their charges while it runs): it is admitted at once, ahead of waiting
// calls, when its charge fits, and refused at once when it does not.
func TestBudgetAcquireNowNeverWaits(t *testing.T) {
	b := newMemoryBudget(100)
	ctx := context.Background()
	if err := b.acquire(ctx, 60); err != nil {
		t.Fatal(err)
	}
	// A call waiting for 50 bytes (it cannot fit before the 60 return).
	b.mu.Lock()
	b.waiters = append(b.waiters, &budgetWaiter{n: 50, ready: make(chan struct{})})
	b.mu.Unlock()
	if err := b.acquireNow(ctx, 30); err != nil {
		t.Fatalf("a hop whose charge fits was refused behind a waiting call: %v", err)
	}
	if err := b.acquireNow(ctx, 20); err == nil {
		t.Fatal("a hop whose charge does not fit was admitted")
	}
	if got := b.inUse(); got != 90 {
		t.Fatalf("in use %d, want 90", got)
	}
}
