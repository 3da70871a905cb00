package ledger

import (
	"context"
	"encoding/json"
	"errors"
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

// TestEventsReadFromTheirSignedEntries: events are read from the signed
// entries that hold them, found by correlation id; no events row is
// written any more, and rows from before decision chains (no entry holds
// them) read back first, as they were written.
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
	if err := s.RecordEvents(ctx, "another", []json.RawMessage{json.RawMessage(`{"event_id":"w.3"}`)}); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, s)
	var rows int
	if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&rows); err != nil || rows != 0 {
		t.Fatalf("%d events rows written (%v), want 0", rows, err)
	}
	// Rows from before decision chains (no entry holds their event) are
	// read only in an upgraded ledger: TestReadPathsReturnSealedLegacyRows.
	// A row as written between decision chains and this change: a copy of
	// an event its entry holds too. It is not returned twice.
	if _, err := db.Exec(`INSERT INTO events (correlation_id, decision_id, source, event_id, recorded_at, event, entry_id) VALUES (?, ?, 'decision', 'evt.os.task.routed', '2025-01-01T00:00:00Z', '{"event_id":"evt.os.task.routed"}', ?)`, d.CorrelationID, d.DecisionID, d.DecisionID); err != nil {
		t.Fatal(err)
	}
	evs, err := s.Events(ctx, d.CorrelationID)
	if err != nil {
		t.Fatal(err)
	}
	envelope, _ := canonical(json.RawMessage(strings.SplitN(strings.SplitN(string(d.Decision), `"telemetry_envelopes":[`, 2)[1], "]}", 2)[0]))
	want := []string{string(envelope), `{"a":2,"event_id":"w.1","z":1}`, `{"event_id":"w.2"}`}
	if len(evs) != len(want) {
		t.Fatalf("events %s, want %s", evs, want)
	}
	for i := range want {
		if string(evs[i]) != want[i] {
			t.Errorf("event %d = %s, want %s", i, evs[i], want[i])
		}
	}
	if evs, err := s.Events(ctx, "another"); err != nil || len(evs) != 1 || string(evs[0]) != `{"event_id":"w.3"}` {
		t.Errorf("events of another: %s, %v", evs, err)
	}
	// A worker event that is not an object is refused, naming it.
	if err := s.RecordEvents(ctx, "another", []json.RawMessage{json.RawMessage(`[1]`)}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "events[0]") {
		t.Errorf("a non-object event: %v", err)
	}
}
