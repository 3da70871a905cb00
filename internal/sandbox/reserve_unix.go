//go:build unix

package sandbox

import "syscall"

// reserve returns size bytes of zeroed memory that costs nothing until
// touched, and the function that releases it.
func reserve(size uint64) ([]byte, func()) {
	b, err := syscall.Mmap(-1, 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		// Out of address space: fall back to a heap allocation.
		return make([]byte, size), nil
	}
	return b, func() { _ = syscall.Munmap(b) }
}
