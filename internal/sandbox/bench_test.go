package sandbox

import (
	"github.com/wcphall/hall/internal/wasmmod"

	"context"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

// BenchmarkCallReused: warm call of a tiny WAT worker on a reused instance.
func BenchmarkCallReused(b *testing.B) {
	e := newEngine(b, Config{})
	w := load(b, e, fixtures.adversary, Spec{Name: "tiny", Reuse: true})
	req := Request{Export: "run", ReuseKey: "tenant"}
	call(b, w, req)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := w.Call(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCallFresh: every call on a never-used, pre-instantiated instance
// (the pool refills in the background).
func BenchmarkCallFresh(b *testing.B) {
	for _, tc := range []struct {
		name string
		wasm func() []byte
	}{{"wat", func() []byte { return fixtures.adversary }}, {"go", func() []byte { return fixtures.goguest }}} {
		b.Run(tc.name, func(b *testing.B) {
			e := newEngine(b, Config{})
			w := load(b, e, tc.wasm(), Spec{Name: "fresh", Pool: 4})
			b.ReportAllocs()
			for b.Loop() {
				// Let the refill keep up so this measures the call, not
				// instantiation; BenchmarkCallFreshParallel measures both.
				for len(w.pool) == 0 {
					b.StopTimer()
					time.Sleep(50 * time.Microsecond)
					b.StartTimer()
				}
				if _, err := w.Call(context.Background(), Request{Export: "run"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCallFreshParallel: throughput of a standard-Go worker where every
// call gets a fresh instance, instantiation included (calls/s metric).
func BenchmarkCallFreshParallel(b *testing.B) {
	e := newEngine(b, Config{})
	w := load(b, e, fixtures.goguest, Spec{Name: "go-fresh", Pool: 8})
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := w.Call(context.Background(), Request{Export: "run", Input: []byte("x")}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkLoopTermination measures what WithCloseOnContextDone costs a
// loop-heavy guest: wazero then checks for termination on every loop back
// edge and function entry.
func BenchmarkLoopTermination(b *testing.B) {
	const iterations = 10_000_000
	for _, name := range []string{"close_on_done", "no_check", "yield_points"} {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(name != "no_check"))
			defer rt.Close(ctx)
			wasm := fixtures.loop
			if name == "yield_points" {
				// As every worker is compiled: yield points every
				// YieldEvery iterations, listened to (cpu.go).
				var err error
				if wasm, _, err = wasmmod.GuardStackYielding(wasm, 1<<20, YieldEvery); err != nil {
					b.Fatal(err)
				}
				ctx = withYields(ctx)
			}
			mod, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithName(""))
			if err != nil {
				b.Fatal(err)
			}
			fn := mod.ExportedFunction("count")
			cctx, cancel := context.WithTimeout(ctx, time.Hour)
			defer cancel()
			for b.Loop() {
				if _, err := fn.Call(cctx, iterations); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/iterations, "ns/iter")
		})
	}
}
