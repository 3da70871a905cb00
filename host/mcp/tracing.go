package mcp

import (
	"context"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wcphall/hall/internal/tracing"
)

// startToolSpan starts the span of one tools/call as the OpenTelemetry
// semantic conventions for MCP define it (docs/OBSERVABILITY.md): named
// "tools/call {tool}", kind server, with mcp.method.name, gen_ai.tool.name,
// gen_ai.operation.name and mcp.session.id. The trace context the client
// put in params._meta (traceparent, tracestate) is its parent; the
// transport's span, when there is one (Streamable HTTP), is linked. Never
// the arguments or the result. Nothing when the Hall does not trace.
func (s *Server) startToolSpan(ctx context.Context, name string, req *sdk.CallToolRequest) (context.Context, trace.Span) {
	tracer := tracing.Tracer(s.h.TracerProvider())
	if tracer == nil {
		return ctx, trace.SpanFromContext(context.Background())
	}
	parent := ctx
	var opts []trace.SpanStartOption
	if req.Params != nil && req.Params.Meta != nil {
		carrier := propagation.MapCarrier{}
		for _, k := range []string{"traceparent", "tracestate"} {
			if v, ok := req.Params.Meta[k].(string); ok {
				carrier[k] = v
			}
		}
		if remote := trace.SpanContextFromContext(tracing.Extract(context.Background(), carrier)); remote.IsValid() {
			if transport := trace.SpanContextFromContext(ctx); transport.IsValid() {
				opts = append(opts, trace.WithLinks(trace.Link{SpanContext: transport, Attributes: []attribute.KeyValue{attribute.String("hall.link", "transport")}}))
			}
			parent = trace.ContextWithRemoteSpanContext(ctx, remote)
		}
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(
		tracing.MCPMethod.String("tools/call"),
		tracing.GenAIToolName.String(name),
		tracing.GenAIOperation.String("execute_tool"),
	))
	ctx, span := tracer.Start(parent, "tools/call "+name, opts...)
	if req.Session != nil {
		if id := req.Session.ID(); id != "" {
			span.SetAttributes(tracing.MCPSession.String(id))
		}
	}
	return ctx, span
}

// endToolSpan ends a tools/call span with the result's status: a result
// that is an error is error.type "tool_error", as the conventions say.
func endToolSpan(span trace.Span, r *sdk.CallToolResult) {
	if span.IsRecording() && r != nil {
		if m := r.Meta; m != nil {
			for _, k := range []string{"decision_id", "receipt_id", "deny_code", "outcome", "status"} {
				if v, ok := m[k].(string); ok && v != "" {
					span.SetAttributes(attribute.String("hall."+k, v))
				}
			}
		}
		if r.IsError {
			span.SetStatus(codes.Error, "tool_error")
			span.SetAttributes(tracing.ErrorType.String("tool_error"))
		}
	}
	span.End()
}
