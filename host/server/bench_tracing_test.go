package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
)

// rounds is how many alternated pairs of rounds BenchmarkTracingOverhead
// splits its requests into.
const rounds = 40

// BenchmarkTracingOverhead is what tracing costs a governed dispatch over
// HTTP (issue 26): POST /wcp/run at 32 connections to two Halls alike in
// everything but tracing — one without a TracerProvider, one with the
// always-on sampler and the SDK's batching OTLP/HTTP exporter sending
// every span to a local receiver — alternated in rounds in the same run,
// so that both see the same machine load. It reports:
//
//   - overhead-%: the throughput tracing costs, in percent of the
//     untraced rate, the median over the pairs of rounds (budget ≤ 5%),
//     and overhead-iqr-%, the interquartile range of the pairs (the
//     spread: how much the machine moved the figure);
//   - cpu-overhead-% and cpu-overhead-iqr-%: the same for the process CPU
//     per dispatch (client, server, exporter and receiver together, all
//     in this process), less moved by the machine's other load;
//   - each one's dispatches/s, CPU µs and heap bytes allocated per
//     dispatch over the whole run.
//
// The receiver runs in this process: an HTTP handler that reads each
// export request and answers 200, without decoding it. That is fair to
// the Hall and to the budget: what is measured is what the Hall's process
// spends to make, batch, encode and send its spans (the collector an
// operator runs is another process, often another machine, and its cost
// is not the Hall's), and the receiver's own share — reading a body — is
// counted against tracing, not hidden. b.N requests go to each Hall.
//
//	go test -run '^$' -bench TracingOverhead -benchtime 4000x ./host/server
func BenchmarkTracingOverhead(b *testing.B) {
	for _, w := range []struct{ name, capability, payload string }{
		{"summarizer", "cap.doc.summarize", article},
		{"wat-noop", "cap.test.noop", "x"},
	} {
		b.Run(w.name, func(b *testing.B) {
			var received atomic.Int64
			sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, _ := io.Copy(io.Discard, r.Body)
				received.Add(n)
				w.Header().Set("Content-Type", "application/x-protobuf")
				w.WriteHeader(http.StatusOK)
			}))
			b.Cleanup(sink.Close)
			exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(sink.URL+"/v1/traces"))
			if err != nil {
				b.Fatal(err)
			}
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithSampler(sdktrace.AlwaysSample()))
			b.Cleanup(func() { tp.Shutdown(context.Background()) })

			body, _ := json.Marshal(runBody(input(w.capability, "bench"), w.payload))
			modes := []struct {
				name    string
				conns   []*loadConn
				req     []byte
				elapsed time.Duration
				n       int
			}{{name: "off"}, {name: "on"}}
			for i, tpi := range []trace.TracerProvider{nil, tp} {
				url := tracingBenchServer(b, tpi)
				addr, req, err := load{url: url, path: "/wcp/run", token: fx.acme, body: body}.request()
				if err != nil {
					b.Fatal(err)
				}
				modes[i].req = req
				for range 32 {
					c := &loadConn{addr: addr}
					if err := c.dial(); err != nil {
						b.Fatal(err)
					}
					b.Cleanup(c.close)
					modes[i].conns = append(modes[i].conns, c)
				}
				if _, err := burst(modes[i].conns, req, 64); err != nil { // warm: load the worker, fill the pools
					b.Fatal(err)
				}
			}
			// Rounds of per requests, alternated A B B A A B…: each pair
			// of rounds gives one ratio of throughput and one of CPU per
			// dispatch, and the medians are the figures, so that a burst
			// of load from elsewhere on the machine moves a pair, not the
			// result. A traced round ends with a flush of the spans it
			// made, inside its CPU window but outside its wall time: it
			// pays the CPU of exporting them (the batch processor would
			// otherwise export them during whichever round comes next,
			// often an untraced one), while its throughput is that of
			// the requests (in steady state the exporter runs beside
			// them, as it does within a round).
			per := max(b.N/rounds, 64)
			var rateRatios, cpuRatios []float64
			var cpu [2]time.Duration
			var allocated [2]uint64
			b.ResetTimer()
			for r := 0; modes[0].n < b.N || modes[1].n < b.N; r++ {
				order := []int{0, 1}
				if r%2 == 1 {
					order = []int{1, 0}
				}
				var rate, cpuPer [2]float64
				for _, i := range order {
					n := max(min(per, b.N-modes[i].n), 1)
					cpu0, bytes0 := processCPU(), heapAllocated()
					d, err := burst(modes[i].conns, modes[i].req, n)
					if err == nil && i == 1 {
						err = tp.ForceFlush(context.Background())
					}
					c := processCPU() - cpu0
					allocated[i] += heapAllocated() - bytes0
					if err != nil {
						b.Fatalf("tracing %s: %v", modes[i].name, err)
					}
					cpu[i] += c
					modes[i].elapsed += d
					modes[i].n += n
					rate[i] = float64(n) / d.Seconds()
					cpuPer[i] = float64(c) / float64(n)
				}
				rateRatios = append(rateRatios, rate[1]/rate[0])
				if cpuPer[0] > 0 {
					cpuRatios = append(cpuRatios, cpuPer[1]/cpuPer[0])
				}
			}
			b.StopTimer()
			if received.Load() == 0 {
				b.Fatal("the traced Hall exported nothing to the receiver")
			}
			off := float64(modes[0].n) / modes[0].elapsed.Seconds()
			on := float64(modes[1].n) / modes[1].elapsed.Seconds()
			b.ReportMetric(off, "off-dispatches/s")
			b.ReportMetric(on, "on-dispatches/s")
			// overhead-% is the median pair's throughput cost; its spread
			// is the interquartile range of the pairs' costs.
			med, p25, p75 := quartiles(rateRatios)
			b.ReportMetric((1-med)*100, "overhead-%")
			b.ReportMetric((p75-p25)*100, "overhead-iqr-%")
			if len(cpuRatios) > 0 {
				b.ReportMetric(float64(cpu[0].Microseconds())/float64(modes[0].n), "off-cpu-µs/dispatch")
				b.ReportMetric(float64(cpu[1].Microseconds())/float64(modes[1].n), "on-cpu-µs/dispatch")
				med, p25, p75 := quartiles(cpuRatios)
				b.ReportMetric((med-1)*100, "cpu-overhead-%")
				b.ReportMetric((p75-p25)*100, "cpu-overhead-iqr-%")
			}
			// What each dispatch allocated (the whole process: client,
			// server, exporter, receiver): the garbage collector's share
			// of tracing's cost follows it, and it is not moved by the
			// machine's load.
			b.ReportMetric(float64(allocated[0])/float64(modes[0].n), "off-B/dispatch")
			b.ReportMetric(float64(allocated[1])/float64(modes[1].n), "on-B/dispatch")
		})
	}
}

// heapAllocated is the bytes the process has allocated on the heap so far.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// quartiles is the median, first and third quartile of xs (sorted here).
func quartiles(xs []float64) (med, p25, p75 float64) {
	slices.Sort(xs)
	at := func(q float64) float64 { return xs[int(q*float64(len(xs)-1)+0.5)] }
	return at(0.5), at(0.25), at(0.75)
}

// burst sends n requests req over conns, each connection one request at
// a time, checking each answer is a committed run, and returns the wall
// time.
func burst(conns []*loadConn, req []byte, n int) (time.Duration, error) {
	var (
		next  atomic.Int64
		first atomic.Pointer[error]
		wg    sync.WaitGroup
	)
	start := time.Now()
	for _, c := range conns {
		wg.Go(func() {
			for first.Load() == nil && next.Add(1) <= int64(n) {
				status, body, err := c.roundTrip(req)
				if err == nil {
					err = committedRun(status, body)
				}
				if err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := first.Load(); p != nil {
		return 0, *p
	}
	return time.Since(start), nil
}

// tracingBenchServer serves a Hall of its own, in a fresh directory: the
// quick start's rules, the summarizer and the WAT no-op worker (instance
// reuse on, as in BenchmarkRunHTTP), traced with tp when it is not nil.
func tracingBenchServer(b *testing.B, tp trace.TracerProvider) string {
	b.Helper()
	dir := b.TempDir()
	rules, err := os.ReadFile("../../examples/quickstart/rules.json")
	if err != nil {
		b.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	write("rules.json", rules)
	write("hall.json", []byte(`{"workers": {"org.test.noop": {"reuse_instances": true}}}`))
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir, TracerProvider: tp})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close(context.Background()) })
	noop, err := wat(b.TempDir(), "testdata/noop.wat")
	if err != nil {
		b.Fatal(err)
	}
	noopRec, err := os.ReadFile("testdata/noop.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range []struct {
		module, record []byte
	}{{fx.summarizer, fx.summarizerRecord}, {noop, noopRec}} {
		if _, err := h.Enroll(ctx, host.EnrollRequest{Module: e.module, Record: e.record, AddRule: true}); err != nil {
			b.Fatal(err)
		}
	}
	srv := &http.Server{Handler: server.New(h, server.Config{MaxConcurrent: 64, Tokens: fx.tokens})}
	ln := listen(b)
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
