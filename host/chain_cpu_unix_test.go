//go:build unix

package host_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user and system, all
// threads), for BenchmarkChainHop's CPU figures: on a loaded machine the
// wall clock mostly measures waiting for a core.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
