package sdk

import "errors"

// Error is a failure reported by a Hall host function ({"error": {"code",
// "message"}} in docs/ABI.md). Code is stable and meant for programs;
// Message is for people.
//
// Test for a code with errors.Is against the Err* values, which match any
// Error with the same code:
//
//	if errors.Is(err, sdk.ErrSecretNotDeclared) { ... }
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// DenyCode is the hop's deny code (DENY_*) of an ErrInvokeDenied or
	// ErrChainLimit from Call.Invoke; "" otherwise.
	DenyCode string `json:"deny_code,omitempty"`
	// Outcome is the failed hop's receipt outcome (LIMIT_TIMEOUT,
	// WORKER_FAILED, …) of an ErrInvokeFailed; "" otherwise.
	Outcome string `json:"outcome,omitempty"`
	// DecisionID is the hop's recorded decision, when there is one.
	DecisionID string `json:"decision_id,omitempty"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

// Is reports whether target is an *Error with the same Code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// The error codes of the Hall host functions (docs/ABI.md), plus
// HOST_PROTOCOL for a host reply the SDK cannot understand.
var (
	ErrSecretNotDeclared = &Error{Code: "SECRET_NOT_DECLARED"}
	ErrSecretUnavailable = &Error{Code: "SECRET_UNAVAILABLE"}
	ErrEgressDenied      = &Error{Code: "EGRESS_DENIED"}
	ErrHTTPFailed        = &Error{Code: "HTTP_FAILED"}
	ErrResponseTooLarge  = &Error{Code: "RESPONSE_TOO_LARGE"}
	ErrBadRequest        = &Error{Code: "BAD_REQUEST"}
	ErrRateLimited       = &Error{Code: "RATE_LIMITED"}
	ErrHostProtocol      = &Error{Code: "HOST_PROTOCOL"}
	// Call.Invoke: the hop was denied (DenyCode), its worker failed
	// (Outcome), it would pass a chain limit, or this call cannot make
	// sub-dispatches.
	ErrInvokeDenied      = &Error{Code: "INVOKE_DENIED"}
	ErrInvokeFailed      = &Error{Code: "INVOKE_FAILED"}
	ErrChainLimit        = &Error{Code: "CHAIN_LIMIT"}
	ErrInvokeUnavailable = &Error{Code: "INVOKE_UNAVAILABLE"}
)
