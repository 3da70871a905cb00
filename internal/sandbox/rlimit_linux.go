package sandbox

import (
	"fmt"
	"syscall"
)

// limitAddressSpace sets this process's RLIMIT_AS (soft and hard) to n
// bytes.
func limitAddressSpace(n uint64) error {
	lim := syscall.Rlimit{Cur: n, Max: n}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &lim); err != nil {
		return fmt.Errorf("limiting the address space: %v", err)
	}
	return nil
}
