package router

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wcphall/hall/host/registry"
	"github.com/wcphall/hall/host/wcp"
)

// benchRule is the rule of BenchmarkDecide/allow-1rule: an exact
// capability, env in dev/stage, one candidate, one required control.
func benchRule(id, capability string) string {
	return fmt.Sprintf(`{"rule_id":%q,"match":{"capability_id":%q,"env":{"in":["dev","stage"]}},`+
		`"decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.bench.worker","score_hint":1}],`+
		`"required_controls_suggested":["ctrl.obs.audit-log-append-only"]}}`, id, capability)
}

func benchRules(b *testing.B, n int, lastMatches bool) *RuleSet {
	b.Helper()
	parts := make([]string, n)
	for i := range parts {
		parts[i] = benchRule(fmt.Sprintf("rr_bench_%02d", i), fmt.Sprintf("cap.bench.other%02d", i))
	}
	if lastMatches {
		parts[n-1] = benchRule("rr_bench_match", "cap.bench.run")
	}
	rs, err := ParseRules([]byte(`{"rules":[` + strings.Join(parts, ",") + `]}`))
	if err != nil {
		b.Fatal(err)
	}
	return rs
}

func benchRegistry() *registry.Registry {
	reg := registry.New()
	reg.Enroll(&wcp.Record{
		WorkerID:            "org.bench.worker",
		WorkerSpeciesID:     "wrk.bench.worker",
		Capabilities:        []string{"cap.bench.run"},
		CurrentlyImplements: []string{"ctrl.obs.audit-log-append-only"},
	})
	return reg
}

func benchInput() *wcp.RouteInput {
	return &wcp.RouteInput{
		CapabilityID:  "cap.bench.run",
		Env:           "dev",
		DataLabel:     "INTERNAL",
		TenantRisk:    "low",
		QoSClass:      "P2",
		TenantID:      "tenant-bench",
		CorrelationID: "550e8400-e29b-41d4-a716-446655440000",
	}
}

// fixedClock and countingIDs replace the wall clock and crypto/rand UUIDs;
// the "/defaults" variants benchmark the real ones.
var benchEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func fixedOptions() Options {
	var n uint64
	return Options{
		Now: func() time.Time { return benchEpoch },
		NewID: func() uuid.UUID {
			n++
			var id uuid.UUID
			id[15] = byte(n)
			id[14] = byte(n >> 8)
			return id
		},
	}
}

func BenchmarkDecide(b *testing.B) {
	ctx := context.Background()
	reg := benchRegistry()
	cases := []struct {
		name   string
		rules  *RuleSet
		input  func() *wcp.RouteInput
		denied bool
	}{
		{"allow-1rule", benchRules(b, 1, true), benchInput, false},
		{"match-last-50rules", benchRules(b, 50, true), benchInput, false},
		{"no-match", benchRules(b, 50, false), benchInput, true},
	}
	for _, tc := range cases {
		for _, variant := range []struct {
			suffix string
			opts   func() Options
		}{{"", fixedOptions}, {"/defaults", func() Options { return Options{} }}} {
			b.Run(tc.name+variant.suffix, func(b *testing.B) {
				in := tc.input()
				opts := variant.opts()
				d := Decide(ctx, in, tc.rules, reg, opts)
				if d.Denied != tc.denied {
					b.Fatalf("denied = %v (%s), want %v", d.Denied, d.Code(), tc.denied)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					d = Decide(ctx, in, tc.rules, reg, opts)
				}
				if d.Denied != tc.denied {
					b.Fatalf("denied = %v, want %v", d.Denied, tc.denied)
				}
			})
		}
	}
}
