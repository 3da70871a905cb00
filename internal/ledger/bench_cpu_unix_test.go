//go:build unix

package ledger

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) this process has used: a
// figure less sensitive than throughput to what else the machine runs.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
