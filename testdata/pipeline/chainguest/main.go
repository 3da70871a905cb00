// Command chainguest is the test worker of governed pipelines (host
// chain_test.go): one module, enrolled as several workers, whose input
// says what it does with sdk.Call.Invoke.
//
// Built by the tests with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o chainguest.wasm ./testdata/pipeline/chainguest
//
// Input: {"op": "echo" | "relay" | "fanout" | "spin" | "call" | "badptr", ...}.
//
//   - echo: outputs "echo:" and the text member.
//   - relay: invokes the capability in the worker's config key "next" with
//     the same input and outputs its output, or {"invoke_error": …}.
//   - fanout: invokes cap n times with {"op":"echo"}; outputs the count of
//     successes and of each error code.
//   - call: invokes cap once with input.input; outputs its output or
//     {"invoke_error": …}.
//   - work: n rounds of SHA-256 over 1 KiB (a worker that computes).
//   - spin: never returns (a hop that eats its caller's deadline).
//   - badptr: calls hall_invoke with an offset outside kernel memory.
//   - badptr_mem: calls hall_invoke_mem with the range named by "text"
//     (cap, input or output) outside the module's memory.
//   - legacy_call: call, through hall_invoke and its JSON kernel blocks,
//     as modules built with the first SDK do (legacy.go).
package main

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"unsafe"

	"github.com/wcphall/hall/sdk"
)

//go:wasmimport extism:host/user hall_invoke
func rawInvoke(off uint64) uint64

//go:wasmimport extism:host/user hall_invoke_mem
func rawInvokeMem(capPtr, capLen, inPtr, inLen, outPtr, outCap uint32) uint64

type program struct {
	Op    string          `json:"op"`
	Text  string          `json:"text"`
	Cap   string          `json:"cap"`
	N     int             `json:"n"`
	Input json.RawMessage `json:"input"`
	// Secret, when set, is read (hall_secret) before the op runs: the
	// tests' SecretSource learns that the call has started.
	Secret string `json:"secret"`
}

func init() {
	sdk.Handle("*", serve)
}

//go:wasmexport run
func run() int32 { return sdk.Dispatch("*") }

func main() {}

func invokeResult(c *sdk.Call, out []byte, err error) error {
	if err != nil {
		var se *sdk.Error
		if !errors.As(err, &se) {
			return err
		}
		return c.OutputJSON(map[string]any{"invoke_error": se})
	}
	c.Output(out)
	return nil
}

func serve(c *sdk.Call) error {
	var p program
	if err := c.InputJSON(&p); err != nil {
		return err
	}
	if p.Secret != "" {
		if _, err := c.Secret(p.Secret); err != nil {
			return err
		}
	}
	switch p.Op {
	case "echo":
		c.OutputString("echo:" + p.Text)
		return nil
	case "relay":
		next, _ := c.Config("next")
		out, err := c.Invoke(next, c.Input())
		return invokeResult(c, out, err)
	case "call":
		out, err := c.Invoke(p.Cap, p.Input)
		return invokeResult(c, out, err)
	case "fanout":
		counts := map[string]int{}
		for range p.N {
			_, err := c.Invoke(p.Cap, []byte(`{"op":"echo","text":"x"}`))
			var se *sdk.Error
			switch {
			case err == nil:
				counts["ok"]++
			case errors.As(err, &se):
				counts[se.Code+"/"+se.DenyCode+se.Outcome]++
			default:
				counts["other"]++
			}
		}
		return c.OutputJSON(counts)
	case "work":
		// n rounds of SHA-256 over a 1 KiB buffer: a worker that computes.
		buf := make([]byte, 1024)
		for i := range p.N {
			sum := sha256.Sum256(buf)
			buf[i%len(buf)] ^= sum[0]
		}
		c.OutputString(fmt.Sprintf("worked:%x", buf[:8]))
		return nil
	case "spin":
		n := 0
		for {
			n++
			if n < 0 {
				return nil
			}
		}
	case "badptr":
		rawInvoke(1 << 40)
		return nil
	case "badptr_mem":
		capability, buf := []byte("cap.test.leaf"), make([]byte, 64)
		capPtr, bufPtr := uint32(uintptr(unsafe.Pointer(&capability[0]))), uint32(uintptr(unsafe.Pointer(&buf[0])))
		const outside = 0xFFFF_FF00
		switch p.Text {
		case "cap":
			rawInvokeMem(outside, 64, bufPtr, 0, bufPtr, 64)
		case "input":
			rawInvokeMem(capPtr, uint32(len(capability)), bufPtr, 1<<20|outside, bufPtr, 64)
		case "output":
			rawInvokeMem(capPtr, uint32(len(capability)), bufPtr, 0, outside, 1024)
		}
		return nil
	case "legacy_call":
		out, err := legacyInvoke(p.Cap, p.Input)
		return invokeResult(c, out, err)
	}
	return errors.New("unknown op " + p.Op)
}
