package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wcphall/hall/host/server"
)

// BenchmarkRunHTTP drives POST /wcp/run over loopback with 32 concurrent
// connections and reports dispatches per second and p50/p99 latency. Every
// 200 must carry a committed receipt id; any other status fails the
// benchmark (the concurrency bound is above 32, so no 503 is expected).
//
//	go test -run '^$' -bench RunHTTP -benchtime 10000x ./host/server
func BenchmarkRunHTTP(b *testing.B) {
	for _, w := range []struct{ name, capability, payload string }{
		{"summarizer", "cap.doc.summarize", article},
		{"wat-noop", "cap.test.noop", "x"},
	} {
		b.Run(w.name, func(b *testing.B) {
			if w.name == "wat-noop" {
				enrollNoop(b)
			}
			ts := httpServer(b, server.Config{MaxConcurrent: 64})
			tr := &http.Transport{MaxIdleConnsPerHost: 32}
			client := &http.Client{Transport: tr}
			defer tr.CloseIdleConnections()
			body, _ := json.Marshal(runBody(input(w.capability, "bench"), w.payload))
			const conns = 32
			var next atomic.Int64
			lat := make([][]time.Duration, conns)
			var failed atomic.Value
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for c := 0; c < conns; c++ {
				wg.Add(1)
				go func(c int) {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						req, _ := http.NewRequest("POST", ts+"/wcp/run", bytes.NewReader(body))
						req.Header.Set("Authorization", "Bearer "+fx.acme)
						req.Header.Set("Content-Type", "application/json")
						res, err := client.Do(req)
						if err != nil {
							failed.Store(err.Error())
							return
						}
						raw, _ := io.ReadAll(res.Body)
						res.Body.Close()
						var out struct {
							ReceiptID string `json:"receipt_id"`
						}
						if res.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || out.ReceiptID == "" {
							failed.Store(fmt.Sprintf("%d %s", res.StatusCode, raw))
							return
						}
						lat[c] = append(lat[c], time.Since(t0))
					}
				}(c)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if f := failed.Load(); f != nil {
				b.Fatalf("a dispatch failed: %v", f)
			}
			all := slices.Concat(lat...)
			slices.Sort(all)
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "dispatches/s")
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

func httpServer(b *testing.B, cfg server.Config) string {
	cfg.Tokens = fx.tokens
	srv := &http.Server{Handler: server.New(fx.hall, cfg)}
	ln := listen(b)
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}
