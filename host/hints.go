package host

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/suggest"
)

// DenyHint returns the likely fix of a denial in one sentence, or "" when
// there is none to suggest. The CLI prints it after the denial, the HTTP
// API returns it (Hall-Hint, "hint"), so that no denial with a likely fix
// is a dead end (issue 27). A hint is advice: the decision stands and is
// recorded as it was made. It covers DENY_NO_AVAILABLE_WORKER (each
// candidate species and why it was skipped) and DENY_NO_MATCHING_RULE:
//
//   - a capability no enrolled worker serves: the enrolled capabilities
//     closest to it ("did you mean"), else the enrolled ones, else how to
//     enroll one;
//   - a capability enrolled workers serve that no rule routes: the
//     command that adds a rule;
//   - a capability rules route, none matching this request: those rules.
func (h *Hall) DenyHint(d *wcp.RouteDecision) string {
	if d == nil || !d.Denied || d.DenyReason == nil {
		return ""
	}
	if d.DenyReason.Code == wcp.DenyNoAvailableWorker && len(d.CandidateWorkersRanked) > 0 {
		served := h.snap.Load().reg.Capabilities()[d.CapabilityID]
		var why []string
		for _, c := range d.CandidateWorkersRanked {
			reason := string(c.SkipReason)
			switch {
			case !slices.Contains(served, c.WorkerSpeciesID):
				reason = "no worker of it serving " + d.CapabilityID + " is enrolled"
			case reason == "":
				reason = "not selected"
			}
			why = append(why, c.WorkerSpeciesID+" ("+reason+")")
		}
		return fmt.Sprintf("the candidates of rule %s cannot serve this request: %s; enroll a worker of one of these species (hall enroll MODULE.wasm), or fix what skipped it", d.MatchedRuleID, strings.Join(why, "; "))
	}
	if d.DenyReason.Code != wcp.DenyNoMatchingRule {
		return ""
	}
	s := h.snap.Load()
	caps := s.reg.Capabilities()
	species, served := caps[d.CapabilityID]
	if !served {
		names := make([]string, 0, len(caps))
		for cp := range caps {
			names = append(names, cp)
		}
		slices.Sort(names)
		switch close := suggest.Closest(d.CapabilityID, names, 3); {
		case len(close) > 0:
			return fmt.Sprintf("no enrolled worker serves %s; did you mean %s?", d.CapabilityID, strings.Join(close, " or "))
		case len(names) > 0:
			return fmt.Sprintf("no enrolled worker serves %s; enrolled capabilities: %s", d.CapabilityID, strings.Join(names, ", "))
		}
		return "no worker is enrolled in this Hall; enroll one with hall enroll MODULE.wasm (or POST /enroll)"
	}
	if ids := s.rules.CapabilityRuleIDs(d.CapabilityID); len(ids) > 0 {
		return fmt.Sprintf("rules %s can route %s, but none matches this request (env %s, data_label %s, tenant_risk %s, qos_class %s); send a request one of them matches, or add a rule that matches this one",
			strings.Join(ids, ", "), d.CapabilityID, d.Env, d.DataLabel, d.TenantRisk, d.QoSClass)
	}
	return fmt.Sprintf("%s is served by the enrolled %s, but no rule routes it: add a dev-only rule with hall enroll --add-rule MODULE.wasm, or add a rule for it to the rules (rules.json, PUT /admin/rules)",
		d.CapabilityID, strings.Join(species, ", "))
}

// requestDefaults are the RouteInput fields a caller may leave out and
// what they default to: the CLI's flag defaults, which the HTTP API and
// the MCP server apply as well (issue 27: HTTP and CLI disagreed). A
// correlation id left out is a new UUID.
var requestDefaults = [...]struct{ Field, Value string }{
	{"env", "dev"}, {"data_label", "INTERNAL"}, {"tenant_risk", "low"}, {"qos_class", "P2"},
}

// DefaultRequest fills, in obj (a RouteInput as a JSON object), the fields
// a caller may leave out that it lacks: env "dev", data_label "INTERNAL",
// tenant_risk "low", qos_class "P2" (the CLI's defaults) and correlation_id
// (a new UUID). It returns what it filled, "field=value" (correlation_id
// bare), in that order. A field present, even with a wrong value, is left
// to validation.
func DefaultRequest(obj map[string]any) []string {
	var filled []string
	for _, d := range requestDefaults {
		if _, ok := obj[d.Field]; !ok {
			obj[d.Field] = d.Value
			filled = append(filled, d.Field+"="+d.Value)
		}
	}
	if _, ok := obj["correlation_id"]; !ok {
		obj["correlation_id"] = uuid.NewString()
		filled = append(filled, "correlation_id")
	}
	return filled
}

// limitKeys names, per limit outcome, the hall.json key that raises it.
var limitKeys = map[wcp.Code]string{
	wcp.CodeLimitTimeout: "timeout_ms", wcp.CodeLimitMemory: "memory_mb", wcp.CodeLimitInput: "input_bytes",
	wcp.CodeLimitOutput: "output_bytes", wcp.CodeLimitStack: "stack_mb",
}

// FailureHint returns how to get past a worker failure that is a limit
// (LIMIT_TIMEOUT, LIMIT_MEMORY, …): the key that raises it in the
// worker's record and in hall.json (the Hall's ceiling, which caps every
// record's), or "" for any other outcome.
// A call refused by the Hall-wide memory budget points at
// limits.memory_budget_mb (read at start) instead.
func (h *Hall) FailureHint(outcome string, err error) string {
	code := wcp.Code(outcome)
	if code == wcp.CodeLimitMemory && err != nil && strings.Contains(err.Error(), "memory budget") {
		return `the Hall's memory budget is too small for this worker: raise "limits": {"memory_budget_mb": N} in hall.json or hall serve --memory-budget-mb N (read at start), or lower limits.memory_mb`
	}
	key, ok := limitKeys[code]
	if !ok {
		return ""
	}
	return fmt.Sprintf(`to raise the limit: "limits": {%q: N} in the worker's registry record (then enroll it again), up to the Hall's ceiling for every worker, "limits": {%q: N} in hall.json (applied by hall serve without a restart)`, key, key)
}

// FailureMessage is err's message without the outcome code and the worker
// id it repeats, for a line that names both already ("LIMIT_MEMORY
// org.acme.summarizer: LIMIT_MEMORY: org.acme.summarizer: …", issue 27).
func FailureMessage(outcome, workerID string, err error) string {
	if err == nil {
		return ""
	}
	msg := strings.TrimPrefix(err.Error(), outcome+": ")
	return strings.TrimPrefix(msg, workerID+": ")
}
