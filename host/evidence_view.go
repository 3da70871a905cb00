package host

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"

	"github.com/wcphall/hall/internal/ledger"
)

// Evidence is a read-only view of a Hall's evidence ledger: what an
// embedder, the HTTP API and the CLI read. Writing evidence (decisions,
// receipts, enrollments) goes through Hall methods only, so nothing
// reachable from a Hall can sign an entry the Hall did not decide.
type Evidence interface {
	// Receipt returns the receipt with the given id, or an error wrapping
	// ledger.ErrNotFound.
	Receipt(ctx context.Context, id string) (*ledger.Receipt, error)
	// Receipts returns the receipts that match every non-zero field of f,
	// newest first.
	Receipts(ctx context.Context, f ledger.Filter) ([]ledger.Receipt, error)
	// Changes returns the change chain's entries of a kind ("" for all),
	// in chain order: enrollments with their sealed records, rules changes.
	Changes(ctx context.Context, kind string) ([]ledger.Change, error)
	// Verify checks every chain (see ledger.Store.Verify).
	Verify(ctx context.Context, pub ed25519.PublicKey) (*ledger.Report, error)
	// Export writes every receipt as JSON Lines.
	Export(ctx context.Context, w io.Writer) error
	// Events returns the telemetry recorded under a correlation id (the
	// decision's and the worker's), in order.
	Events(ctx context.Context, correlationID string) ([]json.RawMessage, error)
	// Decision returns the signed decision with the given id (a hop's
	// decision names its parent in its chain member), or an error
	// wrapping ledger.ErrNotFound.
	Decision(ctx context.Context, id string) (*ledger.DecisionRecord, error)
	// KeySet returns the ledger's signing keys with their validity, for
	// verifiers (an error when the store keeps no key set).
	KeySet(ctx context.Context) (*ledger.KeySet, error)
}

// Evidence returns the read-only view of the Hall's evidence ledger.
func (h *Hall) Evidence() (Evidence, error) {
	s, err := h.evidenceStore()
	if err != nil {
		return nil, err
	}
	return evidenceView{s}, nil
}

// evidenceView hides the store behind a struct, so that a type assertion
// cannot recover its write methods.
type evidenceView struct{ s ledger.Store }

func (v evidenceView) Receipt(ctx context.Context, id string) (*ledger.Receipt, error) {
	return v.s.Receipt(ctx, id)
}

func (v evidenceView) Receipts(ctx context.Context, f ledger.Filter) ([]ledger.Receipt, error) {
	return v.s.Receipts(ctx, f)
}

func (v evidenceView) Changes(ctx context.Context, kind string) ([]ledger.Change, error) {
	return v.s.Changes(ctx, kind)
}

func (v evidenceView) Verify(ctx context.Context, pub ed25519.PublicKey) (*ledger.Report, error) {
	return v.s.Verify(ctx, pub)
}

func (v evidenceView) Export(ctx context.Context, w io.Writer) error { return v.s.Export(ctx, w) }

func (v evidenceView) Events(ctx context.Context, correlationID string) ([]json.RawMessage, error) {
	es, ok := v.s.(interface {
		Events(ctx context.Context, correlationID string) ([]json.RawMessage, error)
	})
	if !ok {
		return nil, fmt.Errorf("the evidence store %T does not keep telemetry events", v.s)
	}
	return es.Events(ctx, correlationID)
}

func (v evidenceView) KeySet(ctx context.Context) (*ledger.KeySet, error) {
	ks, ok := v.s.(interface {
		KeySet(ctx context.Context) (*ledger.KeySet, error)
	})
	if !ok {
		return nil, fmt.Errorf("the evidence store %T keeps no key set", v.s)
	}
	return ks.KeySet(ctx)
}

// KeyStanding is where the ledger's signing key (this node's) stands in
// its keyring; the HTTP API's /health reports a key that may not sign.
func (v evidenceView) KeyStanding(ctx context.Context) (ledger.KeyStanding, error) {
	ks, ok := v.s.(interface {
		KeyStanding(ctx context.Context) (ledger.KeyStanding, error)
	})
	if !ok {
		return ledger.KeyStanding{}, fmt.Errorf("the evidence store %T keeps no keyring", v.s)
	}
	return ks.KeyStanding(ctx)
}

func (v evidenceView) Decision(ctx context.Context, id string) (*ledger.DecisionRecord, error) {
	ds, ok := v.s.(interface {
		Decision(ctx context.Context, id string) (*ledger.DecisionRecord, error)
	})
	if !ok {
		return nil, fmt.Errorf("the evidence store %T cannot look decisions up", v.s)
	}
	return ds.Decision(ctx, id)
}
