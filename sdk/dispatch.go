package sdk

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// Handler serves one capability. Returning an error fails the call: the
// error's message becomes the Extism error and the export returns 1, which
// the Hall reports as WORKER_FAILED.
type Handler func(c *Call) error

var handlers = map[string]Handler{}

// noABI is what Dispatch reports outside wasip1 and what the stand-ins in
// abi_other.go panic with.
const noABI = "sdk: the Extism ABI exists only in a GOOS=wasip1 GOARCH=wasm build (go build -buildmode=c-shared)"

// Handle registers h for capability. Call it from init or a package-level
// variable initializer: a c-shared wasip1 module runs package initializers
// (in _initialize) but never main.
//
// Handle panics if capability is empty, h is nil, or capability already has
// a handler: all three are programming errors visible at the first call.
func Handle(capability string, h Handler) {
	switch {
	case capability == "":
		panic("sdk.Handle: empty capability id")
	case h == nil:
		panic("sdk.Handle: nil handler for " + capability)
	case handlers[capability] != nil:
		panic("sdk.Handle: capability " + capability + " registered twice")
	}
	handlers[capability] = h
}

// Dispatch runs the handler registered for capability and returns the value
// the export must return: 0 on success, 1 on failure with the Extism error
// set. It is the whole body of an export shim:
//
//	//go:wasmexport summarize
//	func summarize() int32 { return sdk.Dispatch("cap.doc.summarize") }
//
// # Notes
//
//   - A panicking handler fails the call like an error ("panic: ...")
//     instead of trapping the module, so the instance stays usable.
//   - Outside a wasip1 build Dispatch does nothing but report on stderr and
//     return 1.
func Dispatch(capability string) int32 {
	if !abiAvailable {
		fmt.Fprintln(os.Stderr, noABI)
		return 1
	}
	h := handlers[capability]
	if h == nil {
		setError(fmt.Sprintf("sdk: no handler for capability %q (registered: %s)", capability, registered()))
		return 1
	}
	if err := serve(h, newCall(capability)); err != nil {
		msg := err.Error()
		if msg == "" {
			msg = "handler failed with an empty error message"
		}
		setError(msg)
		return 1
	}
	return 0
}

// Run dispatches on the wcp.capability_id configuration key, for the export
// named run that serves every capability without its own entrypoint
// (docs/ABI.md):
//
//	//go:wasmexport run
//	func run() int32 { return sdk.Run() }
//
// Without wcp.capability_id (a plain Extism host), Run serves the only
// registered handler, and fails if there are several.
func Run() int32 {
	if !abiAvailable {
		fmt.Fprintln(os.Stderr, noABI)
		return 1
	}
	capability, ok := newCall("").Config(ConfigCapabilityID)
	if !ok {
		if len(handlers) != 1 {
			setError(fmt.Sprintf("sdk: config %s is not set and %d handlers are registered (%s)", ConfigCapabilityID, len(handlers), registered()))
			return 1
		}
		for k := range handlers {
			capability = k
		}
	}
	return Dispatch(capability)
}

func serve(h Handler, c *Call) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return h(c)
}

func registered() string {
	if len(handlers) == 0 {
		return "none"
	}
	return strings.Join(slices.Sorted(maps.Keys(handlers)), ", ")
}
