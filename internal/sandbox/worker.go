package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go.opentelemetry.io/otel/trace"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/wcphall/hall/internal/wasmmod"
)

// Worker is a compiled worker module with its own wazero Runtime, ready to be
// called. It is safe for concurrent use: every concurrent Call runs on its own
// instance.
type Worker struct {
	eng      *Engine
	hasStart bool // the module has a start section (instantiation runs guest code)
	// callOnly is set for a module with a start section and any grant:
	// its instances are made only inside a call, never ahead of one
	// (grants.go).
	callOnly bool
	name     string
	policy   Policy
	limits   Limits
	reuse    bool
	exports  map[string]bool
	names    []string
	secrets  map[string]bool
	egress   *egress
	plugin   *extism.CompiledPlugin
	modCfg   wazero.ModuleConfig
	// bareCfg is modCfg without the mounts: what an instantiation outside
	// a call gets (grants.go).
	bareCfg  wazero.ModuleConfig
	closeFS  func()
	poolSize int

	// shared holds plugin for every Worker of the same pluginKey
	// (shared.go).
	shared    *sharedPlugin
	sharedKey pluginKey
	// sizes are the linear memory sizes instances last ended with (memory.go).
	sizes sizeHints
	// charge is what one call of this worker takes from the Engine's
	// memory budget (budget.go).
	charge uint64
	// quota bounds what the worker may write (fs.go); nil without writes.
	quota *writeQuota
	// refillFailures counts consecutive failed pool refills; the refiller
	// backs off and, past maxRefillFailures, stops until a call
	// instantiates successfully (RefillFailures).
	refillFailures atomic.Int64
	// lastCall (unix ns) orders Workers for trimming; cold is set by Trim
	// and stops pool refills until the next call; readyBytes is what the
	// ready instances hold (shared.go).
	lastCall   atomic.Int64
	cold       atomic.Bool
	readyBytes atomic.Int64

	pool   chan *instance
	refill chan struct{}
	done   chan struct{}
	bg     sync.WaitGroup

	// stop is canceled by Close: running calls end (CloseOnContextDone) and
	// inflight lets Close wait for them before freeing their memories.
	stop     context.Context
	stopCall context.CancelFunc
	inflight sync.WaitGroup

	mu     sync.Mutex
	idle   map[string][]*instance
	closed bool
}

// maxReuseKeys bounds how many distinct ReuseKeys keep idle instances.
const maxReuseKeys = 64

// instance is one instantiation of the worker: Extism kernel plus guest.
type instance struct {
	p     *extism.Plugin
	guard *memoryGuard
	logs  *logSink
	stdio *logSink // stdout and stderr only (Result.Stdio)
	sleep *sleeper
	// http is Extism's per-instance state of the last http_request.
	http extismHTTPState
	// guest is the guest module's linear memory (memoryGuard.guestMemory),
	// which hall_invoke_mem reads and writes; nil without one.
	guest *linearMemory
	// correlation is the wcp.correlation_id of the call the instance
	// serves, for the guest's log lines in the Engine's log.
	correlation atomic.Pointer[string]
	// charged is what the instance counts against Config.IdleMemory while
	// ready (0 while in a call).
	charged uint64
}

// Request is one call of a worker export.
type Request struct {
	// Export is the function to call; it must exist (EXPORT_MISSING).
	Export string
	// Input is what the guest reads with the Extism input functions.
	Input []byte
	// Config is what the guest reads with Extism config_get: the plugin
	// config and wcp.* keys of docs/ABI.md. The map is copied.
	Config map[string]string
	// Timeout, when positive, lowers the worker's Limits.Timeout for this
	// call; it can never raise it.
	Timeout time.Duration
	// ReuseKey scopes instance reuse (Spec.Reuse), e.g. a tenant id: an
	// instance is never reused for a different key.
	ReuseKey string
	// Tracer, when set, traces each HTTP exchange of the guest as a client
	// span under ctx's span (nil: no spans, no cost).
	Tracer trace.Tracer
	// Invoke serves the guest's hall_invoke (nil: INVOKE_UNAVAILABLE).
	Invoke Invoker
	// Hop marks a sub-dispatch made from inside another call, whose
	// ancestors hold memory budget while it runs: it never waits for the
	// budget (it could wait on what its own chain holds) and is admitted
	// at once ahead of waiting calls when its charge fits, else it fails
	// MEMORY_BUDGET at once.
	Hop bool
	// CPU, when set, is the call's claim on a core (cpu.go): acquired
	// before the guest's instance is made and runs, given back while it
	// sleeps or waits on HTTP, offered at its yield points. Nil: the call
	// runs without asking.
	CPU CPU
}

// Result is the outcome of a call. Worker.Call returns a non-nil Result
// together with an *Error too, so Logs, Events and Duration are available for
// failed calls.
type Result struct {
	// Output is what the guest set with Extism output_set.
	Output []byte
	// Events are the JSON objects the guest emitted with hall_emit, then
	// the Hall's own EgressEventID events, one per HTTP exchange the guest
	// attempted.
	Events []json.RawMessage
	// EventsDropped counts hall_emit events refused (invalid JSON or over
	// the per-call bounds).
	EventsDropped int
	// Duration is the wall-clock time spent in the guest.
	Duration time.Duration
	// Limits are the limits that were in force.
	Limits Limits
	// Logs is the guest's stdout, stderr and Extism log output, truncated
	// to Limits.LogBytes.
	Logs []byte
	// Stdio is the part of Logs the guest wrote to stdout and stderr
	// (within the same limit): the Extism log lines are not in it, since
	// the Engine's log has each of them already, at its level.
	Stdio []byte
	// MemoryBytes is the linear memory the instance held at the end of
	// the call (the guest's and the Extism kernel's): linear memory never
	// shrinks, so this is the instance's high-water mark.
	MemoryBytes uint64
}

// Load compiles wasm (a binary WebAssembly module using the Extism ABI of
// docs/ABI.md) into a Worker. Compilation and one instantiation happen now,
// so a bad module fails here with MODULE_INVALID, not at its first call.
//
// # Notes
//
//   - Only WebAssembly binary bytes are accepted, never precompiled code;
//     machine code comes only from wazero's own compilation cache.
//   - Policy directories must exist; they are opened once, here.
//   - Guest code run outside a call gets no grant (grants.go): Load's
//     instantiation of a module with a start section runs it with no
//     mount (host functions, egress, secrets and config answer only
//     inside a call), and a module with a start section and any grant is
//     never pre-instantiated: each call makes its own instance.
func (e *Engine) Load(ctx context.Context, wasm []byte, spec Spec) (*Worker, error) {
	if err := checkModuleBytes(wasm, e.maxModule); err != nil {
		return nil, err
	}
	if err := validatePolicy(spec.Policy); err != nil {
		return nil, fmt.Errorf("sandbox: %s: %w", spec.Name, err)
	}
	lim := spec.Limits.withDefaults(e.max).capped(e.max)
	if lim.MemoryBytes < minMemoryBytes {
		return nil, errorf(CodeLimitMemory, "%s: MemoryBytes %d is below the Extism kernel's %d bytes", spec.Name, lim.MemoryBytes, minMemoryBytes)
	}
	lim.MemoryBytes -= lim.MemoryBytes % wasmPageSize

	sum := spec.Digest
	if sum == ([32]byte{}) {
		sum = sha256.Sum256(wasm)
	}
	key := pluginKey{module: sum, memoryBytes: lim.MemoryBytes, stackBytes: lim.StackBytes}
	wasm, tableBytes, err := e.runnableForm(wasm, sum, lim, spec.Name)
	if err != nil {
		return nil, err
	}
	charge := callCharge(lim.MemoryBytes, tableBytes, lim.StackBytes)
	if charge > e.budget.total {
		return nil, errorf(CodeLimitMemory, "%s: one call may take %d bytes of host memory (memory limit %d, tables %d, stack %d, engine overhead %d), more than the Hall's whole memory budget of %d bytes", spec.Name, charge, lim.MemoryBytes, tableBytes, lim.StackBytes, engineOverhead, e.budget.total)
	}
	if err := e.compileOffPath(ctx, wasm); err != nil {
		return nil, err
	}

	rtCfg := runtimeConfig(e.cache)

	// The callable exports come from the module's type, function and
	// export sections; only modules with non-MVP type encodings need a
	// throwaway compilation (which validates the whole module again: about
	// 30 ms for a standard-Go guest even with a warm cache).
	exports, err := callableExports(wasm)
	if err != nil {
		return nil, err
	}
	if exports == nil {
		if exports, err = inspectModule(ctx, rtCfg, wasm); err != nil {
			return nil, err
		}
	}

	fsCfg, quota, closeFS, err := mountFS(spec.Policy, lim)
	if err != nil {
		return nil, fmt.Errorf("sandbox: %s: %w", spec.Name, err)
	}
	w := &Worker{
		hasStart: hasStartSection(wasm),
		eng:      e,
		name:     spec.Name,
		policy:   spec.Policy,
		limits:   lim,
		reuse:    spec.Reuse,
		exports:  exports,
		secrets:  map[string]bool{},
		closeFS:  closeFS,
		charge:   charge,
		quota:    quota,
		refill:   make(chan struct{}, 1),
		done:     make(chan struct{}),
		idle:     map[string][]*instance{},
	}
	w.stop, w.stopCall = context.WithCancel(context.Background())
	for n := range exports {
		w.names = append(w.names, n)
	}
	slices.Sort(w.names)
	for _, s := range spec.Policy.Secrets {
		w.secrets[s] = true
	}
	if len(spec.Policy.Egress) > 0 {
		w.egress = newEgress(spec.Policy.Egress, e.egressHooks)
		w.egress.propagate = spec.Policy.PropagateTrace
	}
	mc := wazero.NewModuleConfig()
	if !spec.Policy.Deterministic {
		// Sleeps are set per instance (newInstance): wazero's own
		// WithSysNanosleep does not watch the call's deadline.
		mc = mc.WithSysWalltime().WithSysNanotime().WithRandSource(rand.Reader)
	}
	w.modCfg, w.bareCfg = mc.WithFSConfig(fsCfg), mc
	w.callOnly = w.hasStart && spec.Policy.grants()

	shared, err := e.compiledPlugin(ctx, key, wasm, rtCfg, w.hostFunctions())
	if err != nil {
		closeFS()
		return nil, errorf(CodeModuleInvalid, "%s: %v", spec.Name, err)
	}
	w.plugin, w.shared, w.sharedKey = shared.plugin, shared, key
	w.lastCall.Store(time.Now().UnixNano())

	// One instantiation now proves that imports resolve, the initial
	// memory fits and the start section (if any) finishes within the time
	// limit; the instance becomes the first pooled one. No decision names
	// it, so a start section runs with no mount and its instance is
	// discarded (grants.go).
	ictx, icancel := w.instantiationContext(ctx)
	first, err := w.newInstance(ictx, false)
	icancel()
	if err != nil {
		_ = e.releasePlugin(ctx, key, shared)
		closeFS()
		return nil, err
	}
	w.poolSize = spec.Pool
	if w.poolSize == 0 {
		w.poolSize = 2
	}
	if w.poolSize < 0 || w.callOnly {
		w.poolSize = 0
	}
	w.pool = make(chan *instance, max(w.poolSize, 1))
	if !w.callOnly && e.admit(w, first) {
		w.pool <- first
	} else {
		first.close()
	}

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		w.closed = true
		w.shutdown(ctx)
		return nil, errors.New("sandbox: engine closed")
	}
	e.workers[w] = struct{}{}
	e.mu.Unlock()
	e.chargeWorker(workerOverhead)

	w.bg.Add(1)
	go w.refiller()
	w.signalRefill()
	return w, nil
}

// runnableForm returns the bytes Load compiles for wasm, the module whose
// SHA-256 is sum, under lim, and the host memory its tables may take: its
// data segments merged, Extism's HTTP imports routed to the Hall, its
// tables bounded and its call stack guarded. An authenticated guarded form
// in the form cache is all of these already (named by sum and lim): it is
// used as it is, and the earlier forms are neither read nor rebuilt
// (boundTables on a bounded form changes nothing and gives the same
// budget).
func (e *Engine) runnableForm(wasm []byte, sum [32]byte, lim Limits, name string) ([]byte, uint64, error) {
	if b, ok := e.forms.get(guardedName(sum, lim)); ok {
		if _, tableBytes, err := boundTables(b, lim.MemoryBytes); err == nil {
			return b, tableBytes, nil
		}
	}
	wasm = e.compiledFormOf(wasm, sum)
	// Extism's http_request, http_status_code and http_headers are served
	// by the Hall over the worker's egress (extism_http.go).
	wasm = routeExtismHTTP(wasm)
	// Tables are host memory too (8 bytes per element): a declared size
	// that cannot fit is refused, an unbounded or oversized maximum is
	// lowered so table.grow fails instead of growing (tables.go).
	wasm, tableBytes, err := boundTables(wasm, lim.MemoryBytes)
	if errors.Is(err, errTableEncoding) {
		return nil, 0, errorf(CodeModuleInvalid, "%s: %v", name, err)
	}
	if err != nil {
		return nil, 0, errorf(CodeLimitMemory, "%s: %v", name, err)
	}
	// The call stack is host memory too: every call of the guest's own
	// functions is charged against lim.StackBytes (wasmmod.GuardStack).
	if wasm, err = e.guardedFormOf(wasm, sum, lim); err != nil {
		return nil, 0, errorf(CodeModuleInvalid, "%s: %v", name, err)
	}
	return wasm, tableBytes, nil
}

// guardedName names the guarded form of the module whose SHA-256 is sum
// under lim in the form cache.
func guardedName(sum [32]byte, lim Limits) string {
	return fmt.Sprintf("guarded-v5-%s-m%d-s%d-y%d.form", hex.EncodeToString(sum[:]), lim.MemoryBytes, lim.StackBytes, YieldEvery)
}

// guardedFormOf returns wasm (the form Load has built so far from the
// module whose SHA-256 is sum) with its call stack guarded
// (wasmmod.GuardStack with lim.StackBytes). The rewrite scans every
// function body (~25–45 ms for a 1.9 MB standard-Go module), so its result
// is kept in the authenticated form cache (formcache.go) like the merged
// form, named by everything it depends on: the original module, the
// memory limit (which boundTables used) and the stack budget.
func (e *Engine) guardedFormOf(wasm []byte, sum [32]byte, lim Limits) ([]byte, error) {
	name := guardedName(sum, lim)
	guarded, _, err := wasmmod.GuardStackYielding(wasm, lim.StackBytes, YieldEvery)
	if err != nil {
		return nil, err
	}
	e.forms.put(name, guarded)
	return guarded, nil
}

// compiledForm returns the bytes Load compiles for wasm: wasm with its data
// segments merged (wasmmod.MergeDataSegments; RATIONALE.md, "Data
// segments"). The rewrite is internal and deterministic and the caller's
// bytes (hashed, enrolled, attested) are never modified. A module the merge
// does not rewrite, malformed ones included, is returned as is, so wazero
// judges it.
//
// The merged form is kept in the authenticated form cache (formcache.go)
// too, named by the SHA-256 of the original bytes, so a fresh process does
// not merge again (~30 ms for a standard-Go module); an entry whose HMAC
// does not verify is discarded and the form rebuilt.
func (e *Engine) compiledForm(wasm []byte) []byte {
	return e.compiledFormOf(wasm, sha256.Sum256(wasm))
}

// compiledFormOf is compiledForm of wasm whose SHA-256 is sum.
func (e *Engine) compiledFormOf(wasm []byte, sum [32]byte) []byte {
	name := "merged-v2-" + hex.EncodeToString(sum[:])
	if b, ok := e.forms.get(name + ".form"); ok {
		return b
	}
	// A module the merge leaves as it is (most non-Go modules) is marked
	// so (an authenticated empty entry): trying costs a copy of the module
	// (~10 ms for a 1.8 MB Rust module on a loaded machine) in every
	// process.
	if _, ok := e.forms.get(name + ".same"); ok {
		return wasm
	}
	merged, ok, err := wasmmod.MergeDataSegments(wasm)
	if err == nil && !ok {
		e.forms.put(name+".same", nil)
	}
	if err != nil || !ok {
		return wasm
	}
	e.forms.put(name+".form", merged)
	return merged
}

// callableExports decodes the callable exports (see inspectModule) from
// the module's sections; nil without an error when it cannot tell.
func callableExports(wasm []byte) (map[string]bool, error) {
	sigs, ok, err := wasmmod.ExportedFuncTypes(wasm)
	if err != nil {
		return nil, errorf(CodeModuleInvalid, "%v", err)
	}
	if !ok {
		return nil, nil
	}
	out := map[string]bool{}
	for name, sig := range sigs {
		// _start (a WASI command's main) is callable, as in Extism;
		// _initialize is the reactor's set-up, which Extism runs itself.
		if name == "_initialize" || len(sig.Params) != 0 {
			continue
		}
		if len(sig.Results) > 1 || (len(sig.Results) == 1 && sig.Results[0] != wasmmod.I32) {
			continue
		}
		out[name] = true
	}
	return out, nil
}

// inspectModule compiles wasm and returns its callable exports: functions
// with no parameters and at most one i32 result.
func inspectModule(ctx context.Context, rtCfg wazero.RuntimeConfig, wasm []byte) (map[string]bool, error) {
	rt := wazero.NewRuntimeWithConfig(ctx, rtCfg)
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(withYields(ctx), wasm)
	if err != nil {
		return nil, errorf(CodeModuleInvalid, "%v", err)
	}
	defer cm.Close(ctx)
	out := map[string]bool{}
	for name, def := range cm.ExportedFunctions() {
		if name == "_initialize" || len(def.ParamTypes()) != 0 {
			continue
		}
		rt := def.ResultTypes()
		if len(rt) > 1 || (len(rt) == 1 && rt[0] != api.ValueTypeI32) {
			continue
		}
		out[name] = true
	}
	return out, nil
}

// Exports returns the names of the functions Call accepts, sorted.
func (w *Worker) Exports() []string { return slices.Clone(w.names) }

// Pooled returns how many instances are ready now: never-used ones in the
// pool, and idle ones kept for reuse (Spec.Reuse).
func (w *Worker) Pooled() (fresh, idle int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, list := range w.idle {
		idle += len(list)
	}
	return len(w.pool), idle
}

// Limits returns the limits in force for this worker's calls.
func (w *Worker) Limits() Limits { return w.limits }

// instantiationContext bounds an instantiation outside a call (Load, pool
// refills) by the worker's time limit and by Close.
func (w *Worker) instantiationContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, w.limits.Timeout)
	stop := context.AfterFunc(w.stop, cancel)
	return ctx, func() { stop(); cancel() }
}

// newInstance instantiates the worker under ctx, whose deadline bounds the
// module's start section: wazero runs it inside InstantiateModule, and
// CloseOnContextDone stops it there as in a call. inCall says whether a
// call (whose decision the caller has made durable) asked for it; outside
// a call a module with a start section gets no mounts (grants.go).
func (w *Worker) newInstance(ctx context.Context, inCall bool) (*instance, error) {
	g := &memoryGuard{limit: w.limits.MemoryBytes, sizes: &w.sizes}
	logs, stdio := &logSink{}, &logSink{}
	sl := &sleeper{}
	sl.watch(ctx)
	out := io.MultiWriter(logs, stdio)
	mc := w.instanceConfig(inCall).WithStdout(out).WithStderr(out)
	if !w.policy.Deterministic {
		mc = mc.WithNanosleep(sl.sleep)
	}
	actx := experimental.WithMemoryAllocator(ctx, g)
	p, err := w.plugin.Instance(actx, extism.PluginInstanceConfig{ModuleConfig: mc})
	if err == nil && ctx.Err() != nil {
		// The start section outlived the deadline and still returned (a
		// sleep that the deadline cut short): refused all the same.
		_ = p.Close(context.Background())
		p, err = nil, ctx.Err()
	}
	if g.hit.Load() {
		if p != nil {
			_ = p.Close(context.Background())
		}
		return nil, errorf(CodeLimitMemory, "%s: initial memory exceeds %d bytes", w.name, w.limits.MemoryBytes)
	}
	if err != nil {
		if w.stop.Err() != nil {
			return nil, fmt.Errorf("sandbox: %s: worker closed during instantiation", w.name)
		}
		if isStackExhausted(err.Error()) {
			return nil, errorf(CodeLimitStack, "%s: the module's start section ran out of its call stack budget of %d bytes", w.name, w.limits.StackBytes)
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			if w.hasStart {
				return nil, errorf(CodeLimitTimeout, "%s: instantiation (the module's start section) did not finish within the time limit", w.name)
			}
			return nil, errorf(CodeLimitTimeout, "%s: instantiation did not finish within the time limit (the module has no start section: the host was too busy, or the module's initial memory too large, to instantiate it in time)", w.name)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sandbox: %s: instantiation abandoned by caller: %w", w.name, ctx.Err())
		}
		return nil, errorf(CodeModuleInvalid, "%s: %v", w.name, err)
	}
	in := &instance{p: p, guard: g, logs: logs, stdio: stdio, sleep: sl, guest: g.guestMemory(p.Memory())}
	p.SetLogger(func(level extism.LogLevel, msg string) {
		logs.Write([]byte("[" + level.String() + "] " + msg + "\n"))
		w.guestLog(in, level, msg)
	})
	return in, nil
}

func (in *instance) close() { _ = in.p.Close(context.Background()) }

func (w *Worker) signalRefill() {
	select {
	case w.refill <- struct{}{}:
	default:
	}
}

// Pool refill back-off: a worker whose instantiation keeps failing (a start
// section that loops only sometimes, an initial memory over the limit) is
// retried after a growing pause, never in a hot loop, and given up after
// maxRefillFailures until a call instantiates it successfully.
const (
	refillBackoff     = 100 * time.Millisecond
	maxRefillBackoff  = 30 * time.Second
	maxRefillFailures = 8
)

// RefillFailures returns how many pool refills in a row have failed (0
// when the last one succeeded). At maxRefillFailures the worker stops
// refilling its pool and every call instantiates on its own deadline.
func (w *Worker) RefillFailures() int { return int(w.refillFailures.Load()) }

// refiller keeps the pool of never-used instances full, off the call path.
func (w *Worker) refiller() {
	defer w.bg.Done()
	for {
		select {
		case <-w.done:
			return
		case <-w.refill:
		}
		for len(w.pool) < w.poolSize {
			if w.refillFailures.Load() >= maxRefillFailures || w.cold.Load() {
				break
			}
			ctx, cancel := w.instantiationContext(context.Background())
			// Outside a call: only Workers without callOnly get here
			// (their poolSize is 0), and what runs now is no start
			// section with a grant.
			in, err := w.newInstance(ctx, false)
			cancel()
			if err != nil {
				n := w.refillFailures.Add(1)
				w.eng.log.Warn("sandbox: pool refill failed", "worker", w.name, "consecutive_failures", n, "err", err)
				if n >= maxRefillFailures {
					w.eng.log.Error("sandbox: pool refill given up; calls instantiate on their own deadline", "worker", w.name, "consecutive_failures", n)
					break
				}
				pause := min(refillBackoff<<(n-1), maxRefillBackoff)
				t := time.NewTimer(pause)
				select {
				case <-t.C:
				case <-w.done:
					t.Stop()
					return
				}
				continue
			}
			w.refillFailures.Store(0)
			if w.cold.Load() || !w.eng.admit(w, in) {
				// Trimmed meanwhile, or no room under Config.IdleMemory
				// for a Worker called as recently as the others: no
				// refill until its next call.
				w.cold.Store(true)
				in.close()
				break
			}
			select {
			case w.pool <- in:
			case <-w.done:
				w.eng.unready(w, in)
				in.close()
				return
			default:
				w.eng.unready(w, in)
				in.close()
			}
		}
	}
}

// acquire returns an instance for a call: an idle instance of the same reuse
// key when reuse is on, else a never-used one from the pool, else a new one.
func (w *Worker) acquire(ctx context.Context, key string) (*instance, error) {
	if w.reuse {
		w.mu.Lock()
		if list := w.idle[key]; len(list) > 0 {
			in := list[len(list)-1]
			if len(list) == 1 {
				delete(w.idle, key)
			} else {
				w.idle[key] = list[:len(list)-1]
			}
			w.mu.Unlock()
			w.eng.unready(w, in)
			return in, nil
		}
		w.mu.Unlock()
	}
	select {
	case in := <-w.pool:
		w.eng.unready(w, in)
		w.signalRefill()
		return in, nil
	default:
	}
	w.signalRefill()
	in, err := w.newInstance(ctx, true)
	if err == nil && w.refillFailures.Load() >= maxRefillFailures {
		// The worker instantiates again: let the refiller try once more.
		w.refillFailures.Store(maxRefillFailures - 1)
		w.signalRefill()
	}
	return in, err
}

// release keeps in for later calls with key when reuse is on and the call
// ended cleanly; every other instance is closed.
func (w *Worker) release(in *instance, key string, clean bool) {
	if clean && w.reuse && w.eng.admit(w, in) {
		w.mu.Lock()
		list, known := w.idle[key]
		if !w.closed && (known || len(w.idle) < maxReuseKeys) && len(list) < max(w.poolSize, 1) {
			w.idle[key] = append(list, in)
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.eng.unready(w, in)
	}
	in.close()
}

type callKey struct{}

// callState is what host functions may know about the call they serve.
type callState struct {
	w             *Worker
	in            *instance
	limits        Limits
	events        []json.RawMessage
	eventBytes    int
	eventsDropped int
	egress        egressLog
	invoke        Invoker
	// reply is the last hall_invoke_mem reply that did not fit the
	// guest's buffer, until hall_invoke_take copies it.
	reply []byte
	// cpu is the call's claim on a core (nil: none).
	cpu *cpuHold
}

// http returns the Extism HTTP state of the instance serving the call.
func (cs *callState) http() *extismHTTPState {
	if cs.in == nil {
		return &extismHTTPState{}
	}
	return &cs.in.http
}

// Call runs req.Export on a fresh instance (or a reused one, see
// Spec.Reuse) under the worker's Policy and Limits.
//
// A failed call returns an *Error with a sandbox outcome code and a non-nil
// Result; the only other errors are a closed worker and cancellation of ctx by
// the caller.
func (w *Worker) Call(ctx context.Context, req Request) (*Result, error) {
	lim := w.limits
	if req.Timeout > 0 && req.Timeout < lim.Timeout {
		lim.Timeout = req.Timeout
	}
	res := &Result{Limits: lim}
	if !w.exports[req.Export] {
		return res, errorf(CodeExportMissing, "%s: no callable export %q", w.name, req.Export)
	}
	if int64(len(req.Input)) > lim.InputBytes {
		return res, errorf(CodeLimitInput, "%s: input of %d bytes exceeds %d", w.name, len(req.Input), lim.InputBytes)
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil, fmt.Errorf("sandbox: %s: worker closed", w.name)
	}
	w.inflight.Add(1)
	w.mu.Unlock()
	defer w.inflight.Done()
	w.touch()

	cs := &callState{w: w, limits: lim, invoke: req.Invoke}
	cs.egress.tracer = req.Tracer
	cctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	defer context.AfterFunc(w.stop, cancel)()
	cctx = context.WithValue(cctx, callKey{}, cs)

	// The Hall-wide memory budget admits the call only while every running
	// call's worst case fits (budget.go); waiting counts against the
	// call's own deadline.
	acquire := w.eng.budget.acquire
	if req.Hop {
		acquire = w.eng.budget.acquireNow
	}
	if err := acquire(cctx, w.charge); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sandbox: %s: call abandoned by caller: %w", w.name, ctx.Err())
		}
		if w.stop.Err() != nil {
			return nil, fmt.Errorf("sandbox: %s: worker closed", w.name)
		}
		if req.Hop {
			return res, errorf(CodeMemoryBudget, "%s: the Hall's memory budget (%d bytes) had no room now for a sub-dispatch needing %d bytes (a sub-dispatch never waits: its own chain holds memory)", w.name, w.eng.budget.total, w.charge)
		}
		return res, errorf(CodeMemoryBudget, "%s: the Hall's memory budget (%d bytes) did not admit a call needing %d bytes within %v", w.name, w.eng.budget.total, w.charge, lim.Timeout)
	}
	defer w.eng.budget.release(w.charge)

	// A core, after the memory (waiting for memory does not hold one) and
	// before the instance is made (instantiating is CPU work).
	if req.CPU != nil {
		cs.cpu = &cpuHold{cpu: req.CPU, ctx: cctx}
		if err := cs.cpu.acquire(); err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("sandbox: %s: call abandoned by caller: %w", w.name, ctx.Err())
			}
			if w.stop.Err() != nil {
				return nil, fmt.Errorf("sandbox: %s: worker closed", w.name)
			}
			return res, errorf(CodeLimitTimeout, "%s: stopped after %v waiting for a core (the cores are shared between tenants); the guest did not run", w.name, lim.Timeout)
		}
		defer cs.cpu.release()
	}

	in, err := w.acquire(cctx, req.ReuseKey)
	if err != nil {
		var se *Error
		if errors.As(err, &se) || ctx.Err() == nil {
			return res, err
		}
		return nil, err
	}
	in.sleep.watch(cctx)
	in.sleep.cpu.Store(cs.cpu)
	cs.in = in
	correlation := req.Config["wcp.correlation_id"]
	in.correlation.Store(&correlation)
	in.p.Config = maps.Clone(req.Config)
	in.logs.reset(lim.LogBytes)
	in.stdio.reset(lim.LogBytes)
	var quotaHits int64
	if w.quota != nil {
		quotaHits = w.quota.hits.Load()
	}

	start := time.Now()
	rc, out, callErr := in.p.CallWithContext(cctx, req.Export, req.Input)
	res.Duration = time.Since(start)
	// Before the instance can be released for another call.
	in.sleep.cpu.Store(nil)
	// The Hall's egress records follow the guest's events; hall_emit
	// cannot forge them (reservedEventPrefix).
	res.Events, res.EventsDropped = append(cs.events, cs.egress.take()...), cs.eventsDropped
	res.Logs, res.Stdio = in.logs.take(), in.stdio.take()
	res.MemoryBytes = uint64(max(in.guard.held.Load(), 0))

	serr, err := w.classify(ctx, cctx, in, rc, callErr)
	if err == nil && w.quota != nil && w.quota.hits.Load() != quotaHits {
		// The guest was refused a write (ENOSPC) by its quota during this
		// call: whatever it did next, the outcome is the limit.
		serr = errorf(CodeLimitDisk, "%s: write quota of %d bytes / %d files reached", w.name, w.quota.maxBytes, w.quota.maxFiles)
	}
	clean := serr == nil && err == nil
	if clean && int64(len(out)) > lim.OutputBytes {
		serr = errorf(CodeLimitOutput, "%s: output of %d bytes exceeds %d", w.name, len(out), lim.OutputBytes)
	}
	w.release(in, req.ReuseKey, clean || (serr != nil && serr.Code == CodeWorkerFailed))
	if err != nil {
		return res, err
	}
	if serr != nil {
		return res, serr
	}
	res.Output = out
	return res, nil
}

// classify maps what Extism and wazero report into a sandbox outcome. A nil
// *Error and nil error mean success.
func (w *Worker) classify(parent, cctx context.Context, in *instance, rc uint32, err error) (*Error, error) {
	if err == nil {
		if rc != 0 {
			return errorf(CodeWorkerFailed, "%s: export returned %d", w.name, rc), nil
		}
		return nil, nil
	}
	// Order matters: a guest that hits the memory cap or the deadline often
	// dies of it in some other way (unreachable, exit 2, a host call that
	// could not allocate), and the cause is what the caller needs.
	if in.guard.hit.Load() {
		return errorf(CodeLimitMemory, "%s: linear memory limit of %d bytes reached", w.name, w.limits.MemoryBytes), nil
	}
	var se *Error
	if errors.As(err, &se) {
		return se, nil
	}
	var exit *sys.ExitError
	isExit := errors.As(err, &exit)
	if w.stop.Err() != nil {
		return nil, fmt.Errorf("sandbox: %s: worker closed during the call", w.name)
	}
	if parent.Err() != nil {
		return nil, fmt.Errorf("sandbox: %s: call abandoned by caller: %w", w.name, parent.Err())
	}
	if errors.Is(cctx.Err(), context.DeadlineExceeded) || (isExit && exit.ExitCode() == sys.ExitCodeDeadlineExceeded) {
		return errorf(CodeLimitTimeout, "%s: stopped after %v", w.name, w.limitsTimeout(cctx)), nil
	}
	msg := err.Error()
	if isStackExhausted(msg) {
		return errorf(CodeLimitStack, "%s: call stack budget of %d bytes reached (recursion too deep)", w.name, w.limits.StackBytes), nil
	}
	if strings.HasPrefix(msg, "HTTP request to '") && strings.Contains(msg, "is not allowed") {
		// Extism's own http_request, reached only by a module whose imports
		// routeExtismHTTP could not rewrite: the Hall never sets
		// AllowedHosts, so it refuses every host.
		return errorf(CodeEgressDenied, "%s: %s", w.name, firstLine(msg)), nil
	}
	for _, m := range extismBadPointer {
		if strings.HasPrefix(msg, m) {
			return errorf(CodeWorkerBadPointer, "%s: %s", w.name, firstLine(msg)), nil
		}
	}
	if !isExit {
		if guestMsg := in.p.GetError(); guestMsg != "" && guestMsg == msg {
			return errorf(CodeWorkerFailed, "%s", guestMsg), nil
		}
	} else {
		// WASI proc_exit with a non-zero code (exit 0 is success, as in
		// Extism, and never gets here). A Go or Rust runtime that dies
		// exits this way too, so it stays a trap; the code is kept.
		return errorf(CodeWorkerTrap, "%s: the guest exited with code %d (WASI proc_exit)", w.name, exit.ExitCode()), nil
	}
	return errorf(CodeWorkerTrap, "%s: %s", w.name, firstLine(msg)), nil
}

func (w *Worker) limitsTimeout(cctx context.Context) time.Duration {
	if cs, ok := cctx.Value(callKey{}).(*callState); ok {
		return cs.limits.Timeout
	}
	return w.limits.Timeout
}

// extismBadPointer are the messages Extism's own kernel host functions
// (load_u64, store_u64, input_load_u64, config_get, var_*, log_*) panic with
// when the guest hands them an offset outside the kernel memory. Extism
// offers no typed error, so matching its text is the only way to report
// these as WORKER_BAD_POINTER; anything unmatched stays WORKER_TRAP.
var extismBadPointer = []string{
	"could not read value at offset",
	"could not write value",
	"failed to read config name from memory",
	"failed to read var name from memory",
	"failed to read var value from memory",
	"failed to read log message from memory",
}

// isStackExhausted tells whether a trap is the stack guard's: wazero names
// the trapping function first in the trace, and only the guard calls the
// function named wasmmod.StackExhaustedName (GuardStack drops a guest name
// that claims it).
func isStackExhausted(msg string) bool {
	_, trace, ok := strings.Cut(msg, "wasm stack trace:\n\t")
	return ok && strings.Contains(msg, "wasm error: unreachable") &&
		strings.Contains(firstLine(trace), "."+wasmmod.StackExhaustedName+"(")
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Close stops the pool, closes every instance and the worker's Runtime.
// Calls in progress fail.
func (w *Worker) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	w.eng.mu.Lock()
	_, open := w.eng.workers[w]
	delete(w.eng.workers, w)
	w.eng.mu.Unlock()
	if open {
		w.eng.chargeWorker(-workerOverhead)
	}
	return w.shutdown(ctx)
}

func (w *Worker) shutdown(ctx context.Context) error {
	w.stopCall()
	w.inflight.Wait()
	close(w.done)
	w.bg.Wait()
	w.Trim()
	err := w.eng.releasePlugin(ctx, w.sharedKey, w.shared)
	w.closeFS()
	return err
}

// logSink captures guest stdout, stderr and Extism logs up to a byte limit.
type logSink struct {
	mu    sync.Mutex
	buf   []byte
	limit int
}

func (l *logSink) reset(limit int) {
	l.mu.Lock()
	l.buf, l.limit = nil, limit
	l.mu.Unlock()
}

// Write implements io.Writer; what exceeds the limit is dropped, never an
// error (a guest must not fail because its log is full).
func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.limit - len(l.buf); room > 0 {
		l.buf = append(l.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *logSink) take() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf
	l.buf = nil
	return b
}
