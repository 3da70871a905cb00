package sdk

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unsafe"
)

// Invoke asks the Hall to dispatch capability with input, as a hop of
// this call's chain, and returns the hop's output. The hop is a full
// decision of its own (routing rules, controls, envelopes, policies,
// approvals, attestation) for this call's tenant, env, data label, tenant
// risk, QoS class and correlation id; it is recorded with this call's
// decision as its parent (docs/ABI.md, "hall_invoke" and
// "hall_invoke_mem").
//
// The error is an *Error; test it with errors.Is:
//
//	out, err := c.Invoke("cap.doc.chunk", text)
//	switch {
//	case errors.Is(err, sdk.ErrInvokeDenied): // err.(*sdk.Error).DenyCode says why
//	case errors.Is(err, sdk.ErrInvokeFailed): // the hop's worker failed: .Outcome
//	case errors.Is(err, sdk.ErrChainLimit):   // depth or call count of the chain
//	}
//
// # Notes
//
//   - Only capabilities the worker's privilege_envelope.tools lists are
//     routed; any other is denied DENY_TOOL_NOT_DECLARED (and recorded).
//   - The hop runs within this call's remaining time; the guest waits for
//     it (a hop does not run concurrently with its caller).
func (c *Call) Invoke(capability string, input []byte) ([]byte, error) {
	// The capability, the input and the reply buffer are passed in this
	// module's own memory (hall_invoke_mem): the host reads and writes
	// them directly, with no kernel block and no JSON or base64 on the
	// way. A reply longer than the buffer costs one more host call.
	buf := make([]byte, invokeBuffer)
	r := hallInvokeMem(unsafe.Pointer(unsafe.StringData(capability)), uint32(len(capability)),
		unsafe.Pointer(unsafe.SliceData(input)), uint32(len(input)),
		unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)))
	n := uint32(r)
	if uint64(n) > uint64(len(buf)) {
		buf = make([]byte, n)
		if hallInvokeTake(unsafe.Pointer(unsafe.SliceData(buf)), n) != 0 {
			return nil, &Error{Code: ErrHostProtocol.Code, Message: fmt.Sprintf("hall_invoke_take: the host holds no reply of %d bytes", n)}
		}
	} else if n < invokeBuffer/2 {
		// Do not keep the whole buffer alive for a short reply.
		buf = bytes.Clone(buf[:n])
	}
	return parseInvokeReply(buf[:n], r&invokeReplyError != 0)
}

// invokeBuffer is the reply buffer Invoke offers hall_invoke_mem.
const invokeBuffer = 4096

// invokeReplyError is the bit of hall_invoke_mem's result that marks the
// reply as an error object (docs/ABI.md).
const invokeReplyError = 1 << 32

// parseInvokeReply is a hall_invoke_mem reply: the hop's output, or when
// isErr the JSON of the error.
func parseInvokeReply(b []byte, isErr bool) ([]byte, error) {
	if !isErr {
		return b, nil
	}
	e := new(Error)
	if err := json.Unmarshal(b, e); err != nil || e.Code == "" {
		return nil, &Error{Code: ErrHostProtocol.Code, Message: fmt.Sprintf("hall_invoke_mem: error reply is not the documented JSON: %q", b)}
	}
	return nil, e
}
