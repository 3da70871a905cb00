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

// TestEventsReadFromTheirSignedEntries: an events row is an index into
// the signed entry that holds the event, not a copy; rows written before
// (with their own copy) read back as written, in recording order.
func TestEventsReadFromTheirSignedEntries(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	d := newDecision("org.a", "allowed", 0)
	if err := s.RecordDecision(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDecisionEvents(ctx, d.DecisionID, d.CorrelationID, []json.RawMessage{
		json.RawMessage(`{"event_id":"w.1","z":1,"a":2}`), json.RawMessage(`{"event_id":"w.2"}`)}); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, s)
	var copies int
	if err := db.QueryRow(`SELECT count(*) FROM events WHERE event != ''`).Scan(&copies); err != nil || copies != 0 {
		t.Fatalf("%d events rows hold a copy of their event (%v), want 0", copies, err)
	}
	// A row as written before this change, after the others.
	if _, err := db.Exec(`INSERT INTO events (correlation_id, decision_id, source, event_id, recorded_at, event, entry_id) VALUES (?, NULL, 'worker', 'w.old', '2025-01-01T00:00:00Z', '{"event_id":"w.old", "kept":"as written"}', NULL)`, d.CorrelationID); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, d.CorrelationID)
	if err != nil {
		t.Fatal(err)
	}
	envelope, _ := canonical(json.RawMessage(strings.SplitN(strings.SplitN(string(d.Decision), `"telemetry_envelopes":[`, 2)[1], "]}", 2)[0]))
	want := []string{string(envelope), `{"a":2,"event_id":"w.1","z":1}`, `{"event_id":"w.2"}`, `{"event_id":"w.old", "kept":"as written"}`}
	if len(evs) != len(want) {
		t.Fatalf("events %s, want %s", evs, want)
	}
	for i := range want {
		if string(evs[i]) != want[i] {
			t.Errorf("event %d = %s, want %s", i, evs[i], want[i])
		}
	}
}
