package tracing

import (
	"context"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Scope is the instrumentation scope of every span the Hall emits.
const Scope = "github.com/wcphall/hall"

// Tracer is the Hall's tracer from tp, or nil when tp is nil (tracing off).
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(Scope)
}

// off is the span every helper returns when tracing is off: it records
// nothing, and ending it does nothing.
var off trace.Span = noop.Span{}

// Start starts a span named name under ctx's span with t, or, when t is
// nil (tracing off), returns ctx unchanged and a span that records nothing,
// without allocating. Callers set attributes only when span.IsRecording().
func Start(ctx context.Context, t trace.Tracer, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if t == nil {
		return ctx, off
	}
	return t.Start(ctx, name, trace.WithSpanKind(kind))
}

// Propagator is W3C Trace Context (traceparent, tracestate): the only
// propagation the Hall reads or writes. It is a value, not the global.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Extract returns ctx with the remote span context carrier holds
// (traceparent and tracestate), or ctx when it holds none or an invalid one.
func Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	return Propagator.Extract(ctx, carrier)
}

// Inject writes ctx's span context into carrier (traceparent and, when
// set, tracestate); nothing when ctx holds no valid span context.
func Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	Propagator.Inject(ctx, carrier)
}

// TraceID is the hex trace id of ctx's span when it is being recorded,
// else "".
func TraceID(ctx context.Context) string {
	sp := trace.SpanFromContext(ctx)
	if !sp.IsRecording() {
		return ""
	}
	return sp.SpanContext().TraceID().String()
}

// Attribute keys of the Hall's spans (docs/OBSERVABILITY.md). Semantic
// convention keys are spelled out where the Hall uses them: the Go module
// of the conventions moves faster than the Hall's dependency policy.
const (
	CapabilityID = attribute.Key("hall.capability_id")
	TenantID     = attribute.Key("hall.tenant_id")
	RuleID       = attribute.Key("hall.rule_id")
	DecisionID   = attribute.Key("hall.decision_id")
	Outcome      = attribute.Key("hall.outcome")
	DenyCode     = attribute.Key("hall.deny_code")
	ReceiptID    = attribute.Key("hall.receipt_id")
	WorkerID     = attribute.Key("hall.worker_id")
	ModuleDigest = attribute.Key("hall.module_digest")
	Snapshot     = attribute.Key("hall.snapshot")
	MemoryBytes  = attribute.Key("hall.sandbox.memory_bytes")
	PolicyID     = attribute.Key("hall.policy_id")
	PolicyEffect = attribute.Key("hall.policy_effect")
	PolicyResult = attribute.Key("hall.policy.result")
	ApprovalID   = attribute.Key("hall.approval_id")
	QueueWaitMS  = attribute.Key("hall.admission.wait_ms")
	Correlation  = attribute.Key("hall.correlation_id")
	LogsDropped  = attribute.Key("hall.guest_log.dropped")
	ErrorType    = attribute.Key("error.type")

	HTTPMethod     = attribute.Key("http.request.method")
	HTTPRoute      = attribute.Key("http.route")
	HTTPStatus     = attribute.Key("http.response.status_code")
	URLPath        = attribute.Key("url.path")
	URLScheme      = attribute.Key("url.scheme")
	ServerAddress  = attribute.Key("server.address")
	ServerPort     = attribute.Key("server.port")
	MCPMethod      = attribute.Key("mcp.method.name")
	MCPSession     = attribute.Key("mcp.session.id")
	JSONRPCID      = attribute.Key("jsonrpc.request.id")
	GenAIToolName  = attribute.Key("gen_ai.tool.name")
	GenAIOperation = attribute.Key("gen_ai.operation.name")
)

// runSpanKey marks, in a context, the span a Run directly under it makes
// its own (AdoptRun).
type runSpanKey struct{}

// Adopted is the Hall's own span of a request (the HTTP server span of
// POST /wcp/run, an MCP tools/call span) as a Run under it adopts it
// (AdoptRun): the Run sets its status, and leaves its attributes here for
// the span's maker to set with its own in one call (each SetAttributes
// call grows the span's attribute slice again).
type Adopted struct {
	Span  trace.Span
	attrs [3]attribute.KeyValue
	n     int
}

// Add keeps kv for the span's maker (at most three; more are dropped:
// the Run sets two, hall.outcome and error.type).
func (a *Adopted) Add(kv ...attribute.KeyValue) {
	for _, x := range kv {
		if a.n < len(a.attrs) {
			a.attrs[a.n] = x
			a.n++
		}
	}
}

// AppendTo appends the attributes the Run left to kv, but for those of
// the keys in except (which the maker sets itself).
func (a *Adopted) AppendTo(kv []attribute.KeyValue, except ...attribute.Key) []attribute.KeyValue {
	for _, x := range a.attrs[:a.n] {
		if !slices.Contains(except, x.Key) {
			kv = append(kv, x)
		}
	}
	return kv
}

// AdoptRun returns ctx marked so that a Run called with it (or with a
// context derived from it without a span of its own) takes a.Span, the
// Hall's own span of the request that carries the Run, as its own
// instead of making a "hall.run" span: one span fewer per dispatch, and
// the request's span names what the dispatch came to. a.Span must be
// ctx's span; the caller that started it ends it, with a's attributes.
func AdoptRun(ctx context.Context, a *Adopted) context.Context {
	return context.WithValue(ctx, runSpanKey{}, a)
}

// RunSpan is what AdoptRun marked in ctx, when its span is still ctx's
// span (no span was started under it since) and records; ok is false
// otherwise, and the Run makes a span of its own.
func RunSpan(ctx context.Context) (a *Adopted, ok bool) {
	a, _ = ctx.Value(runSpanKey{}).(*Adopted)
	if a == nil || a.Span == nil || !a.Span.IsRecording() || a.Span.SpanContext().SpanID() != trace.SpanContextFromContext(ctx).SpanID() {
		return nil, false
	}
	return a, true
}
