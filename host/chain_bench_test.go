package host_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
)

// BenchmarkChainHop measures what one hop costs over a direct Hall.Run
// of the same worker (issue 23: target ≤ 15%). Both workers run the same
// module (testdata/pipeline/chainguest) with reused instances of the
// same tenant, so no figure includes an instantiation. Each iteration
// runs, in turn: the leaf directly (direct), the caller alone (root: it
// parses its input and echoes), and the caller making one hop to the leaf
// (root+hop: it parses the same input, calls Call.Invoke, outputs the
// reply). The hop's cost is root+hop minus root: the caller's Invoke (its
// host call and the reply's copy), the hop's decision, the leaf's
// sandboxed run and its evidence. overhead-% is how
// much more that is than direct, for a leaf that echoes (/echo: the hop's
// fixed cost against the cheapest dispatch) and one that computes for a
// few milliseconds (/work). /nop records nothing (the Hall's own work);
// /ledger commits the evidence (a contained hop commits its decision
// with its receipt, as a direct run of a contained worker does).
// /echo-legacy makes the hop through hall_invoke, the first ABI (JSON and
// base64 in Extism kernel blocks), as modules built with the first SDK
// do. The -cpu- figures are the same from the process's CPU time: on a
// loaded machine the wall clock mostly measures waiting for a core.
func BenchmarkChainHop(b *testing.B) {
	for _, tc := range []struct {
		name       string
		withLedger bool
		// leaf is what the hop's worker does.
		leaf string
		// op is the caller's: call (sdk Call.Invoke) or legacy_call.
		op string
	}{
		{"nop/echo", false, `{"op":"echo","text":"x"}`, "call"},
		{"nop/echo-legacy", false, `{"op":"echo","text":"x"}`, "legacy_call"},
		{"nop/work", false, `{"op":"work","n":60}`, "call"},
		{"ledger/echo", true, `{"op":"echo","text":"x"}`, "call"},
	} {
		withLedger := tc.withLedger
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(chainRules("caller", "leaf")), 0o644); err != nil {
				b.Fatal(err)
			}
			// Instances are reused (per tenant) by both workers: the
			// figure is the hop's own cost, not an instantiation's.
			cfg := `{"workers": {"org.acme.caller": {"reuse_instances": true}, "org.acme.leaf": {"reuse_instances": true}}}`
			if err := os.WriteFile(filepath.Join(dir, "hall.json"), []byte(cfg), 0o644); err != nil {
				b.Fatal(err)
			}
			opts := host.Options{Dir: dir}
			if !withLedger {
				opts.Stores = &host.Stores{Evidence: &nopLedger{}}
			}
			h, err := host.Open(context.Background(), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer h.Close(context.Background())
			wasm := chainGuest(b)
			for _, rec := range []string{
				chainWorker("org.acme", "caller", []string{"cap.test.leaf"}, "", ""),
				chainWorker("org.acme", "leaf", nil, "", ""),
			} {
				if _, err := h.Enroll(context.Background(), host.EnrollRequest{Module: wasm, Record: []byte(rec)}); err != nil {
					b.Fatal(err)
				}
			}
			var cpu time.Duration
			run := func(capability, payload string) time.Duration {
				start, c0 := time.Now(), processCPU()
				res, err := h.Run(context.Background(), host.RunRequest{Input: input(b, capability, "org.acme"), Payload: []byte(payload)})
				d := time.Since(start)
				cpu = processCPU() - c0
				if err != nil || res.Outcome != "ok" {
					b.Fatalf("run %s: %v %+v", capability, err, res)
				}
				return d
			}
			// The caller's input is the same but for op: root parses what
			// root+hop parses, so the difference is the hop alone.
			args := `"text":"x","cap":"cap.test.leaf","input":` + tc.leaf + `}`
			echo, hop := `{"op":"echo",`+args, `{"op":"`+tc.op+`",`+args
			for range 3 { // warm: compiled, pools filled
				run("cap.test.leaf", tc.leaf)
				run("cap.test.caller", echo)
				run("cap.test.caller", hop)
			}
			var direct, root, chain, directCPU, rootCPU, chainCPU time.Duration
			b.ResetTimer()
			for range b.N {
				direct += run("cap.test.leaf", tc.leaf)
				directCPU += cpu
				root += run("cap.test.caller", echo)
				rootCPU += cpu
				chain += run("cap.test.caller", hop)
				chainCPU += cpu
			}
			n := float64(b.N)
			hopCost, hopCPU := float64(chain-root)/n, float64(chainCPU-rootCPU)/n
			b.ReportMetric(float64(direct)/n/1e3, "direct-µs")
			b.ReportMetric(hopCost/1e3, "hop-µs")
			b.ReportMetric((hopCost/(float64(direct)/n)-1)*100, "overhead-%")
			if directCPU > 0 {
				b.ReportMetric(float64(directCPU)/n/1e3, "direct-cpu-µs")
				b.ReportMetric(hopCPU/1e3, "hop-cpu-µs")
				b.ReportMetric((hopCPU/(float64(directCPU)/n)-1)*100, "overhead-cpu-%")
			}
		})
	}
}
