package sdk

import "encoding/binary"

// Bytes cross between guest and kernel memory one call per 8 bytes (the
// kernel has no bulk copy). A block of 8 bytes or more ends with one more
// 8-byte call on its last 8 bytes, overlapping the word before (the same
// bytes, read or written twice, all inside the block): only blocks under
// 8 bytes use the u8 calls. A 1 MiB input therefore costs 131072 host
// calls, not a million. The u8 calls are the dear ones: Extism's go-sdk
// serves them through the kernel module, looking its export up on every
// call, where the u64 calls are served directly (sandbox RATIONALE.md,
// "Sub-dispatch").

// readInput copies the call's input out of kernel memory.
func readInput() []byte {
	n := extismInputLength()
	buf := make([]byte, n)
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], extismInputLoadU64(i))
	}
	if i < n && n >= 8 {
		binary.LittleEndian.PutUint64(buf[n-8:], extismInputLoadU64(n-8))
		return buf
	}
	for ; i < n; i++ {
		buf[i] = byte(extismInputLoadU8(i))
	}
	return buf
}

// readBlock copies the kernel block at off. Offset 0 means "no block".
func readBlock(off uint64) []byte {
	if off == 0 {
		return nil
	}
	n := extismLength(off)
	buf := make([]byte, n)
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], extismLoadU64(off+i))
	}
	if i < n && n >= 8 {
		binary.LittleEndian.PutUint64(buf[n-8:], extismLoadU64(off+n-8))
		return buf
	}
	for ; i < n; i++ {
		buf[i] = byte(extismLoadU8(off + i))
	}
	return buf
}

// writeBlock allocates a kernel block holding b and returns its offset. The
// caller owns the block: it frees it or hands it to the host.
func writeBlock(b []byte) uint64 {
	n := uint64(len(b))
	off := extismAlloc(n)
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		extismStoreU64(off+i, binary.LittleEndian.Uint64(b[i:]))
	}
	if i < n && n >= 8 {
		extismStoreU64(off+n-8, binary.LittleEndian.Uint64(b[n-8:]))
		return off
	}
	for ; i < n; i++ {
		extismStoreU8(off+i, uint32(b[i]))
	}
	return off
}

// takeBlock reads the kernel block at off and frees it.
func takeBlock(off uint64) []byte {
	b := readBlock(off)
	if off != 0 {
		extismFree(off)
	}
	return b
}
