package wcp

import (
	"errors"
	"net/http"
	"slices"
)

// Code is a stable code the Hall emits: a WCP deny code, a sandbox outcome
// recorded in a receipt, a ledger or enrollment error, an HTTP API error, or
// an error a host function returns to a guest. Programs act on the code;
// messages are for people.
//
// Every code is a row of the table [Codes] returns, which is also where
// docs/CODES.md and the other packages' constants come from.
//
// # Notes
//
//   - Codes are upper-case snake case and never change meaning once
//     released: they are written into signed receipts.
//   - The DENY_* codes are WCP's, verbatim; their typed names are the
//     [DenyCode] constants.
type Code string

// Kind says where a [Code] appears.
type Kind string

// The kinds of codes.
const (
	// KindDeny: a WCP deny code, the deny_reason_if_denied.code of a
	// RouteDecision (WCP §4.2).
	KindDeny Kind = "deny"
	// KindOutcome: the outcome of a dispatch whose worker did not succeed,
	// as recorded in its receipt (sandbox outcomes and Hall failures).
	KindOutcome Kind = "outcome"
	// KindLedger: an error of the evidence ledger.
	KindLedger Kind = "ledger"
	// KindEnroll: an error of enrolling a worker or of the enrolled
	// registry.
	KindEnroll Kind = "enroll"
	// KindHTTP: an error code of the HTTP API only.
	KindHTTP Kind = "http"
	// KindGuest: an error a host function returns to the guest in an
	// {"error": {"code", "message"}} block (docs/ABI.md); it does not fail
	// the call and never reaches an HTTP caller.
	KindGuest Kind = "guest"
)

// Sandbox outcomes and Hall failures recorded as a receipt's outcome.
const (
	CodeLimitTimeout     Code = "LIMIT_TIMEOUT"
	CodeLimitMemory      Code = "LIMIT_MEMORY"
	CodeLimitInput       Code = "LIMIT_INPUT"
	CodeLimitOutput      Code = "LIMIT_OUTPUT"
	CodeWorkerTrap       Code = "WORKER_TRAP"
	CodeWorkerFailed     Code = "WORKER_FAILED"
	CodeWorkerBadPointer Code = "WORKER_BAD_POINTER"
	CodeExportMissing    Code = "EXPORT_MISSING"
	CodeModuleInvalid    Code = "MODULE_INVALID"
	CodeEgressDenied     Code = "EGRESS_DENIED"
	CodeLimitDisk        Code = "LIMIT_DISK"
	CodeLimitStack       Code = "LIMIT_STACK"
	CodeMemoryBudget     Code = "MEMORY_BUDGET"
	CodeCancelled        Code = "CANCELLED"
	CodeHallError        Code = "HALL_ERROR"
)

// Ledger errors.
const (
	CodeLedgerNotFound     Code = "LEDGER_NOT_FOUND"
	CodeRecordInvalid      Code = "RECORD_INVALID"
	CodeLedgerReadOnly     Code = "LEDGER_READ_ONLY"
	CodeLedgerSchemaTooNew Code = "LEDGER_SCHEMA_TOO_NEW"
	CodeLedgerKey          Code = "LEDGER_KEY"
	CodeKeyNotAdmitted     Code = "KEY_NOT_ADMITTED"
	CodeLedgerClosed       Code = "LEDGER_CLOSED"
	CodeSnapshotUnrecorded Code = "SNAPSHOT_UNRECORDED"
)

// Enrollment and registry errors.
const (
	CodeRecordMismatch Code = "RECORD_MISMATCH"
	CodeRecordTampered Code = "RECORD_TAMPERED"
	CodeHallClosed     Code = "HALL_CLOSED"
	CodeHallDiskLow    Code = "HALL_DISK_LOW"
)

// Supply-chain errors: registries and the trust policy
// (docs/SUPPLY-CHAIN.md).
const (
	CodeTrustRefused        Code = "TRUST_REFUSED"
	CodeTrustInvalid        Code = "TRUST_INVALID"
	CodeOCIReferenceInvalid Code = "OCI_REFERENCE_INVALID"
	CodeOCIFetchFailed      Code = "OCI_FETCH_FAILED"
	CodeOCIArtifactRefused  Code = "OCI_ARTIFACT_REFUSED"
)

// HTTP API errors.
const (
	CodeUnauthenticated     Code = "UNAUTHENTICATED"
	CodeForbidden           Code = "FORBIDDEN"
	CodeTenantMismatch      Code = "TENANT_MISMATCH"
	CodeInvalidJSON         Code = "INVALID_JSON"
	CodeInvalidInput        Code = "INVALID_INPUT"
	CodeInvalidRequest      Code = "INVALID_REQUEST"
	CodeBodyTooLarge        Code = "BODY_TOO_LARGE"
	CodeUnsupportedMedia    Code = "UNSUPPORTED_MEDIA_TYPE"
	CodeNotFound            Code = "NOT_FOUND"
	CodeMethodNotAllowed    Code = "METHOD_NOT_ALLOWED"
	CodeWorkerNotFound      Code = "WORKER_NOT_FOUND"
	CodeReceiptNotFound     Code = "RECEIPT_NOT_FOUND"
	CodeInvalidDigest       Code = "INVALID_DIGEST"
	CodeArtifactUnknown     Code = "ARTIFACT_UNKNOWN"
	CodeWorkerRoutingOnly   Code = "WORKER_ROUTING_ONLY"
	CodeRegistryUnavailable Code = "REGISTRY_UNAVAILABLE"
	CodeDecisionConflict    Code = "DECISION_CONFLICT"
	CodeHallOffline         Code = "HALL_OFFLINE"
	CodeHallSaturated       Code = "HALL_SATURATED"
	CodeEvidenceUnavailable Code = "EVIDENCE_UNAVAILABLE"
	CodeStateUnavailable    Code = "STATE_UNAVAILABLE"
	CodeInternal            Code = "INTERNAL"
	CodeRulesInvalid        Code = "RULES_INVALID"
	CodePreconditionFailed  Code = "PRECONDITION_FAILED"
)

// Policy and approval errors (docs/POLICY.md).
const (
	CodePolicyInvalid     Code = "POLICY_INVALID"
	CodeApprovalNotFound  Code = "APPROVAL_NOT_FOUND"
	CodeApprovalConflict  Code = "APPROVAL_CONFLICT"
	CodeApprovalForbidden Code = "APPROVAL_FORBIDDEN"
	CodeApprovalStale     Code = "APPROVAL_STALE"
	// CodeAdminTokenUnrecorded: an admin action (rules, enrollment) by a
	// token whose admin issuance the signed change chain does not record,
	// or records revoked (docs/EVIDENCE.md, "Tokens").
	CodeAdminTokenUnrecorded Code = "ADMIN_TOKEN_UNRECORDED"
)

// Quotas on what callers create (docs/HTTP.md, "Quotas").
const (
	// CodeApprovalQuota: the tenant has its maximum of pending approvals
	// (hall.json quotas.pending_approvals_per_tenant); nothing ran and no
	// approval was created.
	CodeApprovalQuota Code = "APPROVAL_QUOTA"
	// CodeSessionQuota: the token has its maximum of open MCP sessions.
	CodeSessionQuota Code = "SESSION_QUOTA"
	// CodeSigninThrottled: too many console sign-in attempts from one
	// source address.
	CodeSigninThrottled Code = "SIGNIN_THROTTLED"
)

// Errors host functions return to the guest (docs/ABI.md).
const (
	CodeSecretNotDeclared Code = "SECRET_NOT_DECLARED"
	CodeSecretUnavailable Code = "SECRET_UNAVAILABLE"
	CodeHTTPFailed        Code = "HTTP_FAILED"
	CodeResponseTooLarge  Code = "RESPONSE_TOO_LARGE"
	CodeBadRequest        Code = "BAD_REQUEST"
	CodeRateLimited       Code = "RATE_LIMITED"
	// Errors of hall_invoke (a sub-dispatch; docs/ABI.md).
	CodeInvokeDenied      Code = "INVOKE_DENIED"
	CodeInvokeFailed      Code = "INVOKE_FAILED"
	CodeChainLimit        Code = "CHAIN_LIMIT"
	CodeInvokeUnavailable Code = "INVOKE_UNAVAILABLE"
)

// CodeInfo is one row of the code table ([Codes]).
type CodeInfo struct {
	Code Code
	Kind Kind
	// HTTPStatus is the status the HTTP API answers with when this code is
	// the error; 0 for guest codes, which never reach an HTTP caller.
	HTTPStatus int
	// Meaning is what the code tells the caller (docs/CODES.md shows it).
	Meaning string
}

// Codes returns the one table of every code the Hall emits, each with its
// kind, HTTP status and meaning. [DenyCodes], the constants of the
// sandbox, ledger and server packages, docs/CODES.md and the code tables
// of docs/HTTP.md come from it; tests keep the documents in step.
//
// # Notes
//
//   - The slice is the caller's copy: changing it changes no code's
//     status or meaning anywhere else.
//   - Each code appears once. A code used in two places (MODULE_INVALID
//     is a dispatch outcome and an enrollment refusal; RECORD_INVALID a
//     ledger and an enrollment error) keeps its first kind, and its
//     meaning says where else it appears.
//   - The deny rows are in the order make_decision can reach them.
func Codes() []CodeInfo { return slices.Clone(codeTable) }

// codeTable is the table Codes returns copies of.
var codeTable = []CodeInfo{
	{Code(DenyUnknownTenant), KindDeny, http.StatusForbidden, "signatory tenants are required and the tenant is not one of them"},
	{Code(DenyMissingTenantID), KindDeny, http.StatusUnprocessableEntity, "tenant_id is empty or whitespace"},
	{Code(DenyInvalidInput), KindDeny, http.StatusUnprocessableEntity, "blast_score is outside [0, 100]"},
	{Code(DenyShadowRulesDetected), KindDeny, http.StatusConflict, "prod/edge request while the rule set contains shadowed rules"},
	{Code(DenyNoMatchingRule), KindDeny, http.StatusNotFound, "no routing rule matches the request (fail closed)"},
	{Code(DenyMissingCorrelationID), KindDeny, http.StatusUnprocessableEntity, "correlation_id is empty or whitespace"},
	{Code(DenyMissingRequiredControls), KindDeny, http.StatusConflict, "a control the rule requires is implemented by no enrolled worker"},
	{Code(DenyRequiresHuman), KindDeny, http.StatusForbidden, "blast score at or above 85 in prod/edge"},
	{Code(DenyPolicyGateUnconfigured), KindDeny, http.StatusConflict, "the rule asks for a policy gate and none is configured"},
	{Code(DenyInternalError), KindDeny, http.StatusInternalServerError, "the policy gate or privilege check failed"},
	{Code(DenyPolicyGate), KindDeny, http.StatusForbidden, "the policy gate denied the request"},
	{Code(DenyPolicyCostExceeded), KindDeny, http.StatusForbidden, "a policy's evaluation went over the policy cost limit (hall.json policy.cost_limit) and was stopped (fail closed); the Hall's own, not WCP's"},
	{Code(DenyRequiresHumanApproval), KindDeny, http.StatusForbidden, "the policy gate requires a human approval"},
	{Code(DenyPolicyGateInvalidResponse), KindDeny, http.StatusInternalServerError, "the policy gate answered something other than ALLOW, DENY or REQUIRE_HUMAN"},
	{Code(DenyNoAvailableWorker), KindDeny, http.StatusNotFound, "no candidate worker of the matched rule is available"},
	{Code(DenyAttestationUnconfigured), KindDeny, http.StatusConflict, "attestation is required and no hash source is configured"},
	{Code(DenyWorkerAttestationMissing), KindDeny, http.StatusConflict, "the selected worker has no registered code hash"},
	{Code(DenyWorkerAttestationInvalidHash), KindDeny, http.StatusConflict, "the registered code hash is not a SHA-256 hex digest"},
	{Code(DenyWorkerHashUnavailable), KindDeny, http.StatusConflict, "the worker's current code hash could not be computed"},
	{Code(DenyWorkerTampered), KindDeny, http.StatusConflict, "the worker's code differs from what was enrolled"},
	{Code(DenyPrivilegeEnvelopeUnconfigured), KindDeny, http.StatusConflict, "privilege envelopes are required and no privilege check is configured"},
	{Code(DenyPrivilegeEnvelopeViolated), KindDeny, http.StatusForbidden, "the worker's privilege envelope is not allowed for this env/data label"},
	{Code(DenyToolNotDeclared), KindDeny, http.StatusForbidden, "a worker called a capability its privilege_envelope.tools does not list; denied before routing and recorded (the Hall's code)"},
	{Code(DenyChainLimit), KindDeny, http.StatusTooManyRequests, "a sub-dispatch would pass the chain's depth, calls per dispatch or calls per chain (hall.json chain); recorded (the Hall's code)"},
	{Code(DenyChainBlast), KindDeny, http.StatusForbidden, "a sub-dispatch would take the chain's summed blast score past the threshold for its env and data label (hall.json chain.blast_thresholds); recorded (the Hall's code)"},
	{Code(DenyWorkerUntrusted), KindDeny, http.StatusForbidden, "the worker's namespace is under an enforce trust policy and its recorded signature does not verify under the policy in force"},

	// A worker that ran and failed is a gateway error: 502, 504 when it ran
	// out of time.
	{CodeLimitTimeout, KindOutcome, http.StatusGatewayTimeout, "the worker exceeded its wall-clock limit and was stopped"},
	{CodeLimitMemory, KindOutcome, http.StatusBadGateway, "the worker tried to grow its memory past its limit (or its initial memory exceeds it)"},
	{CodeLimitInput, KindOutcome, http.StatusRequestEntityTooLarge, "the input exceeds the worker's input limit; the worker did not run"},
	{CodeLimitOutput, KindOutcome, http.StatusBadGateway, "the worker produced more output than its limit"},
	{CodeLimitDisk, KindOutcome, http.StatusBadGateway, "the worker's writes reached its write quota (bytes or files in its write directories)"},
	{CodeLimitStack, KindOutcome, http.StatusBadGateway, "the worker's calls nested deeper than its call stack budget allows (unbounded recursion)"},
	{CodeMemoryBudget, KindOutcome, http.StatusServiceUnavailable, "the Hall-wide memory budget did not admit the dispatch before its deadline; the worker did not run"},
	{CodeWorkerTrap, KindOutcome, http.StatusBadGateway, "the worker trapped, panicked or exited abnormally"},
	{CodeWorkerFailed, KindOutcome, http.StatusBadGateway, "the worker's export returned non-zero; the message is the worker's own error"},
	{CodeWorkerBadPointer, KindOutcome, http.StatusBadGateway, "the worker passed a host function an offset that is not a block of the Extism kernel memory"},
	{CodeExportMissing, KindOutcome, http.StatusBadGateway, "the requested export does not exist in the module"},
	{CodeModuleInvalid, KindOutcome, http.StatusBadGateway, "the module is not a valid, instantiable WebAssembly module (422 when POST /enroll or PUT /artifacts refuses it)"},
	{CodeEgressDenied, KindOutcome, http.StatusBadGateway, "the worker's Extism http_request went to a host outside network_egress (or was redirected or resolved there); hall_http returns it to the guest for the same reason"},
	// 499 is the "client closed request" status of nginx and grpc-gateway;
	// the HTTP server detaches dispatches from their clients, so no HTTP
	// caller receives it (a dispatch cut off by a shutdown is answered
	// 502 with this code).
	{CodeCancelled, KindOutcome, 499, "the caller cancelled the dispatch, or the Hall's shutdown cut it off past its grace period, while the worker ran; recorded"},
	{CodeHallError, KindOutcome, http.StatusInternalServerError, "the Hall itself failed during the dispatch"},

	{CodeLedgerNotFound, KindLedger, http.StatusNotFound, "no such receipt or decision in the ledger"},
	{CodeRecordInvalid, KindLedger, http.StatusUnprocessableEntity, "a receipt, decision, event or registry record is malformed; the message (or problems) names the field"},
	{CodeLedgerReadOnly, KindLedger, http.StatusInternalServerError, "the ledger cannot be written (opened read-only, a read-only file or file system)"},
	{CodeLedgerSchemaTooNew, KindLedger, http.StatusInternalServerError, "the ledger database was migrated by a newer Hall"},
	{CodeLedgerKey, KindLedger, http.StatusInternalServerError, "the ledger signing key is missing, unreadable or malformed"},
	{CodeKeyNotAdmitted, KindLedger, http.StatusServiceUnavailable, "this node's signing key is not admitted to the shared ledger's keyring (or was revoked): it signs nothing, so nothing is decided or run; the message gives the hall keys admit command an administrator runs"},
	{CodeLedgerClosed, KindLedger, http.StatusServiceUnavailable, "a write was submitted after the ledger was closed"},
	{CodeSnapshotUnrecorded, KindLedger, http.StatusServiceUnavailable, "the rules, policies, configuration and records in force could not be recorded in the evidence ledger; nothing is decided under them (Decide denies DENY_INTERNAL_ERROR naming this code)"},

	{CodeRecordMismatch, KindEnroll, http.StatusUnprocessableEntity, "a supplied record differs from the module's embedded wcp.record"},
	{CodeRecordTampered, KindEnroll, http.StatusConflict, "an enrolled record file no longer matches its seal"},
	{CodeHallClosed, KindEnroll, http.StatusServiceUnavailable, "the Hall was closed"},
	{CodeTrustRefused, KindEnroll, http.StatusForbidden, "the trust policy refused the worker: unsigned, or not signed by a signer trusted for its namespace, or its namespace is enforced with no signer configured; nothing was enrolled"},
	{CodeTrustInvalid, KindEnroll, http.StatusUnprocessableEntity, "trust.json cannot be used; the message names the field"},
	{CodeOCIReferenceInvalid, KindEnroll, http.StatusUnprocessableEntity, "not an oci://HOST[:PORT]/REPO:TAG or …@sha256:<hex> reference, or --plain-http for a registry that is not on loopback"},
	{CodeOCIFetchFailed, KindEnroll, http.StatusBadGateway, "the registry could not be reached, refused the credentials, or does not hold the reference"},
	{CodeOCIArtifactRefused, KindEnroll, http.StatusUnprocessableEntity, "the registry served something the Hall refuses: not a Wasm artifact, a layer over its size limit (not read), or content that does not match its digest"},
	{CodeHallDiskLow, KindEnroll, http.StatusInsufficientStorage, "the state directory's file system is below the Hall's free-space floor; the dispatch was refused so its evidence can always be written"},

	{CodeUnauthenticated, KindHTTP, http.StatusUnauthorized, "no bearer token, or a token that is malformed, unknown or revoked"},
	{CodeForbidden, KindHTTP, http.StatusForbidden, "a valid token of the wrong scope"},
	{CodeTenantMismatch, KindHTTP, http.StatusForbidden, "the request names another tenant than the token's"},
	{CodeInvalidJSON, KindHTTP, http.StatusBadRequest, "the body (or a part of it) is not JSON"},
	{CodeInvalidInput, KindHTTP, http.StatusUnprocessableEntity, "the RouteInput is invalid; problems lists every field"},
	{CodeInvalidRequest, KindHTTP, http.StatusUnprocessableEntity, "the request is malformed (400 when a path or query parameter is)"},
	{CodeBodyTooLarge, KindHTTP, http.StatusRequestEntityTooLarge, "the body or a part is over its limit"},
	{CodeUnsupportedMedia, KindHTTP, http.StatusUnsupportedMediaType, "the Content-Type is not one the endpoint takes"},
	{CodeNotFound, KindHTTP, http.StatusNotFound, "no such endpoint"},
	{CodeMethodNotAllowed, KindHTTP, http.StatusMethodNotAllowed, "the endpoint does not take this method"},
	{CodeWorkerNotFound, KindHTTP, http.StatusNotFound, "no worker with this id is enrolled"},
	{CodeReceiptNotFound, KindHTTP, http.StatusNotFound, "no such receipt, or another tenant's"},
	{CodeInvalidDigest, KindHTTP, http.StatusBadRequest, "the artifact path is not sha256: and 64 lowercase hex digits"},
	{CodeArtifactUnknown, KindHTTP, http.StatusUnprocessableEntity, "artifact_hash names no uploaded module"},
	{CodeWorkerRoutingOnly, KindHTTP, http.StatusConflict, "the selected worker is a routing-only record (no module): it takes part in decisions and is never dispatched; nothing ran"},
	{CodeRegistryUnavailable, KindHTTP, http.StatusServiceUnavailable, "the Hall consults no worker registry service (PyHall's ban-list and verify proxies answer this, as PyHall does when its registry is unreachable): decide from the Hall's own evidence"},
	{CodeDecisionConflict, KindHTTP, http.StatusConflict, "POST /decisions/ingest: the decision_id is already recorded for the tenant with other content; nothing was written"},
	{CodeHallOffline, KindHTTP, http.StatusServiceUnavailable, "the Hall is offline and refuses dispatch"},
	{CodeHallSaturated, KindHTTP, http.StatusServiceUnavailable, "every dispatch slot is taken; retry after a second"},
	{CodeEvidenceUnavailable, KindHTTP, http.StatusInternalServerError, "the evidence ledger could not be read or written"},
	{CodeStateUnavailable, KindHTTP, http.StatusServiceUnavailable, "the shared database (--database-url) cannot be reached; nothing ran; retry after a second"},
	{CodeInternal, KindHTTP, http.StatusInternalServerError, "the server failed; its log has the details under the request id"},
	{CodeRulesInvalid, KindHTTP, http.StatusUnprocessableEntity, "a rules document was refused (it does not compile, or a rule is shadowed); the message says which; the rules in force are unchanged"},
	{CodePreconditionFailed, KindHTTP, http.StatusPreconditionFailed, "If-Match does not name the rules in force (they changed since they were read); nothing is changed"},
	{CodePolicyInvalid, KindHTTP, http.StatusUnprocessableEntity, "the policy file does not compile; the message names the file, the policy and the position"},
	{CodeApprovalNotFound, KindHTTP, http.StatusNotFound, "no such approval"},
	{CodeApprovalConflict, KindHTTP, http.StatusConflict, "the approval is not pending (already approved, denied, expired or used)"},
	{CodeApprovalForbidden, KindHTTP, http.StatusForbidden, "the approver may not answer this approval (it acts as the requesting tenant) or the token is not an approver"},
	{CodeAdminTokenUnrecorded, KindHTTP, http.StatusForbidden, "an admin action by a token with no signed admin issuance in the evidence ledger, or a revoked one: issue one with hall tokens create --admin"},
	{CodeApprovalStale, KindHTTP, http.StatusConflict, "the rules, policies, configuration or enrolled workers changed since the approval was requested: it is void, request a new one"},
	{CodeApprovalQuota, KindHTTP, http.StatusTooManyRequests, "the tenant has its maximum of pending approvals (hall.json quotas.pending_approvals_per_tenant); nothing ran and no approval was created: wait for answers or expiry"},
	{CodeSessionQuota, KindHTTP, http.StatusTooManyRequests, "the token has its maximum of open MCP sessions (hall serve --mcp-sessions-per-token); close one (DELETE /mcp) or wait for one to idle out"},
	{CodeSigninThrottled, KindHTTP, http.StatusTooManyRequests, "too many console sign-in attempts from this address (hall serve --signin-per-minute); retry after Retry-After seconds"},

	{CodeSecretNotDeclared, KindGuest, 0, "hall_secret: the secret is not declared by the worker's policy"},
	{CodeSecretUnavailable, KindGuest, 0, "hall_secret: the secret is declared but has no value"},
	{CodeHTTPFailed, KindGuest, 0, "hall_http: the request or reading its response failed"},
	{CodeResponseTooLarge, KindGuest, 0, "hall_http: the response body exceeds the host function's limit"},
	{CodeBadRequest, KindGuest, 0, "a host function was given a malformed request"},
	{CodeRateLimited, KindGuest, 0, "the worker emitted too many events"},
	{CodeInvokeDenied, KindGuest, 0, "hall_invoke: the sub-dispatch was denied; deny_code says why (recorded as a decision naming its parent)"},
	{CodeInvokeFailed, KindGuest, 0, "hall_invoke: the sub-dispatch ran and its worker failed; outcome is its receipt's outcome"},
	{CodeChainLimit, KindGuest, 0, "hall_invoke: the sub-dispatch would pass a chain limit (depth, calls per dispatch, calls per chain); deny_code is DENY_CHAIN_LIMIT"},
	{CodeInvokeUnavailable, KindGuest, 0, "hall_invoke: this call cannot make sub-dispatches (a replay, or a sandbox used without a Hall)"},
}

// codeIndex finds a code's row in codeTable.
var codeIndex = func() map[Code]int {
	m := make(map[Code]int, len(codeTable))
	for i, info := range codeTable {
		m[info.Code] = i
	}
	return m
}()

// Info returns c's row of [Codes], and false for a code not in the table.
func (c Code) Info() (CodeInfo, bool) {
	i, ok := codeIndex[c]
	if !ok {
		return CodeInfo{}, false
	}
	return codeTable[i], true
}

// HTTPStatus returns the HTTP status the API answers with for c: 500 for a
// code not in [Codes] (emitting one is a Hall bug), 0 for a guest code.
func (c Code) HTTPStatus() int {
	info, ok := c.Info()
	if !ok {
		return http.StatusInternalServerError
	}
	return info.HTTPStatus
}

// Coded is an error that carries a stable code: every coded error of the
// Hall implements it, with this one signature.
type Coded interface {
	error
	Code() Code
}

// CodeOf returns the stable code an error carries — the code of the
// first [Coded] error in its chain, when that code is in the table — so
// that every front end (HTTP, MCP, the CLI) reports a Hall refusal such
// as HALL_DISK_LOW, MEMORY_BUDGET or HALL_SATURATED under its own code.
func CodeOf(err error) (Code, bool) {
	var coded Coded
	if errors.As(err, &coded) {
		if c := coded.Code(); c != "" {
			if _, ok := c.Info(); ok {
				return c, true
			}
		}
	}
	return "", false
}
