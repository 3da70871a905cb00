package main

import (
	"encoding/binary"
	"encoding/json"

	"github.com/wcphall/hall/sdk"
)

// The first hall_invoke ABI, as the SDK spoke it before hall_invoke_mem:
// a JSON request {"capability", "input": base64} in an Extism kernel
// block, a JSON reply {"output": base64} or {"error": {…}} in another.
// Kept here so that the Hall is tested to serve modules built with that
// SDK (host TestChainLegacyInvoke).

//go:wasmimport extism:host/env alloc
func kernelAlloc(n uint64) uint64

//go:wasmimport extism:host/env free
func kernelFree(off uint64)

//go:wasmimport extism:host/env length
func kernelLength(off uint64) uint64

//go:wasmimport extism:host/env load_u64
func kernelLoadU64(off uint64) uint64

//go:wasmimport extism:host/env load_u8
func kernelLoadU8(off uint64) uint32

//go:wasmimport extism:host/env store_u64
func kernelStoreU64(off, v uint64)

//go:wasmimport extism:host/env store_u8
func kernelStoreU8(off uint64, v uint32)

// writeKernel and readKernel copy as that SDK did: 8 bytes per host
// call, the block's last 8 bytes as one more word.
func writeKernel(b []byte) uint64 {
	n := uint64(len(b))
	off := kernelAlloc(n)
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		kernelStoreU64(off+i, binary.LittleEndian.Uint64(b[i:]))
	}
	if i < n && n >= 8 {
		kernelStoreU64(off+n-8, binary.LittleEndian.Uint64(b[n-8:]))
		return off
	}
	for ; i < n; i++ {
		kernelStoreU8(off+i, uint32(b[i]))
	}
	return off
}

func readKernel(off uint64) []byte {
	n := kernelLength(off)
	buf := make([]byte, n)
	i := uint64(0)
	for ; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(buf[i:], kernelLoadU64(off+i))
	}
	if i < n && n >= 8 {
		binary.LittleEndian.PutUint64(buf[n-8:], kernelLoadU64(off+n-8))
		return buf
	}
	for ; i < n; i++ {
		buf[i] = byte(kernelLoadU8(off + i))
	}
	return buf
}

func legacyInvoke(capability string, input []byte) ([]byte, error) {
	req, err := json.Marshal(struct {
		Capability string `json:"capability"`
		Input      []byte `json:"input"`
	}{capability, input})
	if err != nil {
		return nil, err
	}
	arg := writeKernel(req)
	res := rawInvoke(arg)
	kernelFree(arg)
	reply := readKernel(res)
	kernelFree(res)
	var r struct {
		Output []byte     `json:"output"`
		Error  *sdk.Error `json:"error"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, r.Error
	}
	return r.Output, nil
}
