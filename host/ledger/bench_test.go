package ledger

import (
	"context"
	"testing"
)

// BenchmarkAppend measures one signed, chained, committed receipt per
// operation. The Sync variants show what fsync at every commit costs on
// the machine running it.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		sync Sync
	}{{"SyncFull", SyncFull}, {"SyncNormal", SyncNormal}} {
		b.Run(bc.name, func(b *testing.B) {
			s := openT(b, b.TempDir(), WithSync(bc.sync))
			ctx := context.Background()
			rs := make([]*Receipt, 64)
			for i := range rs {
				rs[i] = newReceipt("bench", i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := *rs[i%len(rs)]
				if err := s.Append(ctx, &r); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
		})
	}
}

// BenchmarkAppendParallel appends from many goroutines to four tenants:
// writes serialize on one connection, so this shows queueing, not scaling.
func BenchmarkAppendParallel(b *testing.B) {
	s := openT(b, b.TempDir())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r := newReceipt([]string{"a", "b", "c", "d"}[i%4], i)
			if err := s.Append(ctx, r); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
}

// BenchmarkVerify measures Verify over 2,000 receipts; receipts/s is the
// walk rate.
func BenchmarkVerify(b *testing.B) {
	s := openT(b, b.TempDir(), WithSync(SyncNormal))
	const n = 2000
	for i := 0; i < n; i++ {
		if err := s.Append(context.Background(), newReceipt([]string{"a", "b"}[i%2], i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := s.Verify(context.Background(), nil)
		if err != nil || !rep.OK() || rep.Receipts != n {
			b.Fatalf("verify: %v %+v", err, rep)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "receipts/s")
}
