package auth

import (
	"context"
	"runtime"
	"testing"
)

func benchStore(b *testing.B) (*Store, string) {
	b.Helper()
	s, err := Open(b.TempDir() + "/" + DBFile)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	tok, _, err := s.Create(context.Background(), TenantScope("org.acme"), "")
	if err != nil {
		b.Fatal(err)
	}
	return s, tok
}

// benchParallel runs Authenticate(tok) from parallelism goroutines per P,
// each with its own cancellable context (as an HTTP request's, which the
// driver watches during a query) or with context.Background. Besides
// ns/op (wall time over all goroutines), it reports cpu-ns/op: the CPU
// time the process used per call, what a server busy with other requests
// pays.
func benchParallel(b *testing.B, parallelism int, cancellable bool) {
	s, tok := benchStore(b)
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.ResetTimer()
	c0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		if cancellable {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
		}
		for pb.Next() {
			if _, err := s.Authenticate(ctx, tok); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(processCPU()-c0)/float64(b.N), "cpu-ns/op")
}

// BenchmarkAuthenticate: one valid token checked again and again, as every
// HTTP request does (the cache answers after the first), from one
// goroutine per P.
func BenchmarkAuthenticate(b *testing.B) { benchParallel(b, 1, false) }

// BenchmarkAuthenticateRequestContext: the same with cancellable contexts.
func BenchmarkAuthenticateRequestContext(b *testing.B) { benchParallel(b, 1, true) }

// BenchmarkAuthenticate32: 32 goroutines (16 per P if GOMAXPROCS is 2), as
// the server under 32 concurrent connections.
func BenchmarkAuthenticate32(b *testing.B) {
	benchParallel(b, max(1, 32/runtime.GOMAXPROCS(0)), true)
}

// BenchmarkAuthenticateSerial: from one goroutine (the latency of one call,
// without contention).
func BenchmarkAuthenticateSerial(b *testing.B) {
	s, tok := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateUnknown: a well-formed token whose id is in no row
// (never cached: the lookup runs every time).
func BenchmarkAuthenticateUnknown(b *testing.B) {
	s, tok := benchStore(b)
	bad := "hall_000000000000_" + tok[len(tok)-secretLen:]
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, bad); err != ErrInvalidToken {
			b.Fatal(err)
		}
	}
}
