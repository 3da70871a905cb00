package sandbox

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// Modules that are hard to compile (issue 10): generated as binaries, since
// WAT for them is megabytes.

func wasmSection(id byte, body []byte) []byte {
	return append(appendULEB([]byte{id}, uint64(len(body))), body...)
}

// genModule returns a module with one memory and nFuncs functions of type
// () -> i32, each with body, the first exported as "run".
func genModule(nFuncs int, body []byte) []byte {
	m := append([]byte(nil), wasmMagic...)
	m = append(m, wasmSection(1, []byte{1, 0x60, 0, 1, 0x7f})...) // type 0: () -> i32
	funcs := appendULEB(nil, uint64(nFuncs))
	for range nFuncs {
		funcs = append(funcs, 0)
	}
	m = append(m, wasmSection(3, funcs)...)
	m = append(m, wasmSection(5, []byte{1, 0, 1})...)                   // memory 1 page
	m = append(m, wasmSection(7, []byte{1, 3, 'r', 'u', 'n', 0, 0})...) // export "run" = func 0
	fn := appendULEB(nil, uint64(len(body)+1))                          // size
	fn = append(append(fn, 0), body...)                                 // no locals
	code := appendULEB(nil, uint64(nFuncs))
	for range nFuncs {
		code = append(code, fn...)
	}
	return append(m, wasmSection(10, code)...)
}

// nestedBlocks: depth nested empty blocks, then i32.const 0.
func nestedBlocks(depth int) []byte {
	b := make([]byte, 0, 3*depth+4)
	for range depth {
		b = append(b, 0x02, 0x40)
	}
	for range depth {
		b = append(b, 0x0b)
	}
	return append(b, 0x41, 0, 0x0b)
}

// hugeBody: n additions in one function.
func hugeBody(n int) []byte {
	b := []byte{0x41, 1}
	for range n {
		b = append(b, 0x41, 1, 0x6a) // i32.const 1; i32.add
	}
	return append(b, 0x0b)
}

func compilerEngine(t *testing.T, timeout time.Duration) *Engine {
	t.Helper()
	return newEngine(t, Config{CacheDir: t.TempDir(), CompileTimeout: timeout,
		Compiler: CompileCommand{Path: os.Args[0], Args: []string{"__compile"}, MemoryBytes: 4 << 30}})
}

func TestCompileChildProcess(t *testing.T) {
	t.Run("a module compiled by the child runs", func(t *testing.T) {
		e := compilerEngine(t, time.Minute)
		w := load(t, e, genModule(3, nestedBlocks(10)), Spec{Name: "small"})
		call(t, w, Request{Export: "run"})
		stillServes(t, e)
	})
	t.Run("a module over the compile deadline is refused", func(t *testing.T) {
		e := compilerEngine(t, 200*time.Millisecond)
		_, err := e.Load(context.Background(), genModule(1, nestedBlocks(100_000)), Spec{Name: "nested"})
		se := wantCode(t, err, CodeModuleInvalid)
		if !strings.Contains(se.Message, "not compiled within") {
			t.Fatalf("message %q", se.Message)
		}
	})
	t.Run("a child over its memory limit is refused", func(t *testing.T) {
		e := newEngine(t, Config{CacheDir: t.TempDir(), CompileTimeout: time.Minute,
			Compiler: CompileCommand{Path: os.Args[0], Args: []string{"__compile"}, MemoryBytes: 64 << 20}})
		_, err := e.Load(context.Background(), genModule(1, hugeBody(200_000)), Spec{Name: "huge"})
		wantCode(t, err, CodeModuleInvalid)
	})
}

// BenchmarkCompileHostile measures in-process compilation (what a Hall
// without a Compiler pays on its serving path) of the three hostile
// shapes; see RATIONALE.md, "Compilation".
func BenchmarkCompileHostile(b *testing.B) {
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"nested-blocks-20k", genModule(1, nestedBlocks(20_000))},
		{"huge-body-1MB", genModule(1, hugeBody(330_000))},
		{"many-functions-20k", genModule(20_000, hugeBody(10))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ReportMetric(float64(len(tc.wasm)), "module-bytes")
			for range b.N {
				e, err := New(context.Background(), Config{})
				if err != nil {
					b.Fatal(err)
				}
				w, err := e.Load(context.Background(), tc.wasm, Spec{Name: tc.name, Pool: -1})
				if err != nil {
					b.Fatal(err)
				}
				_ = w.Close(context.Background())
				_ = e.Close(context.Background())
			}
		})
	}
}
