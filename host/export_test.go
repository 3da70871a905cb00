package host

import "context"

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
