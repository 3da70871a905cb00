package sandbox

import (
	"context"
	"encoding/json"
	"fmt"

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
// call's Invoker. A call without one (a replay, a sandbox used on its own)
// answers INVOKE_UNAVAILABLE; a malformed argument BAD_REQUEST. Only an
// offset that is not a kernel block traps (readBlock).
func hallInvoke(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
	cs := stateOf(ctx)
	raw := readBlock(ctx, p, stack[0])
	var req invokeRequest
	var out []byte
	switch {
	case cs.invoke == nil:
		out = invokeErrorJSON(&InvokeError{Code: GuestInvokeUnavailable, Message: "this call cannot make sub-dispatches: hall_invoke is served only to a dispatch of the Hall (not to a replay)"})
	case json.Unmarshal(raw, &req) != nil:
		out = errorJSON(GuestBadRequest, "hall_invoke takes a JSON object {\"capability\": \"cap.…\", \"input\": \"<base64>\"}")
	case req.Capability == "":
		out = errorJSON(GuestBadRequest, "hall_invoke: capability is required")
	default:
		// The caller waits on its hop without a core (cpu.go), as on an
		// HTTP exchange: the hop takes its own, so a chain never waits on
		// the core its ancestor holds.
		var res []byte
		var ie *InvokeError
		if err := cs.cpu.waiting(func() { res, ie = cs.invoke(ctx, req.Capability, req.Input) }); err != nil {
			panic(fmt.Errorf("%s: hall_invoke: %w", cs.w.name, err))
		}
		if ie != nil {
			out = invokeErrorJSON(ie)
		} else {
			out, _ = json.Marshal(struct {
				Output []byte `json:"output"`
			}{res})
		}
	}
	stack[0] = writeBlock(p, out)
}

func invokeErrorJSON(e *InvokeError) []byte {
	b, _ := json.Marshal(struct {
		Error *InvokeError `json:"error"`
	}{e})
	return b
}
