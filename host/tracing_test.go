package host_test

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/tracing"
)

// tracedHall is newHall with tracing on, its spans kept in memory.
func tracedHall(t *testing.T) (*host.Hall, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return newHall(t, host.Options{TracerProvider: tp}), rec
}

// spanTree maps each ended span's name to its parent's name ("" for a
// root), the names of one trace only.
func spansOf(rec *tracetest.SpanRecorder, tid trace.TraceID) map[string]sdktrace.ReadOnlySpan {
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == tid {
			out[s.Name()] = s
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) string {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.String()
		}
	}
	return ""
}

// A traced Run is one trace: hall.run over the decision, the admission,
// the sandbox call and the evidence commit; the receipt names the trace,
// and the spans name the receipt and the decision.
func TestTracingRunSpanTree(t *testing.T) {
	h, rec := tracedHall(t)
	res, err := h.Run(context.Background(), host.RunRequest{Input: input(t, "cap.test.logger", "org.acme"), Payload: []byte("MARKER-payload-7f3a")})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("run: %v %+v", err, res)
	}
	if len(res.TraceID) != 32 {
		t.Fatalf("RunResult.TraceID %q: want a trace id", res.TraceID)
	}
	r := receiptOf(t, h, res.ReceiptID)
	if r.TraceID != res.TraceID {
		t.Fatalf("receipt trace_id %q, want %q", r.TraceID, res.TraceID)
	}
	tid, err := trace.TraceIDFromHex(res.TraceID)
	if err != nil {
		t.Fatal(err)
	}
	spans := spansOf(rec, tid)
	root := spans["hall.run"]
	if root == nil || root.Parent().IsValid() {
		t.Fatalf("no root hall.run span in %v", slices.Collect(mapKeys(spans)))
	}
	if spans["hall.admission"] != nil {
		t.Error("a dispatch admitted at once has a hall.admission span")
	}
	for _, name := range []string{"hall.decide", "hall.sandbox.call", "hall.evidence.commit"} {
		s := spans[name]
		if s == nil {
			t.Errorf("no %s span", name)
			continue
		}
		if s.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("%s: parent %s, want hall.run", name, s.Parent().SpanID())
		}
	}
	if t.Failed() {
		return
	}
	if got := attr(root, "hall.outcome"); got != "ok" {
		t.Errorf("hall.run hall.outcome = %q, want ok", got)
	}
	onceEach(t, spans)
	for key, want := range map[string]string{
		"hall.decision_id": res.Decision.DecisionID.String(), "hall.outcome": "allow",
		"hall.capability_id": "cap.test.logger", "hall.tenant_id": "org.acme", "hall.rule_id": res.Decision.MatchedRuleID,
	} {
		if got := attr(spans["hall.decide"], key); got != want {
			t.Errorf("hall.decide %s = %q, want %q", key, got, want)
		}
	}
	call := spans["hall.sandbox.call"]
	if got := attr(call, "hall.module_digest"); got != res.Plan.ArtifactHash() {
		t.Errorf("hall.sandbox.call module digest %q, want %q", got, res.Plan.ArtifactHash())
	}
	if attr(call, "hall.sandbox.memory_bytes") == "" || attr(call, "hall.worker_id") != "org.acme.logger" {
		t.Errorf("hall.sandbox.call attributes %v", call.Attributes())
	}
	var logged bool
	for _, ev := range call.Events() {
		logged = logged || ev.Name == "guest.log" && strings.Contains(ev.Attributes[0].Value.String(), "hello from the guest")
	}
	if !logged {
		t.Errorf("the guest's log line is not an event of hall.sandbox.call: %v", call.Events())
	}
	if got := attr(spans["hall.evidence.commit"], "hall.receipt_id"); got != res.ReceiptID {
		t.Errorf("hall.evidence.commit receipt id %q, want %q", got, res.ReceiptID)
	}
	for _, s := range rec.Ended() {
		for _, kv := range s.Attributes() {
			if strings.Contains(kv.Value.String(), "MARKER-payload") {
				t.Errorf("span %s attribute %s carries the payload", s.Name(), kv.Key)
			}
		}
	}
	// The receipt with its trace id is signed and verifies.
	store, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := store.Verify(context.Background(), nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// A dispatch that queued for its slot has a hall.admission span of the
// wait, under its hall.run, naming the wait (the tenant is hall.decide's).
func TestTracingAdmissionWait(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	h := newHall(t, host.Options{TracerProvider: tp, MaxConcurrent: 1})
	release, err := host.HoldDispatchSlot(h, "org.acme")
	if err != nil {
		t.Fatal(err)
	}
	in := input(t, "cap.test.logger", "org.acme")
	type ran struct {
		res *host.RunResult
		err error
	}
	done := make(chan ran, 1)
	go func() {
		res, err := h.Run(context.Background(), host.RunRequest{Input: in})
		done <- ran{res, err}
	}()
	for h.Admission().Waiting == 0 {
		runtime.Gosched() // until the run waits for the slot held here
	}
	release()
	r := <-done
	if r.err != nil || r.res.Outcome != "ok" {
		t.Fatalf("run: %v %+v", r.err, r.res)
	}
	tid, _ := trace.TraceIDFromHex(r.res.TraceID)
	spans := spansOf(rec, tid)
	a := spans["hall.admission"]
	if a == nil || a.Parent().SpanID() != spans["hall.run"].SpanContext().SpanID() {
		t.Fatalf("no hall.admission under hall.run: %v", slices.Collect(mapKeys(spans)))
	}
	if attr(a, "hall.admission.wait_ms") == "" || a.Status().Code != 0 {
		t.Errorf("hall.admission attributes %v, status %v", a.Attributes(), a.Status())
	}
}

// A denied request is a trace too: the decision span says why.
func TestTracingDeniedDecision(t *testing.T) {
	h, rec := tracedHall(t)
	res, err := h.Run(context.Background(), host.RunRequest{Input: input(t, "cap.test.nowhere", "org.acme")})
	if err != nil || !res.Decision.Denied {
		t.Fatalf("run: %v %+v", err, res)
	}
	tid, _ := trace.TraceIDFromHex(res.TraceID)
	spans := spansOf(rec, tid)
	d := spans["hall.decide"]
	if d == nil || attr(d, "hall.outcome") != "deny" || attr(d, "hall.deny_code") != string(res.Decision.Code()) || spans["hall.sandbox.call"] != nil {
		t.Fatalf("spans %v", slices.Collect(mapKeys(spans)))
	}
	onceEach(t, spans)
}

// onceEach fails when an attribute of one dispatch's spans is on more
// than one of them (docs/OBSERVABILITY.md: each fact on the one span
// where it belongs, long digests once): hall.outcome and error.type
// excepted, which each span has of its own (the decision's allow, the
// sandbox call's code, the dispatch's outcome).
func onceEach(t *testing.T, spans map[string]sdktrace.ReadOnlySpan) {
	t.Helper()
	on := map[string]string{}
	for name, s := range spans {
		for _, kv := range s.Attributes() {
			k := string(kv.Key)
			if k == "hall.outcome" || k == "error.type" {
				continue
			}
			if other, ok := on[k]; ok {
				t.Errorf("attribute %s is on both %s and %s", k, other, name)
			}
			on[k] = name
		}
	}
}

// A Run under a span the Hall made for its request (an HTTP server span,
// an MCP tools/call span: tracing.AdoptRun) makes no hall.run span: the
// request's span is the dispatch's, with its outcome, and the parent of
// the decision, the sandbox call and the commit. A span started under
// it in between takes that role back: the Run makes its own hall.run.
func TestTracingRunAdoptsRequestSpan(t *testing.T) {
	h, rec := tracedHall(t)
	tracer := tracing.Tracer(h.TracerProvider())
	ctx, req := tracer.Start(context.Background(), "POST /wcp/run", trace.WithSpanKind(trace.SpanKindServer))
	adopted := &tracing.Adopted{Span: req}
	res, err := h.Run(tracing.AdoptRun(ctx, adopted), host.RunRequest{Input: input(t, "cap.test.logger", "org.acme"), Payload: []byte("x")})
	// The span's maker sets what the run left with its own attributes.
	req.SetAttributes(adopted.AppendTo(nil)...)
	req.End()
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("run: %v %+v", err, res)
	}
	spans := spansOf(rec, req.SpanContext().TraceID())
	if spans["hall.run"] != nil {
		t.Fatalf("a hall.run span under the adopted request span: %v", slices.Collect(mapKeys(spans)))
	}
	root := spans["POST /wcp/run"]
	for _, name := range []string{"hall.decide", "hall.sandbox.call", "hall.evidence.commit"} {
		if s := spans[name]; s == nil || s.Parent().SpanID() != root.SpanContext().SpanID() {
			t.Errorf("%s: not a child of the request span (%v)", name, slices.Collect(mapKeys(spans)))
		}
	}
	if got := attr(root, "hall.outcome"); got != "ok" {
		t.Errorf("request span hall.outcome = %q, want ok", got)
	}
	onceEach(t, spans)

	ctx, req = tracer.Start(context.Background(), "POST /wcp/run", trace.WithSpanKind(trace.SpanKindServer))
	inner, between := tracer.Start(tracing.AdoptRun(ctx, &tracing.Adopted{Span: req}), "between")
	res, err = h.Run(inner, host.RunRequest{Input: input(t, "cap.test.logger", "org.acme"), Payload: []byte("x")})
	between.End()
	req.End()
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("run: %v %+v", err, res)
	}
	spans = spansOf(rec, req.SpanContext().TraceID())
	if run := spans["hall.run"]; run == nil || run.Parent().SpanID() != between.SpanContext().SpanID() || attr(spans["POST /wcp/run"], "hall.outcome") != "" {
		t.Fatalf("under a span in between: want a hall.run of its own under it, got %v", slices.Collect(mapKeys(spans)))
	}
}

// With tracing off the helpers allocate nothing: the span a disabled
// Start returns is a value that records nothing.
func TestTracingOffAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	n := testing.AllocsPerRun(100, func() {
		c, span := tracing.Start(ctx, nil, "hall.run", trace.SpanKindInternal)
		if span.IsRecording() {
			t.Fatal("recording while off")
		}
		span.End()
		_ = tracing.TraceID(c)
	})
	if n != 0 {
		t.Fatalf("%v allocations per disabled span", n)
	}
}

// Library code never sets OpenTelemetry's process-wide state (only
// cmd/hall could, and it does not need to).
func TestLibrarySetsNoGlobalTracing(t *testing.T) {
	for _, root := range []string{".", "../internal"} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return nil
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok && x.Name == "otel" {
						t.Errorf("%s: uses otel.%s, OpenTelemetry's process-wide state: take a TracerProvider from host.Options", fset.Position(sel.Pos()), sel.Sel.Name)
					}
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// A record opts in to sending its trace upstream in its privilege
// envelope: the field is part of the sealed record, so of the snapshot and
// of every receipt's privilege_envelope; a misspelling is refused.
func TestPropagateTraceContextIsDeclared(t *testing.T) {
	h := newHall(t, host.Options{})
	ctx := context.Background()
	rec := record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny", `, "privilege_envelope": {"network_egress": ["api.example.com"], "propagate_trace_context": true}`)
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: mods.tiny, Record: rec}); err != nil {
		t.Fatalf("enroll: %v", err)
	}
	res, err := h.Run(ctx, host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("run: %v %+v", err, res)
	}
	if env := string(res.Plan.Envelope()); !strings.Contains(env, `"propagate_trace_context":true`) {
		t.Fatalf("envelope in force %s", env)
	}
	if r := receiptOf(t, h, res.ReceiptID); !strings.Contains(string(r.Envelope), `"propagate_trace_context":true`) || r.TraceID != "" {
		t.Fatalf("receipt envelope %s, trace_id %q (untraced: none)", r.Envelope, r.TraceID)
	}
	bad := record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny", `, "privilege_envelope": {"propagate_trace_contxt": true}`)
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: mods.tiny, Record: bad}); err == nil {
		t.Fatal("a misspelt propagate_trace_context was accepted")
	}
}

// A call held for a human approval and the call that resumes with it are
// two traces; the resumed one links to the held one, and both name the
// approval. The policy's evaluation is a span of each decision.
func TestTracingApprovalLink(t *testing.T) {
	ctx := context.Background()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	m := integModules(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(policyRules), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.json"), []byte(strings.ReplaceAll(prodWrites, "%TTL%", "1h")), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1, TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: m.pa, Record: []byte(pickRecord)}); err != nil {
		t.Fatal(err)
	}
	issueApprover(t, h)
	id, in := pend(t, h)
	if _, err := h.DecideApproval(ctx, id, true, approver, ""); err != nil {
		t.Fatal(err)
	}
	res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
	if err != nil || !res.Ran {
		t.Fatalf("approved run: %v %+v", err, res.Decision.DenyReason)
	}
	var runs []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == "hall.run" && attr(s, "hall.approval_id") == id {
			runs = append(runs, s)
		}
	}
	if len(runs) != 2 {
		t.Fatalf("%d hall.run spans name approval %s, want the held and the resumed call", len(runs), id)
	}
	held, resumed := runs[0], runs[1]
	if len(resumed.Links()) != 1 || resumed.Links()[0].SpanContext.SpanID() != held.SpanContext().SpanID() {
		t.Fatalf("the resumed call's links %v do not name the held call %s", resumed.Links(), held.SpanContext().SpanID())
	}
	// Each policy the evaluation reached is a span of its own, under the
	// set's: the DENY policy (evaluated first) did not match, the
	// REQUIRE_HUMAN one did. Its id and its result, never the inputs.
	for _, run := range runs {
		tid := run.SpanContext().TraceID()
		spans := spansOf(rec, tid)
		set := spans["hall.policies"]
		if set == nil || set.Parent().SpanID() != spans["hall.decide"].SpanContext().SpanID() {
			t.Fatalf("trace %s: no hall.policies span under hall.decide", tid)
		}
		for key, want := range map[string]string{"hall.policy_id": "", "hall.policy_effect": "REQUIRE_HUMAN"} {
			// The deciding policy's id is on its hall.policy span only.
			if got := attr(set, key); got != want {
				t.Errorf("hall.policies %s = %q, want %q", key, got, want)
			}
		}
		var got []string
		for _, s := range rec.Ended() {
			if s.SpanContext().TraceID() != tid || s.Name() != "hall.policy" {
				continue
			}
			if s.Parent().SpanID() != set.SpanContext().SpanID() {
				t.Errorf("hall.policy %s: parent is not hall.policies", attr(s, "hall.policy_id"))
			}
			got = append(got, attr(s, "hall.policy_id")+" "+attr(s, "hall.policy_effect")+" "+attr(s, "hall.policy.result"))
			for _, kv := range s.Attributes() {
				if k := string(kv.Key); k != "hall.policy_id" && k != "hall.policy_effect" && k != "hall.policy.result" {
					t.Errorf("hall.policy carries %s", k)
				}
			}
		}
		want := []string{"no-restricted-in-dev DENY no_match", "prod-writes-need-a-human REQUIRE_HUMAN match"}
		if !slices.Equal(got, want) {
			t.Errorf("trace %s: hall.policy spans %q, want %q", tid, got, want)
		}
	}
}
