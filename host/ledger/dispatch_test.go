package ledger

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestRecordDispatchInOneCommit: a dispatch's decision, its worker's
// events and its receipt commit together, chained and verifiable, and a
// dispatch that cannot be recorded whole records nothing.
func TestRecordDispatchInOneCommit(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	d := newDecision("org.a", "allowed", 0)
	r := newReceipt("org.a", 0)
	r.DecisionID, r.CorrelationID = d.DecisionID, d.CorrelationID
	before := s.commits.Load()
	events := []json.RawMessage{json.RawMessage(`{"event_id":"w.progress","pct":50}`)}
	if err := s.RecordDispatch(ctx, d, events, r); err != nil {
		t.Fatal(err)
	}
	if n := s.commits.Load() - before; n != 1 {
		t.Errorf("%d commits, want 1", n)
	}
	if r.ReceiptID == "" || r.Sequence != 1 {
		t.Errorf("receipt not filled in: id %q sequence %d", r.ReceiptID, r.Sequence)
	}
	if _, err := s.Decision(ctx, d.DecisionID); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, d.CorrelationID)
	if err != nil || len(evs) != 2 { // the decision's envelope and the worker's event
		t.Fatalf("events %s, %v: want the decision's envelope and the worker's event", evs, err)
	}
	rep := verifyOK(t, s, nil)
	if rep.Receipts != 1 || rep.Decisions != 2 {
		t.Fatalf("verified %d receipts and %d decision entries, want 1 and 2", rep.Receipts, rep.Decisions)
	}

	// The same decision id again: the decision fails, so the receipt is
	// not recorded either.
	r2 := newReceipt("org.a", 1)
	r2.DecisionID = d.DecisionID
	if err := s.RecordDispatch(ctx, d, nil, r2); err == nil || !strings.Contains(err.Error(), "record dispatch") {
		t.Fatalf("duplicate decision id recorded: %v", err)
	}
	if rs, err := s.Receipts(ctx, Filter{}); err != nil || len(rs) != 1 {
		t.Fatalf("%d receipts (%v) after a dispatch that could not be recorded, want 1", len(rs), err)
	}
	verifyOK(t, s, nil)
}
