package host_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	extism "github.com/extism/go-sdk"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/wasmmod"
	"github.com/wcphall/hall/internal/wasmtest"
)

// Real modules, built once per test binary.
var mods struct {
	summarizer []byte // standard-Go worker (plugins/summarizer)
	tiny       []byte // WAT: run returns 0
	hog        []byte // WAT: grows memory until refused, then traps
	logger     []byte // WAT: logs a line through Extism's log_info
	emitter    []byte // WAT: emits one telemetry event through hall_emit
}

func TestMain(m *testing.M) {
	// Guest log lines pass Extism's process-wide level filter, off by
	// default; the Hall leaves it to the program (the hall CLI raises it),
	// and so does this test binary.
	extism.SetLogLevel(extism.LogLevelInfo)
	dir, err := os.MkdirTemp("", "hall-host-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := buildModules(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildModules(dir string) error {
	var err error
	if mods.summarizer, err = wasmtest.Build("../plugins/summarizer"); err != nil {
		return err
	}
	if mods.tiny, err = watModule(dir, "tiny", `(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))`); err != nil {
		return err
	}
	if mods.logger, err = watModule(dir, "logger", passBlock("extism:host/env", "log_info", "hello from the guest")); err != nil {
		return err
	}
	if mods.emitter, err = watModule(dir, "emitter", passBlock("extism:host/user", "hall_emit", `{"event_id":"evt.test.done","n":1}`)); err != nil {
		return err
	}
	mods.hog, err = watModule(dir, "hog", `(module (memory (export "memory") 1)
	  (func (export "run") (result i32)
	    (loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
	    unreachable))`)
	return err
}

// passBlock is a WAT worker whose run export copies text into an Extism
// kernel block and passes it to the host function module.name (i64) -> ().
func passBlock(module, name, text string) string {
	return fmt.Sprintf(`(module
	  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
	  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
	  (import %q %q (func $host (param i64)))
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
	    (call $host (local.get $offs))
	    (i32.const 0)))`, module, name, text, len(text), len(text))
}

func watModule(dir, name, src string) ([]byte, error) {
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		return nil, errors.New("wat2wasm not found: install wabt (apt-get install -y wabt); .ci/run does")
	}
	in, out := filepath.Join(dir, name+".wat"), filepath.Join(dir, name+".wasm")
	if err := os.WriteFile(in, []byte(src), 0o644); err != nil {
		return nil, err
	}
	if b, err := exec.Command(bin, in, "-o", out).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("wat2wasm %s: %v\n%s", name, err, b)
	}
	return os.ReadFile(out)
}

const rules = `{"rules": [
  {"rule_id": "sum", "match": {"capability_id": "cap.doc.summarize"},
   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.doc.summarizer"}]}},
  {"rule_id": "tiny", "match": {"capability_id": "cap.test.tiny"},
   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.tiny"}]}},
  {"rule_id": "hog", "match": {"capability_id": "cap.test.hog"},
   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.hog"}]}},
  {"rule_id": "emitter", "match": {"capability_id": "cap.test.emitter"},
   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.emitter"}]}},
  {"rule_id": "logger", "match": {"capability_id": "cap.test.logger"},
   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.logger"}]}}]}`

func record(id, species, capability string, extra string) []byte {
	return fmt.Appendf(nil, `{"worker_id": %q, "worker_species_id": %q, "capabilities": [%q], "risk_tier": "low", "determinism": "full"%s}`, id, species, capability, extra)
}

// newHall opens a Hall in a fresh directory with the test rules and the
// three test workers enrolled.
func newHall(t testing.TB, opts host.Options) *host.Hall {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Dir = dir
	h, err := host.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	summ, err := os.ReadFile("../plugins/summarizer/registry_record.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		module, rec []byte
	}{
		{mods.summarizer, summ},
		{mods.tiny, record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny", "")},
		{mods.hog, record("org.acme.hog", "wrk.test.hog", "cap.test.hog", `, "limits": {"memory_mb": 4}`)},
		{mods.logger, record("org.acme.logger", "wrk.test.logger", "cap.test.logger", "")},
		{mods.emitter, record("org.acme.emitter", "wrk.test.emitter", "cap.test.emitter", "")},
	} {
		if _, err := h.Enroll(context.Background(), host.EnrollRequest{Module: w.module, Record: w.rec}); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

func input(t testing.TB, capability, tenant string) *wcp.RouteInput {
	t.Helper()
	in, err := wcp.ParseRouteInput(fmt.Appendf(nil, `{"capability_id": %q, "env": "dev", "data_label": "INTERNAL", "tenant_risk": "low", "qos_class": "P2", "tenant_id": %q, "correlation_id": "c-%s"}`, capability, tenant, tenant))
	if err != nil {
		t.Fatal(err)
	}
	return &in
}

const text = "Sandboxes contain workers. Workers declare privileges in records. The Hall grants exactly the declared privileges. Receipts prove what ran. Unrelated filler closes the text."

func TestRunConcurrentDispatchesChainIntact(t *testing.T) {
	h := newHall(t, host.Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		in := input(t, "cap.doc.summarize", fmt.Sprintf("org.t%d", i%2)) // t.Fatal only here, not in the goroutine
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte(text)})
			if err == nil && (res.Outcome != "ok" || !res.Ran || len(res.Output) == 0 || res.ReceiptID == "") {
				err = fmt.Errorf("run %d: %+v", i, res)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	store, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := store.Verify(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Receipts != 16 || rep.Streams != 2 {
		t.Fatalf("verify: %+v", rep)
	}
}

func TestRunMemoryHogStoppedHallKeepsServing(t *testing.T) {
	h := newHall(t, host.Options{})
	ctx := context.Background()
	res, err := h.Run(ctx, host.RunRequest{Input: input(t, "cap.test.hog", "org.acme"), Payload: nil})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != "LIMIT_MEMORY" || !res.Ran {
		t.Fatalf("outcome %q (%v), want LIMIT_MEMORY", res.Outcome, res.Err)
	}
	if res.Limits.MemoryBytes != 4<<20 {
		t.Fatalf("limits in force: %+v, want the record's 4 MiB", res.Limits)
	}
	r, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := r.Receipt(ctx, res.ReceiptID)
	if err != nil || rc.Outcome != "LIMIT_MEMORY" || rc.Limits.MemoryMB != 4 {
		t.Fatalf("receipt %+v, %v", rc, err)
	}
	res, err = h.Run(ctx, host.RunRequest{Input: input(t, "cap.doc.summarize", "org.acme"), Payload: []byte(text)})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("the next dispatch: %v %+v", err, res)
	}
}

func TestRunOfflineRefuses(t *testing.T) {
	h := newHall(t, host.Options{})
	h.SetOnline(false)
	if _, err := h.Run(context.Background(), host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")}); !errors.Is(err, host.ErrOffline) {
		t.Fatalf("err = %v, want ErrOffline", err)
	}
	h.SetOnline(true)
	if res, err := h.Run(context.Background(), host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")}); err != nil || res.Outcome != "ok" {
		t.Fatalf("online again: %v %+v", err, res)
	}
}

// failingLedger refuses every write, like a full disk.
type failingLedger struct{ ledger.Store }

func (failingLedger) RecordDecision(context.Context, ledger.DecisionRecord) error {
	return errors.New("disk full")
}
func (failingLedger) Append(context.Context, *ledger.Receipt) error { return errors.New("disk full") }
func (failingLedger) Close() error                                  { return nil }

// realLedger is a SQLite ledger in a fresh directory, for fakes that fail
// only some writes.
func realLedger(t testing.TB) ledger.Store {
	t.Helper()
	l, err := ledger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func TestRunWithoutEvidenceDoesNotRun(t *testing.T) {
	h := newHall(t, host.Options{Stores: &host.Stores{Evidence: failingLedger{realLedger(t)}}})
	res, err := h.Run(context.Background(), host.RunRequest{Input: input(t, "cap.doc.summarize", "org.acme"), Payload: []byte(text)})
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.Contains(err.Error(), "not run") {
		t.Fatalf("err = %v", err)
	}
	if res == nil || res.Ran || len(res.Output) != 0 {
		t.Fatalf("the worker ran without evidence: %+v", res)
	}
}

// receiptFailsLedger accepts decisions but cannot commit receipts.
type receiptFailsLedger struct{ ledger.Store }

func (receiptFailsLedger) RecordDecision(context.Context, ledger.DecisionRecord) error { return nil }
func (receiptFailsLedger) RecordEvents(context.Context, string, []json.RawMessage) error {
	return nil
}
func (receiptFailsLedger) Append(context.Context, *ledger.Receipt) error {
	return errors.New("database is locked")
}
func (receiptFailsLedger) Close() error { return nil }

func TestRunReceiptNotCommittedWithholdsOutput(t *testing.T) {
	h := newHall(t, host.Options{Stores: &host.Stores{Evidence: receiptFailsLedger{realLedger(t)}}})
	res, err := h.Run(context.Background(), host.RunRequest{Input: input(t, "cap.doc.summarize", "org.acme"), Payload: []byte(text)})
	if err == nil || !strings.Contains(err.Error(), "receipt could not be committed") {
		t.Fatalf("err = %v", err)
	}
	if len(res.Output) != 0 || res.ReceiptID != "" {
		t.Fatalf("output returned without a receipt: %+v", res)
	}
}

func TestDecideSetsArtifactHash(t *testing.T) {
	h := newHall(t, host.Options{})
	dec := h.Decide(context.Background(), input(t, "cap.test.tiny", "org.acme"))
	if dec.Denied || string(dec.ArtifactHash) != digest(mods.tiny) || !dec.WorkerAttestationChecked || dec.WorkerAttestationValid == nil || !*dec.WorkerAttestationValid {
		t.Fatalf("decision: denied=%v artifact=%s attestation=%v/%v", dec.Denied, dec.ArtifactHash, dec.WorkerAttestationChecked, dec.WorkerAttestationValid)
	}
}

func digest(b []byte) string { return fmt.Sprintf("sha256:%x", sha256sum(b)) }

func sha256sum(b []byte) [32]byte { return sha256.Sum256(b) }

func TestRunCapturesGuestLogs(t *testing.T) {
	h := newHall(t, host.Options{})
	res, err := h.Run(context.Background(), host.RunRequest{Input: input(t, "cap.test.logger", "org.acme")})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("run: %v %+v", err, res)
	}
	if !strings.Contains(string(res.Logs), "hello from the guest") {
		t.Fatalf("guest log not captured: %q", res.Logs)
	}
}

func TestConfigOverridesDefaultsKeyByKey(t *testing.T) {
	c, err := host.ParseConfig([]byte(`{"limits": {"timeout_ms": 500}, "require_worker_attestation": false}`))
	if err != nil {
		t.Fatal(err)
	}
	d := host.DefaultConfig()
	if c.RequireWorkerAttestation || !c.EnforcePrivilegeEnvelopes || !c.EnforceAllowedEnvironments || !c.EnforceWorkerControls ||
		c.Limits.TimeoutMS != 500 || !d.RequireWorkerAttestation {
		t.Fatalf("config %+v", c)
	}
	if _, err := host.ParseConfig([]byte(`{"require_worker_atestation": true}`)); err == nil || !strings.Contains(err.Error(), "require_worker_atestation") {
		t.Fatalf("a misspelt key was accepted: %v", err)
	}
}

func TestRunRecordsWorkerTelemetry(t *testing.T) {
	h := newHall(t, host.Options{})
	ctx := context.Background()
	in := input(t, "cap.test.emitter", "org.acme")
	res, err := h.Run(ctx, host.RunRequest{Input: in})
	if err != nil || res.Outcome != "ok" || len(res.Events) != 1 {
		t.Fatalf("run: %v %+v", err, res)
	}
	store, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	evs, err := store.Events(ctx, in.CorrelationID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range evs {
		found = found || strings.Contains(string(e), `"evt.test.done"`)
	}
	if !found {
		t.Fatalf("the worker's event was not recorded under %s: %s", in.CorrelationID, evs)
	}
}

func TestEnrollRefusesUnrestrictedEgress(t *testing.T) {
	h := newHall(t, host.Options{})
	_, err := h.Enroll(context.Background(), host.EnrollRequest{Module: mods.tiny,
		Record: record("org.acme.net", "wrk.test.net", "cap.test.net", `, "privilege_envelope": {"network_egress": "unrestricted"}`)})
	var ee *host.EnrollError
	if !errors.As(err, &ee) || len(ee.Problems) != 1 || ee.Problems[0].Field != "privilege_envelope.network_egress" {
		t.Fatalf("err = %v", err)
	}
	if _, ok := h.Registry().Record("org.acme.net"); ok {
		t.Fatal("the refused worker was enrolled")
	}
}

// Several workers of one species: the one whose worker_id sorts last
// serves it, whatever the order of enrollment, in this process and in a
// fresh one.
func TestSpeciesServedByLastWorkerInFileOrder(t *testing.T) {
	h := newHall(t, host.Options{})
	ctx := context.Background()
	// The same WAT with a different custom section: other bytes, same code.
	other, err := wasmmod.SetCustomSection(mods.tiny, "hall.test", []byte("b"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		id     string
		module []byte
	}{{"org.acme.tiny-b", other}, {"org.acme.tiny-a", mods.tiny}} {
		if _, err := h.Enroll(ctx, host.EnrollRequest{Module: w.module, Record: record(w.id, "wrk.test.tiny", "cap.test.tiny", "")}); err != nil {
			t.Fatal(err)
		}
	}
	// org.acme.tiny (enrolled first, by newHall) < org.acme.tiny-a < org.acme.tiny-b
	want := digest(other)
	for _, hall := range []*host.Hall{h, reopen(t, h)} {
		dec := hall.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
		if dec.Denied || string(dec.ArtifactHash) != want {
			t.Fatalf("artifact %s (denied %v), want %s", dec.ArtifactHash, dec.Denied, want)
		}
		res, err := hall.Run(ctx, host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")})
		if err != nil || res.WorkerID != "org.acme.tiny-b" {
			t.Fatalf("ran %q (%v), want org.acme.tiny-b", res.WorkerID, err)
		}
	}
}

// reopen opens a second Hall over the first one's directories.
func reopen(t *testing.T, h *host.Hall) *host.Hall {
	t.Helper()
	o := h.Options()
	h2, err := host.Open(context.Background(), host.Options{Rules: o.Rules, RegistryDir: o.RegistryDir, Home: o.Home})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h2.Close(context.Background()) })
	return h2
}

func TestPoolsReportFreshAndIdleInstances(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "hall.json")
	if err := os.WriteFile(cfg, []byte(`{"workers": {"org.acme.tiny": {"reuse_instances": true, "pool": 1}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	h := newHall(t, host.Options{ConfigFile: cfg})
	res, err := h.Run(context.Background(), host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")})
	if err != nil || res.Outcome != "ok" {
		t.Fatalf("run: %v %+v", err, res)
	}
	for _, p := range h.Pools() {
		if p.WorkerID == "org.acme.tiny" {
			if p.Idle != 1 {
				t.Fatalf("tiny: %+v, want the used instance kept idle for the tenant", p)
			}
			return
		}
	}
	t.Fatalf("no pool reported for org.acme.tiny: %+v", h.Pools())
}

func TestEnrollKeepsUnknownRecordMembers(t *testing.T) {
	h := newHall(t, host.Options{})
	res, err := h.Enroll(context.Background(), host.EnrollRequest{Module: mods.tiny,
		Record: record("org.acme.extra", "wrk.test.extra", "cap.test.extra", `, "x_team": "search", "privilege_envelope": {"network_egress": "none", "x_reviewed": true}`)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(res.RecordPath)
	if err != nil || !strings.Contains(string(b), `"x_team": "search"`) || !strings.Contains(string(b), `"x_reviewed": true`) || !strings.Contains(string(b), `"artifact_hash": "`+digest(mods.tiny)+`"`) {
		t.Fatalf("written record (%v):\n%s", err, b)
	}
}

func TestStorePayloadsOptIn(t *testing.T) {
	for _, optIn := range []bool{false, true} {
		cfg := filepath.Join(t.TempDir(), "hall.json")
		if err := os.WriteFile(cfg, fmt.Appendf(nil, `{"store_payloads": %v}`, optIn), 0o644); err != nil {
			t.Fatal(err)
		}
		h := newHall(t, host.Options{ConfigFile: cfg})
		ctx := context.Background()
		res, err := h.Run(ctx, host.RunRequest{Input: input(t, "cap.doc.summarize", "org.acme"), Payload: []byte(text)})
		if err != nil || res.Outcome != "ok" {
			t.Fatalf("run: %v %+v", err, res)
		}
		store, _ := h.Evidence()
		r, err := store.Receipt(ctx, res.ReceiptID)
		if err != nil {
			t.Fatal(err)
		}
		if stored := string(r.InputPayload) == text && string(r.OutputPayload) == string(res.Output); stored != optIn {
			t.Fatalf("store_payloads=%v: input payload %q, output payload %q", optIn, r.InputPayload, r.OutputPayload)
		}
	}
}
