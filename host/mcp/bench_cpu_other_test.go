//go:build !unix

package mcp_test

import "time"

// processCPU is not measured here: the CPU figures of BenchmarkMCPOverhead
// are zero.
func processCPU() time.Duration { return 0 }
