//go:build !unix

package auth

import "time"

// processCPU is not measured here: the cpu-ns/op figures are zero.
func processCPU() time.Duration { return 0 }
