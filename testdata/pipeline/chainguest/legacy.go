package main

import (
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

//go:wasmimport extism:host/env load_u8
func kernelLoadU8(off uint64) uint32

//go:wasmimport extism:host/env store_u8
func kernelStoreU8(off uint64, v uint32)

func legacyInvoke(capability string, input []byte) ([]byte, error) {
	req, err := json.Marshal(struct {
		Capability string `json:"capability"`
		Input      []byte `json:"input"`
	}{capability, input})
	if err != nil {
		return nil, err
	}
	arg := kernelAlloc(uint64(len(req)))
	for i, b := range req {
		kernelStoreU8(arg+uint64(i), uint32(b))
	}
	res := rawInvoke(arg)
	kernelFree(arg)
	reply := make([]byte, kernelLength(res))
	for i := range reply {
		reply[i] = byte(kernelLoadU8(res + uint64(i)))
	}
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
