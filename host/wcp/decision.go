package wcp

import (
	"encoding/json"
	"math/big"
	"time"

	"github.com/google/uuid"
)

// RouteDecision is the Hall's answer to a RouteInput (WCP §4.2), allowed or
// denied, with the evidence PyHall returns. Every key is always present in
// its JSON, null where unset, in PyHall's order; RequestHash is the Hall's
// addition.
type RouteDecision struct {
	DecisionID    uuid.UUID `json:"decision_id"`
	Timestamp     time.Time `json:"-"`
	CorrelationID string    `json:"correlation_id"`
	TenantID      string    `json:"tenant_id"`
	CapabilityID  string    `json:"capability_id"`
	// MatchedRuleID is the matched rule's id, "PRE_ROUTING" for a denial
	// before shadow/rule checks, "NO_MATCH" for shadow or no-match denials.
	MatchedRuleID string `json:"matched_rule_id"`
	// HighBlastScore is set (to the gated score) when the router deferred a
	// prod/edge blast score ≥ 85 to the Hall's human approvals
	// (router.Options.DeferHighBlast); never on the wire.
	HighBlastScore int    `json:"-"`
	Env            string `json:"env"`
	DataLabel      string `json:"data_label"`
	TenantRisk     string `json:"tenant_risk"`
	QoSClass       string `json:"qos_class"`

	Denied bool `json:"denied"`
	// DenyReason is nil when allowed.
	DenyReason *DenyReason `json:"deny_reason_if_denied"`

	SelectedWorkerSpeciesID      OptString         `json:"selected_worker_species_id"`
	CandidateWorkersRanked       []CandidateWorker `json:"candidate_workers_ranked"`
	RequiredControlsEffective    []string          `json:"required_controls_effective"`
	RecommendedProfilesEffective JSONArray         `json:"recommended_profiles_effective"`
	EscalationEffective          Escalation        `json:"escalation_effective"`
	PreconditionsChecked         Preconditions     `json:"preconditions_checked"`

	// ArtifactHash is "sha256:<hex>" of the selected worker's module, set
	// when the Hall knows which module will run (dispatch); null otherwise.
	ArtifactHash             OptString `json:"artifact_hash"`
	WorkerAttestationChecked bool      `json:"worker_attestation_checked"`
	WorkerAttestationValid   *bool     `json:"worker_attestation_valid"`
	DryRun                   bool      `json:"dry_run"`
	TelemetryEnvelopes       []Event   `json:"telemetry_envelopes"`

	// RequestHash is the SHA-256 of the canonical RouteInput.
	RequestHash Digest `json:"request_hash"`

	// Policy is the evidence of the Hall's policies as code
	// (docs/POLICY.md); absent when no policy file is loaded, so that
	// PyHall's decision is unchanged.
	Policy *PolicyEvidence `json:"policy,omitempty"`

	// Chain places a sub-dispatch (a hop of a governed pipeline, made by
	// a worker through hall_invoke) under its parent; absent for a
	// dispatch asked for from outside, so that PyHall's decision is
	// unchanged.
	Chain *ChainRef `json:"chain,omitempty"`
}

// ChainRef is a hop's place in its chain (docs/EVIDENCE.md, "Chains of
// dispatches").
type ChainRef struct {
	// ParentDecisionID is the decision of the dispatch whose worker asked
	// for this one.
	ParentDecisionID string `json:"parent_decision_id"`
	// Depth is 1 for a hop of a root dispatch, 2 for a hop of a hop, ….
	Depth int `json:"depth"`
}

// PolicyEvidence says which policy set took part in a decision and what
// it answered (WCP's must_attach_policy_version).
type PolicyEvidence struct {
	// SetDigest is "sha256:<hex>" of the policy file in force.
	SetDigest string `json:"set_digest"`
	// Outcome is ALLOW, DENY or REQUIRE_HUMAN ("" when the router denied
	// before the policies ran).
	Outcome string `json:"outcome,omitempty"`
	// PolicyID is the policy that decided ("" for ALLOW).
	PolicyID string `json:"policy_id,omitempty"`
	// ApprovalID is the human approval this allowed run used.
	ApprovalID string `json:"approval_id,omitempty"`
}

// MarshalJSON writes the decision with its timestamp in second place, as
// PyHall does: the bytes of AppendJSON, which see.
func (d RouteDecision) MarshalJSON() ([]byte, error) {
	b, err := d.AppendJSON(make([]byte, 0, d.sizeHint()))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// sizeHint is about the length of the decision's JSON, so that it is
// written into one allocation.
func (d *RouteDecision) sizeHint() int {
	return 1280 + 448*len(d.TelemetryEnvelopes) + 192*len(d.CandidateWorkersRanked) +
		len(d.RecommendedProfilesEffective) + len(d.EscalationEffective.HumanRequiredIf)
}

// UnmarshalJSON reads the wire format.
func (d *RouteDecision) UnmarshalJSON(b []byte) error {
	type plain RouteDecision
	var aux struct {
		plain
		Timestamp time.Time `json:"timestamp"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*d = RouteDecision(aux.plain)
	d.Timestamp = aux.Timestamp
	return nil
}

// Allowed reports whether the decision allows dispatch.
func (d *RouteDecision) Allowed() bool { return !d.Denied }

// Code returns the deny code, or "" when allowed.
func (d *RouteDecision) Code() DenyCode {
	if d.DenyReason == nil {
		return ""
	}
	return d.DenyReason.Code
}

// DenyReason is deny_reason_if_denied: a code, a message in the Hall's words,
// and the extra keys PyHall attaches for that code (in its order).
type DenyReason struct {
	Code    DenyCode `json:"code"`
	Message string   `json:"message"`

	BlastScore         *big.Int `json:"blast_score,omitempty"`
	ShadowedRuleIDs    []string `json:"shadowed_rule_ids,omitempty"`
	ShadowCount        *int     `json:"shadow_count,omitempty"`
	Missing            []string `json:"missing,omitempty"`
	TenantID           *string  `json:"tenant_id,omitempty"`
	Reason             *string  `json:"reason,omitempty"`
	PolicyVersion      *string  `json:"policy_version,omitempty"`
	SupervisorRequired bool     `json:"supervisor_required,omitempty"`
	WorkerSpeciesID    *string  `json:"worker_species_id,omitempty"`
	// PendingApprovalID and ApprovalExpiresAt (WCP §5.8) are set when a
	// DENY_REQUIRES_HUMAN_APPROVAL dispatch is waiting for a human.
	PendingApprovalID *string `json:"pending_approval_id,omitempty"`
	ApprovalExpiresAt *string `json:"approval_expires_at,omitempty"`
}

// Skip reasons of a candidate worker that was not selected.
const (
	SkipUnavailable     = "unavailable"
	SkipAlreadySelected = "already_selected"
	// SkipEnvNotAllowed and SkipWorkerControlsMissing are the Hall's own,
	// reported only when the matching HallConfig field is on.
	SkipEnvNotAllowed         = "env_not_allowed"
	SkipWorkerControlsMissing = "worker_controls_missing"
)

// CandidateWorker is one ranked candidate of the matched rule, annotated
// with why it was skipped (nil SkipReason: selected).
type CandidateWorker struct {
	WorkerSpeciesID         string    `json:"worker_species_id"`
	ScoreHint               *PyFloat  `json:"score_hint"`
	RequiresControlsMinimum *[]string `json:"requires_controls_minimum"`
	SkipReason              OptString `json:"skip_reason"`
}

// Escalation is the matched rule's escalation block as echoed in a decision.
// Only PolicyGate changes routing.
type Escalation struct {
	PolicyGate           bool      `json:"policy_gate"`
	MsavxStepUp          bool      `json:"msavx_step_up"`
	HumanRequiredDefault bool      `json:"human_required_default"`
	HumanRequiredIf      JSONArray `json:"human_required_if"`
	Rationale            *string   `json:"rationale"`
}

// Preconditions is the matched rule's preconditions merged over WCP's
// defaults (DefaultPreconditions).
type Preconditions struct {
	MustHaveCorrelationID            bool `json:"must_have_correlation_id"`
	MustAttachPolicyVersion          bool `json:"must_attach_policy_version"`
	MustRecordArtifactHashIfExecutes bool `json:"must_record_artifact_hash_if_executes"`
	DenyIfMissingRequiredControls    bool `json:"deny_if_missing_required_controls"`
	DenyIfUnsignedArtifactInProd     bool `json:"deny_if_unsigned_artifact_in_prod"`
	DenyIfNoAttestationInProd        bool `json:"deny_if_no_attestation_in_prod"`
}

// DefaultPreconditions returns WCP's defaults for a rule that sets none
// (a value: changing it changes no rule's preconditions).
func DefaultPreconditions() Preconditions {
	return Preconditions{
		MustHaveCorrelationID:            true,
		MustAttachPolicyVersion:          true,
		MustRecordArtifactHashIfExecutes: true,
		DenyIfMissingRequiredControls:    true,
	}
}
