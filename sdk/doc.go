// Package sdk is the guest side of the Hall ABI (docs/ABI.md): it lets a Go
// program compiled to WebAssembly serve WCP capabilities as a Hall worker.
// A worker is an Extism plugin, so anything built with this package also
// runs on any Extism host that provides the Hall host functions it
// actually calls.
//
// A worker registers one Handler per capability and exports one function per
// entrypoint. The handler gets a *Call: the input and output, the
// configuration and WCP context (Correlation), logging, and the Hall host
// functions Secret, HTTP, Emit and Invoke (another capability, as a
// governed hop of this call's chain). A returned error (or a panic) fails the
// call with its message; the Hall reports it as WORKER_FAILED.
//
// # A complete worker
//
//	hall new hello   # go.mod, main.go, a test, registry_record.json and the SDK in third_party/hall
//
// or by hand:
//
//	mkdir hello && cd hello
//	go mod init example.com/hello
//	go mod edit -require=github.com/wcphall/hall@v0.0.0 -replace=github.com/wcphall/hall=../hall  # a Hall clone
//
// The module github.com/wcphall/hall is not published yet, so go get cannot
// fetch it: depend on it through a replace directive, either to a clone
// (as above: builds on machines that have the clone at that path) or to a
// copy of this package's files in a module of their own, which is what
// hall new writes (third_party/hall, a relative replace: the worker builds
// anywhere it is copied). Once the module is published, drop the replace
// and run go get github.com/wcphall/hall/sdk@latest.
//
// main.go:
//
//	package main
//
//	import (
//		"strings"
//
//		"github.com/wcphall/hall/sdk"
//	)
//
//	// Handlers are registered in init: a c-shared wasip1 module runs package
//	// initialization (in _initialize) but never main.
//	func init() {
//		sdk.Handle("cap.text.shout", func(c *sdk.Call) error {
//			c.Logf(sdk.LevelInfo, "shouting %d bytes", len(c.Input()))
//			c.OutputString(strings.ToUpper(string(c.Input())))
//			return nil
//		})
//	}
//
//	// One line per entrypoint. "run" serves every capability without an
//	// entrypoint of its own, choosing by the wcp.capability_id config.
//	//
//	//go:wasmexport run
//	func run() int32 { return sdk.Run() }
//
//	//go:wasmexport shout
//	func shout() int32 { return sdk.Dispatch("cap.text.shout") }
//
//	func main() {}
//
// Build, then try it on the Extism CLI (or enroll it in a Hall):
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o hello.wasm .
//	extism call hello.wasm shout --wasi --input "hi"
//
// # Notes
//
//   - -buildmode=c-shared is required: it makes a reactor module whose
//     _initialize the host calls once (never call it yourself); a plain
//     build makes a command module whose exports cannot be called.
//   - Bytes move between the worker and the host 8 at a time through the
//     kernel's load_u64/store_u64 calls, the only copy primitive of the
//     Extism ABI. BenchmarkEcho1MiB measures the resulting throughput.
//   - Block ownership for hall_secret, hall_http and hall_emit: the guest
//     allocates and frees argument blocks and frees result blocks after
//     reading them; the host frees neither.
//   - The linker keeps only the imports a worker reaches: a worker that
//     never calls Call.HTTP does not import hall_http, so a Hall can check
//     a module's imports against its privilege envelope.
//   - Outside GOOS=wasip1 the package compiles (for godoc, vet and tests of
//     pure code) but Dispatch and Run only report an error and return 1.
package sdk
