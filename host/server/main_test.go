package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/auth"
	"github.com/wcphall/hall/internal/ocitest"
	"github.com/wcphall/hall/internal/pgtest"
	"github.com/wcphall/hall/internal/wasmtest"
)

// The test binary shares one Hall (the summarizer's compile is paid once)
// and one token store; each test builds its own server over them.
var fx struct {
	dir, home          string
	hall               *host.Hall
	tokens             *auth.Store
	admin, acme, other string // bearer tokens
	summarizer, loop   []byte // modules
	summarizerRecord   []byte
}

// secretValue is what the keyholder worker's declared secret resolves to;
// no response may contain it.
const secretValue = "s3cr3t-value-never-served"

type secrets map[string]string

func (s secrets) Secret(name string) (string, bool) { v, ok := s[name]; return v, ok }

func TestMain(m *testing.M) {
	code, err := setup(m)
	pgtest.Stop() // the PostgreSQL of the Postgres benchmarks, if one ran
	if err != nil {
		fmt.Fprintln(os.Stderr, "host/server tests: setup failed:", err)
		os.Exit(2)
	}
	ocitest.StopShared()
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	tmp, err := os.MkdirTemp("", "hall-server-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	fx.dir, fx.home = tmp, filepath.Join(tmp, "home")

	// The first-party summarizer, built as docs/ABI.md workers are.
	if fx.summarizer, err = wasmtest.Build("../../plugins/summarizer"); err != nil {
		return 0, err
	}
	if fx.summarizerRecord, err = os.ReadFile("../../plugins/summarizer/registry_record.json"); err != nil {
		return 0, err
	}
	if fx.loop, err = wat(tmp, "testdata/loop.wat"); err != nil {
		return 0, err
	}

	// The quick start's rules plus the test workers' rules; no hall.json,
	// so the Hall's strict defaults (attestation, envelopes...) apply.
	var rules struct {
		Rules []json.RawMessage `json:"rules"`
	}
	if err := readJSON("../../examples/quickstart/rules.json", &rules); err != nil {
		return 0, err
	}
	var extra []json.RawMessage
	if err := readJSON("testdata/extra_rules.json", &extra); err != nil {
		return 0, err
	}
	rules.Rules = append(rules.Rules, extra...)
	b, _ := json.Marshal(rules)
	if err := os.WriteFile(filepath.Join(tmp, "rules.json"), b, 0o644); err != nil {
		return 0, err
	}

	// The small test worker reuses instances per tenant (the Hall's opt-in
	// for throughput, measured by BenchmarkRunHTTP/wat-noop).
	cfg := `{"workers": {"org.test.noop": {"reuse_instances": true}}}`
	if err := os.WriteFile(filepath.Join(tmp, "hall.json"), []byte(cfg), 0o644); err != nil {
		return 0, err
	}
	ctx := context.Background()
	fx.hall, err = host.Open(ctx, host.Options{Dir: tmp, Home: fx.home, Secrets: secrets{"KEYHOLDER_API_KEY": secretValue}})
	if err != nil {
		return 0, err
	}
	defer fx.hall.Close(ctx)
	enroll := []struct {
		module []byte
		record string
	}{
		{fx.summarizer, "../../plugins/summarizer/registry_record.json"},
		{fx.loop, "testdata/looper.json"},
		{fx.loop, "testdata/slow.json"},
		{fx.loop, "testdata/keyholder.json"},
	}
	for _, e := range enroll {
		rec, err := os.ReadFile(e.record)
		if err != nil {
			return 0, err
		}
		if _, err := fx.hall.Enroll(ctx, host.EnrollRequest{Module: e.module, Record: rec, RecordSource: e.record}); err != nil {
			return 0, fmt.Errorf("enrolling %s: %w", e.record, err)
		}
	}

	if fx.tokens, err = auth.Open(filepath.Join(fx.home, auth.DBFile)); err != nil {
		return 0, err
	}
	defer fx.tokens.Close()
	for _, t := range []struct {
		dst   *string
		scope auth.Scope
	}{{&fx.admin, auth.AdminScope()}, {&fx.acme, auth.TenantScope("org.acme")}, {&fx.other, auth.TenantScope("org.other")}} {
		if *t.dst, _, err = fx.hall.IssueToken(ctx, fx.tokens, t.scope, "test", "local:test"); err != nil {
			return 0, err
		}
	}
	return m.Run(), nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// wat compiles a WAT file with wat2wasm (wabt), as internal/sandbox's tests do.
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

// watSource compiles inline WAT for one-off modules.
func watSource(t *testing.T, src string) []byte {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "m.wat")
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := wat(dir, p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func digest(b []byte) string { return wcp.Digest(sha256.Sum256(b)).String() }

// start serves a new API over the shared Hall on a real 127.0.0.1
// listener.
func start(t *testing.T, cfg server.Config) string {
	t.Helper()
	if cfg.Tokens == nil {
		cfg.Tokens = fx.tokens
	}
	ts := httptest.NewServer(server.New(fx.hall, cfg))
	t.Cleanup(ts.Close)
	return ts.URL
}

// response is a decoded answer.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// errCode returns error.code of an error body.
func (r *response) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func (r *response) errField() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["field"].(string)
	return c
}

func (r *response) String() string { return fmt.Sprintf("%d %s", r.status, r.raw) }

type req struct {
	method, path, token, ctype string
	body                       io.Reader
	header                     map[string]string
}

// call sends a request and checks what every response must satisfy: an
// X-Request-ID header, and for an error a JSON body {"error": {"code",
// "message", "request_id"}}. It stops the test on a failure: from another
// goroutine use tryCall (or tryPost) and report with t.Error.
func call(t *testing.T, base string, rq req) *response {
	t.Helper()
	r, err := tryCall(base, rq)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryCall is call returning what it found wrong as an error.
func tryCall(base string, rq req) (*response, error) {
	hr, err := http.NewRequest(rq.method, base+rq.path, rq.body)
	if err != nil {
		return nil, err
	}
	if rq.token != "" {
		hr.Header.Set("Authorization", "Bearer "+rq.token)
	}
	if rq.ctype != "" {
		hr.Header.Set("Content-Type", rq.ctype)
	}
	for k, v := range rq.header {
		hr.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", rq.method, rq.path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", rq.method, rq.path, err)
	}
	r := &response{status: res.StatusCode, header: res.Header, raw: raw}
	if res.Header.Get("X-Request-ID") == "" {
		return r, fmt.Errorf("%s %s: no X-Request-ID header", rq.method, rq.path)
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			return r, fmt.Errorf("%s %s: %d with a body that is not a JSON object: %v\n%s", rq.method, rq.path, res.StatusCode, err, raw)
		}
	}
	if res.StatusCode >= 400 {
		e, ok := r.body["error"].(map[string]any)
		if !ok || e["code"] == "" || e["message"] == "" || e["request_id"] != res.Header.Get("X-Request-ID") {
			return r, fmt.Errorf("%s %s: error %d is not {\"error\": {code, message, request_id}}: %s", rq.method, rq.path, res.StatusCode, raw)
		}
	}
	return r, nil
}

func jsonBody(v any) io.Reader {
	if s, ok := v.(string); ok {
		return strings.NewReader(s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return bytes.NewReader(b)
}

func post(t *testing.T, base, path, token string, body any) *response {
	t.Helper()
	return call(t, base, req{method: "POST", path: path, token: token, ctype: "application/json", body: jsonBody(body)})
}

// tryPost is post for another goroutine than the test's.
func tryPost(base, path, token string, body any) (*response, error) {
	return tryCall(base, req{method: "POST", path: path, token: token, ctype: "application/json", body: jsonBody(body)})
}

func get(t *testing.T, base, path, token string) *response {
	t.Helper()
	return call(t, base, req{method: "GET", path: path, token: token})
}

// input is a RouteInput for the acme tenant (tenant_id left to the token).
func input(capability, correlation string, extra ...any) map[string]any {
	in := map[string]any{
		"capability_id": capability, "env": "dev", "data_label": "INTERNAL",
		"tenant_risk": "low", "qos_class": "P2", "correlation_id": correlation,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		in[extra[i].(string)] = extra[i+1]
	}
	return in
}

const article = "The Hall governs workers. Every dispatch is decided before it runs. " +
	"Receipts record what ran, on which input, with which result. " +
	"Workers run in a sandbox with limits on time and memory. " +
	"Nothing runs without evidence."

func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ln
}

// enrollNoop enrolls a module whose run returns at once, as the worker of
// cap.test.uploaded, with a dev rule routing to it.
func enrollNoop(tb testing.TB) {
	tb.Helper()
	mod, err := wat(tb.TempDir(), "testdata/noop.wat")
	if err != nil {
		tb.Fatal(err)
	}
	rec, err := os.ReadFile("testdata/noop.json")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := fx.hall.Enroll(context.Background(), host.EnrollRequest{Module: mod, Record: rec, RecordSource: "noop.json", AddRule: true}); err != nil {
		tb.Fatal(err)
	}
}
