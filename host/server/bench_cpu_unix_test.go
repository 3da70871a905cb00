//go:build unix

package server_test

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used (user and system, all
// threads): per round, it is the CPU a path costs client and server
// together, including the Hall's background work (the ledger's commits,
// the garbage collector), whatever else runs on the machine.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
