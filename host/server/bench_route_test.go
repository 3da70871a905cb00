package server_test

import (
	"bytes"
	"context"
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

// BenchmarkRouteHTTP drives POST /wcp/route over loopback with 32
// concurrent connections and reports decisions per second and p50/p99
// latency. A 200 is returned only after the decision's signed entry has
// committed (fsync, the ledger's default); every answer must be a 200
// carrying a decision id, and their telemetry is read back from the
// ledger after the run.
//
//	go test -run '^$' -bench RouteHTTP -benchtime 20000x ./host/server
func BenchmarkRouteHTTP(b *testing.B) {
	ts := httpServer(b, server.Config{MaxConcurrent: 64})
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	correlation := fmt.Sprintf("bench-route-%d", time.Now().UnixNano())
	body, _ := json.Marshal(input("cap.doc.summarize", correlation))
	const conns = 32
	var next atomic.Int64
	lat := make([][]time.Duration, conns)
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for c := 0; c < conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				req, _ := http.NewRequest("POST", ts+"/wcp/route", bytes.NewReader(body))
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
					DecisionID string `json:"decision_id"`
					Denied     bool   `json:"denied"`
				}
				if res.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || out.DecisionID == "" || out.Denied {
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
		b.Fatalf("a decision failed: %v", f)
	}
	// Every decision carries at least one telemetry envelope, stored in
	// the same transaction as its signed entry.
	ev, err := fx.hall.Evidence()
	if err != nil {
		b.Fatal(err)
	}
	if got, err := ev.Events(context.Background(), correlation); err != nil || len(got) < b.N {
		b.Fatalf("%d decisions acknowledged, %d telemetry events in the ledger (%v)", b.N, len(got), err)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(len(all))/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}
