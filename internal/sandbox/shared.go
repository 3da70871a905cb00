package sandbox

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
)

// pluginKey names the exact bytes a Worker compiles: the SHA-256 of the
// module given to Load and the memory limit, the only input besides the
// module to the rewrites of Load (boundTables; the data segment merge and
// routeExtismHTTP depend on the module alone).
type pluginKey struct {
	module      [32]byte
	memoryBytes uint64
	stackBytes  uint64 // the stack guard's budget is compiled in
}

// sharedPlugin is one compiled module (an Extism CompiledPlugin: its wazero
// Runtime with WASI, the Hall's host modules, the Extism kernel and the
// worker module) used by every Worker of the Engine with the same
// pluginKey. The host functions read everything per call from the call's
// context (callState), so nothing in it belongs to one Worker.
//
// Measured before sharing (issue 12): 100 Workers of one module held
// 100 Runtimes, each with its own decoded module and host modules.
type sharedPlugin struct {
	ready  chan struct{} // closed once plugin or err is set
	plugin *extism.CompiledPlugin
	err    error
	refs   int // guarded by Engine.mu
}

// compiledPlugin returns the shared compiled module of key, compiling wasm
// when no Worker holds it; releasePlugin must follow.
func (e *Engine) compiledPlugin(ctx context.Context, key pluginKey, wasm []byte, rtCfg wazero.RuntimeConfig, funcs []extism.HostFunction) (*sharedPlugin, error) {
	e.mu.Lock()
	if sp := e.plugins[key]; sp != nil {
		sp.refs++
		e.mu.Unlock()
		<-sp.ready
		if sp.err != nil {
			e.releasePlugin(ctx, key, sp)
			return nil, sp.err
		}
		return sp, nil
	}
	sp := &sharedPlugin{ready: make(chan struct{}), refs: 1}
	e.plugins[key] = sp
	e.mu.Unlock()
	sp.plugin, sp.err = extism.NewCompiledPlugin(withYields(ctx), extism.Manifest{
		Wasm: []extism.Wasm{extism.WasmData{Data: wasm}},
	}, extism.PluginConfig{RuntimeConfig: rtCfg, EnableWasi: true}, funcs)
	close(sp.ready)
	if sp.err != nil {
		e.releasePlugin(ctx, key, sp)
		return nil, sp.err
	}
	return sp, nil
}

// releasePlugin drops one reference to sp; the last one closes its
// Runtime.
func (e *Engine) releasePlugin(ctx context.Context, key pluginKey, sp *sharedPlugin) error {
	e.mu.Lock()
	sp.refs--
	last := sp.refs == 0
	if last && e.plugins[key] == sp {
		delete(e.plugins, key)
	}
	e.mu.Unlock()
	if last && sp.plugin != nil {
		return sp.plugin.Close(ctx)
	}
	return nil
}

// SharedModules returns how many compiled modules the Engine holds (one
// per distinct module and memory limit of its Workers).
func (e *Engine) SharedModules() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.plugins)
}

// DefaultIdleMemory is Config.IdleMemory when zero: about fifty ready
// instances of a small worker (the Extism kernel's 1 MiB memory plus the
// guest's), the most recently called ones. Linear memories are Go heap, so
// the process holds up to about twice this (the garbage collector's
// target) when instances churn (BenchmarkIdleWorkers).
const DefaultIdleMemory = 64 << 20

// instanceOverhead is what a ready instance holds besides its linear
// memories: wazero's module instances (the guest's, the Extism kernel's),
// their globals, tables and function references, and the Extism Plugin.
// Measured for the Go test guest at about 100 KiB; counted generously.
const instanceOverhead = 192 << 10

// workerOverhead is what a loaded Worker holds with no ready instance:
// about 3 KiB of Go heap measured (BenchmarkIdleWorkers, ready=none), plus
// open directory handles for its mounts; counted generously. It is charged
// against Config.IdleMemory for as long as the Worker is open, whether or
// not it fits: its owner decides which Workers to close (Engine.IdleInUse).
const workerOverhead = 16 << 10

// idleMemory accounts the ready instances of an Engine's Workers, and the
// Workers themselves, against Config.IdleMemory.
type idleMemory struct {
	limit uint64
	mu    sync.Mutex
	used  uint64
}

// IdleInUse returns what the open Workers hold between calls: their ready
// instances and their own state. It may exceed Config.IdleMemory when the
// Workers alone do: close the least used ones (as host.Hall does).
func (e *Engine) IdleInUse() uint64 {
	e.idle.mu.Lock()
	defer e.idle.mu.Unlock()
	return e.idle.used
}

// size is what in holds while it waits in a pool.
func (in *instance) size() uint64 {
	return uint64(max(in.guard.held.Load(), 0)) + instanceOverhead
}

func (e *Engine) tryCharge(w *Worker, in *instance) bool {
	n := in.size()
	e.idle.mu.Lock()
	defer e.idle.mu.Unlock()
	if e.idle.used+n > e.idle.limit {
		return false
	}
	e.idle.used += n
	in.charged = n
	w.readyBytes.Add(int64(n))
	return true
}

// admit counts in as ready for w, making room by trimming the Workers
// called less recently than w. False means in must not be kept.
func (e *Engine) admit(w *Worker, in *instance) bool {
	if e.tryCharge(w, in) {
		return true
	}
	for _, v := range e.lessRecent(w) {
		v.Trim()
		if e.tryCharge(w, in) {
			return true
		}
	}
	return false
}

// unready stops counting in, taken out of w's pool or idle list.
func (e *Engine) unready(w *Worker, in *instance) {
	if in.charged == 0 {
		return
	}
	e.idle.mu.Lock()
	e.idle.used -= in.charged
	e.idle.mu.Unlock()
	w.readyBytes.Add(-int64(in.charged))
	in.charged = 0
}

// lessRecent returns the Workers holding ready instances that were called
// less recently than w, least recent first.
func (e *Engine) lessRecent(w *Worker) []*Worker {
	t := w.lastCall.Load()
	e.mu.Lock()
	var out []*Worker
	for v := range e.workers {
		if v != w && v.readyBytes.Load() > 0 && v.lastCall.Load() <= t {
			out = append(out, v)
		}
	}
	e.mu.Unlock()
	slices.SortFunc(out, func(a, b *Worker) int { return cmp.Compare(a.lastCall.Load(), b.lastCall.Load()) })
	return out
}

// Trim closes the Worker's ready instances (pooled and idle) and stops
// refilling its pool until its next call: an idle Worker then holds no
// instance, only its share of the compiled module. The Engine trims the
// least recently called Workers itself when Config.IdleMemory is reached.
func (w *Worker) Trim() {
	w.cold.Store(true)
	var drop []*instance
	for {
		select {
		case in := <-w.pool:
			drop = append(drop, in)
			continue
		default:
		}
		break
	}
	w.mu.Lock()
	for k, list := range w.idle {
		drop = append(drop, list...)
		delete(w.idle, k)
	}
	w.mu.Unlock()
	for _, in := range drop {
		w.eng.unready(w, in)
		in.close()
	}
}

// ReadyBytes is the memory the Worker's ready instances hold now (their
// linear memories and an estimate of the engine's per-instance objects).
func (w *Worker) ReadyBytes() uint64 { return uint64(max(w.readyBytes.Load(), 0)) }

// IdleBytes is what the Worker holds between calls: ReadyBytes and its own
// state (not its share of the compiled module).
func (w *Worker) IdleBytes() uint64 { return w.ReadyBytes() + workerOverhead }

func (e *Engine) chargeWorker(n int64) {
	e.idle.mu.Lock()
	e.idle.used = uint64(int64(e.idle.used) + n)
	e.idle.mu.Unlock()
}

// touch marks w as just called; a trimmed Worker starts refilling again.
func (w *Worker) touch() {
	w.lastCall.Store(time.Now().UnixNano())
	if w.cold.Load() {
		w.cold.Store(false)
		w.signalRefill()
	}
}
