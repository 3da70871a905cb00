package wasmmod_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/wcphall/hall/internal/wasmmod"
)

// yieldCounter listens to calls of wasmmod.YieldName and counts them.
type yieldCounter struct{ n atomic.Int64 }

func (c *yieldCounter) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	if def.Name() != wasmmod.YieldName {
		return nil
	}
	return c
}

func (c *yieldCounter) Before(context.Context, api.Module, api.FunctionDefinition, []uint64, experimental.StackIterator) {
	c.n.Add(1)
}
func (c *yieldCounter) After(context.Context, api.Module, api.FunctionDefinition, []uint64) {}
func (c *yieldCounter) Abort(context.Context, api.Module, api.FunctionDefinition, error)    {}

// A loop of n iterations (with a loop parameter and result, and a branch
// out of a block around it) and a recursion of n calls reach the yield
// function about n/every times, and compute what they computed unguarded;
// a guest function that claims the reserved name is not listened to.
func TestGuardStackYielding(t *testing.T) {
	const src = `(module
  (func (export "count") (param $n i32) (result i32)
    (local $i i32)
    (block $out
      (loop $top
        (br_if $out (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $top)))
    (local.get $i))
  (func $sum (export "sum") (param i32) (result i32)
    (i32.const 0)
    (loop $l (param i32) (result i32)
      (i32.add (i32.const 1)))
    (drop)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (call $sum (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))))
  (func $hall.yield (export "fake") (result i32) (i32.const 7)))`
	guarded, _, err := wasmmod.GuardStackYielding(wat(t, src, "--debug-names"), 64<<20, 100)
	if err != nil {
		t.Fatal(err)
	}
	c := &yieldCounter{}
	ctx := experimental.WithFunctionListenerFactory(context.Background(), c)
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	mod, err := r.InstantiateWithConfig(ctx, guarded, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		t.Fatal(err)
	}
	out, err := mod.ExportedFunction("count").Call(ctx, 100_000)
	if err != nil || out[0] != 100_000 {
		t.Fatalf("count: %v %v", out, err)
	}
	if n := c.n.Load(); n < 990 || n > 1010 {
		t.Fatalf("%d yields for 100,001 iterations every 100", n)
	}
	c.n.Store(0)
	out, err = mod.ExportedFunction("sum").Call(ctx, 1000)
	if err != nil || out[0] != 1000 {
		t.Fatalf("sum: %v %v", out, err)
	}
	// 1,001 calls, each with a prologue and one loop iteration.
	if n := c.n.Load(); n < 19 || n > 21 {
		t.Fatalf("%d yields for 2,002 yield points every 100", n)
	}
	c.n.Store(0)
	if out, err := mod.ExportedFunction("fake").Call(ctx); err != nil || out[0] != 7 || c.n.Load() != 0 {
		t.Fatalf("the guest's own function named %s: %v %v, %d yields", wasmmod.YieldName, out, err, c.n.Load())
	}
}
