package sandbox

import (
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
	for _, closeOnDone := range []bool{true, false} {
		name := "close_on_done"
		if !closeOnDone {
			name = "no_check"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(closeOnDone))
			defer rt.Close(ctx)
			mod, err := rt.Instantiate(ctx, fixtures.loop)
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
