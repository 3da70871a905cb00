package host

import (
	"fmt"

	"github.com/wcphall/hall/host/wcp"
)

// DefaultMinFreeDisk is the free space the file system of the state
// directory must keep before the Hall dispatches (Options.MinFreeDisk).
const DefaultMinFreeDisk = 64 << 20

// DiskLowError refuses a dispatch because the ledger's file system is below
// its free-space floor: the evidence of the dispatch could not be written
// for sure. Nothing ran. Its code is HALL_DISK_LOW.
type DiskLowError struct {
	Dir         string
	Free, Floor uint64
}

func (e *DiskLowError) Error() string {
	return fmt.Sprintf("%s: the file system of %s has %d bytes free, below the Hall's floor of %d; the worker was not run (free space there, or lower Options.MinFreeDisk)",
		wcp.CodeHallDiskLow, e.Dir, e.Free, e.Floor)
}

// Code returns HALL_DISK_LOW.
func (e *DiskLowError) Code() wcp.Code { return wcp.CodeHallDiskLow }

// checkFreeSpace refuses a dispatch while the state directory's file system
// has less free space than the floor.
//
// Why: a worker filled the disk its write directory shared with the
// ledger; its own receipt could not be committed and every later dispatch of
// every tenant failed until the file was removed. The write quota
// (sandbox.Limits.WriteBytes) bounds one worker; the floor keeps room for
// the evidence whatever else fills the disk.
func (h *Hall) checkFreeSpace() error {
	floor := h.opts.MinFreeDisk
	if floor < 0 {
		return nil
	}
	if floor == 0 {
		floor = DefaultMinFreeDisk
	}
	free, err := freeBytes(h.opts.Home)
	if err != nil {
		return nil // not a file system we can ask: the ledger reports its own errors
	}
	if free < uint64(floor) {
		return &DiskLowError{Dir: h.opts.Home, Free: free, Floor: uint64(floor)}
	}
	return nil
}
