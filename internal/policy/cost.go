package policy

import (
	"context"
	"errors"
	"fmt"
	"math"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/interpreter"

	"github.com/wcphall/hall/host/wcp"
)

// Cost bounds on policies (issue 25). A policy is CEL over data a caller
// chooses (input.request can be as large as the request body), so an
// expression such as nested exists/filter over request.items turns a
// 59 KB request into seconds of CPU per decision. Two bounds, in layers:
//
//   - At load, each policy's cost is estimated (cel-go's cost estimator)
//     with every list, map and string a caller controls (input, tenant)
//     of size n and then 2n, and the Hall's own data (worker, rule) of a
//     fixed size. A policy whose estimate more than triples when n doubles
//     grows faster than the request (a comprehension over the request
//     inside another one, a list search per item): it is refused, named,
//     with POLICY_INVALID. A policy whose cost the estimator cannot bound
//     is refused too.
//   - At evaluation, one evaluation of the set (every applicable policy)
//     may spend at most Limits.CostLimit units of CEL cost; past it the
//     evaluation stops and the request is denied with
//     DENY_POLICY_COST_EXCEEDED, naming the policy. The evaluation also
//     stops when the request's context is done (the caller left, the Hall
//     closes) and then fails closed as a DENY_POLICY_GATE.

// DefaultCostLimit is Limits.CostLimit when zero: the CEL cost units one
// evaluation of the policy set may spend (Kubernetes' per-expression limit
// for its CEL validation rules). A unit is about one operation (a
// comparison, a field selection, one iteration's step): a scan of a list
// costs about 6 per item, so the default admits a linear scan of some
// 160,000 items. Measured on a loaded 2-core machine, a unit took 70 ns in
// a scan and up to 470 ns in a filter that builds lists
// (BenchmarkCostLimit: issue 25's bomb over 59 KB stopped after 0.47 s
// instead of running 8–11 s): the default bounds one evaluation to well
// under a second of one core.
const DefaultCostLimit = 1_000_000

// Limits bound what evaluating a policy set may cost. The zero value takes
// the defaults.
type Limits struct {
	// CostLimit is the CEL cost one evaluation may spend (0:
	// DefaultCostLimit).
	CostLimit uint64
}

func (l Limits) costLimit() uint64 {
	if l.CostLimit == 0 {
		return DefaultCostLimit
	}
	return l.CostLimit
}

// CodeCostExceeded is Result.Code of an evaluation stopped by the cost
// limit.
const CodeCostExceeded = string(wcp.DenyPolicyCostExceeded)

// interruptEvery is how many comprehension iterations CEL runs between two
// looks at the evaluation's context.
const interruptEvery = 64

// programOptions are the evaluation options of every program of a set.
func (l Limits) programOptions() []cel.ProgramOption {
	return []cel.ProgramOption{cel.EvalOptions(cel.OptOptimize), cel.CostLimit(l.costLimit()), cel.InterruptCheckFrequency(interruptEvery)}
}

// The sizes the load-time estimate gives collections and strings: callerSize
// (then twice it) for what a caller controls, hallSize for the Hall's own.
const (
	callerSize = 1024
	hallSize   = 256
	// maxGrowth is the most a policy's estimate may grow when callerSize
	// doubles: 2 for linear cost, plus slack for constant terms.
	maxGrowth = 3
)

// sizer is the cost.Estimator of the load-time check.
type sizer struct{ caller uint64 }

func (sizer) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (s sizer) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	p := n.Path()
	if len(p) == 0 {
		return nil
	}
	switch p[0] {
	case "input", "tenant":
		return &cost.SizeEstimate{Min: 0, Max: s.caller}
	}
	return &cost.SizeEstimate{Min: 0, Max: hallSize}
}

// checkGrowth refuses a checked expression whose estimated cost grows
// faster than the request ("" when it does not).
func checkGrowth(a *cel.Ast) string {
	small, err1 := celEnv().EstimateCost(a, sizer{callerSize})
	large, err2 := celEnv().EstimateCost(a, sizer{2 * callerSize})
	if err := errors.Join(err1, err2); err != nil {
		return fmt.Sprintf("its cost cannot be estimated (%v); write it with the standard CEL functions", err)
	}
	if small.Max == math.MaxUint64 || large.Max == math.MaxUint64 {
		return "its cost cannot be bounded: it iterates or calls something whose size the Hall cannot bound; write it over input, worker, rule and tenant with the standard CEL functions"
	}
	if large.Max > maxGrowth*small.Max {
		return fmt.Sprintf("its estimated cost grows faster than the request (×%.1f when the request's lists, maps and strings double in size: a comprehension or search over the request inside another one); a policy's cost must be at most linear in the request, so a caller cannot make a decision arbitrarily expensive (docs/POLICY.md, \"Cost\")",
			float64(large.Max)/float64(max(small.Max, 1)))
	}
	return ""
}

// stopped classifies an evaluation error: the cost limit, the context, or
// neither.
func stopped(err error) (costLimit, interrupted bool) {
	var ce interpreter.EvalCancelledError
	if errors.As(err, &ce) && ce.Cause == interpreter.CostLimitExceeded {
		return true, false
	}
	if errors.Is(err, interpreter.InterruptError{}) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false, true
	}
	return false, false
}
