package server

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/wcphall/hall/internal/tracing"
)

// traceRequests makes each request a server span of the Hall's tracer
// (host.Options.TracerProvider), a child of the caller's W3C traceparent
// and tracestate when it sends them. The span is named "{method} {route}"
// (the route pattern, never the raw path); its attributes are the method,
// route, path and status, never the query string, headers or body.
// GET /health and /metrics (probes and scrapes) are not traced. Installed
// only when the Hall traces: otherwise requests pay nothing.
// tracedWriter is a traced request's statusWriter and the Run it
// carries, in one allocation.
type tracedWriter struct {
	statusWriter
	run tracing.Adopted
}

func traceRequests(tp trace.TracerProvider) func(http.Handler) http.Handler {
	tracer := tracing.Tracer(tp)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/health" || r.URL.Path == "/metrics" {
				// Probes and scrapes, every few seconds: not traced.
				next.ServeHTTP(w, r)
				return
			}
			ctx := tracing.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer))
			defer span.End()
			// A Run under this request takes this span as its own
			// rather than a hall.run span, and leaves its attributes in
			// tw.run for the one SetAttributes call below.
			tw := &tracedWriter{statusWriter: statusWriter{ResponseWriter: w}}
			tw.run.Span = span
			sw := &tw.statusWriter
			next.ServeHTTP(sw, r.WithContext(tracing.AdoptRun(ctx, &tw.run)))
			route := ""
			if rc := chi.RouteContext(r.Context()); rc != nil {
				route = rc.RoutePattern()
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			if span.IsRecording() {
				// One SetAttributes call: each one grows the span's slice.
				kv := make([]attribute.KeyValue, 0, 8)
				kv = append(kv, tracing.HTTPMethod.String(r.Method), tracing.URLPath.String(r.URL.Path), tracing.HTTPStatus.Int(status))
				if route != "" {
					span.SetName(r.Method + " " + route)
					kv = append(kv, tracing.HTTPRoute.String(route))
				}
				if status >= 500 {
					span.SetStatus(codes.Error, strconv.Itoa(status))
					kv = append(kv, tracing.ErrorType.String(strconv.Itoa(status)))
					kv = tw.run.AppendTo(kv, tracing.ErrorType)
				} else {
					kv = tw.run.AppendTo(kv)
				}
				span.SetAttributes(kv...)
			}
		})
	}
}
