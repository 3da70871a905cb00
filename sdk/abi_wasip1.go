//go:build wasip1

package sdk

import "unsafe"

// The Extism kernel imports (EIP-007). Every uint64 named off or an offset
// result is an offset in the kernel's own memory, not in the guest's; bytes
// cross the boundary only through the load/store calls below.
//
// Each function is a separate import so that the Go linker drops the ones a
// worker never reaches: a worker that does not call Call.HTTP does not
// import hall_http, which a Hall can check against network_egress.

//go:wasmimport extism:host/env input_length
func extismInputLength() uint64

//go:wasmimport extism:host/env input_load_u64
func extismInputLoadU64(off uint64) uint64

//go:wasmimport extism:host/env input_load_u8
func extismInputLoadU8(off uint64) uint32

//go:wasmimport extism:host/env output_set
func extismOutputSet(off, n uint64)

//go:wasmimport extism:host/env alloc
func extismAlloc(n uint64) uint64

//go:wasmimport extism:host/env free
func extismFree(off uint64)

//go:wasmimport extism:host/env length
func extismLength(off uint64) uint64

//go:wasmimport extism:host/env load_u64
func extismLoadU64(off uint64) uint64

//go:wasmimport extism:host/env load_u8
func extismLoadU8(off uint64) uint32

//go:wasmimport extism:host/env store_u64
func extismStoreU64(off, v uint64)

//go:wasmimport extism:host/env store_u8
func extismStoreU8(off uint64, v uint32)

//go:wasmimport extism:host/env config_get
func extismConfigGet(keyOff uint64) uint64

//go:wasmimport extism:host/env error_set
func extismErrorSet(off uint64)

//go:wasmimport extism:host/env get_log_level
func extismGetLogLevel() int32

//go:wasmimport extism:host/env log_trace
func extismLogTrace(off uint64)

//go:wasmimport extism:host/env log_debug
func extismLogDebug(off uint64)

//go:wasmimport extism:host/env log_info
func extismLogInfo(off uint64)

//go:wasmimport extism:host/env log_warn
func extismLogWarn(off uint64)

//go:wasmimport extism:host/env log_error
func extismLogError(off uint64)

//go:wasmimport extism:host/user hall_secret
func hallSecret(nameOff uint64) uint64

//go:wasmimport extism:host/user hall_http
func hallHTTP(reqOff uint64) uint64

//go:wasmimport extism:host/user hall_emit
func hallEmit(eventOff uint64)

// hall_invoke_mem and hall_invoke_take take offsets in this module's own
// memory (docs/ABI.md); hall_invoke, their predecessor with kernel
// blocks, is still served for modules built with an older SDK.

//go:wasmimport extism:host/user hall_invoke_mem
func hallInvokeMem(capPtr unsafe.Pointer, capLen uint32, inPtr unsafe.Pointer, inLen uint32, outPtr unsafe.Pointer, outCap uint32) uint64

//go:wasmimport extism:host/user hall_invoke_take
func hallInvokeTake(ptr unsafe.Pointer, n uint32) uint32

// abiAvailable reports whether the functions above are real imports.
const abiAvailable = true
