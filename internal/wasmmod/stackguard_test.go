package wasmmod_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wcphall/hall/internal/wasmmod"
)

// wat compiles WAT source; extra flags go to wat2wasm (--no-check builds
// modules that do not validate).
func wat(t testing.TB, src string, flags ...string) []byte {
	t.Helper()
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatal("wat2wasm not found: install wabt")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{in, "-o", out}, flags...)
	if b, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A recursion through a direct call, a table (call_indirect) and the start
// section; all of it must be charged.
const recursionWAT = `(module
  (type $t (func (param i64) (result i64)))
  (table 1 funcref)
  (elem (i32.const 0) $viaTable)
  (global $starts (mut i32) (i32.const 0))
  (func $down (export "down") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 0))
      (else (i64.add (call $down (i64.sub (local.get 0) (i64.const 1))) (i64.const 1)))))
  (func $viaTable (export "indirect") (param i64) (result i64)
    (if (result i64) (i64.eqz (local.get 0))
      (then (i64.const 0))
      (else (i64.add (call_indirect (type $t) (i64.sub (local.get 0) (i64.const 1)) (i32.const 0)) (i64.const 1)))))
  (func $start
    (global.set $starts (i32.add (global.get $starts) (i32.const 1)))
    (drop (call $down (i64.const 3))))
  (func (export "starts") (result i32) (global.get $starts))
  (start $start))`

func instantiate(t *testing.T, r wazero.Runtime, wasm []byte) (interface {
	call(name string, args ...uint64) ([]uint64, error)
}, error) {
	t.Helper()
	ctx := context.Background()
	mod, err := r.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { mod.Close(ctx) })
	return caller{func(name string, args ...uint64) ([]uint64, error) {
		return mod.ExportedFunction(name).Call(ctx, args...)
	}}, nil
}

type caller struct {
	f func(name string, args ...uint64) ([]uint64, error)
}

func (c caller) call(name string, args ...uint64) ([]uint64, error) { return c.f(name, args...) }

func TestGuardStackBoundsRecursion(t *testing.T) {
	ctx := context.Background()
	src := wat(t, recursionWAT)
	const budget = 256 << 10
	guarded, g, err := wasmmod.GuardStack(src, budget)
	if err != nil {
		t.Fatal(err)
	}
	if g.Functions != 4 || g.MaxCharge == 0 {
		t.Fatalf("guard = %+v, want 4 functions charged", g)
	}
	depth := uint64(budget / g.MaxCharge) // every frame costs at most MaxCharge
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	for _, export := range []string{"down", "indirect"} {
		// A trap leaves the budget taken: each case gets a fresh instance.
		m, err := instantiate(t, r, guarded)
		if err != nil {
			t.Fatal(err)
		}
		if res, err := m.call("starts"); err != nil || res[0] != 1 {
			t.Fatalf("start section ran %v times (%v), want once", res, err)
		}
		// Within the budget: same result as the original module, twice
		// (the budget is given back on return).
		for range 2 {
			res, err := m.call(export, depth/2)
			if err != nil || res[0] != depth/2 {
				t.Fatalf("%s(%d) = %v, %v; want %d", export, depth/2, res, err, depth/2)
			}
		}
		// Past it: the trap names the guard's function.
		_, err = m.call(export, 1<<40)
		if err == nil || !strings.Contains(err.Error(), "wasm error: unreachable") || !strings.Contains(err.Error(), "."+wasmmod.StackExhaustedName+"(") {
			t.Fatalf("%s(1<<40): %v, want the stack_exhausted trap", export, err)
		}
		if strings.Contains(err.Error(), "stack overflow") {
			t.Fatalf("%s reached wazero's own ceiling: %v", export, err)
		}
	}

	// The original still overflows wazero's ceiling: the guard is what
	// stops it.
	o, err := instantiate(t, r, src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.call("down", 1<<40); err == nil || strings.Contains(err.Error(), wasmmod.StackExhaustedName) {
		t.Fatalf("original module: %v", err)
	}
}

func TestGuardStackStartSection(t *testing.T) {
	ctx := context.Background()
	src := wat(t, `(module
  (func $down (param i64) (result i64) (i64.add (call $down (local.get 0)) (i64.const 1)))
  (func $start (drop (call $down (i64.const 0))))
  (start $start))`)
	guarded, _, err := wasmmod.GuardStack(src, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	_, err = r.Instantiate(ctx, guarded)
	if err == nil || !strings.Contains(err.Error(), wasmmod.StackExhaustedName) {
		t.Fatalf("instantiate: %v, want the stack_exhausted trap from the start section", err)
	}
}

// The guest cannot reach the budget global, the moved bodies or the trap
// function: indices it does not define are refused before the rewrite
// could make them valid.
func TestGuardStackRefusesForeignIndices(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"global.set of the next global", `(module (global $g (mut i64) (i64.const 0))
		  (func (export "f") (global.set 1 (i64.const 1 ))))`, "global index 1 out of range"},
		{"global.get of the next global", `(module (func (export "f") (result i64) (global.get 0)))`, "global index 0 out of range"},
		{"call past the last function", `(module (func (export "f") (call 1)))`, "function index 1 out of range"},
		{"ref.func past the last function", `(module (func (export "f") (drop (ref.func 2))))`, "function index 2 out of range"},
		{"table element past the last function", `(module (table 2 funcref) (elem (i32.const 0) 0 1) (func (export "f")))`, "function index 1 out of range"},
		{"export past the last function", `(module (func) (export "g" (func 1)))`, "function index 1 out of range"},
		{"call_indirect of a type it lacks", `(module (type (func)) (table 1 funcref) (func (export "f") (call_indirect (type 1) (i32.const 0))))`, "type index 1 out of range"},
		{"global initialiser naming a later global", `(module (global i64 (global.get 1)) (global i64 (i64.const 0)) (func))`, "global index 1 out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := wat(t, tc.src, "--no-check")
			_, _, err := wasmmod.GuardStack(src, 1<<20)
			if err == nil || !errors.Is(err, wasmmod.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("GuardStack: %v, want ErrMalformed mentioning %q", err, tc.want)
			}
		})
	}
}

// A standard-Go guest (the toolchain's output uses bulk memory, sign
// extension, saturating conversions and its own name section) runs the
// same guarded, and the guard keeps its function names.
func TestGuardStackGoGuest(t *testing.T) {
	ctx := context.Background()
	orig := bytes.Clone(guestWasm)
	guarded, g, err := wasmmod.GuardStack(guestWasm, 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(orig, guestWasm) {
		t.Fatal("input modified")
	}
	again, _, _ := wasmmod.GuardStack(guestWasm, 8<<20)
	if !bytes.Equal(again, guarded) {
		t.Fatal("not deterministic")
	}
	t.Logf("%d functions, largest charge %d bytes; module %d -> %d bytes", g.Functions, g.MaxCharge, len(guestWasm), len(guarded))
	// It validates, with the same exports (running it is the sandbox's
	// tests: this guest needs the Extism host).
	var exports [2]string
	for i, wasm := range [][]byte{guestWasm, guarded} {
		r := wazero.NewRuntime(ctx)
		cm, err := r.CompileModule(ctx, wasm)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for name, f := range cm.ExportedFunctions() {
			names = append(names, name+fmt.Sprint(f.ParamTypes(), f.ResultTypes()))
		}
		slices.Sort(names)
		exports[i] = strings.Join(names, " ")
		r.Close(ctx)
	}
	if exports[0] != exports[1] || exports[0] == "" {
		t.Fatalf("exports differ:\n%s\n%s", exports[0], exports[1])
	}
	info, err := wasmmod.Inspect(guarded)
	if err != nil || !slices.Contains(info.CustomSections, "name") {
		t.Fatalf("name section lost: %v %v", info.CustomSections, err)
	}
}

func FuzzGuardStack(f *testing.F) {
	f.Add(countVowels(f))
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		out, _, err := wasmmod.GuardStack(wasm, 1<<20)
		if err != nil {
			if !errors.Is(err, wasmmod.ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if _, err := wasmmod.Inspect(out); err != nil {
			t.Fatalf("guarded module does not frame: %v", err)
		}
	})
}

// spillWAT recurses with k values live across each recursive call, which
// wazero's compiler must keep in the frame (spill slots).
func spillWAT(k int) string {
	var b strings.Builder
	b.WriteString("(module (func $down (export \"down\") (param i64) (result i64)\n" +
		"(if (result i64) (i64.eqz (local.get 0)) (then (i64.const 0)) (else\n")
	for i := range k {
		fmt.Fprintf(&b, "(i64.mul (local.get 0) (i64.const %d))\n", i+3)
	}
	b.WriteString("(call $down (i64.sub (local.get 0) (i64.const 1)))\n")
	b.WriteString(strings.Repeat("i64.add\n", k))
	b.WriteString("))))")
	return b.String()
}

// The charges over-estimate wazero's real frames: a recursion as deep as
// the budget allows allocates less stack than the budget, with few or many
// values spilled per frame. (wazero doubles its stack slice as it grows, so
// what it allocates is at least what the frames use.)
func TestGuardStackChargeCoversFrames(t *testing.T) {
	ctx := context.Background()
	const budget = 64 << 20
	for _, k := range []int{0, 10, 100, 1000} {
		guarded, g, err := wasmmod.GuardStack(wat(t, spillWAT(k)), budget)
		if err != nil {
			t.Fatal(err)
		}
		depth := budget/g.MaxCharge - 2
		r := wazero.NewRuntime(ctx)
		mod, err := r.Instantiate(ctx, guarded)
		if err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if _, err := mod.ExportedFunction("down").Call(ctx, depth); err != nil {
			t.Fatalf("k=%d depth %d: %v", k, depth, err)
		}
		runtime.ReadMemStats(&after)
		r.Close(ctx)
		allocated := after.TotalAlloc - before.TotalAlloc
		t.Logf("k=%d: charge %d bytes per frame, depth %d, allocated %d bytes (%d per frame)", k, g.MaxCharge, depth, allocated, allocated/depth)
		if allocated >= budget {
			t.Errorf("k=%d: a recursion within the budget allocated %d bytes, more than the %d-byte budget: the charges under-estimate frames", k, allocated, budget)
		}
	}
}

// BenchmarkGuardStackCalls: the guard's cost per call on the worst case, a
// recursion doing nothing else (fib(20): 21,891 calls), guarded and not.
func BenchmarkGuardStackCalls(b *testing.B) {
	ctx := context.Background()
	src := wat(b, `(module (func $fib (export "fib") (param i32) (result i32)
	  (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
	    (then (local.get 0))
	    (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
	                   (call $fib (i32.sub (local.get 0) (i32.const 2))))))))`)
	guarded, _, err := wasmmod.GuardStack(src, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		wasm []byte
	}{{"plain", src}, {"guarded", guarded}} {
		b.Run(tc.name, func(b *testing.B) {
			r := wazero.NewRuntime(ctx)
			defer r.Close(ctx)
			mod, err := r.Instantiate(ctx, tc.wasm)
			if err != nil {
				b.Fatal(err)
			}
			fib := mod.ExportedFunction("fib")
			for b.Loop() {
				if res, err := fib.Call(ctx, 20); err != nil || res[0] != 6765 {
					b.Fatal(res, err)
				}
			}
		})
	}
}

// Every way out of a function gives its charge back: `return` at any depth,
// a branch to the function's own label (br, br_if, br_table), a loop, and
// several results. Each export runs 2,000 times under a budget a leak of
// one charge per call would spend within a hundred calls, with the same
// results as the original module.
func TestGuardStackControlFlow(t *testing.T) {
	ctx := context.Background()
	src := wat(t, `(module
  (global $g (mut i32) (i32.const 0))
  (func (export "brif") (param i32) (result i32)
    (block (result i32)
      (i32.const 5)
      (br_if 1 (local.get 0))
      (drop)
      (i32.const 6)))
  (func (export "two") (param i32) (result i32 i64)
    (if (local.get 0) (then (return (i32.const 1) (i64.const 2))))
    (i32.const 3) (i64.const 4))
  (func (export "loop") (param i32) (result i32)
    (loop $l
      (if (i32.eqz (local.get 0)) (then (return (i32.const 42))))
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br $l))
    (unreachable))
  (func $side (param i32)
    (global.set $g (i32.const 1))
    (block (block (br_table 0 1 2 (local.get 0)))
      (global.set $g (i32.const 2))
      (return))
    (global.set $g (i32.const 3)))
  (func (export "tbl") (param i32) (result i32)
    (call $side (local.get 0)) (global.get $g)))`)
	guarded, g, err := wasmmod.GuardStack(src, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if 100*g.MaxCharge < 64<<10 {
		t.Fatalf("charge %d: too small for this test to see a leak", g.MaxCharge)
	}
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	orig, err := instantiate(t, r, src)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := instantiate(t, r, guarded)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		for _, export := range []string{"brif", "two", "loop", "tbl"} {
			arg := uint64(i % 3)
			want, err := orig.call(export, arg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := gm.call(export, arg)
			if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("call %d: %s(%d) = %v, %v; original %v", i, export, arg, got, err, want)
			}
		}
	}
}
