package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/auth"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/router"
	"github.com/wcphall/hall/internal/wasmtest"
)

// The test binary shares one Hall (the summarizer is compiled once) and
// one token store; each test serves the real HTTP API over them on
// 127.0.0.1 and talks to /mcp with the Go SDK's client.
var fx struct {
	dir, home        string
	hall             *host.Hall
	tokens           *auth.Store
	acme, other, adm string
	loop, noop       []byte
}

// approvalGate asks for a human on every rule that sets policy_gate.
type approvalGate struct{}

func (approvalGate) Evaluate(context.Context, router.PolicyContext) (router.PolicyResult, error) {
	return router.PolicyResult{Decision: "REQUIRE_HUMAN", PolicyVersion: "test-1", Reason: "a human approves test requests"}, nil
}

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "host/mcp tests: setup failed:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	tmp, err := os.MkdirTemp("", "hall-mcp-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	fx.dir, fx.home = tmp, filepath.Join(tmp, "home")
	summarizer, err := wasmtest.Build("../../plugins/summarizer")
	if err != nil {
		return 0, err
	}
	if fx.loop, err = wat(tmp, "testdata/loop.wat"); err != nil {
		return 0, err
	}
	if fx.noop, err = wat(tmp, "testdata/noop.wat"); err != nil {
		return 0, err
	}
	rules, err := os.ReadFile("testdata/rules.json")
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "rules.json"), rules, 0o644); err != nil {
		return 0, err
	}
	cfg := `{"workers": {"org.test.noop": {"reuse_instances": true}}}`
	if err := os.WriteFile(filepath.Join(tmp, "hall.json"), []byte(cfg), 0o644); err != nil {
		return 0, err
	}
	// Progress every 50 ms, so that the cancellation tests see a running
	// call soon; no per-call overrides (the refusal test relies on it).
	if err := os.WriteFile(filepath.Join(tmp, "mcp.json"), []byte(`{"progress_ms": 50}`), 0o644); err != nil {
		return 0, err
	}
	ctx := context.Background()
	if fx.hall, err = host.Open(ctx, host.Options{Dir: tmp, Home: fx.home, Gate: approvalGate{}}); err != nil {
		return 0, err
	}
	defer fx.hall.Close(ctx)
	for _, e := range []struct {
		module []byte
		record string
	}{
		{summarizer, "summarizer.json"}, {fx.noop, "noop.json"}, {fx.loop, "slow.json"},
		{fx.noop, "approve.json"}, {fx.noop, "prodonly.json"}, {fx.noop, "writer.json"},
	} {
		if err := enroll(e.module, e.record, false); err != nil {
			return 0, err
		}
	}
	if fx.tokens, err = auth.Open(filepath.Join(fx.home, auth.DBFile)); err != nil {
		return 0, err
	}
	defer fx.tokens.Close()
	for _, t := range []struct {
		dst   *string
		scope auth.Scope
	}{{&fx.acme, auth.TenantScope("org.acme")}, {&fx.other, auth.TenantScope("org.other")}, {&fx.adm, auth.AdminScope()}} {
		if *t.dst, _, err = fx.tokens.Create(ctx, t.scope, "test"); err != nil {
			return 0, err
		}
	}
	return m.Run(), nil
}

func enroll(module []byte, record string, addRule bool) error {
	rec, err := os.ReadFile(filepath.Join("testdata", record))
	if err != nil {
		return err
	}
	_, err = fx.hall.Enroll(context.Background(), host.EnrollRequest{Module: module, Record: rec, RecordSource: record, AddRule: addRule})
	if err != nil {
		return fmt.Errorf("enrolling %s: %w", record, err)
	}
	return nil
}

// wat compiles a WAT file with wat2wasm (wabt), as the other packages'
// tests do.
func wat(tmp, src string) ([]byte, error) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		return nil, errors.New("wat2wasm not found in PATH: install wabt (apt-get install -y wabt)")
	}
	out := filepath.Join(tmp, strings.TrimSuffix(filepath.Base(src), ".wat")+".wasm")
	if b, err := exec.Command("wat2wasm", src, "-o", out).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("wat2wasm %s: %v\n%s", src, err, b)
	}
	return os.ReadFile(out)
}

// serve starts the real HTTP API over the shared Hall on 127.0.0.1 and
// returns the /mcp endpoint.
func serve(tb testing.TB, cfg server.Config) string {
	tb.Helper()
	cfg.Tokens = fx.tokens
	ts := httptest.NewServer(server.New(fx.hall, cfg))
	tb.Cleanup(ts.Close)
	return ts.URL + "/mcp"
}

// bearer adds a token to every request of the client transport.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// connect opens an MCP session with the Go SDK's client over Streamable
// HTTP.
func connect(tb testing.TB, endpoint, token string, opts *sdk.ClientOptions) *sdk.ClientSession {
	tb.Helper()
	return connectWith(tb, endpoint, &http.Client{Transport: bearer{token, http.DefaultTransport}}, opts)
}

// connectWith opens an MCP session with the Go SDK's client over hc.
func connectWith(tb testing.TB, endpoint string, hc *http.Client, opts *sdk.ClientOptions) *sdk.ClientSession {
	tb.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "hall-test", Version: "v0"}, opts)
	tr := &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc, MaxRetries: -1}
	cs, err := c.Connect(context.Background(), tr, nil)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { cs.Close() })
	return cs
}

func call(tb testing.TB, cs *sdk.ClientSession, name string, args any, meta sdk.Meta) *sdk.CallToolResult {
	tb.Helper()
	p := &sdk.CallToolParams{Name: name, Arguments: args}
	if meta != nil {
		p.Meta = meta
	}
	res, err := cs.CallTool(context.Background(), p)
	if err != nil {
		tb.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}

func text(r *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range r.Content {
		if t, ok := c.(*sdk.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func metaString(r *sdk.CallToolResult, k string) string {
	s, _ := r.Meta[k].(string)
	return s
}

// receipts returns the receipts recorded under a correlation id.
func receipts(tb testing.TB, correlation string) []ledger.Receipt {
	tb.Helper()
	st, err := fx.hall.Evidence()
	if err != nil {
		tb.Fatal(err)
	}
	rs, err := st.Receipts(context.Background(), ledger.Filter{CorrelationID: correlation})
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

// eventually polls cond until it holds or the deadline passes.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
