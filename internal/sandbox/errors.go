package sandbox

import (
	"fmt"

	"github.com/wcphall/hall/host/wcp"
)

// Sandbox outcome codes (docs/ABI.md, "Sandbox outcome codes"), the
// outcome rows of wcp.Codes. An *Error returned by Load or Worker.Call
// carries exactly one of them.
const (
	// CodeLimitTimeout: the call exceeded its wall-clock limit and was stopped.
	CodeLimitTimeout = string(wcp.CodeLimitTimeout)
	// CodeLimitMemory: the guest tried to grow a linear memory past
	// Limits.MemoryBytes (or a module's initial memory already exceeds it).
	CodeLimitMemory = string(wcp.CodeLimitMemory)
	// CodeLimitInput: the request input exceeds Limits.InputBytes; the guest
	// did not run.
	CodeLimitInput = string(wcp.CodeLimitInput)
	// CodeLimitOutput: the guest produced more than Limits.OutputBytes.
	CodeLimitOutput = string(wcp.CodeLimitOutput)
	// CodeWorkerTrap: the guest trapped, panicked or exited abnormally.
	CodeWorkerTrap = string(wcp.CodeWorkerTrap)
	// CodeWorkerFailed: the export returned non-zero; Message is the guest's
	// error message (Extism error_set).
	CodeWorkerFailed = string(wcp.CodeWorkerFailed)
	// CodeWorkerBadPointer: the guest passed a host function an offset that is
	// not a block of the Extism kernel memory.
	CodeWorkerBadPointer = string(wcp.CodeWorkerBadPointer)
	// CodeExportMissing: the requested export does not exist.
	CodeExportMissing = string(wcp.CodeExportMissing)
	// CodeModuleInvalid: the bytes given to Load are not a valid, instantiable
	// WebAssembly module.
	CodeModuleInvalid = string(wcp.CodeModuleInvalid)
	// CodeLimitDisk: the guest's writes reached its write quota
	// (Limits.WriteBytes, Limits.WriteFiles).
	CodeLimitDisk = string(wcp.CodeLimitDisk)
	// CodeLimitStack: the guest's calls nested past Limits.StackBytes
	// (wasmmod.GuardStack).
	CodeLimitStack = string(wcp.CodeLimitStack)
	// CodeMemoryBudget: the Engine's memory budget did not admit the call
	// before its deadline; the guest did not run.
	CodeMemoryBudget = string(wcp.CodeMemoryBudget)
	// CodeEgressDenied: the guest's Extism http_request went to a host
	// outside Policy.Egress (extism_http.go); the call traps with Extism's
	// "HTTP request to '<url>' is not allowed".
	CodeEgressDenied = string(wcp.CodeEgressDenied)
)

// Error codes a host function returns to the guest inside an
// {"error": {"code", "message"}} JSON block (docs/ABI.md), the guest rows of
// wcp.Codes (EGRESS_DENIED is an outcome row). They never fail the call by
// themselves.
const (
	GuestSecretNotDeclared = string(wcp.CodeSecretNotDeclared)
	GuestSecretUnavailable = string(wcp.CodeSecretUnavailable)
	GuestEgressDenied      = string(wcp.CodeEgressDenied)
	GuestHTTPFailed        = string(wcp.CodeHTTPFailed)
	GuestResponseTooLarge  = string(wcp.CodeResponseTooLarge)
	GuestBadRequest        = string(wcp.CodeBadRequest)
	GuestRateLimited       = string(wcp.CodeRateLimited)
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
