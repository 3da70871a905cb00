//go:build !unix

package host

import (
	"fmt"
	"runtime"
)

// freeBytes is not measured on this platform (the Hall does not open its
// state here: platformGap).
func freeBytes(string) (uint64, error) {
	return 0, fmt.Errorf("free space is not measured on %s", runtime.GOOS)
}
