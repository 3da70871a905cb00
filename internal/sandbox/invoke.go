package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"

	extism "github.com/extism/go-sdk"

	"github.com/wcphall/hall/host/wcp"
)

// Error codes hall_invoke returns to the guest (docs/ABI.md), the guest
// rows of wcp.Codes.
const (
	GuestInvokeDenied      = string(wcp.CodeInvokeDenied)
	GuestInvokeFailed      = string(wcp.CodeInvokeFailed)
	GuestChainLimit        = string(wcp.CodeChainLimit)
	GuestInvokeUnavailable = string(wcp.CodeInvokeUnavailable)
)

// Invoker serves the hall_invoke host function of one call: a
// sub-dispatch of capability with input, made by the embedder (the Hall
// decides, runs and records it as a hop of the calling dispatch). ctx is
// the calling guest's call context: its deadline and cancellation bound
// the sub-dispatch.
//
// # Notes
//
//   - An Invoker runs on the guest's call goroutine while the guest waits:
//     it must return when ctx is done.
//   - It never panics on what the guest sent: capability is an arbitrary
//     string the guest chose.
type Invoker func(ctx context.Context, capability string, input []byte) ([]byte, *InvokeError)

// InvokeError is a sub-dispatch that produced no output, as the guest
// sees it in the {"error": …} block of hall_invoke.
type InvokeError struct {
	// Code is INVOKE_DENIED, INVOKE_FAILED, CHAIN_LIMIT,
	// INVOKE_UNAVAILABLE or BAD_REQUEST.
	Code    string `json:"code"`
	Message string `json:"message"`
	// DenyCode is the sub-dispatch's deny code (INVOKE_DENIED,
	// CHAIN_LIMIT).
	DenyCode string `json:"deny_code,omitempty"`
	// Outcome is the failed hop's receipt outcome (INVOKE_FAILED).
	Outcome string `json:"outcome,omitempty"`
	// DecisionID is the hop's decision, when one was recorded.
	DecisionID string `json:"decision_id,omitempty"`
}

// invokeRequest is hall_invoke's argument block.
type invokeRequest struct {
	Capability string `json:"capability"`
	// Input is base64 in JSON (encoding/json's []byte).
	Input []byte `json:"input"`
}

// hallInvoke serves hall_invoke(i64) -> i64: a sub-dispatch through the
// call's Invoker, its request and reply JSON in Extism kernel blocks (the
// first ABI; sdk.Call.Invoke now uses hall_invoke_mem). A call without an
// Invoker (a replay, a sandbox used on its own) answers
// INVOKE_UNAVAILABLE; a malformed argument BAD_REQUEST. Only an offset
// that is not a kernel block traps (readBlock).
func hallInvoke(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
	cs := stateOf(ctx)
	raw := readBlock(ctx, p, stack[0])
	var req invokeRequest
	var out []byte
	if err := json.Unmarshal(raw, &req); err != nil && cs.invoke != nil {
		out = errorJSON(GuestBadRequest, "hall_invoke takes a JSON object {\"capability\": \"cap.…\", \"input\": \"<base64>\"}")
	} else if res, ie := cs.hop(ctx, req.Capability, req.Input); ie != nil {
		out = invokeErrorJSON(ie)
	} else {
		out, _ = json.Marshal(struct {
			Output []byte `json:"output"`
		}{res})
	}
	stack[0] = writeBlock(p, out)
}

// hop runs one sub-dispatch for either ABI: what the guest asked, checked
// for what needs no decision, then the Invoker.
func (cs *callState) hop(ctx context.Context, capability string, input []byte) ([]byte, *InvokeError) {
	switch {
	case cs.invoke == nil:
		return nil, &InvokeError{Code: GuestInvokeUnavailable, Message: "this call cannot make sub-dispatches: hall_invoke is served only to a dispatch of the Hall (not to a replay)"}
	case capability == "":
		return nil, &InvokeError{Code: GuestBadRequest, Message: "hall_invoke: capability is required"}
	}
	// The caller waits on its hop without a core (cpu.go), as on an HTTP
	// exchange: the hop takes its own, so a chain never waits on the core
	// its ancestor holds.
	var res []byte
	var ie *InvokeError
	if err := cs.cpu.waiting(func() { res, ie = cs.invoke(ctx, capability, input) }); err != nil {
		panic(fmt.Errorf("%s: hall_invoke: %w", cs.w.name, err))
	}
	return res, ie
}

func invokeErrorJSON(e *InvokeError) []byte {
	b, _ := json.Marshal(struct {
		Error *InvokeError `json:"error"`
	}{e})
	return b
}

// invokeReplyError is the bit of hall_invoke_mem's result that says the
// reply is an error (docs/ABI.md): the JSON of an InvokeError rather than
// the hop's output.
const invokeReplyError = 1 << 32

// maxCapabilityBytes bounds the capability id hall_invoke_mem reads; no
// valid id comes near it (wcp.CheckID).
const maxCapabilityBytes = 4096

// hallInvokeMem serves hall_invoke_mem(cap_ptr, cap_len, in_ptr, in_len,
// out_ptr, out_cap i32) -> i64: hall_invoke with its arguments read from,
// and its reply written to, the guest's own linear memory, with no kernel
// block, no JSON and no base64 on the way (RATIONALE.md, "Sub-dispatch").
// The result's low 32 bits are the reply's length n; invokeReplyError is
// set when the reply is an InvokeError's JSON. A reply of at most out_cap
// bytes is written at out_ptr; a longer one is held for
// hall_invoke_take.
//
// # Notes
//
//   - Every range is checked against the guest memory's size before the
//     hop is decided, and the output range again before it is written: a
//     range outside it traps the call (WORKER_BAD_POINTER) and nothing
//     is decided.
//   - The input is copied out of guest memory before the hop runs.
func hallInvokeMem(ctx context.Context, _ *extism.CurrentPlugin, stack []uint64) {
	cs := stateOf(ctx)
	mem := cs.guestMemory()
	capOff, capLen := uint32(stack[0]), uint32(stack[1])
	inOff, inLen := uint32(stack[2]), uint32(stack[3])
	outOff, outCap := uint32(stack[4]), uint32(stack[5])
	if capLen > maxCapabilityBytes {
		badPointer("hall_invoke_mem: capability of %d bytes exceeds %d", capLen, maxCapabilityBytes)
	}
	if inLen > maxHostArg {
		badPointer("hall_invoke_mem: input of %d bytes exceeds the %d-byte host argument limit", inLen, maxHostArg)
	}
	capability, ok := mem.span(capOff, capLen)
	if !ok {
		badPointer("hall_invoke_mem: capability at %d of %d bytes is outside the guest memory of %d bytes", capOff, capLen, len(mem.buf))
	}
	input, ok := mem.span(inOff, inLen)
	if !ok {
		badPointer("hall_invoke_mem: input at %d of %d bytes is outside the guest memory of %d bytes", inOff, inLen, len(mem.buf))
	}
	if _, ok := mem.span(outOff, outCap); !ok {
		badPointer("hall_invoke_mem: output buffer at %d of %d bytes is outside the guest memory of %d bytes", outOff, outCap, len(mem.buf))
	}
	cs.reply = nil
	out, ie := cs.hop(ctx, string(capability), bytes.Clone(input))
	var flag uint64
	if ie != nil {
		out, _ = json.Marshal(ie)
		flag = invokeReplyError
	}
	if uint64(len(out)) > math.MaxUint32 {
		panic(errorf(CodeLimitOutput, "%s: hall_invoke_mem: a reply of %d bytes cannot be returned", cs.w.name, len(out)))
	}
	n := uint32(len(out))
	if n <= outCap {
		dst, ok := mem.span(outOff, n)
		if !ok {
			badPointer("hall_invoke_mem: output buffer at %d of %d bytes is outside the guest memory of %d bytes", outOff, n, len(mem.buf))
		}
		copy(dst, out)
	} else {
		cs.reply = out
	}
	stack[0] = flag | uint64(n)
}

// hallInvokeTake serves hall_invoke_take(ptr, len i32) -> i32: it copies
// the reply hall_invoke_mem held (one longer than the guest's buffer) to
// ptr and forgets it. len must be the reply's length; the result is 0,
// or 1 when no reply of that length is held (nothing is written).
func hallInvokeTake(ctx context.Context, _ *extism.CurrentPlugin, stack []uint64) {
	cs := stateOf(ctx)
	off, n := uint32(stack[0]), uint32(stack[1])
	if cs.reply == nil || uint64(len(cs.reply)) != uint64(n) {
		stack[0] = 1
		return
	}
	mem := cs.guestMemory()
	dst, ok := mem.span(off, n)
	if !ok {
		badPointer("hall_invoke_take: buffer at %d of %d bytes is outside the guest memory of %d bytes", off, n, len(mem.buf))
	}
	copy(dst, cs.reply)
	cs.reply = nil
	stack[0] = 0
}

// guestMemory is the calling guest's linear memory; a module without one
// cannot pass hall_invoke_mem a pointer, so the call traps.
func (cs *callState) guestMemory() *linearMemory {
	if cs.in == nil || cs.in.guest == nil {
		badPointer("hall_invoke_mem: the module has no linear memory of its own to pass pointers into")
	}
	return cs.in.guest
}
