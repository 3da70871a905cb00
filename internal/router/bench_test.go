package router

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/registry"
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
	return benchRegistryN(1)
}

// benchRegistryN enrolls n workers of which only the last serves
// wrk.bench.worker (and implements the rules' control); the others are
// species no rule names.
func benchRegistryN(n int) *registry.Registry {
	reg := registry.New()
	for i := range n - 1 {
		reg.Enroll(&wcp.Record{
			WorkerID:        fmt.Sprintf("org.bench.other%d", i),
			WorkerSpeciesID: fmt.Sprintf("wrk.bench.other%d", i),
			Capabilities:    []string{fmt.Sprintf("cap.bench.other%d", i)},
		})
	}
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

// BenchmarkDecideRules decides against n rules and a registry of n workers
// (the shapes /tmp/pyhall_bench.py times PyHall's make_decision on):
//   - match-last: every rule names its own capability exactly, and the
//     request's is the last rule's, so a linear scan tests all n;
//   - no-match: no rule names the request's capability (denied
//     DENY_NO_MATCHING_RULE);
//   - wildcards-no-match: no rule constrains the capability, so the index
//     cannot skip any and the cost is linear (the worst case, kept to show
//     it); each constrains the env to prod and the request is dev.
//
// The budget is 5 µs/op at 10,000 rules, with allocations independent of n.
func BenchmarkDecideRules(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, 100, 1000, 10000} {
		reg := benchRegistryN(n)
		wild := make([]string, n)
		for i := range wild {
			// "region" is a key the matcher ignores; it keeps the rules
			// distinct, as real rules are (n identical rules would be n²
			// shadow warnings).
			wild[i] = fmt.Sprintf(`{"rule_id":"rr_wild_%d","match":{"env":"prod","qos_class":{"in":["P0","P1"]},"region":"eu-%d"}}`, i, i)
		}
		wildRules, err := ParseRules([]byte(`{"rules":[` + strings.Join(wild, ",") + `]}`))
		if err != nil {
			b.Fatal(err)
		}
		cases := []struct {
			name       string
			rules      *RuleSet
			capability string
			denied     bool
		}{
			{"match-last", benchRules(b, n, true), "cap.bench.run", false},
			{"no-match", benchRules(b, n, false), "cap.bench.none", true},
			{"wildcards-no-match", wildRules, "cap.bench.run", true},
		}
		for _, tc := range cases {
			b.Run(fmt.Sprintf("rules=%d/%s", n, tc.name), func(b *testing.B) {
				in := benchInput()
				in.CapabilityID = tc.capability
				opts := fixedOptions()
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
