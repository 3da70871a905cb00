package host

import (
	"context"
	"crypto/sha256"
	"errors"

	"github.com/wcphall/hall/internal/ledger"
)

// HoldDispatchSlot takes one of h's dispatch slots for tenant, as a
// running dispatch would, until release is called (tests of what a
// saturated Hall leaves behind).
func HoldDispatchSlot(h *Hall, tenant string) (release func(), err error) {
	return h.admission.acquire(context.Background(), tenant)
}

// HomeOf is h's state directory; DirOf the folder its files are in.
func HomeOf(h *Hall) string { return h.opts.Home }
func DirOf(h *Hall) string  { return h.opts.Dir }

// NewFileSource is the default SnapshotSource over the files of opts
// (the contract test runs it).
func NewFileSource(opts Options) SnapshotSource { return newFileSource(opts) }

// RecordTokenIssued records, in h's evidence ledger, the issuance of the
// token id with scope ("approver:org.other"), as IssueToken does (tests
// whose approver is a fixed id rather than a token of a token store).
func RecordTokenIssued(h *Hall, id, scope string) error {
	store, err := h.evidenceStore()
	if err != nil {
		return err
	}
	// The fixed id has no row: the Hall checks it against a store that
	// holds a fixed hash for every id.
	h.UseTokens(fixedHashes{})
	binding, err := tokenBinding(context.Background(), fixedHashes{}, store, id, false)
	if err != nil {
		return err
	}
	c, err := ledger.TokenChange(ledger.TokenEvent{TokenID: id, Event: ledger.TokenIssued, Scope: scope, Binding: binding}, "local:test")
	if err != nil {
		return err
	}
	return store.RecordChange(context.Background(), c)
}

// fixedHashes is a token store holding the hash of "fixed" for every id
// (RecordTokenIssued); it authenticates nothing.
type fixedHashes struct{}

func (fixedHashes) Create(context.Context, TokenScope, string) (string, Token, error) {
	return "", Token{}, errors.New("fixedHashes creates no token")
}
func (fixedHashes) Authenticate(context.Context, string) (Token, error) {
	return Token{}, ErrInvalidToken
}
func (fixedHashes) List(context.Context) ([]Token, error)         { return nil, nil }
func (fixedHashes) Revoke(context.Context, string) (Token, error) { return Token{}, ErrTokenNotFound }
func (fixedHashes) Close() error                                  { return nil }
func (fixedHashes) StoredHash(context.Context, string) ([]byte, error) {
	h := sha256.Sum256([]byte("fixed"))
	return h[:], nil
}

// HoldCores takes n of h's cores for tenant, as running guest code would,
// until release is called.
func HoldCores(h *Hall, tenant string, n int) (release func(), err error) {
	var rel []func()
	for range n {
		c := h.cores.Claim(tenant, 1)
		if err := c.Acquire(context.Background()); err != nil {
			return nil, err
		}
		rel = append(rel, func() { c.Release(); c.Done() })
	}
	return func() {
		for _, r := range rel {
			r()
		}
	}, nil
}
