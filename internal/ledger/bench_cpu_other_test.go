//go:build !unix

package ledger

import "time"

// processCPU is not measured here: the cpu-µs figures are zero.
func processCPU() time.Duration { return 0 }
