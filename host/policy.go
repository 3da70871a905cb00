package host

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/policy"
	"github.com/wcphall/hall/internal/pyval"
	"github.com/wcphall/hall/internal/router"
)

// ChangePolicy is the ledger change kind earlier Halls recorded when a
// policy file came into force (Subject the file, Digest the digest of its
// bytes, Body the document). The policy set in force, or its absence, is
// now part of each snapshot entry (ledger.ChangeSnapshot).
const ChangePolicy = ledger.ChangePolicy

// policyPath is the policy file and whether it was named explicitly.
func (o Options) policyPath() (string, bool) {
	if o.Policies != "" {
		return o.path(o.Policies), true
	}
	return o.path("policy.json"), false
}

// PolicyFile returns the path of the policy file the Hall reads (it may
// not exist).
func (h *Hall) PolicyFile() string { p, _ := h.opts.policyPath(); return p }

// Policies returns the compiled policy set in force (nil: none).
func (h *Hall) Policies() *policy.Set { return h.snap.Load().policies }

// parsePolicies compiles the stored policy document once per snapshot
// under hall.json's policy block and returns it with its bytes. No document is no policies: PyHall's
// behaviour (the files of Options report a policy file that was named but
// does not exist as an error when they are read). A document that does
// not compile fails the Open or Reload, with the document, the policy and
// the position named. The policy set in force, or its absence, is part of
// the snapshot recorded before the first decision under it
// (snapshot_digest.go).
func parsePolicies(d Doc, cfg PolicyConfig) (*policy.Set, []byte, error) {
	if !d.Present {
		return nil, nil, nil
	}
	set, err := policy.ParseLimits(d.Name, d.Data, policy.Limits{CostLimit: cfg.CostLimit})
	if err != nil {
		return nil, nil, err
	}
	return set, d.Data, nil
}

// gate is the router's policy gate: the embedder's, else, when a policy
// file is loaded, one that defers to the policies evaluated on the bound
// plan (applyPolicies). Without either, rules that set policy_gate are
// denied DENY_POLICY_GATE_UNCONFIGURED, as in PyHall.
func (h *Hall) gate(s *snapshot) router.PolicyGate {
	if h.opts.Gate != nil || s.policies == nil {
		return h.opts.Gate
	}
	return deferredGate(s.policies.Digest())
}

// deferredGate allows at the router's step 10b so that the policies see
// the worker the decision binds; they run right after binding.
type deferredGate string

func (g deferredGate) Evaluate(context.Context, router.PolicyContext) (router.PolicyResult, error) {
	return router.PolicyResult{Decision: router.PolicyAllow, PolicyVersion: string(g)}, nil
}

var unrestricted = []string{"*"}

// policyFacts are what the policies see of an allowed decision and the
// worker it bound.
func policyFacts(set *policy.Set, w *boundWorker, in *wcp.RouteInput, dec *wcp.RouteDecision) policy.Facts {
	rec := w.rec
	f := policy.Facts{
		Input: policy.Input{
			CapabilityID: in.CapabilityID, Env: in.Env, DataLabel: in.DataLabel, TenantRisk: in.TenantRisk, QoSClass: in.QoSClass,
			TenantID: in.TenantID, CorrelationID: in.CorrelationID, DryRun: in.DryRun, BlastScore: -1,
		},
		Worker: policy.Worker{
			ID: rec.WorkerID, Species: rec.WorkerSpeciesID, RiskTier: rec.RiskTier, Capabilities: rec.Capabilities,
			Controls: rec.CurrentlyImplements, Owner: rec.Owner, Determinism: rec.Determinism,
			ModuleDigest: w.moduleRef, RecordDigest: w.recordDigest.String(),
		},
		Rule: policy.Rule{
			ID: dec.MatchedRuleID, PolicyGate: dec.EscalationEffective.PolicyGate,
			HumanRequiredDefault: dec.EscalationEffective.HumanRequiredDefault, Controls: dec.RequiredControlsEffective,
		},
		BlastScore: -1,
		Now:        dec.Timestamp,
	}
	if in.BlastScore != nil && in.BlastScore.IsInt64() {
		f.Input.BlastScore = in.BlastScore.Int64()
	}
	if set.UsesRequest() {
		f.Input.Request = policy.DecodeObject(in.Request)
		f.Input.BlastRadius = policy.DecodeObject(in.BlastRadius)
		f.Input.PrivilegeContext = policy.DecodeObject(in.PrivilegeContext)
	}
	if b := rec.BlastRadius; b != nil {
		f.Worker.BlastRadius = policy.BlastRadius{Data: int64(b.Data), Network: int64(b.Network), Financial: int64(b.Financial), Time: int64(b.Time), Reversibility: b.Reversibility}
	}
	if e := rec.PrivilegeEnvelope; e != nil {
		f.Worker.Envelope = policy.Envelope{SecretsAccess: e.SecretsAccess, NetworkEgress: e.NetworkEgress.Hosts,
			FilesystemWrites: e.FilesystemWrites, FilesystemReads: e.FilesystemReads, Tools: e.Tools}
		if e.NetworkEgress.Mode == "unrestricted" {
			f.Worker.Envelope.NetworkEgress = unrestricted
		}
	}
	for i := range dec.TelemetryEnvelopes {
		if e := &dec.TelemetryEnvelopes[i]; e.EventID == wcp.EvtBlastScored {
			f.BlastScore = int64(e.BlastScore)
		}
	}
	return f
}

// applyPolicies evaluates the policy set on an allowed decision bound to w
// and reports whether it stays allowed. A DENY turns it into
// DENY_POLICY_GATE, a REQUIRE_HUMAN into DENY_REQUIRES_HUMAN_APPROVAL
// (PyHall's payloads), unless the run presents an approval of exactly this
// request and plan, which it then uses up. With approvals on, a dispatch
// that needs a human is held (see holdForApproval).
func (h *Hall) applyPolicies(ctx context.Context, s *snapshot, w *boundWorker, in *wcp.RouteInput, dec *wcp.RouteDecision) bool {
	set := s.policies
	if set == nil {
		return true
	}
	digest := set.Digest()
	ev := &wcp.PolicyEvidence{SetDigest: digest}
	dec.Policy = ev
	// must_attach_policy_version: the policy set in force is the version.
	for i := range dec.TelemetryEnvelopes {
		if e := &dec.TelemetryEnvelopes[i]; e.PolicyVersion != "" {
			e.PolicyVersion = digest
		}
	}
	f := policyFacts(set, w, in, dec)
	gated := dec.EscalationEffective.PolicyGate
	pctx, span := h.startSpan(ctx, "hall.policies")
	var began time.Time
	if span.IsRecording() {
		began = time.Now()
	}
	res := set.EvaluateContext(ctx, &f, gated)
	if span.IsRecording() {
		policySpans(pctx, h.tracer, span, set, res, gated, began, time.Now())
	}
	span.End()
	if res.Outcome == policy.Allow && set.Approvals().HumanRequired {
		if why := humanRequired(dec, in); why != "" {
			res = policy.Result{Outcome: policy.RequireHuman, Reason: why}
		}
	}
	// A prod/edge blast score ≥ 85 that the router deferred (approvals on)
	// needs a human whatever the policies say, unless one of them denies.
	highBlast := dec.HighBlastScore > 0
	if highBlast && res.Outcome == policy.Allow {
		res = policy.Result{Outcome: policy.RequireHuman, Reason: "REQUIRE_HUMAN_HIGH_BLAST"}
	}
	// denyHuman is the denial of a request that needs a human: PyHall's
	// DENY_REQUIRES_HUMAN with its blast payload for a high blast score,
	// DENY_REQUIRES_HUMAN_APPROVAL otherwise.
	denyHuman := func(dec *wcp.RouteDecision, msg string) {
		if highBlast {
			denyByPolicy(dec, wcp.DenyRequiresHuman, "The blast radius is too high for autonomous execution; a human must approve this dispatch"+msg, res.Reason, digest, true)
			dec.DenyReason.BlastScore = big.NewInt(int64(dec.HighBlastScore))
			return
		}
		denyByPolicy(dec, wcp.DenyRequiresHumanApproval, "The policy gate requires a human approval before this worker can be dispatched"+msg, res.Reason, digest, true)
	}
	ev.Outcome, ev.PolicyID = string(res.Outcome), res.Policy
	switch res.Outcome {
	case policy.Allow:
		return true
	case policy.RequireHuman:
		call := runCallFrom(ctx)
		if call != nil && call.approvalID != "" && !in.DryRun {
			// Checked here, used up by Run with the decision's record,
			// after admission (recordDecisionUsing).
			problem := h.checkApproval(ctx, call, s, w, dec)
			if problem == "" {
				ev.ApprovalID = call.approvalID
				call.refuse = func(d *wcp.RouteDecision, problem string) {
					if d.Policy != nil {
						d.Policy.ApprovalID = ""
					}
					denyHuman(d, "; "+problem)
				}
				return true
			}
			denyHuman(dec, "; "+problem)
			return false
		}
		denyHuman(dec, ".")
		if call != nil && !in.DryRun && set.Approvals().Enabled {
			call.hold = &held{w: w, in: in, set: set, snap: s, result: res, blastScore: f.BlastScore}
		}
		return false
	default:
		if res.Code == policy.CodeCostExceeded {
			denyByPolicy(dec, wcp.DenyPolicyCostExceeded, "A policy went over the policy cost limit; the Hall denies rather than decide unchecked.", res.Reason, digest, false)
			return false
		}
		denyByPolicy(dec, wcp.DenyPolicyGate, "The policy gate denied this request.", res.Reason, digest, false)
		return false
	}
}

// humanRequired reports why the matched rule's escalation requires a
// human ("" when it does not): human_required_default, or a
// human_required_if condition that matches the request.
func humanRequired(dec *wcp.RouteDecision, in *wcp.RouteInput) string {
	esc := &dec.EscalationEffective
	if esc.HumanRequiredDefault {
		return "rule " + dec.MatchedRuleID + " sets escalation.human_required_default"
	}
	if len(esc.HumanRequiredIf) == 0 {
		return ""
	}
	v, err := pyval.Decode(esc.HumanRequiredIf)
	list, ok := v.([]any)
	if err != nil || !ok {
		return "rule " + dec.MatchedRuleID + " has an unreadable escalation.human_required_if (fail closed)"
	}
	for i, c := range list {
		if conditionMatches(c, in) {
			return fmt.Sprintf("rule %s: escalation.human_required_if[%d] matches", dec.MatchedRuleID, i)
		}
	}
	return ""
}

// conditionMatches reads a human_required_if condition like a rule's
// match block: every key names a RouteInput field and holds a value or a
// list of values. A key it cannot read counts as matching (fail closed:
// a human decides).
func conditionMatches(c any, in *wcp.RouteInput) bool {
	m, ok := c.(map[string]any)
	if !ok {
		return true
	}
	fields := map[string]string{"capability_id": in.CapabilityID, "env": in.Env, "data_label": in.DataLabel,
		"tenant_risk": in.TenantRisk, "qos_class": in.QoSClass, "tenant_id": in.TenantID}
	for k, want := range m {
		got, known := fields[k]
		if !known {
			continue
		}
		switch w := want.(type) {
		case string:
			if got != w {
				return false
			}
		case []any:
			if !slices.Contains(w, any(got)) {
				return false
			}
		case map[string]any:
			if l, ok := w["in"].([]any); ok && !slices.Contains(l, any(got)) {
				return false
			}
		}
	}
	return true
}

// denyByPolicy turns an allowed decision into a policy denial with the
// payload PyHall's gate denials have (router step 10b).
func denyByPolicy(dec *wcp.RouteDecision, code wcp.DenyCode, msg, reason, version string, human bool) {
	esc := dec.EscalationEffective
	esc.Rationale = &reason
	if human {
		esc.HumanRequiredDefault = true
	}
	dec.Denied = true
	dec.DenyReason = &wcp.DenyReason{Code: code, Message: msg, Reason: &reason, PolicyVersion: &version, SupervisorRequired: human}
	dec.EscalationEffective = esc
	dec.SelectedWorkerSpeciesID = ""
	dec.ArtifactHash = ""
	dec.RecommendedProfilesEffective = nil
	dec.CandidateWorkersRanked = []wcp.CandidateWorker{}
	dec.WorkerAttestationChecked = false
	dec.WorkerAttestationValid = nil
	dec.TelemetryEnvelopes = []wcp.Event{{
		EventID: wcp.EvtTaskDenied, Timestamp: dec.Timestamp,
		CorrelationID: pyval.Sanitize(dec.CorrelationID), TenantID: pyval.Sanitize(dec.TenantID), CapabilityID: pyval.Sanitize(dec.CapabilityID),
		DenyCode: code, DenyMessage: msg, MatchedRuleID: dec.MatchedRuleID, DryRun: dec.DryRun,
	}}
}
