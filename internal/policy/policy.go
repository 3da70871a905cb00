package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/ext"

	"github.com/wcphall/hall/host/wcp"
)

// Outcome is a policy's answer, with WCP's policy gate words.
type Outcome string

// The outcomes. A set answers Allow when no applicable policy matches.
const (
	Allow        Outcome = "ALLOW"
	Deny         Outcome = "DENY"
	RequireHuman Outcome = "REQUIRE_HUMAN"
)

// Applicability of a policy.
const (
	// AppliesAll: every request whose decision the router allowed (the
	// default).
	AppliesAll = "all"
	// AppliesPolicyGate: only requests whose matched rule sets
	// escalation.policy_gate.
	AppliesPolicyGate = "policy_gate"
)

// File is a policy file (policy.json).
type File struct {
	// Approvals turns REQUIRE_HUMAN into pending human approvals (WCP
	// §5.8). Off by default: REQUIRE_HUMAN is then PyHall's denial.
	Approvals Approvals `json:"approvals"`
	// Policies are evaluated in this order; their order only decides
	// which reason is reported among policies of the same effect.
	Policies []Spec `json:"policies"`
}

// Approvals configures human approvals.
type Approvals struct {
	// Enabled creates a pending approval for a dispatch a policy (or, with
	// HumanRequired, the matched rule) requires a human for.
	Enabled bool `json:"enabled"`
	// ExpiresAfter is how long an approval stays valid (Go duration,
	// default "1h"), counted from the request: a pending approval not
	// decided, or an approved one not run, by then expires.
	ExpiresAfter string `json:"expires_after,omitempty"`
	// HumanRequired makes the matched rule's escalation.human_required_default
	// and escalation.human_required_if require a human (PyHall only echoes
	// them).
	HumanRequired bool `json:"human_required,omitempty"`
}

// DefaultApprovalTTL is Approvals.ExpiresAfter's default.
const DefaultApprovalTTL = time.Hour

// Spec is one policy as written.
type Spec struct {
	// ID names the policy in decisions, receipts and errors: lower-case
	// letters, digits, '-', '_' and '.'.
	ID          string `json:"id"`
	Description string `json:"description,omitempty"`
	// AppliesTo is "all" (default) or "policy_gate".
	AppliesTo string `json:"applies_to,omitempty"`
	// When is a CEL expression of type bool over the variables input,
	// worker, rule, tenant, blast_score and now (docs/POLICY.md).
	When string `json:"when"`
	// Effect is DENY or REQUIRE_HUMAN: what the policy answers when When
	// is true.
	Effect Outcome `json:"effect"`
	// Reason is the reason reported when the policy decides.
	Reason string `json:"reason,omitempty"`
}

// Error is one problem of a policy file: the file, the policy (its index
// and id), the field and, for an expression, the line and column in it.
type Error struct {
	File   string
	Index  int // -1: the file itself
	ID     string
	Field  string
	Line   int // 1-based; 0 when not an expression position
	Column int // 1-based
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Index >= 0 {
		fmt.Fprintf(&b, "policies[%d]", e.Index)
		if e.ID != "" {
			fmt.Fprintf(&b, " (%s)", e.ID)
		}
		b.WriteString(".")
	}
	b.WriteString(e.Field)
	if e.Line > 0 {
		fmt.Fprintf(&b, " at %d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Code is POLICY_INVALID.
func (e *Error) Code() wcp.Code { return wcp.CodePolicyInvalid }

// Set is a compiled policy file. It is immutable and safe for concurrent
// use. The nil *Set has no policies and approvals off.
type Set struct {
	digest      string
	approvals   Approvals
	ttl         time.Duration
	policies    []compiled
	usesRequest bool
	limits      Limits
	// all and ungated are every policy (a gated request) and the policies
	// that apply to every request, each combined into one CEL program that
	// answers the index of the deciding policy, or -1. One program per
	// request instead of one per policy: a CEL evaluation's fixed cost
	// (its frame, its activation lookups) is paid once (see
	// BenchmarkEvaluate20).
	all, ungated cel.Program
}

type compiled struct {
	spec    Spec
	prg     cel.Program
	gated   bool
	request bool
}

// policyID is compiled on first use: the counted repetition {0,127}
// makes a large program (1,440 allocations, 104 kB at package init, paid
// by every hall process whether or not it reads a policy file).
var policyID = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`) })

// celEnv is the CEL environment every policy is checked in, built on first
// use: a Hall without a policy file (and every one-shot command that
// never reads one) does not pay the ~5 ms of building it at start-up.
var celEnv = sync.OnceValue(func() *cel.Env {
	e, err := cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[Input](), reflect.TypeFor[Worker](), reflect.TypeFor[Rule](),
			reflect.TypeFor[Envelope](), reflect.TypeFor[BlastRadius](), ext.ParseStructTags(true)),
		cel.Variable("input", cel.ObjectType("policy.Input")),
		cel.Variable("worker", cel.ObjectType("policy.Worker")),
		cel.Variable("rule", cel.ObjectType("policy.Rule")),
		cel.Variable("tenant", cel.StringType),
		cel.Variable("blast_score", cel.IntType),
		cel.Variable("now", cel.TimestampType),
		cel.OptionalTypes(),
		ext.Strings(),
	)
	if err != nil {
		panic("policy: building the CEL environment: " + err.Error())
	}
	return e
})

// Parse compiles a policy document with the default Limits. file names it
// in errors. Every problem is reported, joined.
func Parse(file string, data []byte) (*Set, error) { return ParseLimits(file, data, Limits{}) }

// ParseLimits compiles a policy document whose evaluations are bounded by
// lim (cost.go). Besides what Parse checks, a policy whose estimated cost
// grows faster than the request is refused, named, with POLICY_INVALID.
func ParseLimits(file string, data []byte, lim Limits) (*Set, error) {
	return parse(file, data, lim, true)
}

func parse(file string, data []byte, lim Limits, checkCost bool) (*Set, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, &Error{File: file, Index: -1, Field: "(document)", Msg: "not a valid policy file: " + err.Error() + ` (expected {"approvals": {...}, "policies": [{"id", "when", "effect", "reason"}]})`}
	}
	if dec.More() {
		return nil, &Error{File: file, Index: -1, Field: "(document)", Msg: "unexpected data after the JSON object"}
	}
	sum := sha256.Sum256(data)
	s := &Set{digest: "sha256:" + hex.EncodeToString(sum[:]), approvals: f.Approvals, ttl: DefaultApprovalTTL, limits: lim}
	var errs []error
	if v := f.Approvals.ExpiresAfter; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, &Error{File: file, Index: -1, Field: "approvals.expires_after", Msg: fmt.Sprintf("%q is not a positive duration such as \"30m\" or \"24h\"", v)})
		} else {
			s.ttl = d
		}
	}
	seen := map[string]int{}
	for i, p := range f.Policies {
		bad := func(field, format string, args ...any) {
			errs = append(errs, &Error{File: file, Index: i, ID: p.ID, Field: field, Msg: fmt.Sprintf(format, args...)})
		}
		if !policyID().MatchString(p.ID) {
			bad("id", "%q is not a policy id (lower-case letters, digits, '.', '-', '_'; 1 to 128 characters)", p.ID)
		} else if j, dup := seen[p.ID]; dup {
			bad("id", "duplicate of policies[%d]", j)
		} else {
			seen[p.ID] = i
		}
		switch p.Effect {
		case Deny, RequireHuman:
		default:
			bad("effect", "%q must be DENY or REQUIRE_HUMAN (a request no policy matches is allowed)", p.Effect)
		}
		gated := false
		switch p.AppliesTo {
		case "", AppliesAll:
		case AppliesPolicyGate:
			gated = true
		default:
			bad("applies_to", "%q must be %q or %q", p.AppliesTo, AppliesAll, AppliesPolicyGate)
		}
		if strings.TrimSpace(p.When) == "" {
			bad("when", "is required: a CEL expression of type bool, e.g. input.env == \"prod\"")
			continue
		}
		a, iss := celEnv().Compile(p.When)
		if iss != nil && iss.Err() != nil {
			for _, e := range iss.Errors() {
				loc := e.Location
				errs = append(errs, &Error{File: file, Index: i, ID: p.ID, Field: "when", Line: loc.Line(), Column: loc.Column() + 1, Msg: e.Message})
			}
			continue
		}
		if !a.OutputType().IsExactType(types.BoolType) {
			bad("when", "is of type %s; it must be a bool", a.OutputType())
			continue
		}
		if checkCost {
			if why := checkGrowth(a); why != "" {
				bad("when", "%s", why)
				continue
			}
		}
		prg, err := celEnv().Program(a, lim.programOptions()...)
		if err != nil {
			bad("when", "%v", err)
			continue
		}
		c := compiled{spec: p, prg: prg, gated: gated, request: selects(a, "request")}
		s.usesRequest = s.usesRequest || c.request
		s.policies = append(s.policies, c)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var err error
	if s.all, err = s.combine(true); err == nil {
		s.ungated, err = s.combine(false)
	}
	if err != nil {
		return nil, &Error{File: file, Index: -1, Field: "policies", Msg: "combining the policies: " + err.Error()}
	}
	return s, nil
}

// combine builds one expression that answers the index of the first
// matching DENY policy, else of the first matching REQUIRE_HUMAN policy,
// else -1. Each policy's own expression was checked alone; parenthesised
// on lines of their own, comments in it cannot reach the next one.
func (s *Set) combine(gated bool) (cel.Program, error) {
	var b strings.Builder
	n := 0
	for _, effect := range []Outcome{Deny, RequireHuman} {
		for i, p := range s.policies {
			if p.spec.Effect != effect || (p.gated && !gated) {
				continue
			}
			fmt.Fprintf(&b, "(\n%s\n) ? %d : ", p.spec.When, i)
			n++
		}
	}
	b.WriteString("-1")
	a, iss := celEnv().Compile(b.String())
	if iss != nil && iss.Err() != nil {
		return nil, iss.Err()
	}
	return celEnv().Program(a, s.limits.programOptions()...)
}

// selects reports whether the checked expression selects field anywhere.
func selects(a *cel.Ast, field string) bool {
	nav := ast.NavigateAST(a.NativeRep())
	found := ast.MatchDescendants(nav, func(e ast.NavigableExpr) bool {
		return e.Kind() == ast.SelectKind && e.AsSelect().FieldName() == field
	})
	return len(found) > 0
}

// Digest is "sha256:<hex>" of the policy file's bytes ("" for nil).
func (s *Set) Digest() string {
	if s == nil {
		return ""
	}
	return s.digest
}

// Len is the number of policies.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.policies)
}

// IDs lists the policy ids in file order.
func (s *Set) IDs() []string {
	if s == nil {
		return nil
	}
	out := make([]string, len(s.policies))
	for i, p := range s.policies {
		out[i] = p.spec.ID
	}
	return out
}

// Approvals is the approvals block (zero for nil).
func (s *Set) Approvals() Approvals {
	if s == nil {
		return Approvals{}
	}
	return s.approvals
}

// ApprovalTTL is how long an approval stays valid.
func (s *Set) ApprovalTTL() time.Duration {
	if s == nil {
		return DefaultApprovalTTL
	}
	return s.ttl
}

// UsesRequest reports whether some policy reads input.request (callers
// decode the request payload only then).
func (s *Set) UsesRequest() bool { return s != nil && s.usesRequest }

// Result is a set's answer to one request.
type Result struct {
	Outcome Outcome
	// Policy is the id of the policy that decided ("" for Allow).
	Policy string
	Reason string
	// Code is CodeCostExceeded when the evaluation was stopped by the cost
	// limit (a DENY naming the policy it was evaluating), else "".
	Code string

	// decider is 1 + the index of the policy the combined program
	// answered (0: none, Allow); steps, when not nil, is what the
	// evaluation one policy at a time reached (the rare path of an error
	// or the cost limit). Set.Steps reads them.
	decider int
	steps   []Step
}

// Step is one policy's part in an evaluation (Set.Steps): its id, its
// declared effect and what it answered — never the facts it was asked.
type Step struct {
	ID     string
	Effect Outcome
	Result StepResult
}

// StepResult is what one policy answered.
type StepResult string

// What a policy answered: its condition held (match) or did not
// (no_match), could not be evaluated (error: the set fails closed), or
// went over the cost limit (cost_exceeded).
const (
	StepMatch        StepResult = "match"
	StepNoMatch      StepResult = "no_match"
	StepError        StepResult = "error"
	StepCostExceeded StepResult = "cost_exceeded"
)

// Steps yields, in the order they were evaluated, the policies the
// evaluation that answered res reached (res from EvaluateContext on this
// set with the same gated): the tracing of each policy evaluation
// (docs/OBSERVABILITY.md). It costs nothing until called.
//
// # Notes
//
//   - The applicable policies are one CEL program that evaluates the DENY
//     policies, then the REQUIRE_HUMAN ones, in file order, and stops at
//     the first that holds: the policies before it answered no_match, it
//     answered match, and those after it were not evaluated (not
//     yielded). An Allow reached every applicable policy.
//   - When the combined program failed (an error, the cost limit), the
//     policies were evaluated one at a time in file order, and Steps
//     yields what that pass reached.
func (s *Set) Steps(res Result, gated bool) iter.Seq[Step] {
	return func(yield func(Step) bool) {
		if s == nil {
			return
		}
		if res.steps != nil {
			for _, st := range res.steps {
				if !yield(st) {
					return
				}
			}
			return
		}
		for _, effect := range []Outcome{Deny, RequireHuman} {
			for i := range s.policies {
				p := &s.policies[i]
				if p.spec.Effect != effect || (p.gated && !gated) {
					continue
				}
				st := Step{ID: p.spec.ID, Effect: p.spec.Effect, Result: StepNoMatch}
				if i == res.decider-1 {
					st.Result = StepMatch
				}
				if !yield(st) || st.Result == StepMatch {
					return
				}
			}
		}
	}
}

// Evaluate is EvaluateContext without a context.
func (s *Set) Evaluate(f *Facts, gated bool) Result {
	return s.EvaluateContext(context.Background(), f, gated)
}

// EvaluateContext runs the applicable policies on f: all of them when
// gated (the matched rule sets escalation.policy_gate), else those that
// apply to every request. DENY overrides REQUIRE_HUMAN overrides ALLOW;
// within an effect the first policy in file order is reported. An
// evaluation error (a missing map key, a type mismatch at run time) is a
// DENY naming the policy: the set fails closed.
//
// # Notes
//
//   - One call spends at most the set's cost limit (Limits.CostLimit) on
//     the combined program, and as much again naming the policy at fault;
//     past the limit the answer is a DENY with Code CodeCostExceeded
//     naming the policy being evaluated (cost.go).
//   - When ctx is done the evaluation stops within a few iterations and
//     the answer is a DENY (fail closed) that says so.
func (s *Set) EvaluateContext(ctx context.Context, f *Facts, gated bool) Result {
	if s == nil {
		return Result{Outcome: Allow}
	}
	act := activation{f: f}
	prg := s.ungated
	if gated {
		prg = s.all
	}
	out, _, err := prg.ContextEval(ctx, &act)
	if err == nil {
		i, ok := out.(types.Int)
		switch {
		case ok && i < 0:
			return Result{Outcome: Allow}
		case ok && int(i) < len(s.policies):
			p := &s.policies[i]
			return Result{Outcome: p.spec.Effect, Policy: p.spec.ID, Reason: p.reason(), decider: int(i) + 1}
		}
	}
	limit := s.limits.costLimit()
	if overLimit, _ := stopped(err); overLimit {
		if p := s.only(gated); p != nil {
			// One policy applies: it is the one at fault, no need to spend
			// the limit again to name it.
			res := p.overLimit(limit)
			res.steps = []Step{p.step(StepCostExceeded)}
			return res
		}
	}
	// Some policy failed, or the whole went over the cost limit: evaluate
	// them one by one to name it. Their costs add up against the limit.
	// What each answered is kept for Steps (a rare path: it may allocate).
	var human *compiled
	var spent uint64
	var steps []Step
	for i := range s.policies {
		p := &s.policies[i]
		if p.gated && !gated {
			continue
		}
		out, det, err := p.prg.ContextEval(ctx, &act)
		if det != nil && det.ActualCost() != nil {
			spent += *det.ActualCost()
		}
		fail := func(res Result, r StepResult) Result {
			res.steps = append(steps, p.step(r))
			return res
		}
		overLimit, interrupted := stopped(err)
		if overLimit || (err == nil && spent > limit) {
			return fail(p.overLimit(limit), StepCostExceeded)
		}
		if interrupted {
			return fail(Result{Outcome: Deny, Policy: p.spec.ID, Reason: fmt.Sprintf("the evaluation of policy %s was interrupted (%v), so the Hall fails closed", p.spec.ID, context.Cause(ctx))}, StepError)
		}
		if err != nil {
			return fail(Result{Outcome: Deny, Policy: p.spec.ID, Reason: fmt.Sprintf("policy %s could not be evaluated (%v), so the Hall fails closed", p.spec.ID, err)}, StepError)
		}
		if out != types.True {
			if _, ok := out.(types.Bool); !ok {
				return fail(Result{Outcome: Deny, Policy: p.spec.ID, Reason: fmt.Sprintf("policy %s answered %v, not a bool, so the Hall fails closed", p.spec.ID, out)}, StepError)
			}
			steps = append(steps, p.step(StepNoMatch))
			continue
		}
		if p.spec.Effect == Deny {
			return fail(Result{Outcome: Deny, Policy: p.spec.ID, Reason: p.reason()}, StepMatch)
		}
		steps = append(steps, p.step(StepMatch))
		if human == nil {
			human = p
		}
	}
	if steps == nil {
		steps = []Step{}
	}
	if human != nil {
		return Result{Outcome: RequireHuman, Policy: human.spec.ID, Reason: human.reason(), steps: steps}
	}
	return Result{Outcome: Allow, steps: steps}
}

// step is p's Step with result r.
func (p *compiled) step(r StepResult) Step {
	return Step{ID: p.spec.ID, Effect: p.spec.Effect, Result: r}
}

// only returns the one policy that applies (nil: none or several).
func (s *Set) only(gated bool) *compiled {
	var one *compiled
	for i := range s.policies {
		if p := &s.policies[i]; !p.gated || gated {
			if one != nil {
				return nil
			}
			one = p
		}
	}
	return one
}

// overLimit is the answer when p's evaluation went over the cost limit.
func (p *compiled) overLimit(limit uint64) Result {
	return Result{Outcome: Deny, Policy: p.spec.ID, Code: CodeCostExceeded,
		Reason: fmt.Sprintf("policy %s went over the policy cost limit of %d per evaluation (hall.json policy.cost_limit), so the Hall fails closed", p.spec.ID, limit)}
}

func (p *compiled) reason() string {
	if p.spec.Reason != "" {
		return p.spec.Reason
	}
	return "policy " + p.spec.ID
}
