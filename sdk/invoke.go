package sdk

import (
	"encoding/json"
	"fmt"
)

// Invoke asks the Hall to dispatch capability with input, as a hop of
// this call's chain, and returns the hop's output. The hop is a full
// decision of its own (routing rules, controls, envelopes, policies,
// approvals, attestation) for this call's tenant, env, data label, tenant
// risk, QoS class and correlation id; it is recorded with this call's
// decision as its parent (docs/ABI.md, "hall_invoke").
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
	b, err := json.Marshal(struct {
		Capability string `json:"capability"`
		Input      []byte `json:"input"`
	}{capability, input})
	if err != nil {
		return nil, fmt.Errorf("sdk: encoding hall_invoke request: %w", err)
	}
	arg := writeBlock(b)
	res := takeBlock(hallInvoke(arg))
	extismFree(arg)
	return parseInvokeReply(res)
}

func parseInvokeReply(b []byte) ([]byte, error) {
	var r struct {
		Output []byte `json:"output"`
		Error  *Error `json:"error"`
	}
	if err := decodeReply("hall_invoke", b, &r); err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, r.Error
	}
	if r.Output == nil {
		return []byte{}, nil
	}
	return r.Output, nil
}
