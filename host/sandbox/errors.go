package sandbox

import "fmt"

// Sandbox outcome codes (docs/ABI.md, "Sandbox outcome codes"). An *Error
// returned by Load or Worker.Call carries exactly one of them.
const (
	// CodeLimitTimeout: the call exceeded its wall-clock limit and was stopped.
	CodeLimitTimeout = "LIMIT_TIMEOUT"
	// CodeLimitMemory: the guest tried to grow a linear memory past
	// Limits.MemoryBytes (or a module's initial memory already exceeds it).
	CodeLimitMemory = "LIMIT_MEMORY"
	// CodeLimitInput: the request input exceeds Limits.InputBytes; the guest
	// did not run.
	CodeLimitInput = "LIMIT_INPUT"
	// CodeLimitOutput: the guest produced more than Limits.OutputBytes.
	CodeLimitOutput = "LIMIT_OUTPUT"
	// CodeWorkerTrap: the guest trapped, panicked or exited abnormally.
	CodeWorkerTrap = "WORKER_TRAP"
	// CodeWorkerFailed: the export returned non-zero; Message is the guest's
	// error message (Extism error_set).
	CodeWorkerFailed = "WORKER_FAILED"
	// CodeWorkerBadPointer: the guest passed a host function an offset that is
	// not a block of the Extism kernel memory.
	CodeWorkerBadPointer = "WORKER_BAD_POINTER"
	// CodeExportMissing: the requested export does not exist.
	CodeExportMissing = "EXPORT_MISSING"
	// CodeModuleInvalid: the bytes given to Load are not a valid, instantiable
	// WebAssembly module.
	CodeModuleInvalid = "MODULE_INVALID"
	// CodeEgressDenied: the guest used the Extism http_request import, which
	// the Hall never allows (network goes through hall_http only).
	CodeEgressDenied = "EGRESS_DENIED"
)

// Error codes a host function returns to the guest inside an
// {"error": {"code", "message"}} JSON block (docs/ABI.md). They never fail the
// call by themselves.
const (
	GuestSecretNotDeclared = "SECRET_NOT_DECLARED"
	GuestSecretUnavailable = "SECRET_UNAVAILABLE"
	GuestEgressDenied      = "EGRESS_DENIED"
	GuestHTTPFailed        = "HTTP_FAILED"
	GuestResponseTooLarge  = "RESPONSE_TOO_LARGE"
	GuestBadRequest        = "BAD_REQUEST"
	GuestRateLimited       = "RATE_LIMITED"
)

// Error is the outcome of a failed Load or Call. Callers inspect it with
// errors.As; Code is one of the Code* constants.
//
// # Notes
//
//   - Message is meant for people; it may contain the guest's own error text
//     (CodeWorkerFailed) and is never parsed by the Hall.
type Error struct {
	// Code is the stable sandbox outcome code.
	Code string
	// Message explains the failure.
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
