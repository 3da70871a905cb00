//go:build !linux

package sandbox

import "runtime"

// limitAddressSpace refuses: this platform enforces no address-space
// limit (addressSpaceLimitGap).
func limitAddressSpace(uint64) error {
	return addressSpaceLimitGap(runtime.GOOS, runtime.GOARCH)
}
