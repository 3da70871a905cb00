package sandbox

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	extism "github.com/extism/go-sdk"
)

// The Extism compatibility suite at the sandbox level: the test plugins
// that ship in the extism go-sdk module (wasm/, written with the Go, Rust,
// Haskell and other PDKs), unmodified, read from the module cache. The
// same plugins run through hall run and /wcp/run in
// cmd/hall/extism_compat_test.go; docs/EXTISM.md is the table.

var extismDir struct {
	once sync.Once
	dir  string
	err  error
}

// extismPlugin returns the bytes of wasm/<name>.wasm of the extism go-sdk
// module this repository depends on (go mod download fills the cache).
func extismPlugin(tb testing.TB, name string) []byte {
	tb.Helper()
	extismDir.once.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/extism/go-sdk").Output()
		extismDir.dir, extismDir.err = strings.TrimSpace(string(out)), err
		if err == nil && extismDir.dir == "" {
			extismDir.err = os.ErrNotExist
		}
	})
	if extismDir.err != nil {
		tb.Fatalf("locating the extism go-sdk module (run go mod download): %v", extismDir.err)
	}
	b, err := os.ReadFile(filepath.Join(extismDir.dir, "wasm", name+".wasm"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// extismLogsOn raises Extism's process-wide log level to info, as the Hall
// does (host.sandboxEngine), for the tests that read guest logs.
var extismLogsOn sync.Once

func TestExtismPlugins(t *testing.T) {
	extismLogsOn.Do(func() { extism.SetLogLevel(extism.LogLevelInfo) })
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "test.txt"), []byte("hello world!"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	e := newEngine(t, Config{})
	cases := []struct {
		name   string
		plugin string
		spec   Spec
		req    Request
		want   string // exact output when code is ""
		code   string // outcome code; "" for success
		msg    string // substring of the error message
		logs   []string
	}{
		{name: "count_vowels (Rust PDK)", plugin: "count_vowels", req: Request{Export: "count_vowels", Input: []byte("hello world")},
			want: `{"count":3,"total":3,"vowels":"aeiouAEIOU"}`},
		{name: "hello_haskell (Haskell PDK) with config", plugin: "hello_haskell",
			req: Request{Export: "testing", Input: []byte("John"), Config: map[string]string{"greeting": "Howdy"}}, want: "Howdy, John"},
		{name: "config set", plugin: "config", req: Request{Export: "run_test", Config: map[string]string{"thing": "hello"}}, want: `{"config": "hello"}`},
		{name: "config unset", plugin: "config", req: Request{Export: "run_test"}, want: `{"config": "<unset by host>"}`},
		{name: "var", plugin: "var", req: Request{Export: "run_test"}, want: "a: 0"},
		{name: "log levels", plugin: "log", req: Request{Export: "run_test"},
			logs: []string{"[INFO] this is an info log", "[WARN] this is a warning log", "[ERROR] this is an error log"}},
		{name: "sleep 0", plugin: "sleep", req: Request{Export: "run_test", Config: map[string]string{"duration": "0"}}, want: "slept for 0 seconds"},
		{name: "sleep past the deadline", plugin: "sleep", req: Request{Export: "run_test", Config: map[string]string{"duration": "60"}, Timeout: 200 * time.Millisecond},
			code: CodeLimitTimeout},
		{name: "fail (error_set)", plugin: "fail", req: Request{Export: "run_test"}, code: CodeWorkerFailed, msg: "Some error message"},
		{name: "exit 0", plugin: "exit", req: Request{Export: "_start", Config: map[string]string{"code": "0"}}, want: ""},
		{name: "exit 3", plugin: "exit", req: Request{Export: "_start", Config: map[string]string{"code": "3"}}, code: CodeWorkerTrap, msg: "exited with code 3"},
		{name: "read_write reads a granted directory", plugin: "read_write", spec: Spec{Policy: Policy{Reads: []string{data}}},
			req: Request{Export: "try_read", Config: map[string]string{"path": filepath.Join(data, "test.txt")}}, want: "hello world!"},
		{name: "read_write cannot write a read-only grant", plugin: "read_write", spec: Spec{Policy: Policy{Reads: []string{data}}},
			req: Request{Export: "try_write", Input: []byte("x"), Config: map[string]string{"path": filepath.Join(data, "test.txt")}}, code: CodeWorkerFailed, msg: "Failed to write file"},
		{name: "read_write writes a writable grant", plugin: "read_write", spec: Spec{Policy: Policy{Writes: []string{out}}},
			req: Request{Export: "try_write", Input: []byte("written"), Config: map[string]string{"path": filepath.Join(out, "w.txt")}}, want: "written"},
		{name: "read_write outside every grant", plugin: "read_write", spec: Spec{Policy: Policy{Reads: []string{data}}},
			req: Request{Export: "try_read", Config: map[string]string{"path": "/etc/hostname"}}, code: CodeWorkerFailed, msg: "Failed to read file"},
		{name: "fs reads /mnt, which is not granted", plugin: "fs", spec: Spec{Policy: Policy{Reads: []string{data}}},
			req: Request{Export: "run_test"}, code: CodeWorkerFailed},
	}
	if err := os.WriteFile(filepath.Join(out, "w.txt"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	loaded := map[string]*Worker{}
	parent := t
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.plugin + "|" + strings.Join(tc.spec.Policy.Reads, ",") + "|" + strings.Join(tc.spec.Policy.Writes, ",")
			w := loaded[key]
			if w == nil {
				spec := tc.spec
				spec.Name, spec.Pool = tc.plugin, -1
				w = load(parent, e, extismPlugin(t, tc.plugin), spec)
				loaded[key] = w
			}
			res, err := w.Call(context.Background(), tc.req)
			if tc.code != "" {
				se := wantCode(t, err, tc.code)
				if !strings.Contains(se.Message, tc.msg) {
					t.Fatalf("message %q, want it to contain %q", se.Message, tc.msg)
				}
				return
			}
			if err != nil {
				if res == nil {
					t.Fatalf("call: %v", err)
				}
				t.Fatalf("call: %v (logs %s)", err, res.Logs)
			}
			if tc.logs == nil && string(res.Output) != tc.want {
				t.Fatalf("output %q, want %q", res.Output, tc.want)
			}
			for _, l := range tc.logs {
				if !bytes.Contains(res.Logs, []byte(l)) {
					t.Errorf("logs %q lack %q", res.Logs, l)
				}
			}
			if tc.logs != nil && bytes.Contains(res.Logs, []byte("this is a debug log")) {
				t.Errorf("logs %q hold a debug line below Extism's level", res.Logs)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(out, "w.txt")); err != nil || string(b) != "written" {
		t.Errorf("try_write left %q (%v), want %q", b, err, "written")
	}
}

// Extism vars live in an instance: a fresh instance per call starts with
// none; with Spec.Reuse they persist across the calls of one reuse key
// (one tenant) and are never seen by another key. count_vowels keeps a
// running total in the var "total".
func TestExtismVarsScopedToInstance(t *testing.T) {
	e := newEngine(t, Config{})
	wasm := extismPlugin(t, "count_vowels")
	total := func(w *Worker, key, in string) int {
		t.Helper()
		res := call(t, w, Request{Export: "count_vowels", Input: []byte(in), ReuseKey: key})
		var out struct {
			Total int `json:"total"`
		}
		if err := json.Unmarshal(res.Output, &out); err != nil {
			t.Fatalf("output %q: %v", res.Output, err)
		}
		return out.Total
	}
	fresh := load(t, e, wasm, Spec{Name: "fresh", Pool: -1})
	if a, b := total(fresh, "t1", "aaa"), total(fresh, "t1", "bbba"); a != 3 || b != 1 {
		t.Errorf("fresh instances: totals %d, %d; want 3, 1 (no var survives a call)", a, b)
	}
	reused := load(t, e, wasm, Spec{Name: "reused", Pool: -1, Reuse: true})
	if a, b := total(reused, "t1", "aaa"), total(reused, "t1", "bbba"); a != 3 || b != 4 {
		t.Errorf("reused instance, one tenant: totals %d, %d; want 3, 4 (vars persist)", a, b)
	}
	if c := total(reused, "t2", "a"); c != 1 {
		t.Errorf("reused instance, another tenant: total %d, want 1 (vars never cross reuse keys)", c)
	}
}

// Guest log_* lines reach the Engine's log at the mapped slog level, with
// the worker and the call's correlation id.
func TestExtismLogLevelsMapped(t *testing.T) {
	extismLogsOn.Do(func() { extism.SetLogLevel(extism.LogLevelInfo) })
	var buf syncBuf
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: LevelTrace}))
	e := newEngine(t, Config{Logger: log})
	w := load(t, e, extismPlugin(t, "log"), Spec{Name: "log", Pool: -1})
	res := call(t, w, Request{Export: "run_test", Config: map[string]string{"wcp.correlation_id": "corr-1"}})
	want := map[string]string{"this is an info log": "INFO", "this is a warning log": "WARN", "this is an error log": "ERROR"}
	// Logs keeps every line for the caller; Stdio, which the Hall logs as
	// the worker's output, has none of them (they are logged here already).
	for msg := range want {
		if !bytes.Contains(res.Logs, []byte(msg)) || bytes.Contains(res.Stdio, []byte(msg)) {
			t.Errorf("%q: logs %q, stdout and stderr %q", msg, res.Logs, res.Stdio)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec struct {
			Msg, Level, Worker, Message string
			Corr                        string `json:"correlation_id"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "sandbox: guest log" {
			continue
		}
		if lvl, ok := want[rec.Message]; ok && rec.Level == lvl && rec.Worker == "log" && rec.Corr == "corr-1" {
			delete(want, rec.Message)
		}
	}
	if len(want) > 0 {
		t.Errorf("not in the Engine's log at the mapped level: %v\nlog:\n%s", want, buf.String())
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Extism's http_request, http_status_code and http_headers, served over the
// worker's egress: http.wasm (Go PDK) asks for a hard-coded public URL,
// answered here by a local TLS server that the test's resolver points the
// name at; http_headers.wasm (Rust PDK) takes its URL as input.
func TestExtismHTTP(t *testing.T) {
	const todo = `{"userId":1,"id":1,"title":"delectus aut autem","completed":false}`
	cert, pool := testCert(t, "jsonplaceholder.typicode.com")
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Host != "jsonplaceholder.typicode.com" || r.URL.Path != "/todos/1" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Write([]byte(todo))
	}))
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/h":
			rw.Header().Set("Content-Type", "text/html; charset=utf-8")
			rw.Header().Add("X-Multi", "a")
			rw.Header().Add("X-Multi", "b")
			rw.Write([]byte("<p>hi</p>"))
		case "/redirect-out":
			http.Redirect(rw, r, "http://127.0.0.2:1/elsewhere", http.StatusFound)
		case "/missing":
			rw.Header().Set("Content-Type", "text/plain")
			rw.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")

	e := newEngine(t, Config{})
	e.egressHooks = &egressTestHooks{roots: pool, dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != "jsonplaceholder.typicode.com:443" {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		return (&net.Dialer{}).DialContext(ctx, network, strings.TrimPrefix(tlsSrv.URL, "https://"))
	}}

	httpWasm := extismPlugin(t, "http")
	t.Run("http allowed", func(t *testing.T) {
		w := load(t, e, httpWasm, Spec{Name: "http", Pool: -1, Policy: Policy{Egress: []string{"jsonplaceholder.typicode.com"}}})
		res := call(t, w, Request{Export: "run_test"})
		if string(res.Output) != todo {
			t.Fatalf("output %q, want %q", res.Output, todo)
		}
		ev := egressEvents(t, res)
		if len(ev) != 1 || ev[0]["import"] != "http_request" || ev[0]["outcome"] != "ok" || ev[0]["status"] != float64(200) ||
			ev[0]["url"] != "https://jsonplaceholder.typicode.com/todos/1" || ev[0]["method"] != "GET" {
			t.Fatalf("egress telemetry %v", ev)
		}
	})
	t.Run("http host not declared", func(t *testing.T) {
		for _, egress := range [][]string{nil, {"typicode.com"}, {"jsonplaceholder.typicode.com:8443"}} {
			w := load(t, e, httpWasm, Spec{Name: "http-denied", Pool: -1, Policy: Policy{Egress: egress}})
			res, err := w.Call(context.Background(), Request{Export: "run_test"})
			se := wantCode(t, err, CodeEgressDenied)
			if !strings.Contains(se.Message, "HTTP request to 'https://jsonplaceholder.typicode.com/todos/1' is not allowed") {
				t.Errorf("egress %v: message %q is not Extism's", egress, se.Message)
			}
			if ev := egressEvents(t, res); len(ev) != 1 || ev[0]["outcome"] != CodeEgressDenied {
				t.Errorf("egress %v: telemetry %v, want the refused request", egress, ev)
			}
		}
	})

	headers := load(t, e, extismPlugin(t, "http_headers"), Spec{Name: "http_headers", Pool: -1, Policy: Policy{Egress: []string{hostPort}}})
	get := func(url string) (*Result, error) {
		in, _ := json.Marshal(map[string]string{"url": url})
		return headers.Call(context.Background(), Request{Export: "http_get", Input: in})
	}
	t.Run("response headers", func(t *testing.T) {
		res, err := get(srv.URL + "/h")
		if err != nil {
			t.Fatal(err)
		}
		var h map[string]string
		if err := json.Unmarshal(res.Output, &h); err != nil {
			t.Fatalf("output %q: %v", res.Output, err)
		}
		if h["content-type"] != "text/html; charset=utf-8" || h["x-multi"] != "a,b" {
			t.Fatalf("headers %v", h)
		}
	})
	t.Run("status is not an error", func(t *testing.T) {
		res, err := get(srv.URL + "/missing")
		if err != nil {
			t.Fatalf("a 404 is a response, not a failure: %v", err)
		}
		if ev := egressEvents(t, res); len(ev) != 1 || ev[0]["status"] != float64(404) {
			t.Fatalf("telemetry %v, want status 404", ev)
		}
	})
	for _, tc := range []struct{ name, url, msg string }{
		{"redirect to an undeclared host", srv.URL + "/redirect-out", "127.0.0.2:1 is not in the worker's egress list"},
		{"other port of a declared host", "http://127.0.0.1:1/", "127.0.0.1:1 is not in the worker's egress list"},
		{"cloud metadata", "http://169.254.169.254/latest/meta-data/", "is not in the worker's egress list"},
		{"query is redacted", "http://example.invalid/?key=SECRET", "HTTP request to 'http://example.invalid/' is not allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := get(tc.url)
			se := wantCode(t, err, CodeEgressDenied)
			if !strings.Contains(se.Message, tc.msg) || strings.Contains(se.Message, "SECRET") {
				t.Fatalf("message %q, want %q", se.Message, tc.msg)
			}
			for _, ev := range egressEvents(t, res) {
				if strings.Contains(ev["url"].(string), "SECRET") {
					t.Fatalf("telemetry keeps the query: %v", ev)
				}
			}
		})
	}
	t.Run("private address through a declared name", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(hostPort)
		// An Engine without the test resolver: the real dialer's checks.
		plain := newEngine(t, Config{})
		w := load(t, plain, extismPlugin(t, "http_headers"), Spec{Name: "by-name", Pool: -1, Policy: Policy{Egress: []string{"localhost:" + port}}})
		in, _ := json.Marshal(map[string]string{"url": "http://localhost:" + port + "/h"})
		_, err := w.Call(context.Background(), Request{Export: "http_get", Input: in})
		se := wantCode(t, err, CodeEgressDenied)
		if !strings.Contains(se.Message, "refused addresses") {
			t.Fatalf("message %q", se.Message)
		}
	})
}

// testCert is a self-signed certificate for name and a pool trusting it.
func testCert(t *testing.T, name string) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func egressEvents(t *testing.T, res *Result) []map[string]any {
	t.Helper()
	if res == nil {
		t.Fatal("no result")
	}
	var out []map[string]any
	for _, raw := range res.Events {
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatalf("event %s: %v", raw, err)
		}
		if ev["event_id"] == EgressEventID {
			out = append(out, ev)
		}
	}
	return out
}

// A guest cannot pass an event of its own for the Hall's egress
// telemetry: hall_emit drops every event under the reserved prefix.
func TestHallEmitReservedPrefix(t *testing.T) {
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "emit-forge", Pool: -1})
	res := call(t, w, Request{Export: "emit", Input: []byte(`{"event_id":"` + EgressEventID + `","url":"https://fake/"}` + "\n" + `{"event_id":"evt.hall.other"}` + "\n" + `{"event_id":"mine"}`)})
	if len(res.Events) != 1 || res.EventsDropped != 2 {
		t.Fatalf("events %s, dropped %d; want only the guest's own event kept", res.Events, res.EventsDropped)
	}
}

// hall_http requests are recorded in the call's telemetry like
// http_request ones, refused ones included.
func TestHallHTTPTelemetry(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { rw.Write([]byte("ok")) }))
	defer srv.Close()
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "hall-http", Pool: -1, Policy: Policy{Egress: []string{strings.TrimPrefix(srv.URL, "http://")}}})
	in, _ := json.Marshal(httpRequest{URL: srv.URL + "/x?token=SECRET"})
	res := call(t, w, Request{Export: "http", Input: in})
	ev := egressEvents(t, res)
	if len(ev) != 1 || ev[0]["import"] != "hall_http" || ev[0]["outcome"] != "ok" || ev[0]["url"] != srv.URL+"/x" || ev[0]["response_bytes"] != float64(2) {
		t.Fatalf("telemetry %v", ev)
	}
	none := load(t, e, fixtures.goguest, Spec{Name: "hall-http-none", Pool: -1})
	res = call(t, none, Request{Export: "http", Input: in})
	if ev := egressEvents(t, res); len(ev) != 1 || ev[0]["outcome"] != GuestEgressDenied {
		t.Fatalf("refused request telemetry %v", ev)
	}
}

// routeExtismHTTP moves exactly the three Extism HTTP imports and leaves
// every other byte's meaning alone; a module without them is returned as
// is.
func TestRouteExtismHTTP(t *testing.T) {
	adv := fixtures.adversary
	got := routeExtismHTTP(adv)
	if bytes.Equal(got, adv) {
		t.Fatal("adversary.wat imports http_request: not rewritten")
	}
	if !bytes.Contains(got, []byte(extismHTTPNamespace)) || len(got) != len(adv)+len(extismHTTPNamespace)-len("extism:host/env") {
		t.Fatalf("rewritten module of %d bytes (was %d)", len(got), len(adv))
	}
	if again := routeExtismHTTP(got); !bytes.Equal(again, got) {
		t.Fatal("not idempotent")
	}
	cv := extismPlugin(t, "count_vowels")
	if out := routeExtismHTTP(cv); !bytes.Equal(out, cv) {
		t.Fatal("a module without Extism HTTP imports was changed")
	}
	for _, bad := range [][]byte{nil, []byte("\x00asm"), append(append([]byte{}, adv[:12]...), 0xff, 0xff)} {
		if out := routeExtismHTTP(bad); !bytes.Equal(out, bad) {
			t.Fatalf("malformed module %x changed", bad)
		}
	}
}

// The go-sdk's other test plugins: those that need nothing from the host
// run (the WASI commands through _start), those that import the go-sdk
// harness's own host functions or a second module do not load.
func TestExtismPluginsOthers(t *testing.T) {
	e := newEngine(t, Config{})
	for _, tc := range []struct {
		plugin, export, input, want, logs, loadErr string
	}{
		{plugin: "hello", export: "run_test", want: "Hello, world!"},
		{plugin: "noop", export: "run_test"},
		{plugin: "input_offset", export: "input_offset_length", input: "abcdef", want: "\x06\x00\x00\x00\x00\x00\x00\x00"},
		{plugin: "replace", export: "run_test", input: "hello", want: "hello"},
		{plugin: "println", export: "run_test", logs: "this was printed from the plugin"},
		{plugin: "std_command", export: "_start", input: "ben", want: "hello ben"},
		{plugin: "count_vowels_std", export: "_start", input: "hello", want: `{"count": 2, "config": "<unset by host>", "a": "this is var a"}`},
		{plugin: "host", loadErr: `"mult" is not exported in module "extism:host/user"`},
		{plugin: "host_memory", loadErr: "not instantiated"},
		{plugin: "main", loadErr: "module[lib] not instantiated"},
		{plugin: "nested.c.instr", loadErr: "module[dylibso_observe] not instantiated"},
	} {
		t.Run(tc.plugin, func(t *testing.T) {
			w, err := e.Load(context.Background(), extismPlugin(t, tc.plugin), Spec{Name: tc.plugin, Pool: -1})
			if tc.loadErr != "" {
				se := wantCode(t, err, CodeModuleInvalid)
				if !strings.Contains(se.Message, tc.loadErr) {
					t.Fatalf("load error %q, want %q", se.Message, tc.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(context.Background())
			res := call(t, w, Request{Export: tc.export, Input: []byte(tc.input)})
			if string(res.Output) != tc.want || !strings.Contains(string(res.Logs), tc.logs) {
				t.Fatalf("output %q logs %q; want %q and %q", res.Output, res.Logs, tc.want, tc.logs)
			}
		})
	}
}
