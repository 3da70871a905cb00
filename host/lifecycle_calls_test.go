package host_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/ledger"
)

// pausingLedger is a real SQLite ledger that, once armed, stops the first
// Receipt read or enroll change in pause until the test releases it: a
// call held in the middle of its work while Close begins.
type pausingLedger struct {
	*ledger.SQLite
	mu      sync.Mutex
	armed   string // "receipt" or "enroll"
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newPausingLedger(t *testing.T) *pausingLedger {
	t.Helper()
	l, err := ledger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := &pausingLedger{SQLite: l, entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(func() { p.let(); l.Close() })
	return p
}

func (p *pausingLedger) arm(what string) { p.mu.Lock(); p.armed = what; p.mu.Unlock() }
func (p *pausingLedger) let()            { p.once.Do(func() { close(p.release) }) }

func (p *pausingLedger) pause(what string) {
	p.mu.Lock()
	hit := p.armed == what
	if hit {
		p.armed = ""
	}
	p.mu.Unlock()
	if hit {
		close(p.entered)
		<-p.release
	}
}

func (p *pausingLedger) Receipt(ctx context.Context, id string) (*ledger.Receipt, error) {
	p.pause("receipt")
	return p.SQLite.Receipt(ctx, id)
}

func (p *pausingLedger) RecordChange(ctx context.Context, c *ledger.Change) error {
	if c.Kind == ledger.ChangeEnroll {
		p.pause("enroll")
	}
	return p.SQLite.RecordChange(ctx, c)
}

func (p *pausingLedger) Close() error { return nil } // the test closes it

const blockRecord = `{"worker_id": "org.acme.block", "worker_species_id": "wrk.test.block", "capabilities": ["cap.test.block"], "risk_tier": "low", "allowed_environments": ["dev"], "determinism": "full"}`

// Replay and Enroll are admitted calls like Run (issue 21): one in flight
// when Close begins is waited for (Close announces that it waits), so it
// never meets a released ledger. Before, neither was counted: Close went
// on at once.
func TestCloseWaitsForReplayAndEnrollInFlight(t *testing.T) {
	for _, tc := range []struct {
		name string
		arm  string
		call func(h *host.Hall, receiptID string, mod []byte) error
		// want checks the held call's result once Close let it finish.
		want func(err error) error
	}{
		{"Replay", "receipt", func(h *host.Hall, id string, _ []byte) error {
			_, err := h.Replay(context.Background(), id, nil)
			return err
		}, func(err error) error {
			// Admitted, then refused when it came to dispatch: nothing ran.
			if !errors.Is(err, host.ErrClosed) {
				return fmt.Errorf("got %v, want ErrClosed", err)
			}
			return nil
		}},
		{"Enroll", "enroll", func(h *host.Hall, _ string, mod []byte) error {
			_, err := h.Enroll(context.Background(), host.EnrollRequest{Module: mod, Record: []byte(blockRecord)})
			return err
		}, func(err error) error {
			if err != nil {
				return fmt.Errorf("the enrollment admitted before Close: %v, want it completed", err)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mod, err := watModule(dir, "block", blockWAT("(i32.const 0)"))
			if err != nil {
				t.Fatal(err)
			}
			sig := newSignals("hall: closing")
			pl := newPausingLedger(t)
			h := openInteg(t, oneRule("cap.test.block", "wrk.test.block", "dev"), "", host.Options{Stores: &host.Stores{Evidence: pl}, Logger: slog.New(sig)})
			enrollOK(t, h, mod, blockRecord)
			res, err := h.Run(context.Background(), host.RunRequest{Input: routeInput(t, "cap.test.block", "dev", "INTERNAL", "c-held")})
			if err != nil || res.Outcome != "ok" {
				t.Fatalf("run: %v %+v", err, res)
			}
			pl.arm(tc.arm)
			held := make(chan error, 1)
			go func() { held <- tc.call(h, res.ReceiptID, mod) }()
			within(t, pl.entered, "the call reaching the ledger")
			closed := make(chan error, 1)
			go func() { closed <- h.Close(context.Background()) }()
			select {
			case <-sig.on("hall: closing"):
			case err := <-closed:
				pl.let()
				<-held
				t.Fatalf("Close returned (%v) while %s was in flight, without waiting for it", err, tc.name)
			}
			pl.let()
			if err := tc.want(<-held); err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			if err := <-closed; err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

// A Hall that is shutting down refuses Replay, Enroll and EnrollStored
// with ErrClosed (HALL_CLOSED) before doing anything, as it refuses Run.
func TestClosingHallRefusesReplayAndEnroll(t *testing.T) {
	dir := t.TempDir()
	mod, err := watModule(dir, "block", blockWAT("(i32.const 0)"))
	if err != nil {
		t.Fatal(err)
	}
	h := openInteg(t, oneRule("cap.test.block", "wrk.test.block", "dev"), "", host.Options{})
	digest, err := h.PutArtifact(mod, sha256.Sum256(mod))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Replay", func() error {
			_, err := h.Replay(ctx, "01890000-0000-7000-8000-000000000000", nil)
			return err
		}},
		{"Enroll", func() error {
			_, err := h.Enroll(ctx, host.EnrollRequest{Module: mod, Record: []byte(blockRecord)})
			return err
		}},
		{"EnrollStored", func() error {
			_, err := h.EnrollStored(ctx, fmt.Appendf(nil, `{"artifact_hash": %q, "worker_id": "org.acme.block2", "worker_species_id": "wrk.test.block", "capabilities": ["cap.test.block"], "risk_tier": "low"}`, digest), "test")
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, host.ErrClosed) {
				t.Errorf("%s while closing: %v, want ErrClosed (HALL_CLOSED)", tc.name, err)
			}
		})
	}
}
