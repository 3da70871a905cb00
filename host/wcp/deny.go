package wcp

import "net/http"

// DenyCode is a WCP deny reason code. The names are WCP's, verbatim, for
// interoperability with PyHall and other WCP implementations.
type DenyCode string

// The deny codes a decision can carry. DenyCodes documents each.
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
)

// DenyCodeInfo describes one deny code: the HTTP status the Hall API answers
// with and what the code means for the caller.
type DenyCodeInfo struct {
	Code    DenyCode
	Status  int
	Meaning string
}

// DenyCodes is the table every deny code, its HTTP status and its
// documentation come from, in the order make_decision can reach them.
var DenyCodes = []DenyCodeInfo{
	{DenyUnknownTenant, http.StatusForbidden, "signatory tenants are required and the tenant is not one of them"},
	{DenyMissingTenantID, http.StatusUnprocessableEntity, "tenant_id is empty or whitespace"},
	{DenyInvalidInput, http.StatusUnprocessableEntity, "blast_score is outside [0, 100]"},
	{DenyShadowRulesDetected, http.StatusConflict, "prod/edge request while the rule set contains shadowed rules"},
	{DenyNoMatchingRule, http.StatusNotFound, "no routing rule matches the request (fail closed)"},
	{DenyMissingCorrelationID, http.StatusUnprocessableEntity, "correlation_id is empty or whitespace"},
	{DenyMissingRequiredControls, http.StatusConflict, "a control the rule requires is implemented by no enrolled worker"},
	{DenyRequiresHuman, http.StatusForbidden, "blast score at or above 85 in prod/edge"},
	{DenyPolicyGateUnconfigured, http.StatusConflict, "the rule asks for a policy gate and none is configured"},
	{DenyInternalError, http.StatusInternalServerError, "the policy gate or privilege check failed"},
	{DenyPolicyGate, http.StatusForbidden, "the policy gate denied the request"},
	{DenyRequiresHumanApproval, http.StatusForbidden, "the policy gate requires a human approval"},
	{DenyPolicyGateInvalidResponse, http.StatusInternalServerError, "the policy gate answered something other than ALLOW, DENY or REQUIRE_HUMAN"},
	{DenyNoAvailableWorker, http.StatusNotFound, "no candidate worker of the matched rule is available"},
	{DenyAttestationUnconfigured, http.StatusConflict, "attestation is required and no hash source is configured"},
	{DenyWorkerAttestationMissing, http.StatusConflict, "the selected worker has no registered code hash"},
	{DenyWorkerAttestationInvalidHash, http.StatusConflict, "the registered code hash is not a SHA-256 hex digest"},
	{DenyWorkerHashUnavailable, http.StatusConflict, "the worker's current code hash could not be computed"},
	{DenyWorkerTampered, http.StatusConflict, "the worker's code differs from what was enrolled"},
	{DenyPrivilegeEnvelopeUnconfigured, http.StatusConflict, "privilege envelopes are required and no privilege check is configured"},
	{DenyPrivilegeEnvelopeViolated, http.StatusForbidden, "the worker's privilege envelope is not allowed for this env/data label"},
}

// HTTPStatus returns the HTTP status for code (409 for a code not in the
// table).
func (c DenyCode) HTTPStatus() int {
	for _, info := range DenyCodes {
		if info.Code == c {
			return info.Status
		}
	}
	return http.StatusConflict
}
