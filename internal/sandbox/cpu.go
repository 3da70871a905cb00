package sandbox

import (
	"context"
	"fmt"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wcphall/hall/internal/wasmmod"
)

// CPU is a call's claim on one of the host's cores (Request.CPU), given
// by a scheduler that shares the cores between callers (package host's
// fair CPU scheduler, by tenant). The sandbox holds it while guest code
// runs and gives it back while the guest waits: during a sleep and an
// HTTP exchange (hall_http, Extism's http_request).
//
// Guest code is pre-empted cooperatively: every module is compiled with
// yield points (wasmmod.GuardStackYielding, every YieldEvery loop
// iterations or function calls), at which the sandbox calls Yield.
//
// # Notes
//
//   - Methods are called from the call's goroutine only, never at once.
//   - Acquire and Yield return an error only when ctx is done, and then
//     the caller does not hold a core; the call ends (its outcome comes
//     from ctx: LIMIT_TIMEOUT, or the caller's cancellation).
type CPU interface {
	// Acquire waits for a core.
	Acquire(ctx context.Context) error
	// Release gives the core back.
	Release()
	// Yield returns at once, or gives the core to a more deserving call
	// and waits for one again.
	Yield(ctx context.Context) error
}

// YieldEvery is how many loop iterations or function calls of guest code
// run between two yield points: at a few ns each, a yield point every
// ~0.1–1 ms of a tight loop, and a negligible cost per iteration
// (BenchmarkLoopTermination).
const YieldEvery = 1 << 16

// cpuHold is a call's use of its CPU. It is touched only from the call's
// goroutine (Call, host functions and the yield listener run on it).
type cpuHold struct {
	cpu  CPU
	ctx  context.Context
	held bool
}

func (h *cpuHold) acquire() error {
	if h == nil || h.held {
		return nil
	}
	if err := h.cpu.Acquire(h.ctx); err != nil {
		return err
	}
	h.held = true
	return nil
}

func (h *cpuHold) release() {
	if h != nil && h.held {
		h.held = false
		h.cpu.Release()
	}
}

// waiting runs wait (a sleep, an HTTP exchange) without the core and takes
// one back afterwards; an error is the call's context ending meanwhile.
func (h *cpuHold) waiting(wait func()) error {
	if h == nil || !h.held {
		wait()
		return nil
	}
	h.release()
	wait()
	return h.acquire()
}

// yield is the guest's yield point.
func (h *cpuHold) yield() error {
	if h == nil || !h.held {
		return nil
	}
	if err := h.cpu.Yield(h.ctx); err != nil {
		h.held = false
		return err
	}
	return nil
}

// yieldListener is the wazero function listener of the yield function
// every module is compiled with (wasmmod.YieldName): its Before runs on
// the guest's goroutine at each yield point.
type yieldListener struct{}

// yieldListeners is the listener factory every Runtime compiles modules
// with: only the yield function is listened to, so no other function pays
// for a listener. The factory is part of wazero's compilation cache key,
// so the compiler child uses it too.
var yieldListeners experimental.FunctionListenerFactory = yieldListener{}

// withYields returns ctx with the yield listener factory, for compiling.
func withYields(ctx context.Context) context.Context {
	return experimental.WithFunctionListenerFactory(ctx, yieldListeners)
}

func (yieldListener) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	if _, _, imported := def.Import(); def.Name() == wasmmod.YieldName && !imported {
		return yieldListener{}
	}
	return nil
}

func (yieldListener) Before(ctx context.Context, _ api.Module, _ api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
	cs, ok := ctx.Value(callKey{}).(*callState)
	if !ok || cs.cpu == nil {
		return // instantiation outside a call, a pool refill
	}
	if err := cs.cpu.yield(); err != nil {
		// No core and the call's context is done: stop the guest here
		// (classify reads the outcome from the context).
		panic(fmt.Errorf("%s: stopped at a yield point: %w", cs.w.name, err))
	}
}

func (yieldListener) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}

func (yieldListener) Abort(context.Context, api.Module, api.FunctionDefinition, error) {}
