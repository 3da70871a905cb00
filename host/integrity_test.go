package host_test

// Regression tests of issue 9 ("Decided is what runs") at the embedding
// API: what a decision binds (worker, module, record, envelope) is what
// runs and what the receipt names, whatever happens on disk, in the
// caller's context or in the caller's hands afterwards.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/wasmmod"
)

// integModSet is this file's WAT workers, built once on first use.
type integModSet struct {
	once    sync.Once
	err     error
	pa, pb  []byte // run outputs "from p-a" / "from p-b"
	loop    []byte // run never returns
	sleeper []byte // run sleeps 1 s (WASI poll_oneoff) and outputs nothing
}

var integMods integModSet

func integModules(t testing.TB) *integModSet {
	t.Helper()
	m := &integMods
	m.once.Do(func() {
		dir, err := os.MkdirTemp("", "hall-integrity")
		if err != nil {
			m.err = err
			return
		}
		defer os.RemoveAll(dir)
		for _, w := range []struct {
			dst  *[]byte
			name string
			src  string
		}{
			{&m.pa, "pa", sayWAT("from p-a")},
			{&m.pb, "pb", sayWAT("from p-b")},
			{&m.loop, "loop", `(module (memory (export "memory") 1) (func (export "run") (result i32) (loop $forever (br $forever)) (i32.const 0)))`},
			{&m.sleeper, "sleeper", sleepWAT(1_000_000_000)},
		} {
			if *w.dst, m.err = watModule(dir, w.name, w.src); m.err != nil {
				return
			}
		}
	})
	if m.err != nil {
		t.Fatal(m.err)
	}
	return m
}

// sayWAT is a worker whose run export outputs text.
func sayWAT(text string) string {
	return fmt.Sprintf(`(module
	  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
	  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
	  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
	  (memory (export "memory") 1)
	  (data (i32.const 0) %q)
	  (func (export "run") (result i32)
	    (local $offs i64) (local $i i32)
	    (local.set $offs (call $alloc (i64.const %d)))
	    (block $done (loop $next
	      (br_if $done (i32.ge_u (local.get $i) (i32.const %d)))
	      (call $store_u8 (i64.add (local.get $offs) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
	      (local.set $i (i32.add (local.get $i) (i32.const 1)))
	      (br $next)))
	    (call $output_set (local.get $offs) (i64.const %d))
	    (i32.const 0)))`, text, len(text), len(text), len(text))
}

// sleepWAT is a worker whose run export sleeps ns nanoseconds on the
// monotonic clock through WASI poll_oneoff (a real sleep for a worker that
// does not declare determinism "full").
func sleepWAT(ns int64) string {
	return fmt.Sprintf(`(module
	  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
	  (memory (export "memory") 1)
	  (func (export "run") (result i32)
	    (i32.store8 (i32.const 8) (i32.const 0))   ;; tag: clock
	    (i32.store (i32.const 16) (i32.const 1))   ;; clock id: monotonic
	    (i64.store (i32.const 24) (i64.const %d))  ;; timeout, relative
	    (i64.store (i32.const 32) (i64.const 0))   ;; precision
	    (i32.store16 (i32.const 40) (i32.const 0)) ;; flags
	    (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
	    (i32.const 0)))`, ns)
}

// openInteg opens a Hall over a fresh directory with rules and an optional
// hall.json.
func openInteg(t *testing.T, rules, hallJSON string, opts host.Options) *host.Hall {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if hallJSON != "" {
		if err := os.WriteFile(filepath.Join(dir, "hall.json"), []byte(hallJSON), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts.Dir = dir
	h, err := host.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h
}

// oneRule routes capability to species in envs.
func oneRule(capability, species string, envs ...string) string {
	e, _ := json.Marshal(envs)
	return fmt.Sprintf(`{"rules": [{"rule_id": "r1", "match": {"capability_id": %q, "env": {"in": %s}},
	  "decision": {"candidate_workers_ranked": [{"worker_species_id": %q}]}}]}`, capability, e, species)
}

func routeInput(t *testing.T, capability, env, label, corr string) *wcp.RouteInput {
	t.Helper()
	in, err := wcp.ParseRouteInput(fmt.Appendf(nil, `{"capability_id": %q, "env": %q, "data_label": %q, "tenant_risk": "low", "qos_class": "P2", "tenant_id": "org.acme", "correlation_id": %q}`, capability, env, label, corr))
	if err != nil {
		t.Fatal(err)
	}
	return &in
}

func enrollOK(t *testing.T, h *host.Hall, module []byte, rec string) *host.EnrollResult {
	t.Helper()
	res, err := h.Enroll(context.Background(), host.EnrollRequest{Module: module, Record: []byte(rec)})
	if err != nil {
		t.Fatalf("enroll: %v", err)
	}
	return res
}

func receiptOf(t *testing.T, h *host.Hall, id string) *ledger.Receipt {
	t.Helper()
	store, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	r, err := store.Receipt(context.Background(), id)
	if err != nil {
		t.Fatalf("receipt %s: %v", id, err)
	}
	return r
}

// Behaviour 1: of two workers of one species, the one whose
// allowed_environments admit the env is decided, run and receipted.
func TestIntegrityBindingRunsEligibleWorker(t *testing.T) {
	m := integModules(t)
	h := openInteg(t, oneRule("cap.test.pick", "wrk.test.pick", "dev", "stage"), "", host.Options{})
	enrollOK(t, h, m.pa, `{"worker_id": "org.acme.p-a", "worker_species_id": "wrk.test.pick", "capabilities": ["cap.test.pick"], "risk_tier": "low", "allowed_environments": ["dev", "stage"]}`)
	enrollOK(t, h, m.pb, `{"worker_id": "org.acme.p-b", "worker_species_id": "wrk.test.pick", "capabilities": ["cap.test.pick"], "risk_tier": "low", "allowed_environments": ["dev"]}`)
	ctx := context.Background()
	for _, tc := range []struct {
		env, worker, output string
		module              []byte
	}{
		{"stage", "org.acme.p-a", "from p-a", m.pa},
		{"dev", "org.acme.p-b", "from p-b", m.pb},
	} {
		t.Run(tc.env, func(t *testing.T) {
			want := digest(tc.module)
			dec := h.Decide(ctx, routeInput(t, "cap.test.pick", tc.env, "INTERNAL", "c-decide-"+tc.env))
			if dec.Denied || string(dec.ArtifactHash) != want {
				t.Errorf("decision: denied %v (%v), artifact %s, want %s (%s)", dec.Denied, dec.DenyReason, dec.ArtifactHash, want, tc.worker)
			}
			res, err := h.Run(ctx, host.RunRequest{Input: routeInput(t, "cap.test.pick", tc.env, "INTERNAL", "c-run-"+tc.env)})
			if err != nil || res.Outcome != "ok" {
				t.Fatalf("run: %v %+v", err, res)
			}
			if res.WorkerID != tc.worker || string(res.Output) != tc.output || string(res.Decision.ArtifactHash) != want {
				t.Errorf("ran %s with output %q under a decision for %s, want %s %q %s", res.WorkerID, res.Output, res.Decision.ArtifactHash, tc.worker, tc.output, want)
			}
			if r := receiptOf(t, h, res.ReceiptID); r.WorkerID != tc.worker || r.ArtifactHash != want {
				t.Errorf("receipt names %s %s, want %s %s", r.WorkerID, r.ArtifactHash, tc.worker, want)
			}
		})
	}
}

// Behaviour 2: an enrolled record edited on disk is reported by a fresh
// Hall and its worker is denied DENY_WORKER_TAMPERED.
func TestIntegritySealedRecordEditedOnDisk(t *testing.T) {
	m := integModules(t)
	for _, tc := range []struct {
		name string
		edit func(rec map[string]any, dir string)
	}{
		{"filesystem_writes widened", func(rec map[string]any, dir string) {
			pe := rec["privilege_envelope"].(map[string]any)
			pe["filesystem_writes"] = append(pe["filesystem_writes"].([]any), filepath.Join(dir, "widened"))
		}},
		{"risk_tier changed", func(rec map[string]any, _ string) { rec["risk_tier"] = "critical" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := openInteg(t, oneRule("cap.test.seal", "wrk.test.seal", "dev"), "", host.Options{})
			out := t.TempDir()
			res := enrollOK(t, h, m.pa, fmt.Sprintf(`{"worker_id": "org.acme.seal", "worker_species_id": "wrk.test.seal", "capabilities": ["cap.test.seal"], "risk_tier": "low",
			  "privilege_envelope": {"network_egress": "none", "filesystem_writes": [%q]}}`, filepath.Join(out, "granted")))
			b, err := os.ReadFile(res.RecordPath)
			if err != nil {
				t.Fatal(err)
			}
			var rec map[string]any
			if err := json.Unmarshal(b, &rec); err != nil {
				t.Fatal(err)
			}
			tc.edit(rec, out)
			b, _ = json.MarshalIndent(rec, "", "  ")
			if err := os.WriteFile(res.RecordPath, b, 0o644); err != nil {
				t.Fatal(err)
			}

			h2 := reopen(t, h)
			rel := filepath.Join("enrolled", "org.acme.seal.json")
			if p := h2.Problems(); p == nil || !strings.Contains(p.Error(), rel) {
				t.Errorf("Problems() = %v, want the edited %s named", p, rel)
			}
			dec := h2.Decide(context.Background(), routeInput(t, "cap.test.seal", "dev", "INTERNAL", "c-seal"))
			if !dec.Denied || dec.Code() != wcp.DenyWorkerTampered {
				t.Errorf("decision: denied %v code %q, want DENY_WORKER_TAMPERED", dec.Denied, dec.Code())
			}
			r, err := h2.Run(context.Background(), host.RunRequest{Input: routeInput(t, "cap.test.seal", "dev", "INTERNAL", "c-seal-run")})
			if err == nil && r.Ran {
				t.Errorf("%s ran under the edited record: outcome %s, output %q", r.WorkerID, r.Outcome, r.Output)
			}
			if _, err := os.Stat(filepath.Join(out, "widened")); err == nil {
				t.Errorf("the widened directory was created for the sandbox")
			}
		})
	}
}

// appendCustomSection appends a custom section (id 0, LEB128 size, LEB128
// name length, name, payload), even one whose name is already present.
func appendCustomSection(module []byte, name string, payload []byte) []byte {
	uleb := func(b []byte, v uint32) []byte {
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v != 0 {
				b = append(b, c|0x80)
				continue
			}
			return append(b, c)
		}
	}
	body := uleb(nil, uint32(len(name)))
	body = append(append(body, name...), payload...)
	out := append([]byte(nil), module...)
	out = append(out, 0)
	out = uleb(out, uint32(len(body)))
	return append(out, body...)
}

// Behaviour 4: a module carrying two wcp.record sections is refused,
// whether or not a record is passed beside it.
func TestIntegrityEnrollRefusesTwoRecordSections(t *testing.T) {
	rec := string(record("org.acme.twice", "wrk.test.twice", "cap.test.twice", ""))
	one, err := wasmmod.SetCustomSection(mods.tiny, host.RecordSection, []byte(rec))
	if err != nil {
		t.Fatal(err)
	}
	two := appendCustomSection(one, host.RecordSection, record("org.acme.twice", "wrk.test.twice", "cap.test.twice", `, "privilege_envelope": {"filesystem_writes": ["/etc"]}`))
	for _, tc := range []struct {
		name   string
		record []byte
	}{
		{"embedded only", nil},
		{"with --record", []byte(rec)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := openInteg(t, oneRule("cap.test.twice", "wrk.test.twice", "dev"), "", host.Options{})
			_, err := h.Enroll(context.Background(), host.EnrollRequest{Module: two, Record: tc.record})
			var ee *host.EnrollError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v, want an *EnrollError", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, host.RecordSection) || !regexp.MustCompile(`\b2\b|two|more than one`).MatchString(msg) {
				t.Errorf("the error does not say the module has two %s sections: %s", host.RecordSection, msg)
			}
			if _, err := os.Stat(filepath.Join(h.Options().RegistryDir, "org.acme.twice.json")); err == nil {
				t.Error("the module was enrolled")
			}
		})
	}
}

// Behaviour 5: a receipt carries the digest of the record in force and its
// privilege envelope.
func TestIntegrityReceiptCarriesRecordInForce(t *testing.T) {
	m := integModules(t)
	h := openInteg(t, oneRule("cap.test.env", "wrk.test.env", "dev"), "", host.Options{})
	res := enrollOK(t, h, m.pa, fmt.Sprintf(`{"worker_id": "org.acme.env", "worker_species_id": "wrk.test.env", "capabilities": ["cap.test.env"], "risk_tier": "low",
	  "privilege_envelope": {"network_egress": "none", "filesystem_writes": [%q]}}`, filepath.Join(t.TempDir(), "out")))
	run, err := h.Run(context.Background(), host.RunRequest{Input: routeInput(t, "cap.test.env", "dev", "INTERNAL", "c-env")})
	if err != nil || run.Outcome != "ok" {
		t.Fatalf("run: %v %+v", err, run)
	}
	r := receiptOf(t, h, run.ReceiptID)
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(r.RecordDigest) {
		t.Errorf("RecordDigest %q, want sha256:<64 hex>", r.RecordDigest)
	}
	var enrolled struct {
		Envelope any `json:"privilege_envelope"`
	}
	b, err := os.ReadFile(res.RecordPath)
	if err != nil || json.Unmarshal(b, &enrolled) != nil {
		t.Fatalf("enrolled record: %v\n%s", err, b)
	}
	var got any
	if err := json.Unmarshal(r.Envelope, &got); err != nil || !reflect.DeepEqual(got, enrolled.Envelope) {
		t.Errorf("Envelope %s (%v), want the record's %v", r.Envelope, err, enrolled.Envelope)
	}
}

// Behaviour 6: in an env with an egress_allowlist, a worker whose
// network_egress names a host outside it is denied; one inside it (an
// entry without a port allows the host on any port) is allowed.
func TestIntegrityEgressAllowlistConstrainsEnvelope(t *testing.T) {
	m := integModules(t)
	for _, tc := range []struct {
		egress string
		denied bool
	}{
		{"exfil.example.net:443", true},
		{"api.example.com:443", false},
	} {
		t.Run(tc.egress, func(t *testing.T) {
			h := openInteg(t, oneRule("cap.test.egress", "wrk.test.egress", "prod"), `{"egress_allowlist": {"prod": ["api.example.com"]}}`, host.Options{})
			enrollOK(t, h, m.pa, fmt.Sprintf(`{"worker_id": "org.acme.egress", "worker_species_id": "wrk.test.egress", "capabilities": ["cap.test.egress"], "risk_tier": "low",
			  "allowed_environments": ["prod"], "privilege_envelope": {"network_egress": [%q]},
			  "blast_radius": {"data": 0, "network": 1, "financial": 0, "time": 0, "reversibility": "reversible"}}`, tc.egress))
			dec := h.Decide(context.Background(), routeInput(t, "cap.test.egress", "prod", "RESTRICTED", "c-egress"))
			if tc.denied && (!dec.Denied || dec.Code() != wcp.DenyPrivilegeEnvelopeViolated) {
				t.Errorf("network_egress %s in prod with allowlist [api.example.com]: denied %v code %q, want DENY_PRIVILEGE_ENVELOPE_VIOLATED", tc.egress, dec.Denied, dec.Code())
			}
			if !tc.denied && dec.Denied {
				t.Errorf("network_egress %s within the allowlist: denied %s %v", tc.egress, dec.Code(), dec.DenyReason)
			}
		})
	}
}

// Behaviour 7: a dispatch whose caller gives up while the worker runs
// leaves exactly one receipt, with outcome CANCELLED.
func TestIntegrityCancelledRunLeavesReceipt(t *testing.T) {
	m := integModules(t)
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 300*time.Millisecond)
		}},
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The worker's own limit (30 s) is far beyond the caller's.
			h := openInteg(t, oneRule("cap.test.loop", "wrk.test.loop", "dev"), `{"limits": {"timeout_ms": 60000}}`, host.Options{})
			enrollOK(t, h, m.loop, `{"worker_id": "org.acme.loop", "worker_species_id": "wrk.test.loop", "capabilities": ["cap.test.loop"], "risk_tier": "low", "limits": {"timeout_ms": 30000}}`)
			corr := "c-cancel-" + tc.name
			ctx, cancel := tc.ctx()
			defer cancel()
			in := routeInput(t, "cap.test.loop", "dev", "INTERNAL", corr)
			done := make(chan struct{})
			go func() {
				defer close(done)
				h.Run(ctx, host.RunRequest{Input: in})
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return within 10 s of its context ending")
			}
			store, err := h.Evidence()
			if err != nil {
				t.Fatal(err)
			}
			rs, err := store.Receipts(context.Background(), ledger.Filter{CorrelationID: corr})
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 1 || rs[0].Outcome != "CANCELLED" {
				var outcomes []string
				for _, r := range rs {
					outcomes = append(outcomes, r.Outcome)
				}
				t.Fatalf("%d receipts for %s with outcomes %v, want exactly one CANCELLED", len(rs), corr, outcomes)
			}
		})
	}
}

// Behaviour 8a: a closed Hall refuses every call that needs its state.
func TestIntegrityClosedHallRefuses(t *testing.T) {
	m := integModules(t)
	h := openInteg(t, oneRule("cap.test.pick", "wrk.test.pick", "dev"), "", host.Options{})
	enrollOK(t, h, m.pa, `{"worker_id": "org.acme.p-a", "worker_species_id": "wrk.test.pick", "capabilities": ["cap.test.pick"], "risk_tier": "low"}`)
	ctx := context.Background()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(ctx); err != nil && !errors.Is(err, host.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	_, runErr := h.Run(ctx, host.RunRequest{Input: routeInput(t, "cap.test.pick", "dev", "INTERNAL", "c-closed")})
	_, routeErr := h.Route(ctx, routeInput(t, "cap.test.pick", "dev", "INTERNAL", "c-closed-route"))
	_, enrollErr := h.Enroll(ctx, host.EnrollRequest{Module: m.pb, Record: []byte(`{"worker_id": "org.acme.p-b", "worker_species_id": "wrk.test.pick", "capabilities": ["cap.test.pick"], "risk_tier": "low"}`)})
	for _, c := range []struct {
		name string
		err  error
	}{{"Run", runErr}, {"Route", routeErr}, {"Enroll", enrollErr}} {
		if !errors.Is(c.err, host.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", c.name, c.err)
		}
	}
}

// decisionSignal is the real SQLite ledger, closing decided once the
// decision of correlation id corr is committed (Run commits it just
// before it calls the worker).
type decisionSignal struct {
	ledger.Store
	corr    string
	once    sync.Once
	decided chan struct{}
}

func (s *decisionSignal) RecordDecision(ctx context.Context, d ledger.DecisionRecord) error {
	err := s.Store.RecordDecision(ctx, d)
	if d.CorrelationID == s.corr {
		s.once.Do(func() { close(s.decided) })
	}
	return err
}

// Behaviour 8b: re-enrolling a worker while a call to it is in flight
// neither breaks the call nor changes what it ran: the call completes
// with the module it was decided for, the next one runs the new module.
func TestIntegrityReenrollDuringCallKeepsDecidedModule(t *testing.T) {
	m := integModules(t)
	store, err := ledger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sig := &decisionSignal{Store: store, corr: "c-inflight", decided: make(chan struct{})}
	h := openInteg(t, oneRule("cap.test.sleep", "wrk.test.sleep", "dev"), "", host.Options{Stores: &host.Stores{Evidence: sig}})
	rec := `{"worker_id": "org.acme.sleeper", "worker_species_id": "wrk.test.sleep", "capabilities": ["cap.test.sleep"], "risk_tier": "low", "limits": {"timeout_ms": 8000}}`
	enrollOK(t, h, m.sleeper, rec)
	v2, err := wasmmod.SetCustomSection(m.sleeper, "hall.test", []byte("v2"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type ran struct {
		res *host.RunResult
		err error
	}
	in := routeInput(t, "cap.test.sleep", "dev", "INTERNAL", "c-inflight")
	first := make(chan ran, 1)
	go func() {
		res, err := h.Run(ctx, host.RunRequest{Input: in})
		first <- ran{res, err}
	}()
	select {
	case <-sig.decided:
	case r := <-first:
		t.Fatalf("the first run returned before its decision was recorded: %v %+v", r.err, r.res)
	}
	// The worker sleeps 1 s: the re-enrollment starts during the call.
	select {
	case r := <-first:
		t.Fatalf("fixture: the call ended before the re-enrollment began (the guest did not sleep): %v %+v", r.err, r.res)
	default:
	}
	enrollOK(t, h, v2, rec)
	var r ran
	select {
	case r = <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("the call in flight during re-enrollment did not return within 30 s")
	}
	if r.err != nil || r.res.Outcome != "ok" {
		t.Fatalf("the call in flight during re-enrollment: err %v outcome %q (%v)", r.err, r.res.Outcome, r.res.Err)
	}
	if got := receiptOf(t, h, r.res.ReceiptID).ArtifactHash; got != digest(m.sleeper) {
		t.Errorf("the call in flight is receipted as %s, want the module it was decided for %s", got, digest(m.sleeper))
	}
	next, err := h.Run(ctx, host.RunRequest{Input: routeInput(t, "cap.test.sleep", "dev", "INTERNAL", "c-next")})
	if err != nil || next.Outcome != "ok" {
		t.Fatalf("next run: %v %+v", err, next)
	}
	if got := receiptOf(t, h, next.ReceiptID).ArtifactHash; got != digest(v2) {
		t.Errorf("the next call is receipted as %s, want the new module %s", got, digest(v2))
	}
}

// Behaviour 9: the record handed back by Enroll is the caller's copy:
// changing it changes nothing the Hall grants.
func TestIntegrityEnrollResultRecordIsACopy(t *testing.T) {
	m := integModules(t)
	h := openInteg(t, oneRule("cap.test.copy", "wrk.test.copy", "dev", "stage"), "", host.Options{})
	granted, smuggled := filepath.Join(t.TempDir(), "granted"), filepath.Join(t.TempDir(), "smuggled")
	res := enrollOK(t, h, m.pa, fmt.Sprintf(`{"worker_id": "org.acme.copy", "worker_species_id": "wrk.test.copy", "capabilities": ["cap.test.copy"], "risk_tier": "low",
	  "allowed_environments": ["dev"], "privilege_envelope": {"network_egress": "none", "filesystem_writes": [%q]}}`, granted))
	b, err := os.ReadFile(res.RecordPath)
	if err != nil {
		t.Fatal(err)
	}
	var enrolled struct {
		Envelope any `json:"privilege_envelope"`
	}
	if err := json.Unmarshal(b, &enrolled); err != nil {
		t.Fatal(err)
	}

	res.Record.AllowedEnvironments = append(res.Record.AllowedEnvironments, "stage")
	res.Record.PrivilegeEnvelope.FilesystemWrites = append(res.Record.PrivilegeEnvelope.FilesystemWrites, smuggled)

	ctx := context.Background()
	if dec := h.Decide(ctx, routeInput(t, "cap.test.copy", "stage", "INTERNAL", "c-copy-stage")); !dec.Denied {
		t.Errorf("stage was allowed after the caller edited EnrollResult.Record.AllowedEnvironments")
	}
	run, err := h.Run(ctx, host.RunRequest{Input: routeInput(t, "cap.test.copy", "dev", "INTERNAL", "c-copy-dev")})
	if err != nil || run.Outcome != "ok" {
		t.Fatalf("run: %v %+v", err, run)
	}
	var got any
	if env := receiptOf(t, h, run.ReceiptID).Envelope; json.Unmarshal(env, &got) != nil || !reflect.DeepEqual(got, enrolled.Envelope) {
		t.Errorf("receipt envelope %s, want the enrolled %v", env, enrolled.Envelope)
	}
	if _, err := os.Stat(smuggled); err == nil {
		t.Errorf("the directory the caller appended was created for the sandbox")
	}
}

// Issue 9: decisions carried pointers into the compiled rules; a caller
// that changed the decision it was handed changed every later decision.
func TestIntegrityDecisionDoesNotAliasRules(t *testing.T) {
	h := newHall(t, host.Options{})
	ctx := context.Background()
	doc := `{"rules": [{"rule_id": "tiny", "match": {"capability_id": "cap.test.tiny"},
	  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.tiny"}],
	    "required_controls_suggested": ["ctrl.obs.audit-log-append-only"],
	    "recommended_profiles": [{"profile_id": "p.safe"}],
	    "escalation": {"policy_gate": false, "human_required_default": false, "human_required_if": [], "rationale": "kept"}}}]}`
	if _, _, err := h.ReplaceRules(ctx, []byte(doc), "", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: mods.tiny, Record: record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny",
		`, "currently_implements": ["ctrl.obs.audit-log-append-only"]`)}); err != nil {
		t.Fatal(err)
	}
	first := h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	if first.Denied || len(first.RequiredControlsEffective) != 1 || first.EscalationEffective.Rationale == nil {
		t.Fatalf("first decision: %+v", first)
	}
	first.RequiredControlsEffective[0] = "ctrl.tampered"
	*first.EscalationEffective.Rationale = "tampered"
	for i := range first.RecommendedProfilesEffective {
		first.RecommendedProfilesEffective[i] = ' '
	}
	second := h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	if second.RequiredControlsEffective[0] != "ctrl.obs.audit-log-append-only" || *second.EscalationEffective.Rationale != "kept" ||
		!strings.Contains(string(second.RecommendedProfilesEffective), "p.safe") {
		t.Fatalf("changing one decision changed the next: controls %v, rationale %q, profiles %s",
			second.RequiredControlsEffective, *second.EscalationEffective.Rationale, second.RecommendedProfilesEffective)
	}
}

// Issue 9: "hall audit verify checks them": a receipt's record digest,
// module and envelope must agree with the enrollment the change chain
// sealed. A receipt appended with an envelope its worker was never
// enrolled with (signed with the Hall's own key) is reported.
func TestIntegrityReceiptsAgreeWithEnrollments(t *testing.T) {
	h := newHall(t, host.Options{})
	ctx := context.Background()
	res, err := h.Run(ctx, host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("run: %v %+v", err, res)
	}
	ev, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(h.Options().Home)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if breaks, err := ledger.CheckReceiptsAgainstEnrollments(ctx, l); err != nil || len(breaks) != 0 {
		t.Fatalf("a sound ledger: %v %v", breaks, err)
	}
	r, err := ev.Receipt(ctx, res.ReceiptID)
	if err != nil {
		t.Fatal(err)
	}
	forged := *r
	forged.ReceiptID, forged.Sequence, forged.PrevReceiptHash, forged.ReceiptHash, forged.Signature = "", 0, "", "", ""
	forged.Envelope = json.RawMessage(`{"filesystem_writes":["/etc"]}`)
	if err := l.Append(ctx, &forged); err != nil {
		t.Fatal(err)
	}
	breaks, err := ledger.CheckReceiptsAgainstEnrollments(ctx, l)
	if err != nil || len(breaks) != 1 || breaks[0].ReceiptID != forged.ReceiptID || !strings.Contains(breaks[0].Reason, "privilege_envelope") {
		t.Fatalf("forged envelope: %v %v", breaks, err)
	}
}
