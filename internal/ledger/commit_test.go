package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// stall is a write whose exec blocks until released, holding the committer
// inside its batch. Writes submitted meanwhile queue up and are taken
// together into the next batch, which makes batch boundaries deterministic.
type stall struct {
	entered, gate chan struct{}
	done          chan error
}

// startStall submits a stall write without waiting for it to be taken.
func startStall(s *SQLite) *stall {
	st := &stall{entered: make(chan struct{}), gate: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		st.done <- s.submit(context.Background(), newWrite("stall", func(*sql.Tx) error {
			close(st.entered)
			<-st.gate
			return nil
		}, nil))
	}()
	return st
}

// stallNow submits a stall write and waits until the committer runs it.
func stallNow(t *testing.T, s *SQLite) *stall {
	t.Helper()
	st := startStall(s)
	st.waitEntered(t)
	return st
}

func (st *stall) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-st.entered:
	case <-time.After(20 * time.Second):
		t.Fatal("the committer never ran the stall write")
	}
}

// release lets the stalled batch commit and waits for it.
func (st *stall) release(t *testing.T) {
	t.Helper()
	close(st.gate)
	if err := <-st.done; err != nil {
		t.Fatalf("stall write: %v", err)
	}
}

// waitQueued waits until n writes wait in the committer's queue.
func waitQueued(t *testing.T, s *SQLite, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(s.queue) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes queued, want %d", len(s.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// async runs f in a goroutine and returns where its error will arrive.
func async(f func() error) <-chan error {
	c := make(chan error, 1)
	go func() { c <- f() }()
	return c
}

func recv(t *testing.T, c <-chan error) error {
	t.Helper()
	select {
	case err := <-c:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("call did not return")
		return nil
	}
}

func TestGroupCommitConcurrentAppends(t *testing.T) {
	s := openT(t, t.TempDir())
	const goroutines, each = 16, 30
	tenants := []string{"a", "b", "c"}
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			tenant := tenants[g%len(tenants)]
			var last uint64
			for i := 0; i < each; i++ {
				r := newReceipt(tenant, g*1000+i)
				if err := s.Append(context.Background(), r); err != nil {
					errs <- err
					return
				}
				// A caller's own receipts chain in call order.
				if r.Sequence <= last || r.ReceiptHash == "" || r.Signature == "" {
					errs <- fmt.Errorf("goroutine %d receipt %d: sequence %d after %d, hash %q", g, i, r.Sequence, last, r.ReceiptHash)
					return
				}
				last = r.Sequence
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rep := verifyOK(t, s, nil)
	if rep.Streams != len(tenants) || rep.Receipts != goroutines*each {
		t.Fatalf("streams %d receipts %d, want %d and %d", rep.Streams, rep.Receipts, len(tenants), goroutines*each)
	}
	for _, h := range rep.Heads {
		if h.Chain == ChainChanges {
			continue
		}
		n := 0
		for g := 0; g < goroutines; g++ {
			if tenants[g%len(tenants)] == h.Tenant {
				n += each
			}
		}
		if h.Sequence != uint64(n) {
			t.Errorf("tenant %s head at %d, want %d", h.Tenant, h.Sequence, n)
		}
	}
	if got := s.written.Load(); got != goroutines*each {
		t.Errorf("committer counted %d writes, want %d", got, goroutines*each)
	}
	t.Logf("%d receipts in %d commits", s.written.Load(), s.commits.Load())
}

// TestBatchChainsInQueueOrder queues receipts of two tenants behind a
// stalled batch: they commit together, in one transaction, each chained
// to the one queued before it.
func TestBatchChainsInQueueOrder(t *testing.T) {
	s := openT(t, t.TempDir())
	first := appendN(t, s, "a", 1)[0]
	st := stallNow(t, s)
	commitsBefore := s.commits.Load()
	const n = 12
	rs := make([]*Receipt, n)
	done := make([]<-chan error, n)
	for i := range rs {
		rs[i] = newReceipt([]string{"a", "b"}[i%2], 10+i)
		r := rs[i]
		done[i] = async(func() error { return s.Append(context.Background(), r) })
		waitQueued(t, s, i+1) // fixes the queue order
	}
	st.release(t)
	for i := range rs {
		if err := recv(t, done[i]); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
	if got := s.commits.Load() - commitsBefore; got != 2 {
		t.Errorf("stall and %d queued receipts took %d commits, want 2 (one batch each)", n, got)
	}
	prev := map[string]*Receipt{"a": first}
	for i, r := range rs {
		p := prev[r.TenantID]
		wantSeq, wantPrev := uint64(1), ""
		if p != nil {
			wantSeq, wantPrev = p.Sequence+1, p.ReceiptHash
		}
		if r.Sequence != wantSeq || r.PrevReceiptHash != wantPrev {
			t.Errorf("receipt %d of %s: seq %d prev %q, want %d %q", i, r.TenantID, r.Sequence, r.PrevReceiptHash, wantSeq, wantPrev)
		}
		prev[r.TenantID] = r
	}
	verifyOK(t, s, nil)
}

// TestInvalidReceiptInBurstFailsAlone: a receipt that fails validation
// among concurrent appends fails alone; the others commit.
func TestInvalidReceiptInBurstFailsAlone(t *testing.T) {
	s := openT(t, t.TempDir())
	const n = 32
	const bad = 13
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := newReceipt([]string{"a", "b", "c"}[i%3], i)
			if i == bad {
				r.Outcome = "failed!"
			}
			errs[i] = s.Append(context.Background(), r)
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if i == bad {
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "outcome") {
				t.Errorf("invalid receipt: %v, want ErrInvalid naming outcome", err)
			}
		} else if err != nil {
			t.Errorf("receipt %d: %v", i, err)
		}
	}
	if rep := verifyOK(t, s, nil); rep.Receipts != n-1 {
		t.Errorf("%d receipts stored, want %d", rep.Receipts, n-1)
	}
}

// TestFailingWriteInBatchFailsAlone puts writes that the database refuses
// (a duplicate decision id; receipts of a stream whose head row is gone, so
// UNIQUE(tenant_id, seq) refuses them) in one batch with good writes: each
// bad write gets its own error and leaves nothing behind, the good ones
// commit in the same transaction.
func TestFailingWriteInBatchFailsAlone(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	decision := json.RawMessage(`{"telemetry_envelopes":[{"event_id":"evt.os.task.routed"}]}`)
	if err := s.RecordDecision(ctx, DecisionRecord{DecisionID: "dup", CorrelationID: "c0", Decision: decision}); err != nil {
		t.Fatal(err)
	}
	appendN(t, s, "x", 2)
	mustExec(t, rawDB(t, s), `DELETE FROM stream_heads WHERE tenant_id = 'x'`)

	st := stallNow(t, s)
	commitsBefore := s.commits.Load()
	type call struct {
		name    string
		f       func() error
		wantErr string // "" for success
	}
	ra1, ra2 := newReceipt("a", 1), newReceipt("a", 2)
	rx := newReceipt("x", 3)
	calls := []call{
		{"append a 1", func() error { return s.Append(ctx, ra1) }, ""},
		{"duplicate decision", func() error {
			return s.RecordDecision(ctx, DecisionRecord{DecisionID: "dup", CorrelationID: "c1", Decision: decision})
		}, "UNIQUE"},
		{"append x after head loss", func() error { return s.Append(ctx, rx) }, "UNIQUE"},
		{"new decision", func() error {
			return s.RecordDecision(ctx, DecisionRecord{DecisionID: "d2", CorrelationID: "c2", Decision: decision})
		}, ""},
		{"events", func() error {
			return s.RecordEvents(ctx, "c2", []json.RawMessage{json.RawMessage(`{"event_id":"evt.worker.executed"}`)})
		}, ""},
		{"append a 2", func() error { return s.Append(ctx, ra2) }, ""},
	}
	done := make([]<-chan error, len(calls))
	for i, c := range calls {
		done[i] = async(c.f)
		waitQueued(t, s, i+1)
	}
	st.release(t)
	for i, c := range calls {
		err := recv(t, done[i])
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("%s: %v, want an error containing %s", c.name, err, c.wantErr)
		}
	}
	if got := s.commits.Load() - commitsBefore; got != 2 {
		t.Errorf("%d commits, want 2: the batch must commit once despite its failures", got)
	}
	if rx.ReceiptID != "" {
		t.Error("a failed Append filled its receipt")
	}
	if ra1.Sequence != 1 || ra2.Sequence != 2 || ra2.PrevReceiptHash != ra1.ReceiptHash {
		t.Errorf("stream a: seq %d, %d; second links to first: %v", ra1.Sequence, ra2.Sequence, ra2.PrevReceiptHash == ra1.ReceiptHash)
	}
	if d, err := s.Decision(ctx, "dup"); err != nil || d.CorrelationID != "c0" {
		t.Errorf("decision dup: %+v, %v; want the first one kept", d, err)
	}
	if _, err := s.Decision(ctx, "d2"); err != nil {
		t.Errorf("decision d2: %v", err)
	}
	// The refused decision's envelopes were rolled back with it.
	if evs, _ := s.Events(ctx, "c1"); len(evs) != 0 {
		t.Errorf("the refused decision left %d events", len(evs))
	}
	if evs, _ := s.Events(ctx, "c2"); len(evs) != 2 {
		t.Errorf("correlation c2 has %d events, want 2", len(evs))
	}
	var nx int
	if err := s.r.QueryRow(`SELECT count(*) FROM receipts WHERE tenant_id = 'x'`).Scan(&nx); err != nil || nx != 2 {
		t.Errorf("stream x has %d receipts, %v; want the 2 from before", nx, err)
	}
}

// TestCancelledBeforeBatchWritesNothing: a write whose context ends while
// it waits in the queue returns the context's error and is never written;
// a write whose context ends after the committer took it is committed and
// reported as such.
func TestCancelledBeforeBatchWritesNothing(t *testing.T) {
	s := openT(t, t.TempDir())
	first := appendN(t, s, "a", 1)[0]
	st1 := stallNow(t, s)

	takenCtx, cancelTaken := context.WithCancel(context.Background())
	defer cancelTaken()
	taken := newReceipt("a", 1)
	takenDone := async(func() error { return s.Append(takenCtx, taken) })
	waitQueued(t, s, 1)
	st2 := startStall(s) // batched after taken: holds the batch open
	waitQueued(t, s, 2)
	queuedCtx, cancelQueued := context.WithCancel(context.Background())
	queued := newReceipt("a", 2)
	queuedDone := async(func() error { return s.Append(queuedCtx, queued) })
	waitQueued(t, s, 3)

	cancelQueued()
	if err := recv(t, queuedDone); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append cancelled in the queue: %v, want context.Canceled", err)
	}
	if queued.ReceiptID != "" {
		t.Error("a cancelled Append filled its receipt")
	}

	st1.release(t)
	st2.waitEntered(t) // taken has been written inside the open batch
	cancelTaken()
	st2.release(t)
	if err := recv(t, takenDone); err != nil {
		t.Fatalf("Append cancelled after being taken: %v, want it committed", err)
	}
	if taken.Sequence != 2 || taken.PrevReceiptHash != first.ReceiptHash {
		t.Errorf("taken receipt: seq %d prev %q", taken.Sequence, taken.PrevReceiptHash)
	}
	if _, err := s.Receipt(context.Background(), taken.ReceiptID); err != nil {
		t.Errorf("taken receipt: %v", err)
	}
	rep := verifyOK(t, s, nil)
	if rep.Receipts != 2 {
		t.Errorf("%d receipts stored, want 2: the cancelled one must not be", rep.Receipts)
	}
	if next := appendN(t, s, "a", 1)[0]; next.Sequence != 3 {
		t.Errorf("next receipt has sequence %d, want 3", next.Sequence)
	}
}

// TestCloseDrainsPendingWrites: Close commits what is queued, and only
// then closes the database; later writes fail with ErrClosed.
func TestCloseDrainsPendingWrites(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	st := stallNow(t, s)
	const n = 10
	rs := make([]*Receipt, n)
	done := make([]<-chan error, n)
	for i := range rs {
		rs[i] = newReceipt([]string{"a", "b"}[i%2], i)
		r := rs[i]
		done[i] = async(func() error { return s.Append(context.Background(), r) })
	}
	waitQueued(t, s, n)
	closed := async(s.Close)
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.RLock()
		closing := s.closed
		s.mu.RUnlock()
		if closing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Close never started")
		}
		time.Sleep(time.Millisecond)
	}
	err := s.RecordEvents(context.Background(), "c", []json.RawMessage{json.RawMessage(`{}`)})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("write while closing: %v, want ErrClosed", err)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) before the queued writes were committed", err)
	default:
	}
	st.release(t)
	for i := range rs {
		if err := recv(t, done[i]); err != nil {
			t.Errorf("queued receipt %d: %v", i, err)
		}
	}
	if err := recv(t, closed); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Append(context.Background(), newReceipt("a", 99)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s = openT(t, dir)
	rep := verifyOK(t, s, nil)
	if rep.Receipts != n {
		t.Errorf("%d receipts after reopening, want %d", rep.Receipts, n)
	}
	for _, r := range rs {
		if _, err := s.Receipt(context.Background(), r.ReceiptID); err != nil {
			t.Errorf("acknowledged receipt: %v", err)
		}
	}
}
