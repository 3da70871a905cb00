package host_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/ledger"
)

// nopLedger records nothing: it isolates decide + sandbox from the cost of
// committing evidence (reported separately by the /ledger variants and by
// internal/ledger's own benchmarks).
type nopLedger struct{ n atomic.Int64 }

func (*nopLedger) RecordDecision(context.Context, ledger.DecisionRecord) error   { return nil }
func (*nopLedger) RecordEvents(context.Context, string, []json.RawMessage) error { return nil }
func (l *nopLedger) Append(_ context.Context, r *ledger.Receipt) error {
	r.ReceiptID = "nop"
	l.n.Add(1)
	return nil
}
func (*nopLedger) Receipt(context.Context, string) (*ledger.Receipt, error) {
	return nil, ledger.ErrNotFound
}
func (*nopLedger) Receipts(context.Context, ledger.Filter) ([]ledger.Receipt, error) { return nil, nil }
func (*nopLedger) Verify(context.Context, ed25519.PublicKey) (*ledger.Report, error) {
	return &ledger.Report{}, nil
}
func (*nopLedger) Export(context.Context, io.Writer) error { return nil }
func (*nopLedger) Close() error                            { return nil }
func (*nopLedger) RecordChange(_ context.Context, c *ledger.Change) error {
	c.ChangeID = "chg_nop"
	return nil
}
func (*nopLedger) Changes(context.Context, string) ([]ledger.Change, error) { return nil, nil }

func runOnce(b *testing.B, h *host.Hall, capability string, payload []byte) {
	res, err := h.Run(context.Background(), host.RunRequest{Input: input(b, capability, "org.acme"), Payload: payload})
	if err != nil || res.Outcome != "ok" {
		b.Fatalf("run: %v %+v", err, res)
	}
}

// BenchmarkDispatch measures governed in-process dispatch: decide (rules,
// registry, attestation of the stored module) plus the sandboxed call.
func BenchmarkDispatch(b *testing.B) {
	cases := []struct {
		name       string
		capability string
		payload    []byte
		reuse      bool
		ledger     bool
	}{
		{"reused-tiny", "cap.test.tiny", nil, true, false},
		{"fresh-tiny", "cap.test.tiny", nil, false, false},
		{"fresh-go-summarizer", "cap.doc.summarize", []byte(text), false, false},
		{"reused-tiny/ledger", "cap.test.tiny", nil, true, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			opts := host.Options{}
			if !tc.ledger {
				opts.Stores = &host.Stores{Evidence: &nopLedger{}}
			}
			h := openBenchHall(b, opts, tc.reuse)
			runOnce(b, h, tc.capability, tc.payload)
			in := input(b, tc.capability, "org.acme")
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := h.Run(context.Background(), host.RunRequest{Input: in, Payload: tc.payload})
				if err != nil || res.Outcome != "ok" {
					b.Fatalf("run: %v %+v", err, res)
				}
			}
		})
	}
}

// BenchmarkDispatchParallel: sustained throughput of a standard-Go worker
// with a fresh instance per dispatch (instantiation included).
func BenchmarkDispatchParallel(b *testing.B) {
	h := openBenchHall(b, host.Options{Stores: &host.Stores{Evidence: &nopLedger{}}, Pool: 4}, false)
	runOnce(b, h, "cap.doc.summarize", []byte(text))
	in := input(b, "cap.doc.summarize", "org.acme")
	start := time.Now()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := h.Run(context.Background(), host.RunRequest{Input: in, Payload: []byte(text)})
			if err != nil || res.Outcome != "ok" {
				b.Errorf("run: %v", err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "dispatches/s")
}

// openBenchHall is newHall with, when reuse is set, instance reuse turned
// on for the tiny worker through hall.json.
func openBenchHall(b *testing.B, opts host.Options, reuse bool) *host.Hall {
	b.Helper()
	if !reuse {
		return newHall(b, opts)
	}
	dir := b.TempDir()
	cfg := `{"require_worker_attestation": true, "enforce_privilege_envelopes": true, "enforce_allowed_environments": true,
	  "enforce_worker_controls": true, "workers": {"org.acme.tiny": {"reuse_instances": true}}}`
	if err := os.WriteFile(filepath.Join(dir, "hall.json"), []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	opts.ConfigFile = filepath.Join(dir, "hall.json")
	return newHall(b, opts)
}

// BenchmarkHallRunProcess: a fresh `hall run` process end to end (decide,
// load the module from the warm compilation cache, run, commit the
// receipt) for the standard-Go summarizer.
func BenchmarkHallRunProcess(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "hall")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/hall").CombinedOutput(); err != nil {
		b.Fatalf("building hall: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "w.wasm"), mods.summarizer, 0o644); err != nil {
		b.Fatal(err)
	}
	rec, _ := filepath.Abs("../plugins/summarizer/registry_record.json")
	run := func(stdin string, args ...string) {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HALL_HOME="+filepath.Join(dir, ".hall"))
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("hall %v: %v\n%s", args, err, out)
		}
	}
	run("", "enroll", "w.wasm", "--record", rec) // compiles: warms the cache
	run(text, "run", "cap.doc.summarize", "--tenant", "org.acme")
	b.ResetTimer()
	for b.Loop() {
		run(text, "run", "cap.doc.summarize", "--tenant", "org.acme")
	}
}

// BenchmarkHallDecide: Hall.Decide with the strict defaults (attestation,
// envelopes, per-worker eligibility) against a fleet of n enrolled
// workers, of which one serves the requested capability. The others are
// routing-only records of other species: the decision's cost must not grow
// with them (issue 9, item 10).
func BenchmarkHallDecide(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
				b.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(dir, "enrolled"), 0o755); err != nil {
				b.Fatal(err)
			}
			for i := 1; i < n; i++ {
				id := fmt.Sprintf("org.fleet.w%05d", i)
				rec := record(id, fmt.Sprintf("wrk.fleet.s%05d", i), fmt.Sprintf("cap.fleet.c%05d", i), "")
				if err := os.WriteFile(filepath.Join(dir, "enrolled", id+".json"), rec, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			h, err := host.Open(context.Background(), host.Options{Dir: dir, Stores: &host.Stores{Evidence: &nopLedger{}}, Pool: -1})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { h.Close(context.Background()) })
			if _, err := h.Enroll(context.Background(), host.EnrollRequest{Module: mods.tiny, Record: record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny", "")}); err != nil {
				b.Fatal(err)
			}
			if got := h.Registry().Len(); got != n {
				b.Fatalf("%d workers enrolled, want %d", got, n)
			}
			in := input(b, "cap.test.tiny", "org.acme")
			if dec := h.Decide(context.Background(), in); dec.Denied {
				b.Fatalf("denied: %s", dec.DenyReason.Message)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.Decide(context.Background(), in)
			}
		})
	}
}
