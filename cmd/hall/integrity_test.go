package main

// Regression tests of issue 9 ("Decided is what runs") at the CLI: the
// worker that runs is the one the decision bound, an enrolled record edited
// behind the Hall's back is refused, a module's embedded record is
// authoritative, receipts carry the record in force, and a running `hall
// serve` sees what the CLI changes in its directory.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/wasmmod"
)

// guestBuild is testdata/sandbox/goguest built once by `hall build`, so it
// carries its record in a wcp.record custom section. Its fsop export writes
// files; the record grants writes under granted only.
var guestBuild struct {
	once     sync.Once
	module   string // path of the built .wasm
	granted  string // the record's only filesystem_writes directory
	embedded []byte // the wcp.record section
	// home is the state directory the guest's tests share, so that its
	// 3.6 MB module is compiled once (the compilation cache is in the
	// state directory); each test keeps its own rules and enrolled/, and
	// looks its receipts up by correlation id. Not for parallel tests.
	home string
	err  error
}

const guestID = "org.acme.fsguest"

func builtGuest(t *testing.T) (module, granted string, embedded []byte) {
	t.Helper()
	g := &guestBuild
	g.once.Do(func() {
		dir, err := os.MkdirTemp("", "hall-integrity")
		if err != nil {
			g.err = err
			return
		}
		g.module, g.granted, g.home = filepath.Join(dir, "guest.wasm"), filepath.Join(dir, "granted"), filepath.Join(dir, "home")
		cmd := exec.Command(hallBin, "build", "../../testdata/sandbox/goguest", "--no-input", "--no-store",
			"-o", g.module, "--record", filepath.Join(dir, "registry_record.json"),
			"--worker-id", guestID, "--species", "wrk.test.fsguest", "--capability", "cap.test.fsop",
			"--risk-tier", "low", "--env", "dev", "--write-dir", g.granted, "--egress", "none",
			"--blast", "data=0,network=0,financial=0,time=0,reversibility=reversible",
			"--entrypoint", "cap.test.fsop=fsop")
		cmd.Env = testEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			g.err = fmt.Errorf("hall build goguest: %v\n%s", err, out)
			return
		}
		b, err := os.ReadFile(g.module)
		if err != nil {
			g.err = err
			return
		}
		sec, ok, err := wasmmod.CustomSection(b, host.RecordSection)
		if err != nil || !ok {
			g.err = fmt.Errorf("the built module has no %s section (%v)", host.RecordSection, err)
			return
		}
		g.embedded = sec
	})
	if g.err != nil {
		t.Fatal(g.err)
	}
	return g.module, g.granted, g.embedded
}

const guestRules = `{"rules":[{"rule_id":"fsop","match":{"capability_id":"cap.test.fsop","env":{"in":["dev"]}},
  "decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.test.fsguest"}]}}]}`

// guestDir is a Hall directory whose rules route cap.test.fsop to the
// built guest, with the guest's module copied in.
func guestDir(t *testing.T) string {
	t.Helper()
	module, _, _ := builtGuest(t)
	dir := t.TempDir()
	write(t, dir, "rules.json", guestRules)
	b, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "guest.wasm", string(b))
	return dir
}

// guestHall runs hall in dir with the guest's shared state directory.
func guestHall(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	builtGuest(t)
	return hallWith(t, dir, stdin, []string{"HALL_HOME=" + guestBuild.home}, args...)
}

// writeOp is the guest's fsop input writing data to path.
func writeOp(path, data string) string {
	b, _ := json.Marshal(map[string]string{"Op": "write", "Path": path, "Data": data})
	return string(b)
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

// receiptsJSON lists receipts through run (hallIn or guestHall) with
// extra filters.
func receiptsJSON(t *testing.T, run func(t *testing.T, dir, stdin string, args ...string) result, dir string, args ...string) []map[string]any {
	t.Helper()
	r := run(t, dir, "", append([]string{"receipts", "--json"}, args...)...)
	mustOK(t, r, "receipts --json")
	var rs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
		t.Fatalf("receipts --json: %v\n%s", err, r.stdout)
	}
	return rs
}

func hallInNoEnv(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	return hallIn(t, dir, stdin, nil, args...)
}

// Behaviour 1: two workers of one species; the one whose
// allowed_environments admit the request's env is the one decided, run
// and receipted — not the one that sorts last.
func TestIntegrityBindingRunsEligibleWorkerCLI(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "rules.json", `{"rules":[{"rule_id":"pick","match":{"capability_id":"cap.test.pick","env":{"in":["dev","stage"]}},
	  "decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.test.pick"}]}}]}`)
	pa, pb := wat(t, sayWAT("from p-a")), wat(t, sayWAT("from p-b"))
	write(t, dir, "pa.json", `{"worker_id":"org.acme.p-a","worker_species_id":"wrk.test.pick","capabilities":["cap.test.pick"],"risk_tier":"low","allowed_environments":["dev","stage"]}`)
	write(t, dir, "pb.json", `{"worker_id":"org.acme.p-b","worker_species_id":"wrk.test.pick","capabilities":["cap.test.pick"],"risk_tier":"low","allowed_environments":["dev"]}`)
	mustOK(t, hallIn(t, dir, "", nil, "enroll", pa, "--record", "pa.json"), "enroll p-a")
	mustOK(t, hallIn(t, dir, "", nil, "enroll", pb, "--record", "pb.json"), "enroll p-b")

	for _, tc := range []struct {
		env, worker, output, module string
	}{
		{"stage", "org.acme.p-a", "from p-a", pa},
		{"dev", "org.acme.p-b", "from p-b", pb},
	} {
		t.Run(tc.env, func(t *testing.T) {
			corr := "corr-pick-" + tc.env
			r := hallIn(t, dir, "", nil, "run", "cap.test.pick", "--tenant", "org.acme", "--env", tc.env, "--correlation-id", corr)
			mustOK(t, r, "run --env "+tc.env)
			if r.stdout != tc.output {
				t.Errorf("output %q, want %q (the worker decided for %s)", r.stdout, tc.output, tc.env)
			}
			rs := receiptsJSON(t, hallInNoEnv, dir, "--correlation-id", corr)
			if len(rs) != 1 {
				t.Fatalf("%d receipts for %s, want 1", len(rs), corr)
			}
			want := digestOf(t, tc.module)
			if rs[0]["worker_id"] != tc.worker || rs[0]["artifact_hash"] != want {
				t.Errorf("receipt names %v %v, want %s %s", rs[0]["worker_id"], rs[0]["artifact_hash"], tc.worker, want)
			}
		})
	}
}

// Behaviour 2: an enrolled record edited on disk is not served: run and
// route deny DENY_WORKER_TAMPERED naming the file, the worker does not run,
// and enrolling again restores service.
func TestIntegritySealedRecordEditedOnDiskCLI(t *testing.T) {
	_, granted, _ := builtGuest(t)
	for _, tc := range []struct {
		name string
		edit func(rec map[string]any, extra string)
		// target is where the run tries to write: a directory the edit
		// added, or the one the enrolled record granted.
		target func(extra string) string
	}{
		{"filesystem_writes widened", func(rec map[string]any, extra string) {
			pe := rec["privilege_envelope"].(map[string]any)
			pe["filesystem_writes"] = append(pe["filesystem_writes"].([]any), extra)
		}, func(extra string) string { return extra }},
		{"risk_tier changed", func(rec map[string]any, _ string) {
			rec["risk_tier"] = "critical"
		}, func(string) string { return granted }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := guestDir(t)
			mustOK(t, guestHall(t, dir, "", "enroll", "guest.wasm"), "enroll")
			path := filepath.Join(dir, "enrolled", guestID+".json")
			var rec map[string]any
			readJSON(t, path, &rec)
			extra := filepath.Join(t.TempDir(), "widened")
			tc.edit(rec, extra)
			b, _ := json.MarshalIndent(rec, "", "  ")
			write(t, dir, filepath.Join("enrolled", guestID+".json"), string(b))

			target := filepath.Join(tc.target(extra), "pwned-"+strings.ReplaceAll(tc.name, " ", "-"))
			rel := filepath.Join("enrolled", guestID+".json")
			r := guestHall(t, dir, writeOp(target, "pwned"), "run", "cap.test.fsop", "--tenant", "org.acme")
			if _, err := os.Stat(target); err == nil {
				t.Errorf("the worker ran under the edited record: it wrote %s", target)
			}
			if r.code != exitDenied || !strings.Contains(r.stderr, "DENY_WORKER_TAMPERED") || r.stdout != "" {
				t.Errorf("run: exit %d, want %d DENY_WORKER_TAMPERED; stdout %q stderr %q", r.code, exitDenied, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, rel) {
				t.Errorf("run: stderr does not name %s:\n%s", rel, r.stderr)
			}
			r = guestHall(t, dir, "", "route", "--capability", "cap.test.fsop", "--tenant", "org.acme")
			if r.code != exitDenied || !strings.Contains(r.stdout+r.stderr, "DENY_WORKER_TAMPERED") {
				t.Errorf("route: exit %d, want %d DENY_WORKER_TAMPERED; stdout %q stderr %q", r.code, exitDenied, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, rel) {
				t.Errorf("route: stderr does not name %s:\n%s", rel, r.stderr)
			}

			// Enrolling again reseals the record and restores service.
			mustOK(t, guestHall(t, dir, "", "enroll", "guest.wasm"), "re-enroll")
			ok := filepath.Join(granted, "ok-"+filepath.Base(dir))
			r = guestHall(t, dir, writeOp(ok, "fine"), "run", "cap.test.fsop", "--tenant", "org.acme")
			if r.code != 0 || r.stdout != "OK" {
				t.Fatalf("after re-enrolling: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
			}
			os.Remove(ok)
		})
	}
}

// Behaviour 3: a --record that differs from the module's embedded record
// is refused, naming every differing field; one equal to it but for
// artifact_hash is accepted.
func TestIntegrityEmbeddedRecordAuthoritativeCLI(t *testing.T) {
	module, _, embedded := builtGuest(t)
	digest := digestOf(t, module)
	for _, tc := range []struct {
		name   string
		edit   func(rec map[string]any)
		fields []string // nil: accepted
	}{
		{"wider filesystem_writes", func(rec map[string]any) {
			pe := rec["privilege_envelope"].(map[string]any)
			pe["filesystem_writes"] = append(pe["filesystem_writes"].([]any), "/etc/")
		}, []string{"privilege_envelope.filesystem_writes"}},
		{"risk_tier changed", func(rec map[string]any) { rec["risk_tier"] = "critical" }, []string{"risk_tier"}},
		{"both", func(rec map[string]any) {
			pe := rec["privilege_envelope"].(map[string]any)
			pe["filesystem_writes"] = append(pe["filesystem_writes"].([]any), "/etc/")
			rec["risk_tier"] = "critical"
		}, []string{"privilege_envelope.filesystem_writes", "risk_tier"}},
		{"equal but artifact_hash", func(rec map[string]any) { rec["artifact_hash"] = digest }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := guestDir(t)
			var rec map[string]any
			if err := json.Unmarshal(embedded, &rec); err != nil {
				t.Fatal(err)
			}
			tc.edit(rec)
			b, _ := json.MarshalIndent(rec, "", "  ")
			write(t, dir, "edited.json", string(b))
			r := guestHall(t, dir, "", "enroll", "guest.wasm", "--record", "edited.json")
			if tc.fields == nil {
				mustOK(t, r, "enroll with the embedded record and its artifact_hash")
				return
			}
			if r.code != exitError {
				t.Errorf("exit %d, want %d; stdout %q", r.code, exitError, r.stdout)
			}
			for _, w := range append([]string{"embedded"}, tc.fields...) {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "enrolled", guestID+".json")); err == nil {
				t.Errorf("the refused record was enrolled")
			}
		})
	}
}

// appendCustomSection appends a custom section (id 0, LEB128 size, LEB128
// name length, name, payload) to a module, even one that already has a
// section of that name.
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

// Behaviour 4: a module with two wcp.record sections is refused.
func TestIntegrityTwoRecordSectionsRefusedCLI(t *testing.T) {
	module, _, embedded := builtGuest(t)
	b, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	json.Unmarshal(embedded, &rec)
	rec["risk_tier"] = "critical"
	second, _ := json.Marshal(rec)
	dir := t.TempDir()
	write(t, dir, "rules.json", guestRules)
	write(t, dir, "twice.wasm", string(appendCustomSection(b, host.RecordSection, second)))
	r := guestHall(t, dir, "", "enroll", "twice.wasm")
	if r.code != exitError {
		t.Errorf("exit %d, want %d; stdout %q stderr %q", r.code, exitError, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, host.RecordSection) || !regexp.MustCompile(`\b2\b|two|more than one`).MatchString(r.stderr) {
		t.Errorf("stderr does not say the module has two %s sections:\n%s", host.RecordSection, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "enrolled")); err == nil {
		t.Errorf("a module with two records was enrolled")
	}
}

// Behaviour 5: a receipt names the worker, its artifact, the digest of its
// record and the privilege envelope in force.
func TestIntegrityReceiptShowsRecordInForceCLI(t *testing.T) {
	_, granted, _ := builtGuest(t)
	dir := guestDir(t)
	mustOK(t, guestHall(t, dir, "", "enroll", "guest.wasm"), "enroll")
	target := filepath.Join(granted, "receipt-"+filepath.Base(dir))
	t.Cleanup(func() { os.Remove(target) })
	mustOK(t, guestHall(t, dir, writeOp(target, "x"), "run", "cap.test.fsop", "--tenant", "org.acme", "--correlation-id", "corr-envelope"), "run")
	rs := receiptsJSON(t, guestHall, dir, "--correlation-id", "corr-envelope")
	if len(rs) != 1 {
		t.Fatalf("%d receipts, want 1", len(rs))
	}
	id, _ := rs[0]["receipt_id"].(string)
	var enrolled map[string]any
	readJSON(t, filepath.Join(dir, "enrolled", guestID+".json"), &enrolled)

	r := guestHall(t, dir, "", "receipts", "show", id, "--json")
	mustOK(t, r, "receipts show --json")
	var rc map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rc); err != nil {
		t.Fatalf("receipts show --json: %v\n%s", err, r.stdout)
	}
	if rc["worker_id"] != guestID || rc["artifact_hash"] != enrolled["artifact_hash"] {
		t.Errorf("receipt names %v %v, want %s %v", rc["worker_id"], rc["artifact_hash"], guestID, enrolled["artifact_hash"])
	}
	if d, _ := rc["record_digest"].(string); !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(d) {
		t.Errorf("record_digest %v, want sha256:<64 hex>", rc["record_digest"])
	}
	if !reflect.DeepEqual(rc["privilege_envelope"], enrolled["privilege_envelope"]) {
		t.Errorf("privilege_envelope %v, want the record's %v", rc["privilege_envelope"], enrolled["privilege_envelope"])
	}

	r = guestHall(t, dir, "", "receipts", "show", id)
	mustOK(t, r, "receipts show")
	if !strings.Contains(strings.ToLower(r.stdout), "envelope") || !strings.Contains(r.stdout, granted) {
		t.Errorf("receipts show does not print the envelope (writes %s):\n%s", granted, r.stdout)
	}
}

// waitUntil polls an observable condition up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Behaviour 10: a running `hall serve` serves what the CLI enrolls and
// the rules edited on disk, without a restart; an invalid rules edit is
// reported and the last good rules keep serving.
func TestIntegrityServePicksUpCLIChanges(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, ".hall")
	rule := func(id, capability string) string {
		return fmt.Sprintf(`{"rule_id":%q,"match":{"capability_id":%q,"env":{"in":["dev"]}},"decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.test.late"}]}}`, id, capability)
	}
	write(t, dir, "rules.json", `{"rules":[`+rule("late", "cap.test.late")+`]}`)
	admin := hall(t, dir, "", "tokens", "create", "--admin", "--home", home)
	acme := hall(t, dir, "", "tokens", "create", "--tenant", "org.acme", "--home", home)
	if admin.code != 0 || acme.code != 0 {
		t.Fatalf("tokens create: %+v %+v", admin, acme)
	}
	tok := strings.TrimSpace(acme.stdout)
	base, _, logs := startServe(t, dir, "--home", home)

	if r := curl(t, "GET", base+"/wcp/workers/org.acme.late", tok, "", nil); r.status != 404 {
		t.Fatalf("before enrolling: %d %s", r.status, r.raw)
	}
	write(t, dir, "late.json", `{"worker_id":"org.acme.late","worker_species_id":"wrk.test.late","capabilities":["cap.test.late","cap.test.later"],"risk_tier":"low","allowed_environments":["dev"]}`)
	mustOK(t, hallWith(t, dir, "", nil, "enroll", wat(t, sayWAT("late")), "--record", "late.json", "--home", home), "enroll")
	waitUntil(t, "the worker enrolled by the CLI is not served (GET /wcp/workers/org.acme.late is not 200)", func() bool {
		return curl(t, "GET", base+"/wcp/workers/org.acme.late", tok, "", nil).status == 200
	})
	run := func(capability, corr string) httpResult {
		b, _ := json.Marshal(map[string]any{"input": map[string]any{"capability_id": capability, "env": "dev", "data_label": "INTERNAL",
			"tenant_risk": "low", "qos_class": "P2", "correlation_id": corr}, "payload": ""})
		return curl(t, "POST", base+"/wcp/run", tok, "application/json", b)
	}
	if r := run("cap.test.late", "corr-late"); r.status != 200 || r.body["output"] != "late" || r.body["worker_id"] != "org.acme.late" {
		t.Fatalf("run of the newly enrolled worker: %d %s", r.status, r.raw)
	}

	routed := func(capability string) bool {
		b, _ := json.Marshal(map[string]any{"capability_id": capability, "env": "dev", "data_label": "INTERNAL",
			"tenant_risk": "low", "qos_class": "P2", "correlation_id": "corr-route"})
		r := curl(t, "POST", base+"/wcp/route", tok, "application/json", b)
		return r.status == 200 && r.body["denied"] == false
	}
	if routed("cap.test.later") {
		t.Fatal("cap.test.later is routed before any rule names it")
	}
	write(t, dir, "rules.json", `{"rules":[`+rule("late", "cap.test.late")+`,`+rule("later", "cap.test.later")+`]}`)
	waitUntil(t, "the rule added to rules.json on disk is not in force (cap.test.later still denied)", func() bool { return routed("cap.test.later") })

	before := len(logs.String())
	write(t, dir, "rules.json", `{"rules":[{"rule_id":`)
	waitUntil(t, "the invalid rules.json edit was not reported in the server log", func() bool {
		l := logs.String()[before:]
		return strings.Contains(l, "rules.json") && (strings.Contains(l, `"level":"ERROR"`) || strings.Contains(l, `"level":"WARN"`))
	})
	if !routed("cap.test.later") || !routed("cap.test.late") {
		t.Fatal("after an invalid rules.json edit the last good rules no longer serve")
	}
}

// Issue 10: `hall enroll` showed nothing of what it granted (the record
// may come from the module itself), and read /dev/zero without limit.
func TestEnrollShowsGrantAndCapsModuleSize(t *testing.T) {
	_, granted, _ := builtGuest(t)
	dir := guestDir(t)
	r := hallWith(t, dir, "", testEnv("HALL_HOME="+guestBuild.home), "enroll", "guest.wasm")
	if r.code != 0 {
		t.Fatalf("enroll: exit %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"grants:    writes: " + granted, "grants:    network: none", "grants:    secrets: none", "sealed:    sha256:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("enroll output lacks %q:\n%s", want, r.stdout)
		}
	}
	r = hallWith(t, dir, "", testEnv("HALL_HOME="+guestBuild.home), "enroll", "guest.wasm", "--json")
	var out struct {
		Envelope struct {
			Writes []string `json:"filesystem_writes"`
		} `json:"privilege_envelope"`
		RecordDigest string `json:"record_digest"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Envelope.Writes) != 1 || !strings.HasPrefix(out.RecordDigest, "sha256:") {
		t.Fatalf("enroll --json: %v\n%s", err, r.stdout)
	}
	r = hall(t, dir, "", "enroll", "/dev/zero")
	if r.code != 1 || !strings.Contains(r.stderr, "largest module the Hall accepts") {
		t.Fatalf("enroll /dev/zero: exit %d\n%s", r.code, r.stderr)
	}
}
