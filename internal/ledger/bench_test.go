package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/google/uuid"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// BenchmarkAppend measures one signed, chained, committed receipt per
// operation. The Sync variants show what fsync at every commit costs on
// the machine running it.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range syncModes {
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

// syncModes are the durability settings the write benchmarks compare.
var syncModes = []struct {
	name string
	sync Sync
}{{"SyncFull", SyncFull}, {"SyncNormal", SyncNormal}}

// BenchmarkAppendParallel appends from 16 goroutines per CPU to four
// tenants, as a busy server does: what it shows is how many receipts one
// commit (one fsync with SyncFull) carries.
func BenchmarkAppendParallel(b *testing.B) {
	for _, bc := range syncModes {
		b.Run(bc.name, func(b *testing.B) {
			s := openT(b, b.TempDir(), WithSync(bc.sync))
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(16)
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
			reportBatching(b, s)
		})
	}
}

// reportBatching reports how many writes one commit carried on average.
func reportBatching(b *testing.B, s *SQLite) {
	if c := s.commits.Load(); c > 0 {
		b.ReportMetric(float64(s.written.Load())/float64(c), "writes/commit")
	}
}

// BenchmarkDispatchPair is the ledger's share of one governed dispatch
// (host.Hall.Run): RecordDecision before the worker runs, Append after,
// from 16 goroutines per CPU. receipts/s is dispatches/s if the worker
// took no time.
func BenchmarkDispatchPair(b *testing.B) {
	for _, bc := range syncModes {
		b.Run(bc.name, func(b *testing.B) {
			s := openT(b, b.TempDir(), WithSync(bc.sync))
			ctx := context.Background()
			decision := json.RawMessage(`{"decision_id":"d","telemetry_envelopes":[{"event_id":"evt.os.task.routed"}]}`)
			b.ReportAllocs()
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					r := newReceipt([]string{"a", "b", "c", "d"}[i%4], i)
					d := DecisionRecord{DecisionID: r.DecisionID, CorrelationID: r.CorrelationID, TenantID: r.TenantID,
						CapabilityID: r.CapabilityID, Decision: decision}
					if err := s.RecordDecision(ctx, d); err != nil {
						b.Error(err)
						return
					}
					if err := s.Append(ctx, r); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
			reportBatching(b, s)
		})
	}
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

// BenchmarkVerifyEvidence measures `hall audit verify` over 100,000
// entries: 50,000 receipts and 50,000 decisions (a third of them denied,
// each with a telemetry envelope) in 8 tenants. entries/s is the walk rate
// (hashing, canonical-form check, Ed25519 verification, JSON decoding and
// the decision-row cross-check per entry).
func BenchmarkVerifyEvidence(b *testing.B) {
	s := openT(b, b.TempDir(), WithSync(SyncNormal))
	const n = 100_000
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n/2; i += 16 {
				tenant := fmt.Sprintf("org.t%d", i%8)
				if err := s.Append(context.Background(), newReceipt(tenant, i)); err != nil {
					errs <- err
					return
				}
				kind := []string{"allowed", "denied", "dry"}[i%3]
				if err := s.RecordDecision(context.Background(), newDecision(tenant, kind, i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := s.Verify(context.Background(), nil)
		if err != nil || !rep.OK() || rep.Receipts+rep.Decisions != n {
			b.Fatalf("verify: %v %+v", err, rep)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkVerifyReceipts measures `hall audit verify` over 100,000
// receipts in 8 tenants (issue 12's target: ≤ 3 s on the 2-core
// development machine). Receipts are checked on all cores.
//
//	go test -run '^$' -bench VerifyReceipts -benchtime 3x ./internal/ledger
func BenchmarkVerifyReceipts(b *testing.B) {
	s := openT(b, b.TempDir(), WithSync(SyncNormal))
	const n = 100_000
	fillReceipts(b, s, n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := s.Verify(context.Background(), nil)
		if err != nil || !rep.OK() || rep.Receipts != n {
			b.Fatalf("verify: %v %+v", err, rep)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/verify")
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "receipts/s")
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
}

// fillReceipts appends n receipts to s in 8 tenants from 32 goroutines
// (so commits carry many receipts each).
func fillReceipts(tb testing.TB, s *SQLite, n int) {
	tb.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 32 {
				if err := s.Append(context.Background(), newReceipt(fmt.Sprintf("org.t%d", i%8), i)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}

// BenchmarkRecordDecisionParallel records route decisions as /wcp/route
// does (a real allowed decision of 2.5 kB with its four telemetry
// envelopes, a fresh decision id each) from 16 goroutines per CPU, every
// one acknowledged only after its commit. wchar-B/decision is what the
// process wrote to files per decision (WAL frames, checkpoints), read from
// /proc/self/io.
func BenchmarkRecordDecisionParallel(b *testing.B) {
	tmpl, err := os.ReadFile("testdata/decision.json")
	if err != nil {
		b.Fatal(err)
	}
	var envelopes struct {
		TelemetryEnvelopes []json.RawMessage `json:"telemetry_envelopes"`
	}
	if err := json.Unmarshal(tmpl, &envelopes); err != nil {
		b.Fatal(err)
	}
	s := openT(b, b.TempDir())
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	w0, cpu0 := procWchar(b), processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := newDecisionID()
			d := DecisionRecord{DecisionID: id, CorrelationID: "bench", TenantID: "org.acme",
				CapabilityID: "cap.doc.summarize", Decision: tmpl, Telemetry: envelopes.TelemetryEnvelopes}
			if err := s.RecordDecision(ctx, d); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
	b.ReportMetric(float64(procWchar(b)-w0)/float64(b.N), "wchar-B/decision")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/decision")
	reportBatching(b, s)
}

// BenchmarkRecordDispatchParallel records what a contained worker's
// dispatch leaves (host.Hall.Run): its decision, as in
// BenchmarkRecordDecisionParallel, and its receipt, in one write
// (RecordDispatch), from 16 goroutines per CPU.
func BenchmarkRecordDispatchParallel(b *testing.B) {
	tmpl, err := os.ReadFile("testdata/decision.json")
	if err != nil {
		b.Fatal(err)
	}
	s := openT(b, b.TempDir())
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(16)
	cpu0 := processCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r := newReceipt("org.acme", i)
			r.DecisionID = newDecisionID()
			d := DecisionRecord{DecisionID: r.DecisionID, CorrelationID: r.CorrelationID, TenantID: "org.acme",
				CapabilityID: "cap.doc.summarize", Decision: tmpl}
			if err := s.RecordDispatch(ctx, d, nil, r); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "dispatches/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/dispatch")
	reportBatching(b, s)
}

// procWchar is the bytes this process has written with write calls.
func procWchar(b *testing.B) int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io")
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	b.Skip("no wchar in /proc/self/io")
	return 0
}

// newDecisionID is a decision id as the router makes them (version 7).
func newDecisionID() string { return uuid.Must(uuid.NewV7()).String() }
