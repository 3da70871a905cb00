package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/wcphall/hall/internal/tracing"
)

// startToolSpan starts the span of one tools/call as the OpenTelemetry
// semantic conventions for MCP define it (docs/OBSERVABILITY.md): named
// "tools/call {tool}", kind server, with mcp.method.name, gen_ai.tool.name,
// gen_ai.operation.name and mcp.session.id. The trace context the client
// put in params._meta (traceparent, tracestate) is its parent; the
// transport's span, when there is one (Streamable HTTP), is linked. Never
// the arguments or the result. Nothing when the Hall does not trace.
// Without trace context in _meta, the transport's span is the parent.
func (s *Server) startToolSpan(ctx context.Context, name string, req *sdk.CallToolRequest) (context.Context, *tracing.Adopted) {
	tracer := tracing.Tracer(s.h.TracerProvider())
	if tracer == nil {
		return ctx, untraced
	}
	parent, fromMeta := ctx, false
	var opts []trace.SpanStartOption
	if req.Params != nil && req.Params.Meta != nil {
		carrier := propagation.MapCarrier{}
		for _, k := range []string{"traceparent", "tracestate"} {
			if v, ok := req.Params.Meta[k].(string); ok {
				carrier[k] = v
			}
		}
		if remote := trace.SpanContextFromContext(tracing.Extract(context.Background(), carrier)); remote.IsValid() {
			parent, fromMeta = trace.ContextWithRemoteSpanContext(ctx, remote), true
		}
	}
	if req.Extra != nil && req.Extra.Header != nil {
		h := req.Extra.Header
		if id := h.Get(hdrRequestID); id != "" {
			opts = append(opts, trace.WithAttributes(tracing.JSONRPCID.String(id)))
		}
		carrier := propagation.MapCarrier{"traceparent": h.Get(hdrTransportSpan)}
		if transport := trace.SpanContextFromContext(tracing.Extract(context.Background(), carrier)); transport.IsValid() {
			if !fromMeta {
				// No trace context in _meta: the transport's span is the parent.
				parent = trace.ContextWithRemoteSpanContext(ctx, transport)
			} else {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: transport, Attributes: []attribute.KeyValue{attribute.String("hall.link", "transport")}}))
			}
		}
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		tracing.MCPMethod.String("tools/call"),
		tracing.GenAIToolName.String(name),
		tracing.GenAIOperation.String("execute_tool"),
	))
	if req.Session != nil {
		if id := req.Session.ID(); id != "" {
			opts = append(opts, trace.WithAttributes(tracing.MCPSession.String(id)))
		}
	}
	ctx, span := tracer.Start(parent, "tools/call "+name, opts...)
	// The call's Run takes this span as its own rather than a hall.run
	// span, and leaves its attributes in run for endToolSpan.
	run := &tracing.Adopted{Span: span}
	return tracing.AdoptRun(ctx, run), run
}

// untraced is the tools/call "span" of a Hall that does not trace: it
// records nothing, and no Run adopts it.
var untraced = &tracing.Adopted{Span: noop.Span{}}

// endToolSpan ends a tools/call span with the result's status: a result
// that is an error is error.type "tool_error", as the conventions say.
func endToolSpan(run *tracing.Adopted, r *sdk.CallToolResult) {
	span := run.Span
	if span.IsRecording() && r != nil {
		var kv []attribute.KeyValue
		if m := r.Meta; m != nil {
			// Only what no other span of the call names: the Run put
			// hall.outcome here, the decision's id and deny code are on
			// hall.decide, the receipt's id on hall.evidence.commit.
			if v, ok := m["status"].(string); ok && v != "" {
				kv = append(kv, attribute.String("hall.status", v))
			}
		}
		if r.IsError {
			span.SetStatus(codes.Error, "tool_error")
			kv = append(kv, tracing.ErrorType.String("tool_error"))
			kv = run.AppendTo(kv, tracing.ErrorType)
		} else {
			kv = run.AppendTo(kv)
		}
		span.SetAttributes(kv...)
	}
	span.End()
}

// The Go MCP SDK runs a tool handler under its session's context (that of
// the request that opened the session), not under the HTTP request that
// carried the call, and does not give it the request's JSON-RPC id; it
// does give it that request's headers. markTransport puts both there, in
// headers of the Hall's own that it first removes from what the client
// sent (so a client cannot set them).
const (
	hdrRequestID     = "X-Hall-Jsonrpc-Id"
	hdrTransportSpan = "X-Hall-Transport-Span"
	// hdrStdio marks the RequestExtra stdioIDs makes: a call that came
	// over stdio, whose tenant is the configured one. Over HTTP the
	// tenant comes from the bearer token first, and wholeAnswers removes
	// the header from what a client sends.
	hdrStdio = "X-Hall-Stdio"
)

// stdioIDs is the stdio transport of a traced Server: the SDK gives a
// tool handler no JSON-RPC id and, over stdio, no RequestExtra, so its
// connection gives each tools/call one that carries the id (as
// markTransport does over HTTP), for jsonrpc.request.id.
//
// Only when the Hall traces: the wrapper hides the SDK's own connection's
// unexported hooks (its refusal of JSON-RPC batches once the session
// negotiated protocol 2025-06-18 or later).
type stdioIDs struct{ sdk.Transport }

func (t stdioIDs) Connect(ctx context.Context) (sdk.Connection, error) {
	c, err := t.Transport.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return stdioConn{c}, nil
}

type stdioConn struct{ sdk.Connection }

func (c stdioConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	m, err := c.Connection.Read(ctx)
	if r, ok := m.(*jsonrpc.Request); ok && r.Method == "tools/call" && r.ID.IsValid() && r.Extra == nil {
		h := http.Header{}
		h.Set(hdrStdio, "1")
		if id := fmt.Sprint(r.ID.Raw()); id != "" && len(id) <= 64 {
			h.Set(hdrRequestID, id)
		}
		r.Extra = &sdk.RequestExtra{Header: h}
	}
	return m, err
}

// markTransport sets, on a traced Streamable HTTP request, the JSON-RPC id
// of the tools/call data holds (its string, or its number's digits) and
// the request's own span (a traceparent value).
func markTransport(r *http.Request, data []byte) {
	unmark(r)
	var msg struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(data, &msg) != nil || msg.Method != "tools/call" || len(msg.ID) == 0 {
		return
	}
	id := string(msg.ID)
	var str string
	if json.Unmarshal(msg.ID, &str) == nil {
		id = str
	}
	if id != "null" && id != "" && len(id) <= 64 {
		r.Header.Set(hdrRequestID, id)
	}
	carrier := propagation.MapCarrier{}
	tracing.Inject(r.Context(), carrier)
	if tp := carrier["traceparent"]; tp != "" {
		r.Header.Set(hdrTransportSpan, tp)
	}
}

// unmark removes the Hall's own headers from what a client sent: only the
// Hall sets them (markTransport, stdioIDs).
func unmark(r *http.Request) {
	r.Header.Del(hdrRequestID)
	r.Header.Del(hdrTransportSpan)
	r.Header.Del(hdrStdio)
}
