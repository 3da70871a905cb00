package router

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/pyval"
)

// The five RouteInput fields a rule's match can constrain, in the order
// PyHall tests them.
var matchKeys = [5]string{"capability_id", "env", "data_label", "tenant_risk", "qos_class"}

type condKind uint8

const (
	condAny   condKind = iota // absent, null or {"any": true}
	condEq                    // a string compared exactly
	condIn                    // {"in": [...]}: membership
	condNever                 // anything else: PyHall's equality never holds
)

type cond struct {
	kind condKind
	eq   string
	set  []string // the string members of an "in" list
}

func (c *cond) matches(v string) bool {
	switch c.kind {
	case condAny:
		return true
	case condEq:
		return v == c.eq
	case condIn:
		for _, s := range c.set {
			if s == v {
				return true
			}
		}
	}
	return false
}

type candidate struct {
	species string // "" when missing or falsy (reported as "__missing__")
	score   *wcp.PyFloat
}

// Rule is one compiled routing rule.
type Rule struct {
	ID       string
	conds    [5]cond
	match    map[string]any // as written, for shadow detection
	cands    []candidate
	controls []string // sorted, distinct
	blastCtl bool     // requires ctrl.blast_radius_scoring
	privCtl  bool     // requires ctrl.privilege_envelopes_required
	esc      wcp.Escalation
	pre      wcp.Preconditions
	profiles wcp.JSONArray
}

// Controls returns the rule's required controls, sorted (the caller's
// copy).
func (r *Rule) Controls() []string { return slices.Clone(r.controls) }

// Species returns the rule's candidate species in rank order.
func (r *Rule) Species() []string {
	out := make([]string, len(r.cands))
	for i, c := range r.cands {
		out[i] = c.species
	}
	return out
}

// Matches reports whether the rule matches in.
func (r *Rule) Matches(in *wcp.RouteInput) bool {
	return r.conds[0].matches(in.CapabilityID) && r.conds[1].matches(in.Env) &&
		r.conds[2].matches(in.DataLabel) && r.conds[3].matches(in.TenantRisk) &&
		r.conds[4].matches(in.QoSClass)
}

// RuleSet is a compiled rules.json: rules in evaluation order plus the
// shadow analysis PyHall runs on every prod/edge request (computed once
// here, since it depends only on the rules). A RuleSet is immutable and safe
// for concurrent use.
//
// # Notes
//
//   - Compile also indexes the rules by exact capability_id, so finding the
//     first matching rule costs about the same for 10 rules as for 10,000
//     (see BenchmarkDecide). The index picks the same rule as testing every
//     rule in order would.
//   - Do not modify Rules after compiling. A RuleSet whose Rules changed
//     length since is scanned rule by rule, as if it had no index.
type RuleSet struct {
	Rules    []*Rule
	Shadows  []Shadow
	Warnings []string // conditions that can never match, ignored match keys, duplicate ids
	shadowed []string
	index    *capIndex
}

// ShadowedIDs returns the shadowed rule ids, one per shadow warning, in
// order (the caller's copy).
func (rs *RuleSet) ShadowedIDs() []string { return slices.Clone(rs.shadowed) }

// Clone returns a copy of rs that shares nothing a caller can change with
// it: its own Rules (each a copy of the compiled rule), Shadows and
// Warnings. What the copies share with rs (conditions, candidates, the
// index) is unexported and never changed after Compile. A Hall hands out
// clones, so that no caller can change the rules in force.
func (rs *RuleSet) Clone() *RuleSet {
	if rs == nil {
		return nil
	}
	c := &RuleSet{
		Shadows:  slices.Clone(rs.Shadows),
		Warnings: slices.Clone(rs.Warnings),
		shadowed: rs.shadowed,
		index:    rs.index,
	}
	if rs.Rules != nil {
		c.Rules = make([]*Rule, len(rs.Rules))
		for i, r := range rs.Rules {
			cp := *r
			c.Rules[i] = &cp
		}
	}
	return c
}

// LoadError lists every problem of a rules document, each with its path
// (rules[2].decision.escalation.policy_gate) and the fix.
type LoadError struct {
	File     string
	Problems []wcp.FieldError
}

func (e *LoadError) Error() string {
	prefix := e.File
	if prefix == "" {
		prefix = "rules"
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = prefix + ": " + p.Error()
	}
	return strings.Join(lines, "\n")
}

// LoadRules reads and compiles a rules.json file.
func LoadRules(path string) (*RuleSet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	rs, err := ParseRules(data)
	var le *LoadError
	if errors.As(err, &le) {
		le.File = path
	}
	return rs, err
}

// ParseRules compiles a rules.json document.
func ParseRules(data []byte) (*RuleSet, error) {
	v, err := pyval.Decode(data)
	if err != nil {
		return nil, &LoadError{Problems: []wcp.FieldError{{Field: "(document)", Message: "not valid JSON: " + err.Error()}}}
	}
	doc, ok := v.(map[string]any)
	if !ok {
		return nil, &LoadError{Problems: []wcp.FieldError{{Field: "(document)", Message: `must be an object {"rules": [...]}`}}}
	}
	raw, ok := doc["rules"]
	if !ok {
		return nil, &LoadError{Problems: []wcp.FieldError{{Field: "rules", Message: `is required: the document is {"rules": [ ...rules in evaluation order... ]}`}}}
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, &LoadError{Problems: []wcp.FieldError{{Field: "rules", Message: "must be an array of rules"}}}
	}
	return Compile(list)
}

// CompileRules compiles already-parsed rules (the wire type).
func CompileRules(rules []wcp.Rule) (*RuleSet, error) {
	b, err := json.Marshal(wcp.RulesFile{Rules: rules})
	if err != nil {
		return nil, err
	}
	return ParseRules(b)
}

type compiler struct {
	problems []wcp.FieldError
	warnings []string
}

func (c *compiler) bad(path, format string, args ...any) {
	c.problems = append(c.problems, wcp.FieldError{Field: path, Message: fmt.Sprintf(format, args...)})
}

// Compile compiles rules decoded with pyval.Decode (an array of objects).
func Compile(list []any) (*RuleSet, error) {
	c := &compiler{}
	rs := &RuleSet{}
	seen := map[string]int{}
	for i, raw := range list {
		path := fmt.Sprintf("rules[%d]", i)
		r := c.rule(path, raw)
		if r == nil {
			continue
		}
		if j, dup := seen[r.ID]; dup {
			c.warnings = append(c.warnings, fmt.Sprintf("%s: rule_id %q is also used by rules[%d]", path, r.ID, j))
		} else {
			seen[r.ID] = i
		}
		rs.Rules = append(rs.Rules, r)
	}
	if c.problems != nil {
		return nil, &LoadError{Problems: c.problems}
	}
	rs.Warnings = c.warnings
	rs.Shadows = DetectShadows(rs.Rules)
	rs.index = newCapIndex(rs.Rules)
	for _, s := range rs.Shadows {
		rs.shadowed = append(rs.shadowed, s.Shadowed)
	}
	return rs, nil
}

func (c *compiler) rule(path string, raw any) *Rule {
	obj, ok := raw.(map[string]any)
	if !ok {
		c.bad(path, "must be an object with rule_id, match and decision")
		return nil
	}
	r := &Rule{}
	switch id := obj["rule_id"].(type) {
	case string:
		r.ID = id
	case nil:
		if _, present := obj["rule_id"]; !present {
			c.bad(path+".rule_id", "is required (a unique string such as \"rr_doc_summarize_dev\")")
		} else {
			c.bad(path+".rule_id", "must be a string, not null")
		}
	default:
		c.bad(path+".rule_id", "must be a string")
	}
	r.match = map[string]any{}
	switch m := obj["match"].(type) {
	case nil:
	case map[string]any:
		r.match = m
	default:
		c.bad(path+".match", "must be an object of field conditions")
	}
	for k, v := range r.match {
		c.checkIn(path+".match."+k, v)
	}
	for i, key := range matchKeys {
		r.conds[i] = c.cond(path+".match."+key, r.match[key])
	}
	for k := range r.match {
		if !isMatchKey(k) {
			c.warnings = append(c.warnings, fmt.Sprintf("%s.match.%s: the matcher ignores this key (only %s are matched); shadow detection still counts it", path, k, strings.Join(matchKeys[:], ", ")))
		}
	}
	d := map[string]any{}
	switch dv := obj["decision"].(type) {
	case nil:
	case map[string]any:
		d = dv
	default:
		c.bad(path+".decision", "must be an object")
	}
	r.cands = c.candidates(path+".decision.candidate_workers_ranked", d)
	r.controls = c.controls(path+".decision.required_controls_suggested", d)
	for _, ctl := range r.controls {
		r.blastCtl = r.blastCtl || ctl == ctrlBlastScoring
		r.privCtl = r.privCtl || ctl == ctrlPrivilegeEnvelopes
	}
	r.esc = c.escalation(path+".decision.escalation", d)
	r.pre = c.preconditions(path+".decision.preconditions", d)
	r.profiles = c.profiles(path+".decision.recommended_profiles", d)
	return r
}

func isMatchKey(k string) bool {
	for _, m := range matchKeys {
		if k == m {
			return true
		}
	}
	return false
}

// checkIn refuses "in" operands PyHall would not treat as a list: a string
// (a substring test in Python), an object, a number or null (exceptions in
// Python), and lists holding lists or objects (unhashable in shadow
// detection).
func (c *compiler) checkIn(path string, v any) {
	m, ok := v.(map[string]any)
	if !ok {
		return
	}
	in, has := m["in"]
	if !has {
		return
	}
	list, ok := in.([]any)
	if !ok {
		c.bad(path+".in", `must be an array of allowed values, e.g. {"in": ["dev", "stage"]}; got %s`, describe(in))
		return
	}
	for i, e := range list {
		if !pyval.Hashable(e) {
			c.bad(fmt.Sprintf("%s.in[%d]", path, i), "must be a string (or another scalar), not %s", describe(e))
		}
	}
}

func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("the string %q (PyHall would test substrings)", x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case bool:
		return "a boolean"
	case json.Number:
		return "the number " + string(x)
	}
	return fmt.Sprintf("%T", v)
}

func (c *compiler) cond(path string, v any) cond {
	switch x := v.(type) {
	case nil:
		return cond{kind: condAny}
	case string:
		return cond{kind: condEq, eq: x}
	case map[string]any:
		if b, ok := x["any"].(bool); ok && b {
			return cond{kind: condAny}
		}
		if list, ok := x["in"].([]any); ok {
			cd := cond{kind: condIn}
			for _, e := range list {
				if s, ok := e.(string); ok {
					cd.set = append(cd.set, s)
				}
			}
			return cd
		}
		if _, has := x["in"]; has {
			return cond{kind: condNever} // refused by checkIn
		}
		b, _ := json.Marshal(x)
		c.warnings = append(c.warnings, fmt.Sprintf(`%s: %s is not an operator and never matches (write a string, {"in": [...]} or {"any": true})`, path, b))
	default:
		b, _ := json.Marshal(x)
		c.warnings = append(c.warnings, fmt.Sprintf(`%s: %s never equals a string, so this rule never matches`, path, b))
	}
	return cond{kind: condNever}
}

func (c *compiler) candidates(path string, d map[string]any) []candidate {
	raw, present := d["candidate_workers_ranked"]
	if !present {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		c.bad(path, "must be an array of {\"worker_species_id\": ..., \"score_hint\": ...} (omit it for no candidates)")
		return nil
	}
	out := make([]candidate, 0, len(list))
	for i, e := range list {
		p := fmt.Sprintf("%s[%d]", path, i)
		obj, ok := e.(map[string]any)
		if !ok {
			c.bad(p, "must be an object with worker_species_id")
			continue
		}
		var cd candidate
		switch s := obj["worker_species_id"].(type) {
		case string:
			cd.species = s
		default:
			if pyval.Truthy(s) {
				c.bad(p+".worker_species_id", "must be a string such as \"wrk.doc.summarizer\"")
			}
		}
		switch n := obj["score_hint"].(type) {
		case nil:
		case json.Number:
			f, err := n.Float64()
			if err != nil {
				c.bad(p+".score_hint", "must be a number")
			}
			pf := wcp.PyFloat(f)
			cd.score = &pf
		default:
			c.bad(p+".score_hint", "must be a number or null")
		}
		out = append(out, cd)
	}
	return out
}

func (c *compiler) controls(path string, d map[string]any) []string {
	raw, present := d["required_controls_suggested"]
	if !present {
		return []string{}
	}
	list, ok := raw.([]any)
	if !ok {
		c.bad(path, "must be an array of control ids (omit it for none)")
		return nil
	}
	set := map[string]bool{}
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			c.bad(fmt.Sprintf("%s[%d]", path, i), "must be a control id string such as \"ctrl.obs.audit-log-append-only\"")
			continue
		}
		set[s] = true
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func (c *compiler) laxBool(path string, obj map[string]any, key string, dst *bool) {
	raw, present := obj[key]
	if !present {
		return
	}
	b, ok := pyval.LaxBool(raw)
	if !ok {
		c.bad(path+"."+key, "must be true or false")
		return
	}
	*dst = b
}

func (c *compiler) escalation(path string, d map[string]any) wcp.Escalation {
	esc := wcp.Escalation{}
	raw, present := d["escalation"]
	if !present {
		return esc
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		c.bad(path, "must be an object (omit it for no escalation)")
		return esc
	}
	c.laxBool(path, obj, "policy_gate", &esc.PolicyGate)
	c.laxBool(path, obj, "msavx_step_up", &esc.MsavxStepUp)
	c.laxBool(path, obj, "human_required_default", &esc.HumanRequiredDefault)
	if hri, present := obj["human_required_if"]; present {
		list, ok := hri.([]any)
		if !ok {
			c.bad(path+".human_required_if", "must be an array of condition objects")
		} else {
			for i, e := range list {
				if _, ok := e.(map[string]any); !ok {
					c.bad(fmt.Sprintf("%s.human_required_if[%d]", path, i), "must be an object")
				}
			}
			esc.HumanRequiredIf = wcp.JSONArray(mustJSON(list))
		}
	}
	switch r := obj["rationale"].(type) {
	case nil:
	case string:
		esc.Rationale = &r
	default:
		c.bad(path+".rationale", "must be a string or null")
	}
	return esc
}

func (c *compiler) preconditions(path string, d map[string]any) wcp.Preconditions {
	pre := wcp.DefaultPreconditions()
	raw, present := d["preconditions"]
	if !present {
		return pre
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		c.bad(path, "must be an object (omit it for the defaults)")
		return pre
	}
	c.laxBool(path, obj, "must_have_correlation_id", &pre.MustHaveCorrelationID)
	c.laxBool(path, obj, "must_attach_policy_version", &pre.MustAttachPolicyVersion)
	c.laxBool(path, obj, "must_record_artifact_hash_if_executes", &pre.MustRecordArtifactHashIfExecutes)
	c.laxBool(path, obj, "deny_if_missing_required_controls", &pre.DenyIfMissingRequiredControls)
	c.laxBool(path, obj, "deny_if_unsigned_artifact_in_prod", &pre.DenyIfUnsignedArtifactInProd)
	c.laxBool(path, obj, "deny_if_no_attestation_in_prod", &pre.DenyIfNoAttestationInProd)
	return pre
}

func (c *compiler) profiles(path string, d map[string]any) wcp.JSONArray {
	raw, present := d["recommended_profiles"]
	if !present {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		c.bad(path, "must be an array of profile objects (omit it for none)")
		return nil
	}
	for i, e := range list {
		if _, ok := e.(map[string]any); !ok {
			c.bad(fmt.Sprintf("%s[%d]", path, i), "must be an object")
		}
	}
	if len(list) == 0 {
		return nil
	}
	return wcp.JSONArray(mustJSON(list))
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // values decoded from JSON always re-encode
	}
	return b
}
