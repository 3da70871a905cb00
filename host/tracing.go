package host

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/policy"
	"github.com/wcphall/hall/internal/sandbox"
	"github.com/wcphall/hall/internal/tracing"
)

// Tracing (docs/OBSERVABILITY.md). A Hall traces only when
// Options.TracerProvider is set; then each Run is a "hall.run" span (or,
// under the span host/server or host/mcp made for the request that
// carries it, that span: tracing.AdoptRun) with children "hall.decide"
// (and "hall.policies" under it), "hall.admission", "hall.sandbox.call"
// (and one "hall.egress" client span per HTTP exchange of the guest, one
// "hall.hop" per sub-dispatch) and "hall.evidence.commit", each
// attribute on one of them only. Off, h.tracer is nil
// and every span helper is a nil check (BenchmarkHallDecide's allocations
// are those of a Hall without tracing).
//
// Tracing settings are operational, not governance: they change what an
// operator sees, never what is decided or run, so they are not part of
// the sealed snapshot. What a worker's egress sends upstream is: a
// traceparent header goes out only when the worker's sealed record opts in
// (privilege_envelope.network_egress.propagate_trace_context).

// TracerProvider is the provider the Hall's spans come from
// (Options.TracerProvider), nil when tracing is off. host/server and
// host/mcp start their HTTP and MCP spans from it.
func (h *Hall) TracerProvider() trace.TracerProvider { return h.opts.TracerProvider }

// startSpan starts a span of the Hall under ctx (nothing when tracing is
// off; see tracing.Start).
func (h *Hall) startSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	return tracing.Start(ctx, h.tracer, name, trace.SpanKindInternal)
}

// Guest log lines become events of the sandbox call's span, bounded:
// at most maxLogEvents lines, each cut at maxLogEventBytes.
const (
	maxLogEvents     = 32
	maxLogEventBytes = 512
)

// guestLogEvents adds the guest's log lines to span as "guest.log" events.
func guestLogEvents(span trace.Span, logs []byte) {
	n, dropped := 0, 0
	for len(logs) > 0 {
		line := logs
		if i := bytes.IndexByte(logs, '\n'); i >= 0 {
			line, logs = logs[:i], logs[i+1:]
		} else {
			logs = nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if n == maxLogEvents {
			dropped++
			continue
		}
		if len(line) > maxLogEventBytes {
			line = line[:maxLogEventBytes]
		}
		span.AddEvent("guest.log", trace.WithAttributes(attribute.String("log.record.body", string(bytes.ToValidUTF8(line, nil)))))
		n++
	}
	if dropped > 0 {
		span.SetAttributes(tracing.LogsDropped.Int(dropped))
	}
}

// decisionAttributes describes a decision on span: never its input's
// payload or free-text fields, only ids and codes. One SetAttributes call
// per span (and no key twice): each call grows the span's attribute slice
// again, and the SDK dedupes what it holds when the span ends.
func decisionAttributes(span trace.Span, dec *wcp.RouteDecision, snapshot string) {
	var buf [8]attribute.KeyValue
	kv := append(buf[:0],
		tracing.CapabilityID.String(dec.CapabilityID),
		tracing.TenantID.String(dec.TenantID),
		tracing.RuleID.String(dec.MatchedRuleID),
		tracing.DecisionID.String(dec.DecisionID.String()),
		tracing.Outcome.String(outcomeOf(dec)),
		tracing.Snapshot.String(snapshot),
	)
	if dec.Denied && dec.DenyReason != nil {
		kv = append(kv, tracing.DenyCode.String(string(dec.DenyReason.Code)))
	}
	if dec.SelectedWorkerSpeciesID != "" {
		kv = append(kv, attribute.String("hall.worker_species_id", string(dec.SelectedWorkerSpeciesID)))
	}
	span.SetAttributes(kv...)
}

// outcomeOf is a decision's hall.outcome: allow or deny.
func outcomeOf(dec *wcp.RouteDecision) string {
	if dec.Denied {
		return "deny"
	}
	return "allow"
}

// endRun describes on span what a dispatch came to (hall.outcome, and
// error.type with an error status when it failed), in one SetAttributes
// call, and ends it: a hall.run or hall.hop span. A request's span the
// run adopted (adopted not nil) gets the status now and the attributes
// through adopted, set and ended by its maker with its own. The
// decision's facts are on hall.decide, the worker's on
// hall.sandbox.call, the receipt's id on hall.evidence.commit: each
// attribute once per dispatch.
func endRun(span trace.Span, res *RunResult, err error, adopted *tracing.Adopted) {
	if !span.IsRecording() {
		return
	}
	var buf [2]attribute.KeyValue
	kv := buf[:0]
	errType := ""
	if res != nil {
		outcome := outcomeOf(&res.Decision)
		if res.Ran {
			outcome = res.Outcome
			if res.Outcome != "ok" {
				errType = res.Outcome
			}
		}
		kv = append(kv, tracing.Outcome.String(outcome))
	}
	if err != nil {
		errType = errorCode(err)
	}
	if errType != "" {
		span.SetStatus(codes.Error, errType)
		kv = append(kv, tracing.ErrorType.String(errType))
	}
	if adopted != nil {
		adopted.Add(kv...)
		return
	}
	span.SetAttributes(kv...)
	span.End()
}

// errorCode is the stable code of a Hall error for error.type (never its
// message, which may name paths or values).
func errorCode(err error) string {
	if c, ok := wcp.CodeOf(err); ok {
		return string(c)
	}
	return string(wcp.CodeHallError)
}

// heldSpans remembers, for the approvals this process holds, the span of
// the call that was held, so that the call resumed with the approval links
// to it. Bounded: the oldest entries give way (a link is a convenience;
// the approval's evidence is in the ledger).
type heldSpans struct {
	mu    sync.Mutex
	byID  map[string]trace.SpanContext
	order []string
}

const maxHeldSpans = 1024

func (m *heldSpans) put(id string, sc trace.SpanContext) {
	if !sc.IsValid() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byID == nil {
		m.byID = map[string]trace.SpanContext{}
	}
	if len(m.order) == maxHeldSpans {
		delete(m.byID, m.order[0])
		m.order = m.order[1:]
	}
	m.byID[id] = sc
	m.order = append(m.order, id)
}

func (m *heldSpans) get(id string) (trace.SpanContext, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sc, ok := m.byID[id]
	return sc, ok
}

// policySpans describes a policy set's evaluation on span (hall.policies:
// the set's digest and the outcome) and makes each
// policy the evaluation reached a "hall.policy" child span with its id,
// its declared effect and what it answered (policy.Step), never the facts
// it was asked. The applicable policies run as one CEL program
// (internal/policy: one evaluation's fixed cost instead of one per
// policy), so each policy's span covers that one evaluation: its result,
// not its duration, is its own.
func policySpans(ctx context.Context, tracer trace.Tracer, span trace.Span, set *policy.Set, res policy.Result, gated bool, from, to time.Time) {
	// The deciding policy is the hall.policy child whose result is
	// match: its id is there, not repeated here.
	span.SetAttributes(attribute.String("hall.policy_set", set.Digest()), tracing.PolicyEffect.String(string(res.Outcome)))
	for st := range set.Steps(res, gated) {
		kv := []attribute.KeyValue{tracing.PolicyID.String(st.ID), tracing.PolicyEffect.String(string(st.Effect)), tracing.PolicyResult.String(string(st.Result))}
		failed := st.Result == policy.StepError || st.Result == policy.StepCostExceeded
		if failed {
			kv = append(kv, tracing.ErrorType.String(string(st.Result)))
		}
		_, ps := tracer.Start(ctx, "hall.policy", trace.WithTimestamp(from), trace.WithAttributes(kv...))
		if failed {
			ps.SetStatus(codes.Error, string(st.Result))
		}
		ps.End(trace.WithTimestamp(to))
	}
}

// admissionSpan records the wait of a dispatch that queued for its slot,
// from began to now: a "hall.admission" span with its length in
// milliseconds (the tenant that waited is hall.decide's), an error when
// the wait ended without a slot (DENY_SATURATED, the Hall closing).
func admissionSpan(ctx context.Context, tracer trace.Tracer, began time.Time, err error) {
	kv := []attribute.KeyValue{tracing.QueueWaitMS.Float64(float64(time.Since(began).Microseconds()) / 1000)}
	if err != nil {
		kv = append(kv, tracing.ErrorType.String(errorCode(err)))
	}
	_, span := tracer.Start(ctx, "hall.admission", trace.WithTimestamp(began), trace.WithAttributes(kv...))
	if err != nil {
		span.SetStatus(codes.Error, errorCode(err))
	}
	span.End()
}

// endCommit ends an evidence commit's span, naming the receipt it
// committed, if any (the decision's id is on hall.decide).
func endCommit(span trace.Span, receiptID string, err error) {
	if !span.IsRecording() {
		span.End()
		return
	}
	var buf [2]attribute.KeyValue
	kv := buf[:0]
	if receiptID != "" {
		kv = append(kv, tracing.ReceiptID.String(receiptID))
	}
	if err != nil {
		span.SetStatus(codes.Error, "EVIDENCE_UNRECORDED")
		kv = append(kv, tracing.ErrorType.String("EVIDENCE_UNRECORDED"))
	}
	span.SetAttributes(kv...)
	span.End()
}

// sandboxAttributes describes a sandbox call on span: the worker, the
// module that ran, the outcome code and the linear memory it held, and
// the guest's log lines as events.
func sandboxAttributes(span trace.Span, plan *Plan, out *sandbox.Result, err error) {
	var buf [6]attribute.KeyValue
	kv := append(buf[:0], tracing.WorkerID.String(plan.WorkerID()), tracing.ModuleDigest.String(plan.ArtifactHash()))
	outcome := "ok"
	if err != nil {
		outcome = string(wcp.CodeHallError)
		if se, ok := errors.AsType[*sandbox.Error](err); ok {
			outcome = se.Code
		}
		span.SetStatus(codes.Error, outcome)
		kv = append(kv, tracing.ErrorType.String(outcome))
	}
	kv = append(kv, tracing.Outcome.String(outcome))
	if out != nil {
		kv = append(kv, tracing.MemoryBytes.Int64(int64(out.MemoryBytes)))
	}
	span.SetAttributes(kv...)
	if out != nil {
		guestLogEvents(span, out.Logs)
	}
}
