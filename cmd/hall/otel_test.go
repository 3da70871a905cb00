package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wcphall/hall/internal/wasmtest"
)

// The tracing tests export to a receiver nobody here wrote: the
// OpenTelemetry Collector, built from the collector project's modules
// (testdata/otelcol: the OTLP receiver and the file exporter, its own
// go.mod) once per version of that source, into the user cache directory.
// With CI set, a collector that cannot be built fails the test.

var otelcolOnce struct {
	sync.Mutex
	path string
	err  error
}

func otelcolBin(t *testing.T) string {
	t.Helper()
	otelcolOnce.Lock()
	defer otelcolOnce.Unlock()
	if otelcolOnce.path == "" && otelcolOnce.err == nil {
		otelcolOnce.path, otelcolOnce.err = buildOtelcol()
	}
	if otelcolOnce.err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the OpenTelemetry Collector of testdata/otelcol does not build (.ci/run builds it): %v", otelcolOnce.err)
		}
		t.Skipf("the OpenTelemetry Collector of testdata/otelcol does not build: %v", otelcolOnce.err)
	}
	return otelcolOnce.path
}

func buildOtelcol() (string, error) {
	src, err := filepath.Abs("../../testdata/otelcol")
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(cache, "hall", "otelcol", "otelcol-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp := out + fmt.Sprintf(".%d.tmp", os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly -buildvcs=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in %s: %v\n%s", src, err, b)
	}
	return out, os.Rename(tmp, out)
}

// collector is a running OpenTelemetry Collector writing what it receives
// to file (OTLP JSON, one line per batch).
type collector struct {
	httpURL, grpcURL, file string
	cmd                    *exec.Cmd
	log                    *syncBuffer
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startCollector(t *testing.T) *collector {
	t.Helper()
	bin := otelcolBin(t)
	dir := t.TempDir()
	hp, gp := freePort(t), freePort(t)
	c := &collector{httpURL: fmt.Sprintf("http://127.0.0.1:%d", hp), grpcURL: fmt.Sprintf("http://127.0.0.1:%d", gp), file: filepath.Join(dir, "traces.jsonl"), log: &syncBuffer{}}
	cfg := fmt.Sprintf(`receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
      grpc:
        endpoint: 127.0.0.1:%d
exporters:
  file:
    path: %s
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [file]
`, hp, gp, c.file)
	write(t, dir, "config.yaml", cfg)
	c.cmd = exec.Command(bin, "--config", filepath.Join(dir, "config.yaml"))
	pr, pw := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = pw, pw
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			c.log.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "Everything is ready") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatalf("the collector did not start:\n%s", c.log.String())
	}
	return c
}

// stop ends the collector gracefully (its file exporter flushes) and
// returns every span it received.
func (c *collector) stop(t *testing.T) []otlpSpan {
	t.Helper()
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.cmd.Wait()
	b, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatalf("collector output: %v\n%s", err, c.log.String())
	}
	return parseOTLP(t, b)
}

// otlpSpan is one span of the OTLP JSON the file exporter writes.
type otlpSpan struct {
	TraceID      string `json:"traceId"`
	SpanID       string `json:"spanId"`
	ParentSpanID string `json:"parentSpanId"`
	TraceState   string `json:"traceState"`
	Name         string `json:"name"`
	Kind         int    `json:"kind"`
	Attributes   []struct {
		Key   string         `json:"key"`
		Value map[string]any `json:"value"`
	} `json:"attributes"`
	Events []struct {
		Name string `json:"name"`
	} `json:"events"`
	Links []struct {
		TraceID string `json:"traceId"`
		SpanID  string `json:"spanId"`
	} `json:"links"`
	Status struct {
		Code int `json:"code"`
	} `json:"status"`
	service string
}

func (s *otlpSpan) attr(key string) string {
	for _, a := range s.Attributes {
		if a.Key == key {
			for _, v := range a.Value {
				return fmt.Sprint(v)
			}
		}
	}
	return ""
}

func parseOTLP(t *testing.T, b []byte) []otlpSpan {
	t.Helper()
	var out []otlpSpan
	for line := range bytes.SplitSeq(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var doc struct {
			ResourceSpans []struct {
				Resource struct {
					Attributes []struct {
						Key   string         `json:"key"`
						Value map[string]any `json:"value"`
					} `json:"attributes"`
				} `json:"resource"`
				ScopeSpans []struct {
					Spans []otlpSpan `json:"spans"`
				} `json:"scopeSpans"`
			} `json:"resourceSpans"`
		}
		if err := json.Unmarshal(line, &doc); err != nil {
			t.Fatalf("collector output line %q: %v", line, err)
		}
		for _, rs := range doc.ResourceSpans {
			service := ""
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					service = fmt.Sprint(a.Value["stringValue"])
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					s.service = service
					out = append(out, s)
				}
			}
		}
	}
	return out
}

// traceTree indexes the spans of one trace.
type traceTree struct {
	spans []otlpSpan
	byID  map[string]*otlpSpan
}

func treeOf(spans []otlpSpan, traceID string) *traceTree {
	tr := &traceTree{byID: map[string]*otlpSpan{}}
	for _, s := range spans {
		if s.TraceID == traceID {
			tr.spans = append(tr.spans, s)
		}
	}
	for i := range tr.spans {
		tr.byID[tr.spans[i].SpanID] = &tr.spans[i]
	}
	return tr
}

// one returns the one span named name, failing the test otherwise.
func (tr *traceTree) one(t *testing.T, name string) *otlpSpan {
	t.Helper()
	var found *otlpSpan
	for i := range tr.spans {
		if tr.spans[i].Name == name {
			if found != nil {
				t.Fatalf("two spans %q in the trace", name)
			}
			found = &tr.spans[i]
		}
	}
	if found == nil {
		t.Fatalf("no span %q in the trace; it holds %s", name, tr.names())
	}
	return found
}

func (tr *traceTree) has(name string) bool {
	for _, s := range tr.spans {
		if s.Name == name {
			return true
		}
	}
	return false
}

func (tr *traceTree) names() string {
	var n []string
	for _, s := range tr.spans {
		parent := "(root)"
		if p := tr.byID[s.ParentSpanID]; p != nil {
			parent = p.Name
		} else if s.ParentSpanID != "" {
			parent = "remote " + s.ParentSpanID
		}
		n = append(n, s.Name+" <- "+parent)
	}
	return strings.Join(n, "; ")
}

// childOf checks that the span named child's parent is parent.
func (tr *traceTree) childOf(t *testing.T, child string, parent *otlpSpan) *otlpSpan {
	t.Helper()
	c := tr.one(t, child)
	if c.ParentSpanID != parent.SpanID {
		t.Errorf("%s: parent %s, want %s (%s); the trace: %s", child, c.ParentSpanID, parent.Name, parent.SpanID, tr.names())
	}
	return c
}

func wantAttr(t *testing.T, s *otlpSpan, key, want string) {
	t.Helper()
	if got := s.attr(key); got != want {
		t.Errorf("span %s: %s = %q, want %q", s.Name, key, got, want)
	}
}

// postRun is POST /wcp/run with a W3C traceparent, returning the answer.
func postRun(t *testing.T, addr, token, traceparent, body string) map[string]any {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, addr+"/wcp/run", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", traceparent)
	req.Header.Set("tracestate", "client=go")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
		t.Fatalf("/wcp/run %d: %v", res.StatusCode, err)
	}
	return v
}

const traceMarker = "MARKER-9c41e7-never-exported"

func runBody(capability, correlation, payload, extra string) string {
	p, _ := json.Marshal(payload)
	return fmt.Sprintf(`{"input": {"capability_id": %q, "env": "dev", "data_label": "INTERNAL", "tenant_risk": "low", "qos_class": "P2", "correlation_id": %q}, "payload": %s%s}`, capability, correlation, p, extra)
}

// TestTracingCollector: hall serve, tracing to the real OpenTelemetry
// Collector over OTLP, exports the span trees of a governed POST
// /wcp/run, a denied request, a worker stopped by LIMIT_TIMEOUT and an
// MCP tools/call from the official TypeScript client with traceparent in
// _meta; receipts name their traces; no payload text reaches the
// collector.
func TestTracingCollector(t *testing.T) {
	node, nodeErr := exec.LookPath("node")
	script, _ := filepath.Abs("../../testdata/mcp-node/trace.mjs")
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "@modelcontextprotocol", "sdk")); nodeErr != nil || err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node or testdata/mcp-node/node_modules missing: .ci/run installs them (npm ci --prefix testdata/mcp-node)")
		}
		t.Skip("node or testdata/mcp-node/node_modules missing: run npm ci --prefix testdata/mcp-node")
	}
	col := startCollector(t)
	dir := mcpDir(t)
	tok := hallInNoEnv(t, dir, "", "tokens", "create", "--tenant", "org.acme")
	if tok.code != 0 {
		t.Fatalf("tokens create: %s", tok.stderr)
	}
	token := strings.TrimSpace(tok.stdout)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.httpURL)
	t.Setenv("OTEL_SERVICE_NAME", "hall-under-test")
	t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
	addr, serve, logs := startServe(t, dir)

	const (
		runTrace   = "4bf92f3577b34da6a3ce929d0e0e4736"
		runParent  = "00f067aa0ba902b7"
		denyTrace  = "5bf92f3577b34da6a3ce929d0e0e4737"
		slowTrace  = "6bf92f3577b34da6a3ce929d0e0e4738"
		mcpTrace   = "7bf92f3577b34da6a3ce929d0e0e4739"
		mcpParent  = "10f067aa0ba902b8"
		someParent = "20f067aa0ba902b9"
	)
	text := "The Hall governs workers. " + traceMarker + " Every dispatch is decided before it runs. Nothing runs without evidence."
	ran := postRun(t, addr, token, "00-"+runTrace+"-"+runParent+"-01", runBody("cap.doc.summarize", "c-traced", `{"text": "`+text+`"}`, ""))
	receiptID, _ := ran["receipt_id"].(string)
	if ran["outcome"] != "ok" || receiptID == "" {
		t.Fatalf("traced run: %v", ran)
	}
	denied := postRun(t, addr, token, "00-"+denyTrace+"-"+someParent+"-01", runBody("cap.doc.nothing", "c-traced-denied", traceMarker, ""))
	if d, _ := denied["decision"].(map[string]any); d["denied"] != true {
		t.Fatalf("denied run: %v", denied)
	}
	slow := postRun(t, addr, token, "00-"+slowTrace+"-"+someParent+"-01", runBody("cap.test.slow", "c-traced-slow", traceMarker, `, "timeout_ms": 200`))
	if slow["outcome"] != "LIMIT_TIMEOUT" {
		t.Fatalf("slow run: %v", slow)
	}
	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "MCP_URL="+addr+"/mcp", "MCP_TOKEN="+token, "TRACEPARENT=00-"+mcpTrace+"-"+mcpParent+"-01", "TEXT="+text)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"receipt_id"`) {
		t.Fatalf("node trace.mjs: %v\n%s", err, out)
	}
	// The receipt names the trace it ran in.
	r := hallInNoEnv(t, dir, "", "receipts", "--correlation-id", "c-traced", "--json")
	if !strings.Contains(r.stdout, `"trace_id":"`+runTrace+`"`) && !strings.Contains(r.stdout, `"trace_id": "`+runTrace+`"`) {
		t.Errorf("the receipt of c-traced does not name trace %s: %s %s", runTrace, r.stdout, r.stderr)
	}
	// The receipts with their trace ids verify, here and in the
	// independent Node verifier.
	r = hallInNoEnv(t, dir, "", "audit", "verify")
	mustOK(t, r, "audit verify")
	if script := nodeVerifierScript(t); script != "" {
		bundle := filepath.Join(t.TempDir(), "bundle")
		mustOK(t, hallInNoEnv(t, dir, "", "audit", "export", "--bundle", bundle), "audit export --bundle")
		if out, err := exec.Command("node", script, bundle).CombinedOutput(); err != nil || !strings.Contains(string(out), "verified") {
			t.Errorf("node verifier: %v\n%s", err, out)
		}
	}
	// SIGTERM: hall serve flushes its spans as it exits.
	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Fatalf("hall serve: %v\n%s", err, logs.String())
	}
	spans := col.stop(t)
	raw, _ := os.ReadFile(col.file)
	if bytes.Contains(raw, []byte("MARKER-9c41e7")) {
		t.Errorf("payload text reached the collector:\n%s", raw)
	}

	t.Run("run", func(t *testing.T) {
		tr := treeOf(spans, runTrace)
		srv := tr.one(t, "POST /wcp/run")
		if srv.ParentSpanID != runParent || srv.Kind != 2 || srv.service != "hall-under-test" {
			t.Errorf("POST /wcp/run: parent %s kind %d service %q, want the caller's %s, server, hall-under-test", srv.ParentSpanID, srv.Kind, srv.service, runParent)
		}
		if srv.TraceState != "client=go" {
			t.Errorf("POST /wcp/run: tracestate %q, want the caller's client=go", srv.TraceState)
		}
		wantAttr(t, srv, "http.route", "/wcp/run")
		wantAttr(t, srv, "http.response.status_code", "200")
		// The server span is the dispatch's: no hall.run under it.
		run := srv
		wantAttr(t, run, "hall.outcome", "ok")
		dec := tr.childOf(t, "hall.decide", run)
		wantAttr(t, dec, "hall.rule_id", "rr_summarize")
		wantAttr(t, dec, "hall.outcome", "allow")
		if dec.attr("hall.decision_id") == "" {
			t.Errorf("hall.decide has no hall.decision_id: %v", dec.Attributes)
		}
		if tr.has("hall.admission") {
			t.Errorf("a dispatch admitted at once has a hall.admission span: %s", tr.names())
		}
		call := tr.childOf(t, "hall.sandbox.call", run)
		wantAttr(t, call, "hall.worker_id", "org.acme.summarizer")
		if !strings.HasPrefix(call.attr("hall.module_digest"), "sha256:") || call.attr("hall.sandbox.memory_bytes") == "" {
			t.Errorf("hall.sandbox.call attributes %v", call.Attributes)
		}
		commit := tr.childOf(t, "hall.evidence.commit", run)
		wantAttr(t, commit, "hall.receipt_id", receiptID)
		tr.onceEach(t)
	})
	t.Run("denied", func(t *testing.T) {
		tr := treeOf(spans, denyTrace)
		run := tr.one(t, "POST /wcp/run")
		wantAttr(t, run, "hall.outcome", "deny")
		dec := tr.childOf(t, "hall.decide", run)
		wantAttr(t, dec, "hall.outcome", "deny")
		wantAttr(t, dec, "hall.deny_code", "DENY_NO_MATCHING_RULE")
		tr.childOf(t, "hall.evidence.commit", run)
		if tr.has("hall.sandbox.call") || tr.has("hall.run") {
			t.Errorf("a denied request has a sandbox call or a hall.run: %s", tr.names())
		}
		tr.onceEach(t)
	})
	t.Run("limit-timeout", func(t *testing.T) {
		tr := treeOf(spans, slowTrace)
		run := tr.one(t, "POST /wcp/run")
		wantAttr(t, run, "hall.outcome", "LIMIT_TIMEOUT")
		if run.Status.Code != 2 {
			t.Errorf("POST /wcp/run status %d, want error (2): the dispatch failed", run.Status.Code)
		}
		call := tr.childOf(t, "hall.sandbox.call", run)
		wantAttr(t, call, "hall.outcome", "LIMIT_TIMEOUT")
		wantAttr(t, call, "error.type", "LIMIT_TIMEOUT")
		if call.Status.Code != 2 {
			t.Errorf("hall.sandbox.call status %d, want error (2)", call.Status.Code)
		}
		tr.childOf(t, "hall.evidence.commit", run)
		tr.onceEach(t)
	})
	t.Run("mcp", func(t *testing.T) {
		tr := treeOf(spans, mcpTrace)
		tool := tr.one(t, "tools/call doc_summarize")
		if tool.ParentSpanID != mcpParent || tool.Kind != 2 {
			t.Errorf("tools/call: parent %s kind %d, want the client's _meta.traceparent %s, server", tool.ParentSpanID, tool.Kind, mcpParent)
		}
		wantAttr(t, tool, "mcp.method.name", "tools/call")
		wantAttr(t, tool, "gen_ai.tool.name", "doc_summarize")
		wantAttr(t, tool, "gen_ai.operation.name", "execute_tool")
		if tool.attr("mcp.session.id") == "" || tool.attr("jsonrpc.request.id") == "" {
			t.Errorf("tools/call has no mcp.session.id or jsonrpc.request.id: %v", tool.Attributes)
		}
		if len(tool.Links) != 1 || treeOf(spans, tool.Links[0].TraceID).byID[tool.Links[0].SpanID] == nil || treeOf(spans, tool.Links[0].TraceID).byID[tool.Links[0].SpanID].Name != "POST /mcp" {
			t.Errorf("tools/call links %v: want the POST /mcp span that carried it", tool.Links)
		}
		// The tools/call span is the dispatch's: no hall.run under it.
		run := tool
		wantAttr(t, run, "hall.outcome", "ok")
		if tr.has("hall.run") {
			t.Errorf("a hall.run under tools/call: %s", tr.names())
		}
		tr.childOf(t, "hall.decide", run)
		tr.childOf(t, "hall.sandbox.call", run)
		if commit := tr.childOf(t, "hall.evidence.commit", run); commit.attr("hall.receipt_id") == "" {
			t.Errorf("hall.evidence.commit under tools/call names no receipt: %v", commit.Attributes)
		}
		tr.onceEach(t)
	})
	if t.Failed() {
		t.Logf("hall serve log:\n%s", logs.String())
	}
}

// TestTracingCollectorGRPC: the flags alone turn tracing on, over OTLP/gRPC.
func TestTracingCollectorGRPC(t *testing.T) {
	col := startCollector(t)
	dir := mcpDir(t)
	tok := hallInNoEnv(t, dir, "", "tokens", "create", "--tenant", "org.acme")
	if tok.code != 0 {
		t.Fatalf("tokens create: %s", tok.stderr)
	}
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME"} {
		t.Setenv(k, "")
	}
	addr, serve, logs := startServe(t, dir, "--otel-endpoint", col.grpcURL, "--otel-protocol", "grpc")
	const traceID = "8bf92f3577b34da6a3ce929d0e0e473a"
	denied := postRun(t, addr, strings.TrimSpace(tok.stdout), "00-"+traceID+"-30f067aa0ba902ba-01", runBody("cap.doc.nothing", "c-grpc", "x", ""))
	if d, _ := denied["decision"].(map[string]any); d["denied"] != true {
		t.Fatalf("denied run: %v", denied)
	}
	serve.Process.Signal(syscall.SIGTERM)
	if err := serve.Wait(); err != nil {
		t.Fatalf("hall serve: %v\n%s", err, logs.String())
	}
	tr := treeOf(col.stop(t), traceID)
	srv := tr.one(t, "POST /wcp/run")
	if srv.service != "hall" {
		t.Errorf("service.name %q, want the default hall", srv.service)
	}
	tr.childOf(t, "hall.decide", srv)
}

// childNamed returns the one child of parent named name, failing the
// test otherwise (a trace of a chain holds several spans of one name).
func (tr *traceTree) childNamed(t *testing.T, parent *otlpSpan, name string) *otlpSpan {
	t.Helper()
	var found *otlpSpan
	for i := range tr.spans {
		if s := &tr.spans[i]; s.Name == name && s.ParentSpanID == parent.SpanID {
			if found != nil {
				t.Fatalf("two spans %q under %s", name, parent.Name)
			}
			found = s
		}
	}
	if found == nil {
		t.Fatalf("no span %q under %s; the trace: %s", name, parent.Name, tr.names())
	}
	return found
}

// receiptUnder is the receipt id that one of parent's
// hall.evidence.commit children committed (a dispatch whose decision is
// committed before it runs, as a chain's parent's is, has two commits),
// failing the test when none names one.
func (tr *traceTree) receiptUnder(t *testing.T, parent *otlpSpan) string {
	t.Helper()
	for _, s := range tr.spans {
		if r := s.attr("hall.receipt_id"); s.Name == "hall.evidence.commit" && s.ParentSpanID == parent.SpanID && r != "" {
			return r
		}
	}
	t.Errorf("no hall.evidence.commit of a receipt under %s; the trace: %s", parent.Name, tr.names())
	return ""
}

// onceEach fails when an attribute is on more than one span of the
// trace, a trace of one dispatch (docs/OBSERVABILITY.md: each fact on the
// one span where it belongs): hall.outcome and error.type excepted, which
// each span has of its own.
func (tr *traceTree) onceEach(t *testing.T) {
	t.Helper()
	on := map[string]string{}
	for _, s := range tr.spans {
		for _, a := range s.Attributes {
			if a.Key == "hall.outcome" || a.Key == "error.type" {
				continue
			}
			if other, ok := on[a.Key]; ok {
				t.Errorf("attribute %s is on both %s and %s", a.Key, other, s.Name)
			}
			on[a.Key] = s.Name
		}
	}
}

// TestTracingCollectorRunHopStdio: hall run traces as hall serve does
// (the same OTEL_* environment, TRACEPARENT as its parent) and flushes
// before it exits; a sub-dispatch (hall_invoke) is a hall.hop span under
// its parent's sandbox call, over its own decision, sandbox call and
// evidence commit; an MCP tools/call over stdio (hall mcp) carries its
// jsonrpc.request.id. All asserted on what the real collector received.
func TestTracingCollectorRunHopStdio(t *testing.T) {
	col := startCollector(t)
	dir := mcpDir(t)
	// The chain guest (host chain tests) as a caller that invokes a leaf.
	var rules struct {
		Rules []json.RawMessage `json:"rules"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "rules.json"))
	if err != nil || json.Unmarshal(b, &rules) != nil {
		t.Fatalf("rules.json: %v", err)
	}
	for _, n := range []string{"caller", "leaf"} {
		rules.Rules = append(rules.Rules, json.RawMessage(fmt.Sprintf(`{"rule_id": "r_%s", "match": {"capability_id": "cap.test.%s", "env": {"in": ["dev"]}},
		  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.%s"}]}}`, n, n, n)))
	}
	b, _ = json.Marshal(rules)
	write(t, dir, "rules.json", string(b))
	guest := filepath.Join(t.TempDir(), "chainguest.wasm")
	if err := wasmtest.BuildTo("../../testdata/pipeline/chainguest", guest); err != nil {
		t.Fatal(err)
	}
	for n, tools := range map[string]string{"caller": `["cap.test.leaf"]`, "leaf": `[]`} {
		write(t, dir, n+".json", fmt.Sprintf(`{"worker_id": "org.acme.%s", "worker_species_id": "wrk.test.%s", "capabilities": ["cap.test.%s"], "risk_tier": "low",
		  "privilege_envelope": {"network_egress": "none", "tools": %s}}`, n, n, n, tools))
		mustOK(t, hallInNoEnv(t, dir, "", "enroll", guest, "--record", n+".json"), "enroll "+n)
	}
	const (
		runTrace  = "9bf92f3577b34da6a3ce929d0e0e473b"
		runParent = "40f067aa0ba902bb"
		mcpTrace  = "abf92f3577b34da6a3ce929d0e0e473c"
		mcpParent = "50f067aa0ba902bc"
	)
	otelEnv := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + col.httpURL, "OTEL_SERVICE_NAME=hall-under-test", "OTEL_TRACES_SAMPLER=parentbased_always_on"}

	// hall run, traced by the environment alone, child of TRACEPARENT.
	r := hallIn(t, dir, `{"op": "call", "cap": "cap.test.leaf", "input": {"op": "echo", "text": "`+traceMarker+`"}}`,
		append(otelEnv, "TRACEPARENT=00-"+runTrace+"-"+runParent+"-01"),
		"run", "--tenant", "org.acme", "--correlation-id", "c-run-traced", "cap.test.caller")
	mustOK(t, r, "hall run cap.test.caller")
	if !strings.Contains(r.stdout, "echo:") {
		t.Fatalf("hall run: the hop's answer is not in the output: %s", r.stdout)
	}

	// hall mcp over stdio, the Go SDK's client, traceparent in _meta.
	cmd := exec.Command(hallBin, "mcp", "--tenant", "org.acme")
	cmd.Dir = dir
	cmd.Env = testEnv(append(otelEnv, "HALL_HOME="+filepath.Join(dir, ".hall"))...)
	c := sdk.NewClient(&sdk.Implementation{Name: "hall-trace-test", Version: "v0"}, nil)
	cs, err := c.Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "doc_summarize", Arguments: map[string]any{"text": "One. " + traceMarker + ". Three.", "sentences": 1},
		Meta: sdk.Meta{"correlation_id": "c-stdio-traced", "traceparent": "00-" + mcpTrace + "-" + mcpParent + "-01"}})
	if err != nil || res.IsError {
		t.Fatalf("tools/call over stdio: %v %+v", err, res)
	}
	cs.Close() // hall mcp exits, flushing its spans
	if cmd.ProcessState == nil || !cmd.ProcessState.Exited() {
		t.Fatalf("hall mcp has not exited after the session closed")
	}

	spans := col.stop(t)
	raw, _ := os.ReadFile(col.file)
	if bytes.Contains(raw, []byte("MARKER-9c41e7")) {
		t.Errorf("payload text reached the collector:\n%s", raw)
	}
	t.Run("run-and-hop", func(t *testing.T) {
		tr := treeOf(spans, runTrace)
		var run *otlpSpan
		for i := range tr.spans {
			if tr.spans[i].Name == "hall.run" {
				run = &tr.spans[i]
			}
		}
		if run == nil {
			t.Fatalf("no hall.run in trace %s of hall run: %s", runTrace, tr.names())
		}
		if run.ParentSpanID != runParent || run.service != "hall-under-test" {
			t.Errorf("hall.run: parent %s service %q, want TRACEPARENT's %s, hall-under-test", run.ParentSpanID, run.service, runParent)
		}
		wantAttr(t, run, "hall.outcome", "ok")
		dec := tr.childNamed(t, run, "hall.decide")
		wantAttr(t, dec, "hall.capability_id", "cap.test.caller")
		call := tr.childNamed(t, run, "hall.sandbox.call")
		wantAttr(t, call, "hall.worker_id", "org.acme.caller")
		runReceipt := tr.receiptUnder(t, run)
		hop := tr.childNamed(t, call, "hall.hop")
		wantAttr(t, hop, "hall.outcome", "ok")
		hdec := tr.childNamed(t, hop, "hall.decide")
		wantAttr(t, hdec, "hall.capability_id", "cap.test.leaf")
		if hdec.attr("hall.decision_id") == "" || hdec.attr("hall.decision_id") == dec.attr("hall.decision_id") {
			t.Errorf("the hop's hall.decide decision %q: want its own (the run's is %q)", hdec.attr("hall.decision_id"), dec.attr("hall.decision_id"))
		}
		hcall := tr.childNamed(t, hop, "hall.sandbox.call")
		wantAttr(t, hcall, "hall.worker_id", "org.acme.leaf")
		if hopReceipt := tr.receiptUnder(t, hop); hopReceipt == runReceipt {
			t.Errorf("hall.hop receipt %q: want the hop's own receipt, not the run's", hopReceipt)
		}
	})
	t.Run("stdio", func(t *testing.T) {
		tr := treeOf(spans, mcpTrace)
		tool := tr.one(t, "tools/call doc_summarize")
		if tool.ParentSpanID != mcpParent || tool.Kind != 2 {
			t.Errorf("tools/call: parent %s kind %d, want _meta.traceparent's %s, server", tool.ParentSpanID, tool.Kind, mcpParent)
		}
		if id := tool.attr("jsonrpc.request.id"); id == "" || strings.Trim(id, "0123456789") != "" {
			t.Errorf("tools/call over stdio: jsonrpc.request.id %q, want the client's numeric id", id)
		}
		wantAttr(t, tool, "mcp.method.name", "tools/call")
		wantAttr(t, tool, "hall.outcome", "ok")
		tr.childOf(t, "hall.decide", tool)
		tr.childOf(t, "hall.sandbox.call", tool)
		if tr.has("hall.run") {
			t.Errorf("a hall.run under tools/call: %s", tr.names())
		}
		tr.onceEach(t)
	})
}
