//go:build unix

package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkSpanExport is the OpenTelemetry SDK's share of a traced
// dispatch over HTTP, without the Hall (docs/OBSERVABILITY.md, "What
// tracing costs"): the four spans of POST /wcp/run with the no-op
// worker and their 17 attributes, made, ended, batched (blocking: no span
// dropped) and exported over OTLP/HTTP to a receiver in this process that
// reads each request. It reports the process CPU per dispatch
// (cpu-µs/op: what the CPU overhead of BenchmarkTracingOverhead cannot be
// below while the trace has these spans) and the OTLP bytes sent.
//
//	go test -run '^$' -bench SpanExport -benchtime 20000x ./internal/tracing
func BenchmarkSpanExport(b *testing.B) {
	var received atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		received.Add(n)
		w.WriteHeader(http.StatusOK)
	}))
	defer sink.Close()
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(sink.URL+"/v1/traces"))
	if err != nil {
		b.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBlocking()))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer(Scope)
	const digest = "sha256:95ed120990a873b52abc63cfb67d02df5ccfbd2830d9703ba763676471644674"
	b.ReportAllocs()
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			ctx, req := tr.Start(context.Background(), "POST", trace.WithSpanKind(trace.SpanKindServer))
			_, s := tr.Start(ctx, "hall.decide")
			s.SetAttributes(CapabilityID.String("cap.test.noop"), TenantID.String("org.acme"), RuleID.String("r_noop"), DecisionID.String("01a2539f-7f16-71b7-8c90-2eaa9e3c006a"),
				Outcome.String("allow"), Snapshot.String(digest), attributeSpecies.String("wrk.test.noop"))
			s.End()
			_, s = tr.Start(ctx, "hall.sandbox.call")
			s.SetAttributes(WorkerID.String("org.test.noop"), ModuleDigest.String(digest), Outcome.String("ok"), MemoryBytes.Int64(1<<17))
			s.End()
			_, s = tr.Start(ctx, "hall.evidence.commit")
			s.SetAttributes(ReceiptID.String("rcpt_01a2539f7f1671b78c902eaa9e3c006a"))
			s.End()
			req.SetName("POST /wcp/run")
			req.SetAttributes(HTTPMethod.String("POST"), URLPath.String("/wcp/run"), HTTPStatus.Int(200), HTTPRoute.String("/wcp/run"), Outcome.String("ok"))
			req.End()
		}
	})
	if err := tp.ForceFlush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(received.Load())/float64(b.N), "otlp-B/op")
}

const attributeSpecies = attribute.Key("hall.worker_species_id")

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
