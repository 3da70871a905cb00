//go:build !unix

package server_test

import "time"

// processCPU is not measured here: the CPU figures of BenchmarkTracingOverhead
// are zero.
func processCPU() time.Duration { return 0 }
