//go:build !wasip1

package sdk

import "unsafe"

// Outside GOOS=wasip1 there is no Extism kernel. These stand-ins keep the
// package compiling for godoc, vet and host-side tests of pure helpers.
// Dispatch checks abiAvailable before it builds a Call, so none of them is
// reachable through the public API; each panics with noABI if that ever
// stops being true.

const abiAvailable = false

func extismInputLength() uint64        { panic(noABI) }
func extismInputLoadU64(uint64) uint64 { panic(noABI) }
func extismInputLoadU8(uint64) uint32  { panic(noABI) }
func extismOutputSet(uint64, uint64)   { panic(noABI) }
func extismAlloc(uint64) uint64        { panic(noABI) }
func extismFree(uint64)                { panic(noABI) }
func extismLength(uint64) uint64       { panic(noABI) }
func extismLoadU64(uint64) uint64      { panic(noABI) }
func extismLoadU8(uint64) uint32       { panic(noABI) }
func extismStoreU64(uint64, uint64)    { panic(noABI) }
func extismStoreU8(uint64, uint32)     { panic(noABI) }
func extismConfigGet(uint64) uint64    { panic(noABI) }
func extismErrorSet(uint64)            { panic(noABI) }
func extismGetLogLevel() int32         { panic(noABI) }
func extismLogTrace(uint64)            { panic(noABI) }
func extismLogDebug(uint64)            { panic(noABI) }
func extismLogInfo(uint64)             { panic(noABI) }
func extismLogWarn(uint64)             { panic(noABI) }
func extismLogError(uint64)            { panic(noABI) }
func hallSecret(uint64) uint64         { panic(noABI) }
func hallHTTP(uint64) uint64           { panic(noABI) }
func hallEmit(uint64)                  { panic(noABI) }
func hallInvokeMem(unsafe.Pointer, uint32, unsafe.Pointer, uint32, unsafe.Pointer, uint32) uint64 {
	panic(noABI)
}
func hallInvokeTake(unsafe.Pointer, uint32) uint32 { panic(noABI) }
