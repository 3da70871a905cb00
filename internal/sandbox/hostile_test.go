package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The hostile suite of issue 10: each test is one class of attack by a
// module, asserts the exact outcome, and then checks that a healthy worker
// on the same Engine still serves. The fixtures are testdata/sandbox/*.wat.

var shortLimits = Limits{Timeout: 300 * time.Millisecond, MemoryBytes: 16 << 20}

// stillServes fails the test unless a healthy Go worker on e answers.
func stillServes(t *testing.T, e *Engine) {
	t.Helper()
	w := load(t, e, fixtures.goguest, Spec{Name: "healthy", Pool: -1})
	if res := call(t, w, Request{Export: "run", Input: []byte("x")}); string(res.Output) != "hello x" {
		t.Fatalf("healthy worker answered %q", res.Output)
	}
}

func TestHostileStartSectionLoop(t *testing.T) {
	e := newEngine(t, Config{})
	_, err := e.Load(context.Background(), fixtures.startloop, Spec{Name: "startloop", Limits: shortLimits})
	se := wantCode(t, err, CodeLimitTimeout)
	if !strings.Contains(se.Message, "start section") {
		t.Fatalf("message %q does not name the start section", se.Message)
	}
	stillServes(t, e)
}

func TestHostileStartSectionSleep(t *testing.T) {
	e := newEngine(t, Config{})
	_, err := e.Load(context.Background(), fixtures.startsleep, Spec{Name: "startsleep", Limits: shortLimits})
	wantCode(t, err, CodeLimitTimeout)
	stillServes(t, e)
}

// TestHostileStartSectionLoopsLater: a module that instantiates at load and
// loops in its start section afterwards (here: once a trigger file exists
// in its read mount). Calls end at their deadline. Having a grant (the
// mount), it is never pre-instantiated (grants.go): its pool stays empty
// and each call instantiates it on the call's own deadline.
func TestHostileStartSectionLoopsLater(t *testing.T) {
	dir := t.TempDir()
	e := newEngine(t, Config{})
	noPool, err := e.Load(context.Background(), fixtures.starttrigger, Spec{Name: "trigger", Limits: shortLimits, Pool: -1, Policy: Policy{Reads: []string{dir}}})
	if err != nil {
		t.Fatal(err)
	}
	defer noPool.Close(context.Background())
	pooled, err := e.Load(context.Background(), fixtures.starttrigger, Spec{Name: "trigger-pooled", Limits: shortLimits, Pool: 1, Policy: Policy{Reads: []string{dir}}})
	if err != nil {
		t.Fatal(err)
	}
	call(t, noPool, Request{Export: "run"})
	if err := os.WriteFile(filepath.Join(dir, "trigger"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = noPool.Call(context.Background(), Request{Export: "run"})
	wantCode(t, err, CodeLimitTimeout)
	_, err = pooled.Call(context.Background(), Request{Export: "run"})
	wantCode(t, err, CodeLimitTimeout)
	if fresh, _ := pooled.Pooled(); fresh != 0 || pooled.RefillFailures() != 0 {
		t.Fatalf("a start-section module with a grant has %d pooled instances and %d refill failures: it was instantiated outside a call", fresh, pooled.RefillFailures())
	}
	if err := pooled.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	stillServes(t, e)
}

// TestHostileStartSectionLoopsSometimes: a module with no grant whose start
// section loops on half of its instantiations is pre-instantiated; its
// pool refills fail, back off and count, and Close completes while a
// refill may be stuck in the start section.
func TestHostileStartSectionLoopsSometimes(t *testing.T) {
	e := newEngine(t, Config{})
	var pooled *Worker
	for range 40 { // Load itself loses the toss half of the time
		w, err := e.Load(context.Background(), fixtures.startcoin, Spec{Name: "coin", Limits: shortLimits, Pool: 1})
		if err == nil {
			pooled = w
			break
		}
		wantCode(t, err, CodeLimitTimeout)
	}
	if pooled == nil {
		t.Fatal("40 loads in a row lost the toss")
	}
	deadline := time.Now().Add(20 * time.Second)
	for pooled.RefillFailures() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no refill failure recorded")
		}
		_, _ = pooled.Call(context.Background(), Request{Export: "run"})
	}
	if err := pooled.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	stillServes(t, e)
}

func TestHostileSleeps(t *testing.T) {
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.sleep, Spec{Name: "sleep", Limits: shortLimits})
	for _, export := range []string{"sleep_hour", "sleep_loop"} {
		t.Run(export, func(t *testing.T) {
			res, err := w.Call(context.Background(), Request{Export: export})
			wantCode(t, err, CodeLimitTimeout)
			if res.Duration > time.Minute {
				t.Fatalf("slept %v", res.Duration)
			}
		})
	}
	stillServes(t, e)
}

func TestHostileTables(t *testing.T) {
	e := newEngine(t, Config{})
	t.Run("declared table over the memory limit", func(t *testing.T) {
		_, err := e.Load(context.Background(), fixtures.bigtable, Spec{Name: "bigtable", Limits: shortLimits})
		se := wantCode(t, err, CodeLimitMemory)
		if !strings.Contains(se.Message, "100000000 elements") {
			t.Fatalf("message %q", se.Message)
		}
	})
	t.Run("table.grow without a maximum", func(t *testing.T) {
		w := load(t, e, fixtures.tablegrow, Spec{Name: "tablegrow", Limits: Limits{Timeout: 10 * time.Second, MemoryBytes: 16 << 20}})
		// The export returns 0 only if table.grow failed within the budget
		// (else WORKER_FAILED with the number of grows).
		call(t, w, Request{Export: "run"})
	})
	t.Run("unchanged when within budget", func(t *testing.T) {
		out, n, err := boundTables(fixtures.goguest, 64<<20)
		if err != nil || n == 0 || n > 64<<20 {
			t.Fatalf("goguest tables: %d bytes, %v", n, err)
		}
		_ = out
	})
	stillServes(t, e)
}

func TestHostileRecursion(t *testing.T) {
	e := newEngine(t, Config{})
	const stack = 1 << 20
	w := load(t, e, fixtures.recurse, Spec{Name: "recurse", Limits: Limits{Timeout: 10 * time.Second, MemoryBytes: 16 << 20, StackBytes: stack}})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := w.Call(context.Background(), Request{Export: "run"})
	runtime.ReadMemStats(&after)
	se := wantCode(t, err, CodeLimitStack)
	if !strings.Contains(se.Message, "call stack budget of 1048576 bytes") {
		t.Fatalf("message %q", se.Message)
	}
	// What the call allocated (its stack slices among it) stays within the
	// charge for its stack; without the guard wazero grew the stack to its
	// 400 MB ceiling (~190 MiB of host memory measured).
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*(stack+stackSlack)+8<<20 {
		t.Fatalf("the call allocated %d bytes, more than its stack charge %d (+8 MiB for the rest)", grew, 4*(stack+stackSlack))
	}
	stillServes(t, e)
	// The trapped instance is not reused: the next call has its whole
	// budget and ends the same way.
	_, err = w.Call(context.Background(), Request{Export: "run"})
	wantCode(t, err, CodeLimitStack)
}

func TestMemoryBudget(t *testing.T) {
	lim := Limits{Timeout: 5 * time.Second, MemoryBytes: 16 << 20}
	charge := callCharge(lim.MemoryBytes, 0, DefaultLimits().StackBytes)
	e := newEngine(t, Config{MemoryBudget: charge + charge/2})
	w := load(t, e, fixtures.adversary, Spec{Name: "spinner", Limits: lim})

	t.Run("a worker over the whole budget is refused at load", func(t *testing.T) {
		_, err := e.Load(context.Background(), fixtures.adversary, Spec{Name: "huge", Limits: Limits{MemoryBytes: 64 << 20}})
		wantCode(t, err, CodeLimitMemory)
	})
	t.Run("a second call waits and is refused at its deadline", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = w.Call(ctx, Request{Export: "spin"})
		}()
		deadline := time.Now().Add(10 * time.Second)
		for e.budget.inUse() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("first call never admitted")
			}
			time.Sleep(time.Millisecond)
		}
		_, err := w.Call(context.Background(), Request{Export: "run", Timeout: 200 * time.Millisecond})
		wantCode(t, err, CodeMemoryBudget)
		cancel()
		wg.Wait()
		if e.budget.inUse() != 0 {
			t.Fatalf("budget still holds %d bytes", e.budget.inUse())
		}
		call(t, w, Request{Export: "run"})
	})
}

func TestWriteQuota(t *testing.T) {
	dir := t.TempDir()
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "writer", Pool: -1, Policy: Policy{Writes: []string{dir}},
		Limits: Limits{WriteBytes: 1000, WriteFiles: 3}})
	op := func(o fsOp) (string, error) {
		in, _ := json.Marshal(o)
		res, err := w.Call(context.Background(), Request{Export: "fsop", Input: in})
		if res == nil {
			return "", err
		}
		return string(res.Output), err
	}
	if out, err := op(fsOp{Op: "write", Path: dir + "/a", Data: strings.Repeat("x", 600)}); err != nil || out != "OK" {
		t.Fatalf("first write: %q %v", out, err)
	}
	_, err := op(fsOp{Op: "append", Path: dir + "/a", Data: strings.Repeat("y", 600)})
	wantCode(t, err, CodeLimitDisk)
	if st, _ := os.Stat(dir + "/a"); st.Size() != 600 {
		t.Fatalf("file grew to %d bytes past the quota", st.Size())
	}
	// Rewriting in place does not grow the usage.
	if out, err := op(fsOp{Op: "write", Path: dir + "/a", Data: strings.Repeat("z", 900)}); err != nil || out != "OK" {
		t.Fatalf("rewrite: %q %v", out, err)
	}
	for _, name := range []string{"b", "c"} {
		if out, err := op(fsOp{Op: "write", Path: dir + "/" + name}); err != nil || out != "OK" {
			t.Fatalf("create %s: %q %v", name, out, err)
		}
	}
	_, err = op(fsOp{Op: "write", Path: dir + "/d"})
	wantCode(t, err, CodeLimitDisk)
	if out, err := op(fsOp{Op: "remove", Path: dir + "/c"}); err != nil || out != "OK" {
		t.Fatalf("remove: %q %v", out, err)
	}
	if out, err := op(fsOp{Op: "write", Path: dir + "/d"}); err != nil || out != "OK" {
		t.Fatalf("create after remove: %q %v", out, err)
	}
}

func TestBlockingFilesRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Skip("mkfifo:", err)
	}
	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "fifo", Limits: shortLimits, Policy: Policy{Reads: []string{dir}}})
	res := call(t, w, Request{Export: "readfile", Input: []byte(fifo)})
	if !strings.HasPrefix(string(res.Output), "ERR: ") {
		t.Fatalf("reading a FIFO gave %q", res.Output)
	}
}

// TestHostFunctionsHonourDeadline: one case per Hall host function.
func TestHostFunctionsHonourDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	hostPort := strings.TrimPrefix(srv.URL, "http://")

	blockSecrets := blockingSecrets{release}
	e := newEngine(t, Config{Secrets: blockSecrets})
	w := load(t, e, fixtures.goguest, Spec{Name: "hostfns", Limits: Limits{Timeout: 300 * time.Millisecond, MemoryBytes: 64 << 20},
		Policy: Policy{Egress: []string{hostPort}, Secrets: []string{"k"}}})

	t.Run("hall_http", func(t *testing.T) {
		in, _ := json.Marshal(httpRequest{URL: srv.URL + "/stall"})
		_, err := w.Call(context.Background(), Request{Export: "http", Input: in})
		wantCode(t, err, CodeLimitTimeout)
	})
	t.Run("hall_secret", func(t *testing.T) {
		_, err := w.Call(context.Background(), Request{Export: "secret", Input: []byte("k")})
		wantCode(t, err, CodeLimitTimeout)
	})
	t.Run("hall_emit", func(t *testing.T) {
		res := call(t, w, Request{Export: "emit", Input: []byte(`{"a":1}`)})
		if len(res.Events) != 1 {
			t.Fatalf("events %v", res.Events)
		}
	})
}

type blockingSecrets struct{ release chan struct{} }

func (b blockingSecrets) Secret(string) (string, bool) {
	<-b.release
	return "", false
}

// TestEgressLiteralKeyedByPort: one loopback literal in the list exempts
// that address and port only, not loopback for every listed name.
func TestEgressLiteralKeyedByPort(t *testing.T) {
	hit := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { hit <- r.URL.Path }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, otherPort, _ := net.SplitHostPort(other.Addr().String())

	e := newEngine(t, Config{})
	w := load(t, e, fixtures.goguest, Spec{Name: "egress", Policy: Policy{Egress: []string{"127.0.0.1:" + otherPort, "localhost:" + port}}})
	out := httpCall(t, w, httpRequest{URL: "http://localhost:" + port + "/via-name"})
	if got := guestErrorCode(t, out); got != GuestEgressDenied {
		t.Fatalf("a name resolving to loopback on an unlisted literal port got %s: %s", got, out)
	}
	select {
	case p := <-hit:
		t.Fatalf("server reached at %s", p)
	default:
	}
}

func TestLoadRefusesOversizedModule(t *testing.T) {
	e := newEngine(t, Config{MaxModuleBytes: 1024})
	_, err := e.Load(context.Background(), fixtures.goguest, Spec{Name: "big"})
	se := wantCode(t, err, CodeModuleInvalid)
	if !strings.Contains(se.Message, "module size limit") {
		t.Fatalf("message %q", se.Message)
	}
}

var _ = errors.New

// TestGoGuestDeepRecursion: a legitimate deep recursion in a standard-Go
// guest (encoding/json decoding nested arrays) fits the default stack
// budget up to ~2,000 levels, ends as LIMIT_STACK past it, and fits a
// larger budget when the Hall grants one.
func TestGoGuestDeepRecursion(t *testing.T) {
	e := newEngine(t, Config{Max: Limits{StackBytes: 128 << 20}})
	def := load(t, e, fixtures.goguest, Spec{Name: "default", Limits: Limits{StackBytes: DefaultLimits().StackBytes}})
	res := call(t, def, Request{Export: "depth", Input: []byte("2000")})
	if string(res.Output) != "2000" {
		t.Fatalf("depth 2000: %q", res.Output)
	}
	_, err := def.Call(context.Background(), Request{Export: "depth", Input: []byte("9999")})
	wantCode(t, err, CodeLimitStack)
	big := load(t, e, fixtures.goguest, Spec{Name: "big", Limits: Limits{StackBytes: 128 << 20}})
	if res := call(t, big, Request{Export: "depth", Input: []byte("9999")}); string(res.Output) != "9999" {
		t.Fatalf("depth 9999 with a 128 MiB budget: %q", res.Output)
	}
	// The first worker kept its own budget (the compiled module is shared
	// per module, memory limit and stack budget).
	_, err = def.Call(context.Background(), Request{Export: "depth", Input: []byte("9999")})
	wantCode(t, err, CodeLimitStack)
}

// TestHostileStartRecursion: a start section that recurses without end is
// refused at load as LIMIT_STACK (the guard covers instantiation too).
func TestHostileStartRecursion(t *testing.T) {
	e := newEngine(t, Config{})
	wasm := compileWAT(t, `(module
  (memory (export "memory") 1)
  (func $down (param i64) (result i64) (i64.add (call $down (local.get 0)) (i64.const 1)))
  (func $start (drop (call $down (i64.const 0))))
  (func (export "run") (result i32) (i32.const 0))
  (start $start))`)
	_, err := e.Load(context.Background(), wasm, Spec{Name: "startrecurse", Limits: Limits{Timeout: 10 * time.Second, MemoryBytes: 16 << 20, StackBytes: 1 << 20}})
	se := wantCode(t, err, CodeLimitStack)
	if !strings.Contains(se.Message, "start section") {
		t.Fatalf("message %q", se.Message)
	}
	stillServes(t, e)
}
