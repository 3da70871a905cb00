package server_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/wcphall/hall/host/server"
)

// BenchmarkRunHTTP drives POST /wcp/run over loopback with 32 concurrent
// connections and reports dispatches per second and p50/p99 latency. Every
// answer must be a 200 carrying a committed receipt id; any other status
// fails the benchmark (the concurrency bound is above 32, so no 503 is
// expected). The client is the lean keep-alive load generator of
// loadgen_test.go, not net/http's: see BenchmarkRouteHTTP.
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
			body, _ := json.Marshal(runBody(input(w.capability, "bench"), w.payload))
			lat, elapsed := load{url: ts, path: "/wcp/run", token: fx.acme, body: body, check: committedRun}.run(b, 32)
			reportLoad(b, lat, elapsed, "dispatches/s")
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
