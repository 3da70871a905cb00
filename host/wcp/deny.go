package wcp

import "net/http"

// DenyCode is a WCP deny reason code. The names are WCP's, verbatim, for
// interoperability with PyHall and other WCP implementations.
type DenyCode string

// The deny codes a decision can carry. [DenyCodes] documents each.
const (
	DenyUnknownTenant                 DenyCode = "DENY_UNKNOWN_TENANT"
	DenyMissingTenantID               DenyCode = "DENY_MISSING_TENANT_ID"
	DenyInvalidInput                  DenyCode = "DENY_INVALID_INPUT"
	DenyShadowRulesDetected           DenyCode = "DENY_SHADOW_RULES_DETECTED"
	DenyNoMatchingRule                DenyCode = "DENY_NO_MATCHING_RULE"
	DenyMissingCorrelationID          DenyCode = "DENY_MISSING_CORRELATION_ID"
	DenyMissingRequiredControls       DenyCode = "DENY_MISSING_REQUIRED_CONTROLS"
	DenyRequiresHuman                 DenyCode = "DENY_REQUIRES_HUMAN"
	DenyPolicyGateUnconfigured        DenyCode = "DENY_POLICY_GATE_UNCONFIGURED"
	DenyInternalError                 DenyCode = "DENY_INTERNAL_ERROR"
	DenyPolicyGate                    DenyCode = "DENY_POLICY_GATE"
	DenyPolicyCostExceeded            DenyCode = "DENY_POLICY_COST_EXCEEDED"
	DenyRequiresHumanApproval         DenyCode = "DENY_REQUIRES_HUMAN_APPROVAL"
	DenyPolicyGateInvalidResponse     DenyCode = "DENY_POLICY_GATE_INVALID_RESPONSE"
	DenyNoAvailableWorker             DenyCode = "DENY_NO_AVAILABLE_WORKER"
	DenyAttestationUnconfigured       DenyCode = "DENY_ATTESTATION_UNCONFIGURED"
	DenyWorkerAttestationMissing      DenyCode = "DENY_WORKER_ATTESTATION_MISSING"
	DenyWorkerAttestationInvalidHash  DenyCode = "DENY_WORKER_ATTESTATION_INVALID_HASH"
	DenyWorkerHashUnavailable         DenyCode = "DENY_WORKER_HASH_UNAVAILABLE"
	DenyWorkerTampered                DenyCode = "DENY_WORKER_TAMPERED"
	DenyPrivilegeEnvelopeUnconfigured DenyCode = "DENY_PRIVILEGE_ENVELOPE_UNCONFIGURED"
	DenyPrivilegeEnvelopeViolated     DenyCode = "DENY_PRIVILEGE_ENVELOPE_VIOLATED"
	// The Hall's own deny codes of a sub-dispatch (a hop of a governed
	// pipeline, docs/ABI.md "hall_invoke"): none is PyHall's.
	DenyToolNotDeclared DenyCode = "DENY_TOOL_NOT_DECLARED"
	DenyChainLimit      DenyCode = "DENY_CHAIN_LIMIT"
	DenyChainBlast      DenyCode = "DENY_CHAIN_BLAST"
	// DenyWorkerUntrusted is the Hall's: the selected worker's namespace
	// is under an enforce trust policy (trust.json) and its recorded
	// signature does not verify under the policy in force (a key was
	// removed, or it was enrolled unsigned before the policy).
	DenyWorkerUntrusted DenyCode = "DENY_WORKER_UNTRUSTED"
)

// DenyCodeInfo describes one deny code: the HTTP status the Hall API answers
// with and what the code means for the caller.
type DenyCodeInfo struct {
	Code    DenyCode
	Status  int
	Meaning string
}

// DenyCodes returns every deny code with its HTTP status and meaning, in
// the order make_decision can reach them: the deny rows of the code table
// ([Codes]), from which it is derived. The slice is the caller's copy.
func DenyCodes() []DenyCodeInfo {
	var out []DenyCodeInfo
	for _, info := range codeTable {
		if info.Kind == KindDeny {
			out = append(out, DenyCodeInfo{DenyCode(info.Code), info.HTTPStatus, info.Meaning})
		}
	}
	return out
}

// HTTPStatus returns the HTTP status for code (409 for a code not in the
// table).
func (c DenyCode) HTTPStatus() int {
	if info, ok := Code(c).Info(); ok && info.Kind == KindDeny {
		return info.HTTPStatus
	}
	return http.StatusConflict
}
