package host_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/router"
)

// blockWAT is a worker whose run export passes "started" to Extism's
// log_info (so a test sees the dispatch running) and then runs tail.
func blockWAT(tail string) string {
	const text = "started"
	return fmt.Sprintf(`(module
	  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
	  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
	  (import "extism:host/env" "log_info" (func $log (param i64)))
	  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
	  (memory (export "memory") 1)
	  (data (i32.const 512) %q)
	  (func (export "run") (result i32)
	    (local $offs i64) (local $i i32)
	    (local.set $offs (call $alloc (i64.const %d)))
	    (block $done (loop $next
	      (br_if $done (i32.ge_u (local.get $i) (i32.const %d)))
	      (call $store_u8 (i64.add (local.get $offs) (i64.extend_i32_u (local.get $i))) (i32.load8_u (i32.add (i32.const 512) (local.get $i))))
	      (local.set $i (i32.add (local.get $i) (i32.const 1)))
	      (br $next)))
	    (call $log (local.get $offs))
	    %s))`, text, len(text), len(text), tail)
}

// sleepTail sleeps ns on the monotonic clock (WASI poll_oneoff) and
// returns 0.
func sleepTail(ns int64) string {
	return fmt.Sprintf(`(i32.store8 (i32.const 8) (i32.const 0))
	    (i32.store (i32.const 16) (i32.const 1))
	    (i64.store (i32.const 24) (i64.const %d))
	    (i64.store (i32.const 32) (i64.const 0))
	    (i32.store16 (i32.const 40) (i32.const 0))
	    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
	    (i32.const 0)`, ns)
}

// loopTail never returns.
const loopTail = `(loop $forever (br $forever)) (i32.const 0)`

// signals is a slog handler that reports log records to a test: each
// record whose message (or, for guest lines, whose "message" attribute)
// contains a watched text closes that text's channel once.
type signals struct {
	mu    sync.Mutex
	watch map[string]chan struct{}
	fired map[string]bool
}

func newSignals(texts ...string) *signals {
	s := &signals{watch: map[string]chan struct{}{}, fired: map[string]bool{}}
	for _, t := range texts {
		s.watch[t] = make(chan struct{})
	}
	return s
}

// on returns the channel closed when text was logged (already closed if
// it has been).
func (s *signals) on(text string) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watch[text]
}

func (s *signals) Enabled(context.Context, slog.Level) bool { return true }
func (s *signals) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *signals) WithGroup(string) slog.Handler            { return s }
func (s *signals) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.Key + "=" + a.Value.String()
		return true
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	for text, ch := range s.watch {
		if !s.fired[text] && strings.Contains(line, text) {
			close(ch)
			s.fired[text] = true
		}
	}
	return nil
}

// within waits for ch, failing the test (from the test goroutine) when
// it has not happened after a generous bound: a hang guard, not a timing
// assertion.
func within(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: not seen", what)
	}
}

type runOutcome struct {
	res *host.RunResult
	err error
}

// blockingHall opens a Hall with one worker, cap.test.block, built from
// blockWAT(tail), logging to sig.
func blockingHall(t *testing.T, tail string, sig *signals, opts host.Options) *host.Hall {
	t.Helper()
	dir := t.TempDir()
	mod, err := watModule(dir, "block", blockWAT(tail))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(oneRule("cap.test.block", "wrk.test.block", "dev")), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Dir, opts.Logger = dir, slog.New(sig)
	h, err := host.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	// Not deterministic: its poll_oneoff really sleeps.
	enrollOK(t, h, mod, `{"worker_id": "org.acme.block", "worker_species_id": "wrk.test.block", "capabilities": ["cap.test.block"], "risk_tier": "low", "allowed_environments": ["dev"]}`)
	return h
}

// receiptAfterClose reads a receipt from the closed Hall's ledger.
func receiptAfterClose(t *testing.T, h *host.Hall, id string) *ledger.Receipt {
	t.Helper()
	if id == "" {
		t.Fatal("the dispatch has no receipt id")
	}
	s, err := ledger.Open(h.Options().Home, ledger.ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Receipt(context.Background(), id)
	if err != nil {
		t.Fatalf("receipt %s after Close: %v", id, err)
	}
	return r
}

// Close stops admitting, waits for a dispatch in flight to finish and
// commit its receipt, and only then closes the ledger (issue 21: Close
// cancelled running calls and closed the ledger at once, so `hall serve`'s
// shutdown could lose a long worker's receipt).
func TestCloseWaitsForInFlightDispatch(t *testing.T) {
	sig := newSignals("message=started", "hall: closing")
	h := blockingHall(t, sleepTail(300_000_000), sig, host.Options{})
	done := make(chan runOutcome, 1)
	go func() {
		res, err := h.Run(context.Background(), host.RunRequest{Input: routeInput(t, "cap.test.block", "dev", "INTERNAL", "c-wait")})
		done <- runOutcome{res, err}
	}()
	within(t, sig.on("message=started"), "the dispatch starting")
	closed := make(chan error, 1)
	go func() { closed <- h.Close(context.Background()) }()
	select {
	case <-sig.on("hall: closing"):
	case err := <-closed:
		t.Fatalf("Close returned (%v) without announcing that it waits for the dispatch in flight", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("Close neither waited nor returned")
	}
	// Closing: a new dispatch and a new decision are refused.
	if _, err := h.Run(context.Background(), host.RunRequest{Input: routeInput(t, "cap.test.block", "dev", "INTERNAL", "c-late")}); !errors.Is(err, host.ErrClosed) {
		t.Errorf("Run while closing: %v, want ErrClosed (HALL_CLOSED)", err)
	}
	if dec := h.Decide(context.Background(), routeInput(t, "cap.test.block", "dev", "INTERNAL", "c-late")); !dec.Denied || !strings.Contains(dec.DenyReason.Message, string(wcp.CodeHallClosed)) {
		t.Errorf("Decide while closing: denied %v %+v, want a denial naming HALL_CLOSED", dec.Denied, dec.DenyReason)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	out := <-done
	if out.err != nil || out.res.Outcome != "ok" {
		t.Fatalf("the dispatch in flight at Close: err %v outcome %q", out.err, out.res.Outcome)
	}
	if r := receiptAfterClose(t, h, out.res.ReceiptID); r.Outcome != "ok" {
		t.Errorf("receipt outcome %q, want ok", r.Outcome)
	}
}

// A dispatch still running when Close's bound ends is cancelled and
// recorded with outcome CANCELLED before the ledger closes.
func TestCloseCancelsDispatchPastBoundAndRecordsIt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  host.Options
		close func(h *host.Hall) error
	}{
		{"Close's context ends", host.Options{}, func(h *host.Hall) error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return h.Close(ctx)
		}},
		{"ShutdownGrace ends", host.Options{ShutdownGrace: time.Millisecond}, func(h *host.Hall) error {
			return h.Close(context.Background())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := newSignals("message=started")
			h := blockingHall(t, loopTail, sig, tc.opts)
			done := make(chan runOutcome, 1)
			go func() {
				res, err := h.Run(context.Background(), host.RunRequest{Input: routeInput(t, "cap.test.block", "dev", "INTERNAL", "c-loop")})
				done <- runOutcome{res, err}
			}()
			within(t, sig.on("message=started"), "the dispatch starting")
			if err := tc.close(h); err != nil {
				t.Fatalf("Close: %v", err)
			}
			out := <-done
			if out.err != nil || out.res.Outcome != string(wcp.CodeCancelled) || out.res.ReceiptID == "" {
				t.Fatalf("the dispatch cut off by Close: err %v outcome %q receipt %q, want CANCELLED with a receipt", out.err, out.res.Outcome, out.res.ReceiptID)
			}
			if r := receiptAfterClose(t, h, out.res.ReceiptID); r.Outcome != string(wcp.CodeCancelled) {
				t.Errorf("receipt outcome %q, want CANCELLED", r.Outcome)
			}
		})
	}
}

// Closing twice waits for the first Close and returns its result.
func TestCloseTwice(t *testing.T) {
	h := newHall(t, host.Options{})
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(context.Background(), host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")}); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
}

// settledGoroutines waits, bounded, until the process runs at most want
// goroutines and returns the last count seen.
func settledGoroutines(want int) int {
	deadline := time.Now().Add(10 * time.Second)
	n := runtime.NumGoroutine()
	for n > want && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(time.Millisecond) // polling a count, not synchronising
		n = runtime.NumGoroutine()
	}
	return n
}

// Every error return of Open leaves nothing running.
func TestOpenErrorPathsLeakNothing(t *testing.T) {
	write := func(t *testing.T, path, data string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string, o *host.Options)
	}{
		{"hall.json invalid", func(t *testing.T, dir string, o *host.Options) {
			write(t, filepath.Join(dir, "hall.json"), `{"require_signatori": true}`, 0o644)
		}},
		{"rules.json invalid", func(t *testing.T, dir string, o *host.Options) {
			write(t, filepath.Join(dir, "rules.json"), `{"rules": [{"rule_id": 1}]}`, 0o644)
		}},
		{"rules.json missing", func(t *testing.T, dir string, o *host.Options) {}},
		{"key file readable by others", func(t *testing.T, dir string, o *host.Options) {
			o.KeyFile = filepath.Join(t.TempDir(), "k.key")
			write(t, o.KeyFile, "not a key", 0o644)
		}},
		{"key file malformed", func(t *testing.T, dir string, o *host.Options) {
			o.KeyFile = filepath.Join(t.TempDir(), "k.key")
			write(t, o.KeyFile, "not a key", 0o600)
		}},
		{"ledger not a database", func(t *testing.T, dir string, o *host.Options) {
			write(t, filepath.Join(dir, ".hall", ledger.DBFile), "this is not a database, only text long enough to be read as a header", 0o600)
		}},
		{"ledger schema newer than this Hall", func(t *testing.T, dir string, o *host.Options) {
			home := filepath.Join(dir, ".hall")
			if err := os.MkdirAll(home, 0o700); err != nil {
				t.Fatal(err)
			}
			db, err := sql.Open("sqlite", filepath.Join(home, ledger.DBFile))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.ExecContext(context.Background(), "PRAGMA user_version = 9999"); err != nil {
				t.Fatal(err)
			}
		}},
		{"state directory unreadable", func(t *testing.T, dir string, o *host.Options) {
			if os.Geteuid() == 0 {
				t.Skip("root reads any directory")
			}
			home := filepath.Join(dir, ".hall")
			if err := os.MkdirAll(home, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(home, 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(home, 0o700) })
		}},
		{"state directory is a file", func(t *testing.T, dir string, o *host.Options) {
			write(t, filepath.Join(dir, ".hall"), "x", 0o600)
		}},
		{"policy.json invalid", func(t *testing.T, dir string, o *host.Options) {
			write(t, filepath.Join(dir, "policy.json"), `{"policies": [{"id": "p", "when": "((("}]}`, 0o644)
		}},
		{"memory budget too small", func(t *testing.T, dir string, o *host.Options) {
			o.MemoryBudget = 1
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var o host.Options
			if tc.name != "rules.json missing" {
				write(t, filepath.Join(dir, "rules.json"), oneRule("cap.test.x", "wrk.test.x", "dev"), 0o644)
			}
			tc.setup(t, dir, &o)
			o.Dir = dir
			before := settledGoroutines(runtime.NumGoroutine())
			const opens = 20
			for range opens {
				h, err := host.Open(context.Background(), o)
				if err == nil {
					h.Close(context.Background())
					t.Fatal("Open succeeded; the case does not exercise an error path")
				}
			}
			if after := settledGoroutines(before); after > before {
				t.Errorf("%d failed opens left %d goroutines running (%d before, %d after)", opens, after-before, before, after)
			}
		})
	}
}

// mutationHall is a Hall with a configuration that has every kind of
// shared value (maps, slices, pointers), a worker that echoes its plugin
// config key "k", and a worker whose egress the allowlist refuses.
func mutationHall(t *testing.T) *host.Hall {
	t.Helper()
	dir := t.TempDir()
	echo, err := watModule(dir, "echo", configEchoWAT("k"))
	if err != nil {
		t.Fatal(err)
	}
	m := integModules(t)
	rules := `{"rules": [
	  {"rule_id": "r_echo", "match": {"capability_id": "cap.test.echo", "env": {"in": ["dev"]}},
	   "decision": {"required_controls_suggested": ["ctrl.test.one"], "candidate_workers_ranked": [{"worker_species_id": "wrk.test.echo", "score_hint": 0.5}]}},
	  {"rule_id": "r_egress", "match": {"capability_id": "cap.test.egress", "env": {"in": ["prod"]}},
	   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.egress"}]}}]}`
	hallJSON := `{"egress_allowlist": {"prod": ["api.example.com"]}, "require_signatory": true, "allowed_tenants": ["org.acme"],
	  "enforce_correlation_id": true, "workers": {"org.acme.echo": {"config": {"k": "v"}}}}`
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hall.json"), []byte(hallJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := host.Open(context.Background(), host.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	enrollOK(t, h, echo, `{"worker_id": "org.acme.echo", "worker_species_id": "wrk.test.echo", "capabilities": ["cap.test.echo"], "risk_tier": "low",
	  "allowed_environments": ["dev"], "currently_implements": ["ctrl.test.one"], "required_controls": ["ctrl.test.one"], "config": {"k": "record"}}`)
	enrollOK(t, h, m.pa, `{"worker_id": "org.acme.egress", "worker_species_id": "wrk.test.egress", "capabilities": ["cap.test.egress"], "risk_tier": "low",
	  "allowed_environments": ["prod"], "privilege_envelope": {"network_egress": ["exfil.example.net:443"]},
	  "blast_radius": {"data": 0, "network": 1, "financial": 0, "time": 0, "reversibility": "reversible"}}`)
	return h
}

// configEchoWAT is a worker whose run export outputs the value of its
// plugin config key (Extism config_get).
func configEchoWAT(key string) string {
	return fmt.Sprintf(`(module
	  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
	  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
	  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))
	  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
	  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
	  (memory (export "memory") 1)
	  (data (i32.const 0) %q)
	  (func (export "run") (result i32)
	    (local $offs i64) (local $v i64) (local $i i32)
	    (local.set $offs (call $alloc (i64.const %d)))
	    (block $done (loop $next
	      (br_if $done (i32.ge_u (local.get $i) (i32.const %d)))
	      (call $store_u8 (i64.add (local.get $offs) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
	      (local.set $i (i32.add (local.get $i) (i32.const 1)))
	      (br $next)))
	    (local.set $v (call $config_get (local.get $offs)))
	    (if (i64.ne (local.get $v) (i64.const 0))
	      (then (call $output_set (local.get $v) (call $length (local.get $v)))))
	    (i32.const 0)))`, key, len(key), len(key))
}

// decisionShape is what a decision decides, without its ids and times.
func decisionShape(t *testing.T, d wcp.RouteDecision) string {
	t.Helper()
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"decision_id", "timestamp", "telemetry_envelopes", "correlation_id", "request_hash"} {
		delete(m, k)
	}
	b, _ = json.Marshal(m)
	return string(b)
}

// Changing any value the Hall's public API returns changes nothing the
// Hall decides or dispatches (issue 21: appending to
// Config().EgressAllowlist changed the live allowlist; setting
// Rules().Rules = nil emptied the rules in force).
func TestPublicValuesCannotChangeTheHall(t *testing.T) {
	h := mutationHall(t)
	ctx := context.Background()
	requests := map[string]*wcp.RouteInput{
		"echo":           routeInput(t, "cap.test.echo", "dev", "INTERNAL", "c-echo"),
		"egress":         routeInput(t, "cap.test.egress", "prod", "RESTRICTED", "c-egress"),
		"unknown tenant": routeInput(t, "cap.test.echo", "dev", "INTERNAL", "c-evil"),
		"no correlation": routeInput(t, "cap.test.echo", "dev", "INTERNAL", "c-none"),
	}
	requests["unknown tenant"].TenantID = "org.evil"
	requests["no correlation"].CorrelationID = ""
	decide := func() map[string]string {
		out := map[string]string{}
		for name, in := range requests {
			c := *in
			out[name] = decisionShape(t, h.Decide(ctx, &c))
		}
		return out
	}
	run := func() *host.RunResult {
		t.Helper()
		c := *requests["echo"]
		res, err := h.Run(ctx, host.RunRequest{Input: &c})
		if err != nil || res.Outcome != "ok" {
			t.Fatalf("run: %v %+v", err, res)
		}
		return res
	}
	want := decide()
	if !strings.Contains(want["egress"], "DENY_PRIVILEGE_ENVELOPE_VIOLATED") || !strings.Contains(want["unknown tenant"], "DENY_UNKNOWN_TENANT") ||
		!strings.Contains(want["no correlation"], "DENY_MISSING_CORRELATION_ID") || strings.Contains(want["echo"], "DENY_") {
		t.Fatalf("the fixture does not decide as expected: %v", want)
	}
	first := run()
	if string(first.Output) != "v" {
		t.Fatalf("echo output %q, want hall.json's override v", first.Output)
	}

	// Change everything that came back.
	cfg := h.Config()
	cfg.EgressAllowlist["prod"] = append(cfg.EgressAllowlist["prod"], "exfil.example.net")
	cfg.EgressAllowlist["prod"][0] = "exfil.example.net"
	cfg.EgressAllowlist["dev"] = []string{"x"}
	cfg.AllowedTenants[0] = "org.evil"
	cfg.AllowedTenants = append(cfg.AllowedTenants, "org.evil")
	if cfg.EnforceCorrelationID != nil {
		*cfg.EnforceCorrelationID = false
	}
	cfg.Workers["org.acme.echo"].Config["k"] = "changed"
	cfg.RequireSignatory = false

	rs := h.Rules()
	for _, r := range rs.Rules {
		if c := r.Controls(); len(c) > 0 {
			c[0] = "ctrl.test.changed"
		}
		r.ID = "changed"
	}
	if ids := rs.ShadowedIDs(); len(ids) > 0 {
		ids[0] = "changed"
	}
	rs.Shadows = append(rs.Shadows, router.Shadow{Shadower: "a", Shadowed: "b"})
	rs.Warnings = append(rs.Warnings, "changed")
	rs.Rules = nil

	if w := h.Warnings(); len(w) > 0 {
		w[0] = "changed"
	}
	reg := h.Registry()
	for _, rec := range reg.Records() {
		rec.Capabilities = nil
		rec.WorkerSpeciesID = "wrk.changed"
	}
	if rec, ok := reg.Record("org.acme.echo"); ok {
		rec.CurrentlyImplements = nil
	}
	for c, species := range reg.Capabilities() {
		species[0] = "wrk.changed"
		_ = c
	}
	if ctl := reg.Controls(); len(ctl) > 0 {
		ctl[0] = "ctrl.changed"
	}
	o := h.Options()
	o.Rules, o.RegistryDir, o.Home = "x", "x", "x"
	if p := first.Plan; p != nil {
		env := p.Envelope()
		for i := range env {
			env[i] = ' '
		}
	}
	first.Decision.RequiredControlsEffective = append(first.Decision.RequiredControlsEffective[:0], "ctrl.changed")
	d := h.Decide(ctx, requests["echo"])
	if len(d.RequiredControlsEffective) > 0 {
		d.RequiredControlsEffective[0] = "ctrl.changed"
	}
	for _, c := range d.CandidateWorkersRanked {
		if c.ScoreHint != nil {
			*c.ScoreHint = 99
		}
	}
	if d.EscalationEffective.Rationale != nil {
		*d.EscalationEffective.Rationale = "changed"
	}

	if got := decide(); fmt.Sprint(got) != fmt.Sprint(want) {
		for name := range want {
			if got[name] != want[name] {
				t.Errorf("%s: the decision changed after the values the Hall returned were changed:\n got  %s\n want %s", name, got[name], want[name])
			}
		}
	}
	if again := run(); string(again.Output) != "v" || again.WorkerID != first.WorkerID || again.Limits != first.Limits {
		t.Errorf("the dispatch changed: output %q worker %s limits %+v, want v %s %+v", again.Output, again.WorkerID, again.Limits, first.WorkerID, first.Limits)
	}
	if h.Rules().Rules == nil || h.Rules().Rules[0].ID != "r_echo" || len(h.Rules().Shadows) != 0 {
		t.Errorf("Rules() shows the changes made to an earlier copy")
	}
	if cfg := h.Config(); len(cfg.EgressAllowlist["prod"]) != 1 || cfg.AllowedTenants[0] != "org.acme" || cfg.Workers["org.acme.echo"].Config["k"] != "v" {
		t.Errorf("Config() shows the changes made to an earlier copy: %+v", cfg)
	}
}

// Shutdown drains like Close but keeps the evidence readable until Close:
// a server answers its requests in flight after the dispatches stopped.
func TestShutdownKeepsEvidenceReadable(t *testing.T) {
	sig := newSignals("message=started")
	h := blockingHall(t, loopTail, sig, host.Options{ShutdownGrace: -1})
	done := make(chan runOutcome, 1)
	go func() {
		res, err := h.Run(context.Background(), host.RunRequest{Input: routeInput(t, "cap.test.block", "dev", "INTERNAL", "c-shutdown")})
		done <- runOutcome{res, err}
	}()
	within(t, sig.on("message=started"), "the dispatch starting")
	if err := h.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	out := <-done
	if out.err != nil || out.res.Outcome != string(wcp.CodeCancelled) {
		t.Fatalf("the dispatch cut off by Shutdown: err %v outcome %q", out.err, out.res.Outcome)
	}
	if r := receiptOf(t, h, out.res.ReceiptID); r.Outcome != string(wcp.CodeCancelled) {
		t.Errorf("receipt outcome %q, want CANCELLED", r.Outcome)
	}
	if _, err := h.Run(context.Background(), host.RunRequest{Input: routeInput(t, "cap.test.block", "dev", "INTERNAL", "c-after")}); !errors.Is(err, host.ErrClosed) {
		t.Errorf("Run after Shutdown: %v, want ErrClosed", err)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Errorf("a second Shutdown: %v", err)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatalf("Close after Shutdown: %v", err)
	}
	if _, err := h.Evidence(); !errors.Is(err, host.ErrClosed) {
		t.Errorf("Evidence after Close: %v, want ErrClosed", err)
	}
}
