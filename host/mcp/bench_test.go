package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wcphall/hall/host/server"
)

// BenchmarkMCPOverhead measures what MCP adds to a dispatch: the same
// governed call of the small WAT worker (instances reused per tenant,
// decision and receipt committed) at concurrency 8, as POST /wcp/run and
// as an MCP tools/call over Streamable HTTP (8 sessions), in alternating
// rounds on one server. It reports each path's time per call and the
// overhead of MCP in percent (target: at most 15).
//
//	go test -run '^$' -bench MCPOverhead -benchtime 4000x ./host/mcp
func BenchmarkMCPOverhead(b *testing.B) {
	const conc = 8
	endpoint := serve(b, server.Config{MaxConcurrent: 64})
	base := endpoint[:len(endpoint)-len("/mcp")]
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conc}}
	body, _ := json.Marshal(map[string]any{
		"input":   map[string]any{"capability_id": "cap.test.noop", "env": "dev", "data_label": "INTERNAL", "tenant_risk": "low", "qos_class": "P2", "correlation_id": "bench"},
		"payload": "x",
	})
	wcpRun := func() error {
		req, _ := http.NewRequest("POST", base+"/wcp/run", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+fx.acme)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var out struct {
			ReceiptID string `json:"receipt_id"`
		}
		if res.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || out.ReceiptID == "" {
			return fmt.Errorf("/wcp/run: %d %s", res.StatusCode, raw)
		}
		return nil
	}
	sessions := make([]*sdk.ClientSession, conc)
	for i := range sessions {
		sessions[i] = connect(b, endpoint, fx.acme, nil)
	}
	mcpCall := func(i int) error {
		res, err := sessions[i].CallTool(context.Background(), &sdk.CallToolParams{Name: "test_noop", Arguments: map[string]any{"input": "x"}, Meta: sdk.Meta{"correlation_id": "bench"}})
		if err != nil {
			return err
		}
		if res.IsError || res.Meta["receipt_id"] == "" {
			return fmt.Errorf("tools/call: %v", res.Meta)
		}
		return nil
	}
	// round runs n calls of one kind over conc goroutines.
	round := func(n int, f func(i int) error) (time.Duration, error) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		per := n / conc
		start := time.Now()
		for i := 0; i < conc; i++ {
			wg.Go(func() {
				for j := 0; j < per; j++ {
					if err := f(i); err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start), first
	}
	// Warm both paths (compiled worker, pooled instances, connections).
	if _, err := round(conc*4, func(int) error { return wcpRun() }); err != nil {
		b.Fatal(err)
	}
	if _, err := round(conc*4, mcpCall); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var tWCP, tMCP time.Duration
	calls := 0
	const chunk = conc * 25
	for calls < b.N {
		d, err := round(chunk, func(int) error { return wcpRun() })
		if err != nil {
			b.Fatal(err)
		}
		tWCP += d
		d, err = round(chunk, mcpCall)
		if err != nil {
			b.Fatal(err)
		}
		tMCP += d
		calls += chunk
	}
	b.StopTimer()
	w := float64(tWCP.Microseconds()) / float64(calls)
	m := float64(tMCP.Microseconds()) / float64(calls)
	b.ReportMetric(w, "wcp-run-µs/call")
	b.ReportMetric(m, "mcp-call-µs/call")
	b.ReportMetric(100*(m-w)/w, "overhead-%")
}
