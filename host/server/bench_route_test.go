package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/wcphall/hall/host/server"
)

// BenchmarkRouteHTTP drives POST /wcp/route over loopback with 32
// concurrent connections and reports decisions per second and p50/p99
// latency. A 200 is returned only after the decision's signed entry has
// committed (fsync, the ledger's default); every answer must be a 200
// carrying a decision id and an allowed decision, and their telemetry is
// read back from the ledger after the run.
//
// The client is the lean keep-alive load generator of loadgen_test.go
// (one connection per client, pre-built request bytes, each answer
// checked by a scan of its bytes), not net/http's: client and server
// share the machine's cores, and net/http's client with a json.Unmarshal
// per answer took CPU the server is measured with. allocs/op counts the
// process, so it is now nearly all the server's.
//
//	go test -run '^$' -bench RouteHTTP -benchtime 20000x ./host/server
func BenchmarkRouteHTTP(b *testing.B) {
	ts := httpServer(b, server.Config{MaxConcurrent: 64})
	correlation := fmt.Sprintf("bench-route-%d", time.Now().UnixNano())
	body, _ := json.Marshal(input("cap.doc.summarize", correlation))
	b.ReportAllocs()
	lat, elapsed := load{url: ts, path: "/wcp/route", token: fx.acme, body: body, check: allowedDecision}.run(b, 32)
	// Every decision carries at least one telemetry envelope, stored in
	// the same transaction as its signed entry.
	ev, err := fx.hall.Evidence()
	if err != nil {
		b.Fatal(err)
	}
	if got, err := ev.Events(context.Background(), correlation); err != nil || len(got) < b.N {
		b.Fatalf("%d decisions acknowledged, %d telemetry events in the ledger (%v)", b.N, len(got), err)
	}
	reportLoad(b, lat, elapsed, "decisions/s")
}
