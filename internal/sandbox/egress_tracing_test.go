package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/wcphall/hall/internal/tracing"
)

// Each HTTP exchange of a traced call is a client span under the call's
// span: method, host, port, status and outcome, never the query string;
// traceparent goes upstream only when the worker's policy opts in
// (fermyon/spin#3267: sent to every upstream, it leaks to third parties).
func TestEgressSpans(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		rw.Write([]byte("ok"))
	}))
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	tracer := tracing.Tracer(tp)

	e := newEngine(t, Config{})
	quiet := load(t, e, fixtures.goguest, Spec{Name: "quiet", Pool: -1, Policy: Policy{Egress: []string{hostPort}}})
	loud := load(t, e, fixtures.goguest, Spec{Name: "propagating", Pool: -1, Policy: Policy{Egress: []string{hostPort}, PropagateTrace: true}})
	in, _ := json.Marshal(httpRequest{URL: srv.URL + "/x?token=SECRET-QUERY", Headers: map[string]string{"traceparent": "00-11111111111111111111111111111111-2222222222222222-01"}})
	for _, w := range []*Worker{quiet, loud} {
		ctx, span := tracer.Start(context.Background(), "hall.sandbox.call")
		if _, err := w.Call(ctx, Request{Export: "http", Input: in, Tracer: tracer}); err != nil {
			t.Fatal(err)
		}
		span.End()
	}
	// Not traced: no span, nothing propagated even when opted in.
	if _, err := loud.Call(context.Background(), Request{Export: "http", Input: in}); err != nil {
		t.Fatal(err)
	}

	var egress []sdktrace.ReadOnlySpan
	calls := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "hall.egress":
			egress = append(egress, s)
		case "hall.sandbox.call":
			calls[s.SpanContext().SpanID().String()] = s
		}
	}
	if len(egress) != 2 {
		t.Fatalf("%d hall.egress spans, want 2 (the untraced call has none)", len(egress))
	}
	for _, s := range egress {
		if calls[s.Parent().SpanID().String()] == nil {
			t.Errorf("hall.egress is not a child of its call's span")
		}
		got := map[string]string{}
		for _, kv := range s.Attributes() {
			got[string(kv.Key)] = kv.Value.String()
			if strings.Contains(kv.Value.String(), "SECRET-QUERY") {
				t.Errorf("attribute %s carries the query string", kv.Key)
			}
		}
		if got["server.address"] != "127.0.0.1" || got["http.request.method"] != "GET" || got["http.response.status_code"] != "200" || got["hall.outcome"] != "ok" || got["server.port"] == "" {
			t.Errorf("hall.egress attributes %v", got)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 {
		t.Fatalf("%d requests upstream, want 3", len(seen))
	}
	// The guest's own traceparent passes only where the Hall does not
	// propagate (the Hall never invents one there); where it does, the
	// Hall's egress span replaces it.
	if tp := seen[0].Get("traceparent"); tp != "00-11111111111111111111111111111111-2222222222222222-01" {
		t.Errorf("quiet worker: upstream traceparent %q, want the guest's own, untouched", tp)
	}
	want := egress[1].SpanContext()
	if tp := seen[1].Get("traceparent"); tp != "00-"+want.TraceID().String()+"-"+want.SpanID().String()+"-01" {
		t.Errorf("opted-in worker: upstream traceparent %q, want the egress span's %s/%s", tp, want.TraceID(), want.SpanID())
	}
	if tp := seen[2].Get("traceparent"); tp != "00-11111111111111111111111111111111-2222222222222222-01" {
		t.Errorf("untraced call of the opted-in worker: upstream traceparent %q, want the guest's own", tp)
	}
}
