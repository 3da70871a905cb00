package tracing

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// A record logged under a span context carries its ids; one logged
// without, or with the plain methods, does not.
func TestLogHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(LogHandler(slog.NewJSONHandler(&buf, nil))).With("k", "v")
	h := http.Header{}
	h.Set("traceparent", parent)
	ctx := Extract(context.Background(), propagation.HeaderCarrier(h))
	log.InfoContext(ctx, "traced")
	log.InfoContext(context.Background(), "untraced")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`) || !strings.Contains(lines[0], `"span_id":"00f067aa0ba902b7"`) || !strings.Contains(lines[0], `"k":"v"`) {
		t.Errorf("traced record %s", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Errorf("untraced record %s", lines[1])
	}
	if LogHandler(log.Handler()) != log.Handler() {
		t.Error("LogHandler wrapped a handler twice")
	}
}

// W3C trace context in and out; a malformed traceparent is no parent.
func TestPropagation(t *testing.T) {
	in := propagation.MapCarrier{"traceparent": parent, "tracestate": "a=1"}
	ctx := Extract(context.Background(), in)
	if sc := trace.SpanContextFromContext(ctx); !sc.IsRemote() || sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("extracted %v", sc)
	}
	out := propagation.MapCarrier{}
	Inject(ctx, out)
	if out["traceparent"] != parent || out["tracestate"] != "a=1" {
		t.Fatalf("injected %v", out)
	}
	for _, bad := range []string{"", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", "zz-" + parent[3:], parent + "-extra"} {
		if sc := trace.SpanContextFromContext(Extract(context.Background(), propagation.MapCarrier{"traceparent": bad})); sc.IsValid() {
			t.Errorf("traceparent %q accepted", bad)
		}
	}
	if TraceID(ctx) != "" {
		t.Error("TraceID of a remote, non-recording span context")
	}
}

// RunSpan finds the span AdoptRun marked only while it is still the
// context's span and records: not through a span started under it, not
// for a span that records nothing, not in an unmarked context.
func TestRunSpan(t *testing.T) {
	if _, ok := RunSpan(context.Background()); ok {
		t.Error("RunSpan of an unmarked context")
	}
	remote := Extract(context.Background(), propagation.MapCarrier{"traceparent": parent})
	off := trace.SpanFromContext(remote) // a remote parent: records nothing
	if _, ok := RunSpan(AdoptRun(remote, &Adopted{Span: off})); ok {
		t.Error("RunSpan of a span that does not record")
	}
	if _, ok := RunSpan(AdoptRun(context.Background(), &Adopted{})); ok {
		t.Error("RunSpan of a nil span")
	}
	var a Adopted
	a.Add(Outcome.String("ok"), ErrorType.String("X"), ReceiptID.String("r"), WorkerID.String("dropped"))
	if got := a.AppendTo(nil, ErrorType); len(got) != 2 || got[0].Key != Outcome || got[1].Key != ReceiptID {
		t.Errorf("AppendTo: %v", got)
	}
}
