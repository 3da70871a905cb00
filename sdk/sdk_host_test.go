//go:build !wasip1

package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	extism "github.com/extism/go-sdk"

	"github.com/wcphall/hall/internal/wasmmod"
	"github.com/wcphall/hall/internal/wasmtest"
)

// Test guests, built once per test binary from testdata/ (see TestMain).
var (
	workerWasm []byte // testdata/worker: one export per SDK feature
	echoWasm   []byte // testdata/echo: the smallest worker
)

func TestMain(m *testing.M) {
	workerWasm = wasmtest.MustBuild("./testdata/worker")
	echoWasm = wasmtest.MustBuild("./testdata/echo")
	os.Exit(m.Run())
}

// fakeHall plays the Hall's side of hall_secret, hall_http and hall_emit
// as a test double with the documented JSON shapes (docs/ABI.md).
type fakeHall struct {
	mu      sync.Mutex
	secrets map[string]string // declared and available
	denied  map[string]bool   // declared but unavailable is "", undeclared is absent
	events  []map[string]any
	reqs    []map[string]any
}

func (h *fakeHall) functions() []extism.HostFunction {
	i64 := []extism.ValueType{extism.ValueTypeI64}
	secret := extism.NewHostFunctionWithStack("hall_secret", func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
		name, err := p.ReadString(stack[0])
		if err != nil {
			panic(err)
		}
		var reply any
		if v, ok := h.secrets[name]; ok {
			reply = map[string]any{"value": v}
		} else if _, ok := h.denied[name]; ok {
			reply = map[string]any{"error": map[string]string{"code": "SECRET_UNAVAILABLE", "message": "vault sealed"}}
		} else {
			reply = map[string]any{"error": map[string]string{"code": "SECRET_NOT_DECLARED", "message": name + " is not in secrets_access"}}
		}
		stack[0] = writeJSON(p, reply)
	}, i64, i64)
	httpFn := extism.NewHostFunctionWithStack("hall_http", func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
		raw, err := p.ReadBytes(stack[0])
		if err != nil {
			panic(err)
		}
		var req struct {
			Method  string            `json:"method"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
			Body    []byte            `json:"body"`
		}
		var generic map[string]any
		if json.Unmarshal(raw, &req) != nil || json.Unmarshal(raw, &generic) != nil {
			stack[0] = writeJSON(p, map[string]any{"error": map[string]string{"code": "BAD_REQUEST", "message": "not JSON"}})
			return
		}
		h.mu.Lock()
		h.reqs = append(h.reqs, generic)
		h.mu.Unlock()
		if !strings.HasPrefix(req.URL, "https://api.example.com/") {
			stack[0] = writeJSON(p, map[string]any{"error": map[string]string{"code": "EGRESS_DENIED", "message": req.URL + " not in network_egress"}})
			return
		}
		stack[0] = writeJSON(p, map[string]any{
			"status":  201,
			"headers": map[string]string{"X-Method": req.Method, "X-Echo": req.Headers["X-In"]},
			"body":    append([]byte("got "), req.Body...),
		})
	}, i64, i64)
	emit := extism.NewHostFunctionWithStack("hall_emit", func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
		raw, err := p.ReadBytes(stack[0])
		if err != nil {
			panic(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			panic(err)
		}
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}, i64, nil)
	return []extism.HostFunction{secret, httpFn, emit}
}

func writeJSON(p *extism.CurrentPlugin, v any) uint64 {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	off, err := p.WriteBytes(b)
	if err != nil {
		panic(err)
	}
	return off
}

// newPlugin instantiates wasm on a plain Extism host, as any Extism
// embedder would: WASI on, config through the manifest, the Hall functions
// in extism:host/user.
func newPlugin(tb testing.TB, wasm []byte, config map[string]string, hall *fakeHall) *extism.Plugin {
	tb.Helper()
	if hall == nil {
		hall = &fakeHall{}
	}
	return wasmtest.NewPluginWith(tb, wasm, config, hall.functions())
}

func call(tb testing.TB, p *extism.Plugin, fn string, input []byte) []byte {
	tb.Helper()
	rc, out, err := p.Call(fn, input)
	if err != nil || rc != 0 {
		tb.Fatalf("%s: rc %d, err %v", fn, rc, err)
	}
	return out
}

func TestEchoSizes(t *testing.T) {
	p := newPlugin(t, workerWasm, nil, nil)
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 4095, 1 << 20, 1<<20 + 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			in := make([]byte, n)
			for i := range in {
				in[i] = byte(i*7 + i>>8) // distinct neighbours catch byte-order slips
			}
			out := call(t, p, "echo", in)
			if !bytes.Equal(out, in) {
				t.Fatalf("echo of %d bytes returned %d bytes, first difference at %d", n, len(out), firstDiff(in, out))
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestRunDispatchesOnCapabilityConfig(t *testing.T) {
	for _, tc := range []struct {
		name, capability, want string
	}{
		{"upper", "cap.test.upper", "HELLO"},
		{"echo", "cap.test.echo", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlugin(t, workerWasm, map[string]string{"wcp.capability_id": tc.capability}, nil)
			if got := string(call(t, p, "run", []byte("hello"))); got != tc.want {
				t.Errorf("run = %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("no-config-several-handlers", func(t *testing.T) {
		p := newPlugin(t, workerWasm, nil, nil)
		rc, _, err := p.Call("run", []byte("x"))
		if rc == 0 || err == nil || !strings.Contains(err.Error(), "wcp.capability_id") {
			t.Errorf("rc %d err %v; want failure naming wcp.capability_id", rc, err)
		}
	})
	t.Run("no-config-single-handler", func(t *testing.T) {
		p := newPlugin(t, echoWasm, nil, nil)
		if got := string(call(t, p, "run", []byte("solo"))); got != "solo" {
			t.Errorf("run = %q", got)
		}
	})
}

func TestJSON(t *testing.T) {
	p := newPlugin(t, workerWasm, nil, nil)
	out := call(t, p, "json", []byte(`{"name":"ada","count":21}`))
	var got struct {
		Greeting string `json:"greeting"`
		Double   int    `json:"double"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if got.Greeting != "hello ada" || got.Double != 42 {
		t.Errorf("got %+v", got)
	}

	rc, _, err := p.Call("json", []byte(`{"name":`))
	if rc == 0 || err == nil || !strings.Contains(err.Error(), "decoding input as JSON") {
		t.Errorf("bad JSON: rc %d err %v", rc, err)
	}
}

func TestConfigAndCorrelation(t *testing.T) {
	cfg := map[string]string{
		"wcp.correlation_id": "550e8400-e29b-41d4-a716-446655440000",
		"wcp.tenant_id":      "org.acme",
		"wcp.capability_id":  "cap.test.context",
		"wcp.env":            "dev",
		"wcp.data_label":     "INTERNAL",
		"wcp.worker_id":      "org.acme.tester",
		"custom":             strings.Repeat("v", 37),
	}
	p := newPlugin(t, workerWasm, cfg, nil)
	var got struct {
		Correlation map[string]string `json:"correlation"`
		Capability  string            `json:"capability"`
		Custom      string            `json:"custom"`
		CustomSet   bool              `json:"custom_set"`
	}
	if err := json.Unmarshal(call(t, p, "context", nil), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"correlation_id": cfg["wcp.correlation_id"],
		"tenant_id":      "org.acme",
		"capability_id":  "cap.test.context",
		"env":            "dev",
		"data_label":     "INTERNAL",
		"worker_id":      "org.acme.tester",
	}
	for k, v := range want {
		if got.Correlation[k] != v {
			t.Errorf("correlation %s = %q, want %q", k, got.Correlation[k], v)
		}
	}
	if got.Custom != cfg["custom"] || !got.CustomSet || got.Capability != "cap.test.context" {
		t.Errorf("custom %q set %v capability %q", got.Custom, got.CustomSet, got.Capability)
	}

	bare := newPlugin(t, workerWasm, nil, nil)
	if err := json.Unmarshal(call(t, bare, "context", nil), &got); err != nil {
		t.Fatal(err)
	}
	if got.CustomSet || got.Custom != "" || got.Correlation["correlation_id"] != "" {
		t.Errorf("unset config reported as set: %+v", got)
	}
}

func TestLog(t *testing.T) {
	cfg := map[string]string{"wcp.correlation_id": "corr-1"}
	for _, tc := range []struct {
		level extism.LogLevel
		want  []string
	}{
		{extism.LogLevelTrace, []string{"trace:[corr-1] trace line", "debug:[corr-1] debug line", "info:[corr-1] info 42", "warn:[corr-1] warn line", "error:[corr-1] error line"}},
		{extism.LogLevelWarn, []string{"warn:[corr-1] warn line", "error:[corr-1] error line"}},
	} {
		t.Run(tc.level.String(), func(t *testing.T) {
			extism.SetLogLevel(tc.level) // process-wide in go-sdk; tests here are sequential
			t.Cleanup(func() { extism.SetLogLevel(extism.LogLevelOff) })
			p := newPlugin(t, workerWasm, cfg, nil)
			var lines []string
			p.SetLogger(func(l extism.LogLevel, msg string) {
				if strings.Contains(msg, "line") || strings.Contains(msg, "info 42") {
					lines = append(lines, strings.ToLower(l.String())+":"+msg)
				}
			})
			call(t, p, "log", nil)
			if !slices.Equal(lines, tc.want) {
				t.Errorf("logs = %q\nwant %q", lines, tc.want)
			}
		})
	}
}

func TestSecret(t *testing.T) {
	hall := &fakeHall{
		secrets: map[string]string{"db_password": "s3cr3t"},
		denied:  map[string]bool{"vault_key": true},
	}
	p := newPlugin(t, workerWasm, nil, hall)
	for _, tc := range []struct {
		name string
		want map[string]any
	}{
		{"db_password", map[string]any{"value": "s3cr3t"}},
		{"vault_key", map[string]any{"code": "SECRET_UNAVAILABLE", "message": "vault sealed", "not_declared": false}},
		{"other", map[string]any{"code": "SECRET_NOT_DECLARED", "message": "other is not in secrets_access", "not_declared": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got map[string]any
			if err := json.Unmarshal(call(t, p, "secret", []byte(tc.name)), &got); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHTTP(t *testing.T) {
	hall := &fakeHall{}
	p := newPlugin(t, workerWasm, nil, hall)
	req := `{"method":"POST","url":"https://api.example.com/v1","headers":{"X-In":"abc"},"body":"` +
		"cGF5bG9hZA==" + `"}` // "payload"
	var resp struct {
		Status  int               `json:"status"`
		Headers map[string]string `json:"headers"`
		Body    []byte            `json:"body"`
	}
	if err := json.Unmarshal(call(t, p, "http", []byte(req)), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Status != 201 || resp.Headers["X-Method"] != "POST" || resp.Headers["X-Echo"] != "abc" || string(resp.Body) != "got payload" {
		t.Errorf("response %+v (body %q)", resp, resp.Body)
	}
	if len(hall.reqs) != 1 || hall.reqs[0]["body"] != "cGF5bG9hZA==" || hall.reqs[0]["url"] != "https://api.example.com/v1" {
		t.Errorf("host saw %v; want the body base64 on the wire", hall.reqs)
	}

	rc, _, err := p.Call("http", []byte(`{"url":"https://evil.example.net/"}`))
	if rc == 0 || err == nil || !strings.Contains(err.Error(), "http: EGRESS_DENIED: https://evil.example.net/ not in network_egress") {
		t.Errorf("denied egress: rc %d err %v", rc, err)
	}
	if got := hall.reqs[len(hall.reqs)-1]["method"]; got != "GET" {
		t.Errorf("default method = %v, want GET", got)
	}
}

func TestEmit(t *testing.T) {
	hall := &fakeHall{}
	p := newPlugin(t, workerWasm, map[string]string{"wcp.correlation_id": "corr-9"}, hall)
	call(t, p, "emit", []byte(`{"event_id":"evt.doc.summarized","sentences":3}`))
	call(t, p, "emit", []byte(`{"event_id":"evt.x","correlation_id":"explicit"}`))
	want := []string{
		`{"correlation_id":"corr-9","event_id":"evt.doc.summarized","sentences":3}`,
		`{"correlation_id":"explicit","event_id":"evt.x"}`,
	}
	if len(hall.events) != len(want) {
		t.Fatalf("events = %v", hall.events)
	}
	for i, ev := range hall.events {
		b, _ := json.Marshal(ev)
		if string(b) != want[i] {
			t.Errorf("event %d = %s, want %s", i, b, want[i])
		}
	}
}

func TestHandlerFailures(t *testing.T) {
	p := newPlugin(t, workerWasm, nil, nil)
	for _, tc := range []struct {
		export, input, wantErr string
	}{
		{"fail", "bad input", "boom: bad input"},
		{"panic", "", "panic: assignment to entry in nil map"},
		{"missing", "", `sdk: no handler for capability "cap.test.unregistered" (registered: cap.test.context, cap.test.echo,`},
	} {
		t.Run(tc.export, func(t *testing.T) {
			rc, _, err := p.Call(tc.export, []byte(tc.input))
			if rc != 1 {
				t.Errorf("rc = %d, want 1", rc)
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want prefix %q", err, tc.wantErr)
			}
		})
	}
	// The instance survives a failed or panicking handler.
	if got := string(call(t, p, "echo", []byte("still alive"))); got != "still alive" {
		t.Errorf("echo after failures = %q", got)
	}
}

// TestImportsAreExtismABI checks the worker's import list against the
// functions a plain Extism host provides, and that a worker imports only the
// Hall functions it calls.
func TestImportsAreExtismABI(t *testing.T) {
	kernel := []string{
		"alloc", "free", "length", "load_u8", "load_u64", "store_u8", "store_u64",
		"input_length", "input_load_u8", "input_load_u64", "output_set",
		"config_get", "error_set", "get_log_level",
		"log_trace", "log_debug", "log_info", "log_warn", "log_error",
	}
	for _, tc := range []struct {
		name     string
		wasm     []byte
		wantHall []string
	}{
		{"worker", workerWasm, []string{"hall_emit", "hall_http", "hall_secret"}},
		{"echo", echoWasm, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := wasmmod.Inspect(tc.wasm)
			if err != nil {
				t.Fatal(err)
			}
			var hall []string
			for _, im := range info.Imports {
				switch im.Module {
				case "extism:host/env":
					if !slices.Contains(kernel, im.Name) {
						t.Errorf("imports unknown kernel function %s", im.Name)
					}
				case "extism:host/user":
					hall = append(hall, im.Name)
				case "wasi_snapshot_preview1":
				default:
					t.Errorf("imports from unexpected module %s.%s", im.Module, im.Name)
				}
			}
			slices.Sort(hall)
			if !slices.Equal(hall, tc.wantHall) {
				t.Errorf("Hall imports = %q, want %q", hall, tc.wantHall)
			}
			if !info.HasExport("_initialize", wasmmod.KindFunc) || info.HasExport("_start", wasmmod.KindFunc) {
				t.Error("not a reactor module: want _initialize and no _start")
			}
		})
	}
}

// BenchmarkEcho1MiB echoes 1 MiB through the echo worker on a plain Extism
// host. MB/s counts the echoed MiB once; moved-MB/s counts both directions
// (1 MiB in through input_load_u64, 1 MiB out through store_u64).
func BenchmarkEcho1MiB(b *testing.B) {
	p := newPlugin(b, echoWasm, map[string]string{"wcp.capability_id": "cap.test.echo"}, nil)
	in := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	b.SetBytes(int64(len(in))) // one MiB in and the same MiB out per op
	b.ReportAllocs()
	for b.Loop() {
		rc, out, err := p.Call("run", in)
		if err != nil || rc != 0 || len(out) != len(in) {
			b.Fatalf("rc %d err %v len %d", rc, err, len(out))
		}
	}
	b.ReportMetric(2*float64(len(in))*float64(b.N)/1e6/b.Elapsed().Seconds(), "moved-MB/s")
}
