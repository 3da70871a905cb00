package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/ocitest"
	"github.com/wcphall/hall/internal/pgtest"
)

// hallBin is the real CLI binary, built once for the package's tests.
var hallBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hall-cli-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hallBin = filepath.Join(dir, "hall")
	out, err := exec.Command("go", "build", "-o", hallBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building hall: %v\n%s", err, out)
		os.Exit(1)
	}
	code := pgtest.Main(m) // stops the PostgreSQL a test started, if any
	ocitest.StopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// hall runs the binary in dir with stdin and a fresh state directory.
func hall(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	return hallWith(t, dir, stdin, []string{"HALL_HOME=" + filepath.Join(t.TempDir(), "home")}, args...)
}

// quickstart is the quick start's rules; routedir is a Hall directory with
// those rules and the seed's summarizer record (testdata/routedir).
var (
	quickstart, _ = filepath.Abs("../../examples/quickstart")
	routedir, _   = filepath.Abs("testdata/routedir")
)

func TestRouteQuickstartAllowed(t *testing.T) {
	r := hall(t, routedir, "", "route", "--capability", "cap.doc.summarize", "--tenant", "org.acme", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	var d struct {
		Denied      bool   `json:"denied"`
		Selected    string `json:"selected_worker_species_id"`
		Rule        string `json:"matched_rule_id"`
		Correlation string `json:"correlation_id"`
		RequestHash string `json:"request_hash"`
		Telemetry   []struct {
			EventID string `json:"event_id"`
		} `json:"telemetry_envelopes"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("stdout is not a decision: %v\n%s", err, r.stdout)
	}
	if d.Denied || d.Selected != "wrk.doc.summarizer" || d.Rule != "rr_doc_summarize_dev" {
		t.Fatalf("decision = %+v", d)
	}
	if len(d.Correlation) != 36 || !strings.HasPrefix(d.RequestHash, "sha256:") || len(d.RequestHash) != 71 {
		t.Fatalf("correlation %q / request hash %q not generated", d.Correlation, d.RequestHash)
	}
	var ids []string
	for _, e := range d.Telemetry {
		ids = append(ids, e.EventID)
	}
	for _, want := range []string{"evt.os.task.routed", "evt.os.worker.selected", "evt.os.policy.gated"} {
		if !strings.Contains(strings.Join(ids, ","), want) {
			t.Errorf("telemetry %v lacks %s", ids, want)
		}
	}
}

func TestRouteDeniedExitCode(t *testing.T) {
	r := hall(t, routedir, "", "route", "--capability", "cap.nothing.here", "--tenant", "org.acme")
	if r.code != exitDenied {
		t.Fatalf("exit %d, want %d; stdout:\n%s", r.code, exitDenied, r.stdout)
	}
	if !strings.HasPrefix(r.stdout, "DENIED DENY_NO_MATCHING_RULE") {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
}

func TestRouteInvalidInputNamesEveryField(t *testing.T) {
	r := hall(t, routedir, "", "route", "--capability", "cap.doc.summarize", "--env", "production", "--qos", "P9", "--tenant", " ")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d", r.code, exitError)
	}
	for _, want := range []string{"env", "--env", "qos_class", "--qos", "tenant_id", "--tenant"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if n := strings.Count(r.stderr, "hall: invalid request:"); n != 3 {
		t.Errorf("want one line per problem (3), got %d:\n%s", n, r.stderr)
	}
}

func TestRouteInputFileAndFlagsOverride(t *testing.T) {
	in := `{"capability_id":"cap.nothing","env":"dev","data_label":"INTERNAL","tenant_risk":"low","qos_class":"P2","tenant_id":"org.acme","correlation_id":"c-1","request":{"x":1}}`
	r := hall(t, routedir, in, "route", "--input", "-", "--capability", "cap.doc.summarize", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, `"correlation_id": "c-1"`) || !strings.Contains(r.stdout, `"capability_id": "cap.doc.summarize"`) {
		t.Fatalf("stdout:\n%s", r.stdout)
	}
}

func TestRouteMalformedRulesOneLinePerProblem(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "rules.json", `{"rules":[{"rule_id":"a","match":{"capability_id":{"in":"cap.x"}},"decision":{}},{"rule_id":"b","match":[],"decision":{"escalation":null}}]}`)
	r := hall(t, dir, "", "route", "--capability", "cap.x", "--tenant", "org.acme")
	if r.code != exitError {
		t.Fatalf("exit %d", r.code)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) < 3 {
		t.Fatalf("want a line per problem, got:\n%s", r.stderr)
	}
	for _, want := range []string{"rules[0].match.capability_id", "rules[1].match", "rules[1].decision.escalation"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	for _, l := range lines {
		if !strings.Contains(l, "rules.json") {
			t.Errorf("line does not name the file: %q", l)
		}
	}
}

func TestRouteBadRecordSkippedOthersLoad(t *testing.T) {
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(quickstart, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "rules.json", string(data))
	good, err := os.ReadFile(filepath.Join(routedir, "enrolled", "org.acme.summarizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "enrolled/b-good.json", string(good))
	write(t, dir, "enrolled/a-bad.json", `{"worker_id":"Acme Worker","worker_species_id":"wrk.doc.summarizer","capabilities":[],"risk_tier":"extreme"}`)
	write(t, dir, "enrolled/c-broken.json", `{"worker_id":`)
	r := hall(t, dir, "", "route", "--capability", "cap.doc.summarize", "--tenant", "org.acme", "--config", filepath.Join(routedir, "hall.json"))
	if r.code != 0 {
		t.Fatalf("exit %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"a-bad.json: capabilities", "a-bad.json: risk_tier", "c-broken.json", "not valid JSON"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "b-good.json") {
		t.Errorf("good record reported:\n%s", r.stderr)
	}
}

func TestValidateShadowsAndFixtures(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "rules.json", `{"rules":[
		{"rule_id":"broad","match":{"capability_id":"cap.doc.summarize"},"decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.doc.summarizer"}]}},
		{"rule_id":"narrow","match":{"capability_id":"cap.doc.summarize","env":"dev"},"decision":{}}]}`)
	write(t, dir, "tests.json", `[
		{"name":"allowed","input":{"capability_id":"cap.doc.summarize","env":"dev","data_label":"INTERNAL","tenant_risk":"low","qos_class":"P2","tenant_id":"org.acme","correlation_id":"c"},
		 "expect":{"denied":false,"selected_worker_species_id":"wrk.doc.summarizer","matched_rule_id":"broad"}},
		{"name":"wrong-on-purpose","input":{"capability_id":"cap.x","env":"dev","data_label":"INTERNAL","tenant_risk":"low","qos_class":"P2","tenant_id":"org.acme","correlation_id":"c"},
		 "expect":{"denied":false}}]`)
	r := hall(t, dir, "", "validate", "--registry-dir", filepath.Join(routedir, "enrolled"), "--config", filepath.Join(routedir, "hall.json"), "rules.json", "tests.json")
	if r.code != exitError {
		t.Fatalf("exit %d, want 1 (shadowed rule and a failing fixture)", r.code)
	}
	for _, want := range []string{"FAIL wrong-on-purpose", "1 passed, 1 failed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	// A shadowed rule is a problem: on standard error.
	if !strings.Contains(r.stderr, "rule narrow is shadowed by rule broad") {
		t.Errorf("stderr lacks the shadowed rule:\n%s", r.stderr)
	}
	if strings.Contains(r.stdout, "FAIL allowed") {
		t.Errorf("correct fixture failed:\n%s", r.stdout)
	}
}

func TestValidateCleanRules(t *testing.T) {
	r := hall(t, quickstart, "", "validate", "rules.json")
	if r.code != 0 || !strings.Contains(r.stdout, "2 rules, 0 shadowed") {
		t.Fatalf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

var vectors, _ = filepath.Abs("../../testdata/vectors/random.json")

func TestConformanceCheckAllVectors(t *testing.T) {
	r := hall(t, ".", "", "conformance", "check", vectors)
	if r.code != 0 || !strings.HasSuffix(strings.TrimSpace(r.stdout), "300 passed, 0 failed") {
		t.Fatalf("exit %d:\n%s\n%s", r.code, tail(r.stdout), r.stderr)
	}
}

func TestConformanceCheckReportsFailure(t *testing.T) {
	data, err := os.ReadFile(vectors)
	if err != nil {
		t.Fatal(err)
	}
	var vs []map[string]any
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	v := vs[0]
	exp := v["expect"].(map[string]any)
	exp["denied"] = !(exp["denied"].(bool))
	b, _ := json.Marshal(v)
	dir := t.TempDir()
	write(t, dir, "one.json", string(b))
	r := hall(t, dir, "", "conformance", "check", "one.json")
	if r.code != exitError || !strings.Contains(r.stdout, "FAIL public-random-0000") || !strings.Contains(r.stdout, "0 passed, 1 failed") {
		t.Fatalf("exit %d:\n%s", r.code, r.stdout)
	}
}

func TestConformanceDecide(t *testing.T) {
	r := hall(t, ".", "", "conformance", "decide", vectors)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var out []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(vectors)
	var vs []struct {
		Expect map[string]any `json:"expect"`
	}
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(vs) {
		t.Fatalf("%d decisions for %d vectors", len(out), len(vs))
	}
	invalid := 0
	for i, o := range out {
		if vs[i].Expect["invalid_input"] == true {
			invalid++
			if o["invalid_input"] != true {
				t.Errorf("vector %d: want invalid_input, got %v", i, o)
			}
			continue
		}
		if o["denied"] != vs[i].Expect["denied"] {
			t.Errorf("vector %d: denied %v, want %v", i, o["denied"], vs[i].Expect["denied"])
		}
		if _, ok := o["telemetry_envelopes"].([]any); !ok {
			t.Errorf("vector %d: no telemetry_envelopes in %v", i, o)
		}
	}
	if invalid == 0 {
		t.Fatal("the vectors exercise no invalid input; the check above did nothing for them")
	}
}

func TestVersion(t *testing.T) {
	r := hall(t, ".", "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "hall ") {
		t.Fatalf("exit %d: %q", r.code, r.stdout)
	}
}

func write(t *testing.T, dir, name, data string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}
