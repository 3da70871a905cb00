package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCountVowelsUnmodifiedExtismPlugin(t *testing.T) {
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.countVowels, Spec{Name: "count_vowels"})
	res := call(t, w, Request{Export: "count_vowels", Input: []byte("Hello, Hall sandbox!")})
	var got struct {
		Count int `json:"count"`
	}
	if err := json.Unmarshal(res.Output, &got); err != nil {
		t.Fatalf("output %q: %v", res.Output, err)
	}
	if got.Count != 5 {
		t.Fatalf("count = %d, want 5 (output %s)", got.Count, res.Output)
	}
}

func TestCallBasics(t *testing.T) {
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "goguest"})
	if ex := w.Exports(); !contains(ex, "run") || contains(ex, "_initialize") {
		t.Fatalf("Exports() = %v", ex)
	}
	res := call(t, w, Request{Export: "run", Input: []byte("world")})
	if string(res.Output) != "hello world" {
		t.Fatalf("output %q", res.Output)
	}
	if res.Limits != w.Limits() || res.Duration <= 0 {
		t.Fatalf("result limits %+v duration %v", res.Limits, res.Duration)
	}
	res = call(t, w, Request{Export: "config", Input: []byte("wcp.tenant_id"), Config: map[string]string{"wcp.tenant_id": "org.acme"}})
	if string(res.Output) != "org.acme" {
		t.Fatalf("config_get output %q", res.Output)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestOutcomes runs every adversarial case on one Engine and checks, after
// each, that a normal call on the same Engine still succeeds.
func TestOutcomes(t *testing.T) {
	e := newEngine(t, Config{Max: Limits{Timeout: 5 * time.Second, MemoryBytes: 64 << 20}})
	healthy := load(t, e, fixtures.goguest, Spec{Name: "healthy"})
	small := Limits{Timeout: 5 * time.Second, MemoryBytes: 16 << 20, OutputBytes: 1 << 20, InputBytes: 1 << 10}
	adv := load(t, e, fixtures.adversary, Spec{Name: "adversary", Limits: small})
	gog := load(t, e, fixtures.goguest, Spec{Name: "goguest-small", Limits: small})

	cases := []struct {
		name    string
		w       *Worker
		req     Request
		code    string
		message string
	}{
		{"wat infinite loop", adv, Request{Export: "spin", Timeout: 300 * time.Millisecond}, CodeLimitTimeout, ""},
		{"go infinite loop", gog, Request{Export: "spin", Timeout: 300 * time.Millisecond}, CodeLimitTimeout, ""},
		{"request timeout lowers limit", gog, Request{Export: "spin", Timeout: 50 * time.Millisecond}, CodeLimitTimeout, ""},
		{"wat memory.grow to the cap", adv, Request{Export: "grow"}, CodeLimitMemory, ""},
		{"go unbounded allocation", gog, Request{Export: "alloc_forever"}, CodeLimitMemory, ""},
		{"wat unreachable", adv, Request{Export: "trap"}, CodeWorkerTrap, ""},
		{"go panic", gog, Request{Export: "panic"}, CodeWorkerTrap, ""},
		{"go error_set", gog, Request{Export: "fail", Input: []byte("x")}, CodeWorkerFailed, "boom: x"},
		{"wat non-zero return", adv, Request{Export: "fail"}, CodeWorkerFailed, ""},
		{"hall_secret offset outside memory", adv, Request{Export: "badptr_secret"}, CodeWorkerBadPointer, ""},
		{"hall_emit offset outside memory", adv, Request{Export: "badptr_emit"}, CodeWorkerBadPointer, ""},
		{"hall_http offset inside a block", adv, Request{Export: "badptr_inside"}, CodeWorkerBadPointer, ""},
		{"extism load_u64 offset outside memory", adv, Request{Export: "badptr_kernel"}, CodeWorkerBadPointer, ""},
		{"wat output over cap", adv, Request{Export: "big_output"}, CodeLimitOutput, ""},
		{"go output over cap", gog, Request{Export: "big", Input: []byte("1500000")}, CodeLimitOutput, ""},
		{"input over cap", gog, Request{Export: "run", Input: make([]byte, 1025)}, CodeLimitInput, ""},
		{"missing export", gog, Request{Export: "nope"}, CodeExportMissing, ""},
		{"export with parameters", adv, Request{Export: "needs_param"}, CodeExportMissing, ""},
		{"extism http_request", adv, Request{Export: "extism_http"}, CodeEgressDenied, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.w.Call(context.Background(), tc.req)
			se := wantCode(t, err, tc.code)
			if tc.message != "" && se.Message != tc.message {
				t.Errorf("message %q, want %q", se.Message, tc.message)
			}
			if res == nil {
				t.Fatal("nil Result with *Error")
			}
			// The limit that stopped it is the request's, not the
			// worker's 5 s: the outcome names it.
			if tc.code == CodeLimitTimeout && !strings.Contains(se.Message, "stopped after "+tc.req.Timeout.String()) {
				t.Errorf("stopped by another limit than the request's %v: %s", tc.req.Timeout, se.Message)
			}
			if res := call(t, healthy, Request{Export: "run", Input: []byte("again")}); string(res.Output) != "hello again" {
				t.Fatalf("healthy call after %s: %q", tc.name, res.Output)
			}
			// The failing worker itself keeps serving too.
			if tc.w == gog {
				call(t, gog, Request{Export: "run"})
			} else {
				call(t, adv, Request{Export: "run"})
			}
		})
	}
}

func TestLoadRefusals(t *testing.T) {
	e := newEngine(t, Config{Max: Limits{MemoryBytes: 64 << 20}})
	cases := []struct {
		name string
		wasm []byte
		code string
	}{
		{"not wasm", []byte("hello"), CodeModuleInvalid},
		{"wat text", []byte("(module)"), CodeModuleInvalid},
		{"truncated", append(append([]byte{}, wasmMagic...), 0x01, 0xff), CodeModuleInvalid},
		{"unresolvable import", compileWAT(t, `(module (import "env" "nope" (func)))`), CodeModuleInvalid},
		{"initial memory over limit", fixtures.bigmem, CodeLimitMemory},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := e.Load(context.Background(), tc.wasm, Spec{Name: tc.name})
			if w != nil {
				t.Fatal("got a Worker")
			}
			wantCode(t, err, tc.code)
		})
	}
	// A normal load still works.
	w := load(t, e, fixtures.adversary, Spec{Name: "ok"})
	call(t, w, Request{Export: "run"})
}

// TestInstanceLifecycle uses the Go guest's "count" export (a global counter)
// to see which instance served a call.
func TestInstanceLifecycle(t *testing.T) {
	e := newEngine(t, Config{})
	count := func(w *Worker, key string) int {
		t.Helper()
		res := call(t, w, Request{Export: "count", ReuseKey: key})
		n, err := strconv.Atoi(string(res.Output))
		if err != nil {
			t.Fatalf("count output %q", res.Output)
		}
		return n
	}
	fresh := load(t, e, fixtures.goguest, Spec{Name: "fresh"})
	for i := 0; i < 3; i++ {
		if n := count(fresh, "a"); n != 1 {
			t.Fatalf("fresh instance call %d saw counter %d, want 1", i, n)
		}
	}
	reuse := load(t, e, fixtures.goguest, Spec{Name: "reuse", Reuse: true, Limits: Limits{Timeout: 300 * time.Millisecond}})
	steps := []struct {
		export, key string
		want        int // counter value; 0 = the call must fail
	}{
		{"count", "a", 1},
		{"count", "a", 2},
		{"count", "b", 1}, // never crosses keys
		{"count", "a", 3},
		{"panic", "a", 0},
		{"count", "a", 1}, // trapped instance was discarded
		{"count", "a", 2},
		{"spin", "a", 0},
		{"count", "a", 1}, // timed-out instance was discarded
		{"fail", "a", 0},
		{"count", "a", 2}, // a guest error is not a trap: instance kept
		{"count", "b", 2},
	}
	for i, s := range steps {
		if s.want == 0 {
			if _, err := reuse.Call(context.Background(), Request{Export: s.export, ReuseKey: s.key}); err == nil {
				t.Fatalf("step %d %s: want failure", i, s.export)
			}
			continue
		}
		if n := count(reuse, s.key); n != s.want {
			t.Fatalf("step %d (key %s): counter %d, want %d", i, s.key, n, s.want)
		}
	}
}

func TestConcurrentCalls(t *testing.T) {
	e := newEngine(t, Config{})
	for _, reuse := range []bool{false, true} {
		w := load(t, e, fixtures.goguest, Spec{Name: "concurrent", Reuse: reuse, Pool: 4})
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 6; i++ {
					in := strconv.Itoa(g*100 + i)
					res, err := w.Call(context.Background(), Request{Export: "run", Input: []byte(in), ReuseKey: strconv.Itoa(g % 3)})
					if err != nil {
						errs <- err
						return
					}
					if string(res.Output) != "hello "+in {
						errs <- &Error{Code: "MISMATCH", Message: string(res.Output)}
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("reuse=%v: %v", reuse, err)
		}
	}
}

type mapSecrets map[string]string

func (m mapSecrets) Secret(name string) (string, bool) { v, ok := m[name]; return v, ok }

func TestSecrets(t *testing.T) {
	e := newEngine(t, Config{Secrets: mapSecrets{"api_key": "s3cr3t", "undeclared": "nope"}})
	w := load(t, e, fixtures.goguest, Spec{Name: "secrets", Policy: Policy{Secrets: []string{"api_key", "missing"}}})
	cases := []struct{ name, want string }{
		{"api_key", `{"value":"s3cr3t"}`},
		{"undeclared", GuestSecretNotDeclared},
		{"missing", GuestSecretUnavailable},
		{"", GuestBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := call(t, w, Request{Export: "secret", Input: []byte(tc.name)})
			if strings.HasPrefix(tc.want, "{") {
				if string(res.Output) != tc.want {
					t.Fatalf("got %s, want %s", res.Output, tc.want)
				}
				return
			}
			if got := guestErrorCode(t, res.Output); got != tc.want {
				t.Fatalf("got %s (%s), want %s", got, res.Output, tc.want)
			}
		})
	}
}

func guestErrorCode(t *testing.T, out []byte) string {
	t.Helper()
	var v struct {
		Error *guestError `json:"error"`
	}
	if err := json.Unmarshal(out, &v); err != nil || v.Error == nil {
		t.Fatalf("not an error JSON: %q", out)
	}
	return v.Error.Code
}

func TestEnvSecrets(t *testing.T) {
	t.Setenv("HALL_SECRET_DB_PASS_2", "pw")
	if v, ok := (EnvSecrets{}).Secret("db-pass.2"); !ok || v != "pw" {
		t.Fatalf("got %q %v", v, ok)
	}
	if _, ok := (EnvSecrets{}).Secret("absent"); ok {
		t.Fatal("absent secret found")
	}
}

func TestEmit(t *testing.T) {
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "emit"})
	res := call(t, w, Request{Export: "emit", Input: []byte(`{"event_id":"e1","n":1}` + "\n" + `not json` + "\n" + `[1]` + "\n" + `{"event_id":"e2"}`)})
	if len(res.Events) != 2 || string(res.Events[0]) != `{"event_id":"e1","n":1}` || string(res.Events[1]) != `{"event_id":"e2"}` || res.EventsDropped != 2 {
		t.Fatalf("events %q dropped %d", res.Events, res.EventsDropped)
	}
	many := strings.Repeat(`{"event_id":"x"}`+"\n", maxEvents+10)
	res = call(t, w, Request{Export: "emit", Input: []byte(strings.TrimSuffix(many, "\n"))})
	if len(res.Events) != maxEvents || res.EventsDropped != 10 {
		t.Fatalf("got %d events, %d dropped", len(res.Events), res.EventsDropped)
	}
}

func TestLogsBounded(t *testing.T) {
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "logs", Limits: Limits{LogBytes: 100}})
	res := call(t, w, Request{Export: "print", Input: []byte("0123456789"), Config: map[string]string{"n": "50"}})
	if len(res.Logs) != 100 || !strings.HasPrefix(string(res.Logs), "0123456789\n0123456789\n") {
		t.Fatalf("logs (%d bytes) %q", len(res.Logs), res.Logs)
	}
	if string(res.Stdio) != string(res.Logs) {
		t.Fatalf("stdout and stderr %q, want what the logs hold (no Extism log lines here)", res.Stdio)
	}
	res = call(t, w, Request{Export: "print", Input: []byte("x"), Config: map[string]string{"n": "1"}})
	if string(res.Logs) != "x\nx\n" || string(res.Stdio) != "x\nx\n" {
		t.Fatalf("second call logs %q, stdout and stderr %q", res.Logs, res.Stdio)
	}
}

func TestNoHostEnvironmentOrArgs(t *testing.T) {
	t.Setenv("HALL_SECRET_LEAK", "leaked")
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "env"})
	res := call(t, w, Request{Export: "env"})
	if len(res.Output) != 0 {
		t.Fatalf("guest sees environment/args: %q", res.Output)
	}
}

func TestClocks(t *testing.T) {
	e := newEngine(t, Config{})
	now := func(p Policy) time.Time {
		w := load(t, e, fixtures.goguest, Spec{Name: "clock", Policy: p})
		res := call(t, w, Request{Export: "now"})
		n, err := strconv.ParseInt(string(res.Output), 10, 64)
		if err != nil {
			t.Fatalf("now output %q", res.Output)
		}
		return time.Unix(0, n)
	}
	if d := time.Since(now(Policy{})); d < 0 || d > time.Minute {
		t.Fatalf("real clock off by %v", d)
	}
	if got := now(Policy{Deterministic: true}); time.Since(got) < 24*time.Hour {
		t.Fatalf("deterministic clock returned real time %v", got)
	}
}

func TestEngineConfig(t *testing.T) {
	t.Run("cache dir writable by others", func(t *testing.T) {
		dir := t.TempDir()
		if err := chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		if _, err := New(context.Background(), Config{CacheDir: dir}); err == nil {
			t.Fatal("accepted a world-writable cache dir")
		}
	})
	t.Run("extism wasi output env", func(t *testing.T) {
		t.Setenv("EXTISM_ENABLE_WASI_OUTPUT", "1")
		if _, err := New(context.Background(), Config{}); err == nil {
			t.Fatal("accepted EXTISM_ENABLE_WASI_OUTPUT")
		}
	})
	t.Run("limits capped by Max", func(t *testing.T) {
		e := newEngine(t, Config{Max: Limits{Timeout: time.Second, MemoryBytes: 8 << 20}})
		w := load(t, e, fixtures.adversary, Spec{Name: "caps", Limits: Limits{Timeout: time.Hour, MemoryBytes: 1 << 30, OutputBytes: 5}})
		got := w.Limits()
		if got.Timeout != time.Second || got.MemoryBytes != 8<<20 || got.OutputBytes != 5 || got.InputBytes != DefaultLimits().InputBytes {
			t.Fatalf("limits %+v", got)
		}
	})
	t.Run("closed worker", func(t *testing.T) {
		e := newEngine(t, Config{})
		w := load(t, e, fixtures.adversary, Spec{Name: "closed"})
		if err := w.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Call(context.Background(), Request{Export: "run"}); err == nil {
			t.Fatal("call on closed worker succeeded")
		}
	})
}

// enteredSecrets signals each hall_secret read on entered.
type enteredSecrets struct{ entered chan struct{} }

func (s enteredSecrets) Secret(string) (string, bool) {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	return "v", true
}

// spinAfterSecret reads secret "k" (so the host sees the call running),
// then loops forever.
const spinAfterSecret = `(module
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/user" "hall_secret" (func $hall_secret (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "spin") (result i32)
    (local $p i64)
    (local.set $p (call $alloc (i64.const 1)))
    (call $store_u8 (local.get $p) (i32.const 107))
    (drop (call $hall_secret (local.get $p)))
    (loop $forever (br $forever))
    (i32.const 0)))`

// TestCloseDuringCall: Close ends a call that is running guest code (it
// has read a secret and spins), the call reports an error, and the engine
// serves other workers after.
func TestCloseDuringCall(t *testing.T) {
	entered := make(chan struct{}, 1)
	e := newEngine(t, Config{Secrets: enteredSecrets{entered}})
	w := load(t, e, compileWAT(t, spinAfterSecret), Spec{Name: "closing", Limits: Limits{Timeout: time.Hour}, Policy: Policy{Secrets: []string{"k"}}})
	done := make(chan error, 1)
	go func() {
		_, err := w.Call(context.Background(), Request{Export: "spin"})
		done <- err
	}()
	<-entered // the guest is running
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Ended by Close, not by its time limit.
	err := <-done
	var se *Error
	if err == nil || (errors.As(err, &se) && se.Code == CodeLimitTimeout) {
		t.Fatalf("the spinning call was not ended by Close: %v", err)
	}
	t.Logf("ended by Close: %v (limit %v)", err, w.Limits().Timeout)
	other := load(t, e, fixtures.adversary, Spec{Name: "after"})
	call(t, other, Request{Export: "run"})
}
