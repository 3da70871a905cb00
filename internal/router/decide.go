package router

import (
	"context"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/google/uuid"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/pyval"
)

const (
	ctrlBlastScoring       = "ctrl.blast_radius_scoring"
	ctrlPrivilegeEnvelopes = "ctrl.privilege_envelopes_required"

	// DefaultPolicyVersion is the policy version PyHall hands every gate.
	DefaultPolicyVersion = "policy.v0"
	// DefaultTaskID is the task id telemetry carries when none is given.
	DefaultTaskID = "task_default"

	matchedPreRouting = "PRE_ROUTING"
	matchedNoMatch    = "NO_MATCH"
	missingSpecies    = "__missing__"

	// blastHumanThreshold: a prod/edge score at or above it needs a human.
	blastHumanThreshold = 85
)

// Registry is the view of enrolled workers a decision needs. Package
// registry implements it.
type Registry interface {
	// ControlPresent reports whether any enrolled worker implements the
	// control (PyHall checks controls fleet-wide).
	ControlPresent(control string) bool
	// WorkerAvailable reports whether a worker of the species can be
	// dispatched.
	WorkerAvailable(species string) bool
}

// Eligibility is an optional Registry ability used by the Hall's stricter
// checks (HallConfig.EnforceAllowedEnvironments, EnforceWorkerControls).
// It returns the skip reason for the species, or "" when eligible.
type Eligibility interface {
	Ineligible(species, env string, checkEnv, checkControls bool) string
}

// PolicyContext is what a policy gate is asked about (PyHall passes exactly
// these keys).
type PolicyContext struct {
	CapabilityID  string `json:"capability_id"`
	TenantID      string `json:"tenant_id"`
	Env           string `json:"env"`
	DataLabel     string `json:"data_label"`
	TenantRisk    string `json:"tenant_risk"`
	QoSClass      string `json:"qos_class"`
	PolicyVersion string `json:"policy_version"`
}

// Policy gate outcomes. Any other Decision fails closed
// (DENY_POLICY_GATE_INVALID_RESPONSE).
const (
	PolicyAllow        = "ALLOW"
	PolicyDeny         = "DENY"
	PolicyRequireHuman = "REQUIRE_HUMAN"
)

// PolicyResult is a policy gate's answer.
type PolicyResult struct {
	Decision      string
	PolicyVersion string
	Reason        string
}

// PolicyGate evaluates rules whose escalation sets policy_gate. An error (or
// a panic) denies with DENY_INTERNAL_ERROR; its text is logged, never put in
// the decision.
type PolicyGate interface {
	Evaluate(ctx context.Context, pc PolicyContext) (PolicyResult, error)
}

// HashSource returns a worker species' code hash (bare lowercase hex);
// ok=false when there is none or it cannot be computed.
type HashSource interface {
	WorkerHash(ctx context.Context, species string) (hash string, ok bool)
}

// EnvelopeSource returns a species' privilege envelope (nil when it has
// none).
type EnvelopeSource interface {
	PrivilegeEnvelope(species string) *wcp.PrivilegeEnvelope
}

// PrivilegePolicy decides whether an envelope is acceptable for an env and
// data label. An error denies with DENY_INTERNAL_ERROR.
type PrivilegePolicy interface {
	AllowsPrivilege(ctx context.Context, env, dataLabel string, envelope *wcp.PrivilegeEnvelope) (ok bool, reason string, err error)
}

// Options are a decision's configuration and extension points. The zero
// value is PyHall with no hall_config, no gate, no attestation and no
// privilege callables.
type Options struct {
	Config *wcp.HallConfig
	Gate   PolicyGate
	// RegisteredHashes and CurrentHashes are the attestation sources
	// (known-good and live); both are needed when attestation is required.
	RegisteredHashes HashSource
	CurrentHashes    HashSource
	// Envelopes and Privilege are the privilege-envelope check; both are
	// needed when it runs.
	Envelopes EnvelopeSource
	Privilege PrivilegePolicy
	// TaskID is copied into evt.os.task.routed (default "task_default").
	TaskID string
	// DeferHighBlast: a prod/edge blast score at or above 85 does not deny
	// (PyHall's DENY_REQUIRES_HUMAN) but continues, with the score in the
	// decision's HighBlastScore, so that the caller can hold the request
	// for a human approval bound to the worker it selects. A caller that
	// sets it must deny or hold every decision whose HighBlastScore is set.
	DeferHighBlast bool
	// Now and NewID default to the wall clock and random UUID v4s.
	Now   func() time.Time
	NewID func() uuid.UUID
	// Logger receives gate/privilege failures and the require_credential
	// warning (default: discarded).
	Logger *slog.Logger
}

var (
	boolTrue  = true
	boolFalse = false
	noStrings = []string{}
)

// decider carries one decision's state.
type decider struct {
	ctx  context.Context
	in   *wcp.RouteInput
	opts Options
	d    wcp.RouteDecision
	now  time.Time

	corr, tenant, capability string // sanitized copies for telemetry
}

// Decide routes in against rules and reg, returning PyHall's decision for
// the same rules, registry, stand-ins and input. It never returns an error:
// every failure is a denial. in should have passed Validate (ParseRouteInput
// does that); Decide re-checks only what PyHall's router re-checks.
func Decide(ctx context.Context, in *wcp.RouteInput, rules *RuleSet, reg Registry, opts Options) (dec wcp.RouteDecision) {
	x := decider{ctx: ctx, in: in, opts: opts}
	defer func() {
		if r := recover(); r != nil {
			matched := x.d.MatchedRuleID // keep the rule once one matched
			if matched == "" {
				matched = matchedPreRouting
			}
			dec = x.deny(wcp.DenyInternalError, matched, "The Hall failed while deciding; nothing was dispatched.")
			defer func() { _ = recover() }() // the Logger itself may be what panicked
			x.logger().Error("router: recovered from a panic while deciding", "panic", fmt.Sprint(r))
		}
	}()
	x.start()
	x.decide(rules, reg)
	return x.d
}

func (x *decider) logger() *slog.Logger {
	if x.opts.Logger != nil {
		return x.opts.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (x *decider) start() {
	in := x.in
	now := time.Now
	if x.opts.Now != nil {
		now = x.opts.Now
	}
	x.now = now().UTC()
	var id uuid.UUID
	if x.opts.NewID != nil {
		id = x.opts.NewID()
	} else {
		id = newID()
	}
	x.corr, x.tenant, x.capability = pyval.Sanitize(in.CorrelationID), pyval.Sanitize(in.TenantID), pyval.Sanitize(in.CapabilityID)
	x.d = wcp.RouteDecision{
		DecisionID:                id,
		Timestamp:                 x.now,
		CorrelationID:             in.CorrelationID,
		TenantID:                  in.TenantID,
		CapabilityID:              in.CapabilityID,
		Env:                       in.Env,
		DataLabel:                 in.DataLabel,
		TenantRisk:                in.TenantRisk,
		QoSClass:                  in.QoSClass,
		CandidateWorkersRanked:    []wcp.CandidateWorker{},
		RequiredControlsEffective: noStrings,
		EscalationEffective:       wcp.Escalation{},
		PreconditionsChecked:      wcp.DefaultPreconditions(),
		DryRun:                    in.DryRun,
	}
	if h, err := in.RequestHash(); err == nil {
		x.d.RequestHash = h
	}
}

func prodOrEdge(env string) bool { return env == "prod" || env == "edge" }

func (x *decider) decide(rules *RuleSet, reg Registry) {
	in, cfg := x.in, x.opts.Config

	// 1. Signatory tenants.
	if cfg != nil && cfg.RequireSignatory && !contains(cfg.AllowedTenants, in.TenantID) {
		d := x.deny(wcp.DenyUnknownTenant, matchedPreRouting, "The tenant is not a registered signatory; add it to allowed_tenants in the Hall configuration before dispatching.")
		tenant := in.TenantID
		d.DenyReason.TenantID = &tenant
		x.d = d
		return
	}
	// 2. require_credential has no effect in WCP v0.1.
	if cfg != nil && cfg.RequireCredential {
		x.logger().Warn("HallConfig.require_credential has no effect in WCP v0.1; credentials are not validated, do not rely on it for security")
	}
	// 3. Tenant presence.
	if pyval.Blank(in.TenantID) {
		x.d = x.deny(wcp.DenyMissingTenantID, matchedPreRouting, "tenant_id is required and must not be empty or whitespace.")
		return
	}
	// 4. blast_score range.
	if in.BlastScore != nil && (in.BlastScore.Sign() < 0 || in.BlastScore.Cmp(big100) > 0) {
		d := x.deny(wcp.DenyInvalidInput, matchedPreRouting, "blast_score must be an integer from 0 to 100.")
		d.DenyReason.BlastScore = in.BlastScore
		x.d = d
		return
	}
	// 6. Shadowed rules block all prod/edge traffic.
	if prodOrEdge(in.Env) && rules != nil && len(rules.Shadows) > 0 {
		d := x.deny(wcp.DenyShadowRulesDetected, matchedNoMatch, "The rule set has shadowed rules, which prod/edge traffic does not tolerate; reorder or remove them (see `hall validate`).")
		n := len(rules.Shadows)
		d.DenyReason.ShadowedRuleIDs = rules.shadowed
		d.DenyReason.ShadowCount = &n
		x.d = d
		return
	}
	// 7. First matching rule, fail closed.
	var rule *Rule
	if rules != nil {
		rule = rules.firstMatch(in)
	}
	if rule == nil {
		x.d = x.deny(wcp.DenyNoMatchingRule, matchedNoMatch, "No routing rule matches this request; the Hall fails closed (WCP §5.1).")
		return
	}
	x.d.MatchedRuleID = rule.ID
	x.d.RequiredControlsEffective = rule.controls
	x.d.PreconditionsChecked = rule.pre

	// 8. Correlation id.
	if (rule.pre.MustHaveCorrelationID || cfg.CorrelationFloor()) && pyval.Blank(in.CorrelationID) {
		x.denyAfterMatch(wcp.DenyMissingCorrelationID, "correlation_id is required and must not be empty or whitespace.", wcp.Escalation{})
		return
	}
	// 9. Required controls, fleet-wide.
	if rule.pre.DenyIfMissingRequiredControls || cfg.ControlsFloor() {
		var missing []string
		for _, c := range rule.controls {
			if reg == nil || !reg.ControlPresent(c) {
				missing = append(missing, c)
			}
		}
		if missing != nil {
			x.denyAfterMatch(wcp.DenyMissingRequiredControls, "Controls the rule requires are implemented by no enrolled worker.", wcp.Escalation{})
			x.d.DenyReason.Missing = missing
			return
		}
	}
	// 10a. Blast radius.
	blastRan, gated := false, 0
	if rule.blastCtl || (prodOrEdge(in.Env) && cfg.BlastFloor()) {
		blastRan = true
		gated = computeBlastScore(in)
		if in.BlastScore != nil && in.BlastScore.Cmp(big.NewInt(int64(gated))) > 0 {
			gated = int(in.BlastScore.Int64()) // within [0, 100] (step 4)
		}
		if prodOrEdge(in.Env) && gated >= blastHumanThreshold && x.opts.DeferHighBlast {
			x.d.HighBlastScore = gated
		} else if prodOrEdge(in.Env) && gated >= blastHumanThreshold {
			esc := rule.esc
			esc.HumanRequiredDefault = true
			esc.Rationale = strPtr("REQUIRE_HUMAN_HIGH_BLAST")
			x.denyAfterMatch(wcp.DenyRequiresHuman, "The blast radius is too high for autonomous execution; a human must run this.", esc)
			x.d.DenyReason.BlastScore = big.NewInt(int64(gated))
			x.d.DenyReason.Reason = strPtr("REQUIRE_HUMAN_HIGH_BLAST")
			return
		}
	}
	// 10b. Policy gate.
	policyVersion := DefaultPolicyVersion
	if rule.esc.PolicyGate {
		if x.opts.Gate == nil {
			x.denyAfterMatch(wcp.DenyPolicyGateUnconfigured, "The matched rule requires a policy gate and none is configured.", rule.esc)
			return
		}
		res, err := x.evaluateGate()
		if err != nil {
			x.logger().Error("router: policy gate failed", "correlation_id", x.corr, "error", err)
			x.denyAfterMatch(wcp.DenyInternalError, "The policy gate failed; see the Hall's log. Nothing was dispatched.", rule.esc)
			return
		}
		policyVersion = res.PolicyVersion
		switch res.Decision {
		case PolicyAllow:
		case PolicyDeny:
			esc := rule.esc
			esc.Rationale = strPtr(res.Reason)
			x.denyAfterMatch(wcp.DenyPolicyGate, "The policy gate denied this request.", esc)
			x.d.DenyReason.Reason = strPtr(res.Reason)
			x.d.DenyReason.PolicyVersion = strPtr(res.PolicyVersion)
			return
		case PolicyRequireHuman:
			esc := rule.esc
			esc.HumanRequiredDefault = true
			esc.Rationale = strPtr(res.Reason)
			x.denyAfterMatch(wcp.DenyRequiresHumanApproval, "The policy gate requires a human approval before this worker can be dispatched.", esc)
			x.d.DenyReason.Reason = strPtr(res.Reason)
			x.d.DenyReason.PolicyVersion = strPtr(res.PolicyVersion)
			x.d.DenyReason.SupervisorRequired = true
			return
		default:
			esc := rule.esc
			esc.Rationale = strPtr("invalid_gate_response")
			x.denyAfterMatch(wcp.DenyPolicyGateInvalidResponse, fmt.Sprintf("The policy gate answered %q; only ALLOW, DENY or REQUIRE_HUMAN are accepted, so the Hall fails closed.", res.Decision), esc)
			return
		}
	}

	// 11a. Candidate selection.
	cands := make([]wcp.CandidateWorker, len(rule.cands))
	selected := ""
	var elig Eligibility
	checkEnv := cfg != nil && cfg.EnforceAllowedEnvironments
	checkCtl := cfg != nil && cfg.EnforceWorkerControls
	if checkEnv || checkCtl {
		elig, _ = reg.(Eligibility)
	}
	for i, c := range rule.cands {
		cw := wcp.CandidateWorker{WorkerSpeciesID: c.species, ScoreHint: c.score}
		if c.species == "" {
			cw.WorkerSpeciesID = missingSpecies
		}
		avail := c.species != "" && reg != nil && x.available(reg, c.species)
		skip := ""
		if avail && elig != nil {
			skip = elig.Ineligible(c.species, in.Env, checkEnv, checkCtl)
		}
		switch {
		case !avail:
			cw.SkipReason = wcp.SkipUnavailable
		case skip != "":
			cw.SkipReason = wcp.OptString(skip)
		case selected == "":
			selected = c.species
		default:
			cw.SkipReason = wcp.SkipAlreadySelected
		}
		cands[i] = cw
	}
	if selected == "" {
		x.denyAfterMatch(wcp.DenyNoAvailableWorker, "No candidate worker is available; route the task to the review queue.", rule.esc)
		x.d.CandidateWorkersRanked = cands
		return
	}

	// 11b. Worker code attestation.
	attested := false
	if cfg != nil && cfg.RequireWorkerAttestation {
		if x.opts.RegisteredHashes == nil || x.opts.CurrentHashes == nil {
			x.denyAfterMatch(wcp.DenyAttestationUnconfigured, "Worker attestation is required but no registered/current hash source is configured.", rule.esc)
			return
		}
		registered, regOK := x.hash(x.opts.RegisteredHashes, selected)
		current, curOK := x.hash(x.opts.CurrentHashes, selected)
		switch {
		case !regOK:
			x.denyAfterMatch(wcp.DenyWorkerAttestationMissing, fmt.Sprintf("Worker %q has no registered code hash; enroll it with an attestation hash before requiring attestation.", selected), rule.esc)
			return
		case !wcp.ValidHexDigest(registered):
			x.denyAfterMatch(wcp.DenyWorkerAttestationInvalidHash, fmt.Sprintf("The registered code hash of worker %q is not a SHA-256 digest (64 lowercase hex characters); re-register it.", selected), rule.esc)
			return
		case !curOK || !wcp.ValidHexDigest(current):
			x.denyAfterMatch(wcp.DenyWorkerHashUnavailable, fmt.Sprintf("The current code hash of worker %q could not be computed or is invalid.", selected), rule.esc)
			return
		case current != registered:
			x.denyAfterMatch(wcp.DenyWorkerTampered, fmt.Sprintf("Worker %q no longer matches its attested code hash; it may have been modified. Re-attest it or investigate.", selected), rule.esc)
			x.d.DenyReason.WorkerSpeciesID = strPtr(selected)
			x.d.WorkerAttestationChecked = true
			x.d.WorkerAttestationValid = &boolFalse
			return
		}
		attested = true
	}

	// 12. Privilege envelope.
	privRan := rule.privCtl || (cfg != nil && cfg.EnforcePrivilegeEnvelopes)
	if privRan {
		if x.opts.Envelopes == nil || x.opts.Privilege == nil {
			x.denyAfterMatch(wcp.DenyPrivilegeEnvelopeUnconfigured, "Privilege envelopes must be checked but no envelope source/policy is configured.", rule.esc)
			return
		}
		ok, reason, err := x.checkPrivilege(selected)
		if err != nil {
			x.logger().Error("router: privilege check failed", "correlation_id", x.corr, "error", err)
			x.denyAfterMatch(wcp.DenyInternalError, "The privilege envelope check failed; see the Hall's log. Nothing was dispatched.", rule.esc)
			return
		}
		if !ok {
			x.denyAfterMatch(wcp.DenyPrivilegeEnvelopeViolated, fmt.Sprintf("The worker's privilege envelope is not allowed for %s/%s: %s", in.Env, in.DataLabel, reason), rule.esc)
			x.d.DenyReason.Reason = strPtr(reason)
			x.d.DenyReason.WorkerSpeciesID = strPtr(selected)
			return
		}
	}

	// 13. Allow.
	d := &x.d
	d.SelectedWorkerSpeciesID = wcp.OptString(selected)
	d.CandidateWorkersRanked = cands
	d.RecommendedProfilesEffective = rule.profiles
	d.EscalationEffective = rule.esc
	if attested {
		d.WorkerAttestationChecked = true
		d.WorkerAttestationValid = &boolTrue
	}
	n := 3
	if blastRan {
		n++
	}
	if privRan {
		n++
	}
	skipAttest := prodOrEdge(in.Env) && !(cfg != nil && cfg.RequireWorkerAttestation)
	if skipAttest {
		n++
	}
	ev := make([]wcp.Event, 0, n)
	base := wcp.Event{Timestamp: x.now, CorrelationID: x.corr, TenantID: x.tenant, DryRun: in.DryRun}
	if blastRan {
		e := base
		e.EventID, e.Env, e.DataLabel, e.PolicyVersion, e.BlastScore, e.Decision = wcp.EvtBlastScored, in.Env, in.DataLabel, policyVersion, gated, PolicyAllow
		ev = append(ev, e)
	}
	if privRan {
		e := base
		e.EventID, e.Env, e.DataLabel, e.PolicyVersion, e.WorkerSpeciesID, e.Decision = wcp.EvtPrivilegeChecked, in.Env, in.DataLabel, policyVersion, selected, PolicyAllow
		ev = append(ev, e)
	}
	if skipAttest {
		ev = append(ev, wcp.Event{EventID: wcp.EvtAttestationSkipped, CorrelationID: x.corr, WorkerSpeciesID: selected, Env: in.Env,
			Reason: "require_worker_attestation=False or hall_config=None", Severity: "warn", DryRun: in.DryRun})
	}
	taskID := x.opts.TaskID
	if taskID == "" {
		taskID = DefaultTaskID
	}
	e := base
	e.EventID, e.TaskID, e.CapabilityID, e.MatchedRuleID, e.SelectedWorkerSpeciesID, e.PolicyVersion, e.QoSClass = wcp.EvtTaskRouted, taskID, x.capability, rule.ID, selected, policyVersion, in.QoSClass
	ev = append(ev, e)
	e = base
	e.EventID, e.CapabilityID, e.SelectedWorkerSpeciesID, e.Reason = wcp.EvtWorkerSelected, x.capability, selected, "first_available_candidate"
	ev = append(ev, e)
	e = base
	e.EventID, e.CapabilityID, e.Decision, e.PolicyVersion, e.Reason = wcp.EvtPolicyGated, x.capability, PolicyAllow, policyVersion, "no_gate_required"
	if rule.esc.PolicyGate {
		e.Reason = "policy_gate_allow"
	}
	d.TelemetryEnvelopes = append(ev, e)
}

var big100 = big.NewInt(100)

// deny builds a denial before or without a matched rule.
func (x *decider) deny(code wcp.DenyCode, matched, msg string) wcp.RouteDecision {
	d := x.d
	d.Denied = true
	d.MatchedRuleID = matched
	d.DenyReason = &wcp.DenyReason{Code: code, Message: msg}
	d.HighBlastScore = 0
	d.SelectedWorkerSpeciesID = ""
	d.ArtifactHash = ""
	d.RecommendedProfilesEffective = nil
	d.CandidateWorkersRanked = []wcp.CandidateWorker{}
	d.WorkerAttestationChecked = false
	d.WorkerAttestationValid = nil
	d.TelemetryEnvelopes = []wcp.Event{{
		EventID: wcp.EvtTaskDenied, Timestamp: x.now,
		CorrelationID: x.corr, TenantID: x.tenant, CapabilityID: x.capability,
		DenyCode: code, DenyMessage: msg, MatchedRuleID: matched, DryRun: x.in.DryRun,
	}}
	return d
}

// denyAfterMatch denies once a rule matched: its id, controls and
// preconditions are already on x.d.
func (x *decider) denyAfterMatch(code wcp.DenyCode, msg string, esc wcp.Escalation) {
	x.d = x.deny(code, x.d.MatchedRuleID, msg)
	x.d.EscalationEffective = esc
}

func (x *decider) evaluateGate() (res PolicyResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("policy gate panicked: %v", r)
		}
	}()
	in := x.in
	return x.opts.Gate.Evaluate(x.ctx, PolicyContext{
		CapabilityID: in.CapabilityID, TenantID: in.TenantID, Env: in.Env, DataLabel: in.DataLabel,
		TenantRisk: in.TenantRisk, QoSClass: in.QoSClass, PolicyVersion: DefaultPolicyVersion,
	})
}

func (x *decider) hash(src HashSource, species string) (h string, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			x.logger().Error("router: hash source panicked", "species", species, "panic", fmt.Sprint(r))
			h, ok = "", false
		}
	}()
	return src.WorkerHash(x.ctx, species)
}

// available asks reg about species; a panic counts as unavailable, as
// PyHall treats a raising registry_worker_available.
func (x *decider) available(reg Registry, species string) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			x.logger().Error("router: worker availability panicked", "species", species, "panic", fmt.Sprint(r))
			ok = false
		}
	}()
	return reg.WorkerAvailable(species)
}

func (x *decider) checkPrivilege(species string) (ok bool, reason string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("privilege check panicked: %v", r)
		}
	}()
	env := x.opts.Envelopes.PrivilegeEnvelope(species)
	return x.opts.Privilege.AllowsPrivilege(x.ctx, x.in.Env, x.in.DataLabel, env)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func strPtr(s string) *string { return &s }
