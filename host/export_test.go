package host

import (
	"context"

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
	c, err := ledger.TokenChange(ledger.TokenEvent{TokenID: id, Event: ledger.TokenIssued, Scope: scope}, "local:test")
	if err != nil {
		return err
	}
	return store.RecordChange(context.Background(), c)
}
