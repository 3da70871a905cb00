package registry

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wcphall/hall/host/wcp"
)

const hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func goodRecord(id, species string, extra string) string {
	return `{"worker_id":"` + id + `","worker_species_id":"` + species + `","capabilities":["cap.doc.summarize"],"risk_tier":"low"` + extra + `}`
}

func problemsOf(t *testing.T, err error) (string, []Problem) {
	t.Helper()
	var re *RecordError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v (%T), want *RecordError", err, err)
	}
	return re.Path, re.Problems
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []Problem // field and a fragment of the message
	}{
		{"not JSON", `{"worker_id":`, []Problem{{"", "not valid JSON"}}},
		{"not an object", `["org.acme.w"]`, []Problem{{"", "got array, want object"}}},
		{"required members", `{}`, []Problem{{"capabilities", "is required"}, {"risk_tier", "is required"}, {"worker_id", "is required"}, {"worker_species_id", "is required"}}},
		{"one required member", `{"worker_id":"org.acme.w","worker_species_id":"wrk.a","capabilities":["cap.a"]}`, []Problem{{"risk_tier", "is required"}}},
		{"schema violations, sorted by field",
			`{"worker_id":5,"worker_species_id":"","capabilities":[],"risk_tier":"none","limits":{"timeout_ms":0},"privilege_envelope":{"filesystem_writes":["rel"],"secrets_access":["a b"]},"artifact_hash":"abc","allowed_environments":["dev","qa"],"blast_radius":{"data":6}}`,
			[]Problem{
				{"allowed_environments[1]", "value must be one of"},
				{"artifact_hash", "does not match pattern"},
				{"blast_radius.data", "maximum"},
				{"capabilities", "minItems"},
				{"limits.timeout_ms", "minimum"},
				{"privilege_envelope.filesystem_writes[0]", "does not match pattern '^/'"},
				{"privilege_envelope.secrets_access[0]", "does not match pattern"},
				{"risk_tier", "value must be one of"},
				{"worker_id", "got number, want string"},
				{"worker_species_id", "minLength"},
			}},
		{"network_egress neither mode nor list", goodRecord("org.acme.w", "wrk.a", `,"privilege_envelope":{"network_egress":"some"}`),
			[]Problem{{"privilege_envelope.network_egress", "one of 'none', 'unrestricted'"}, {"privilege_envelope.network_egress", "want array"}}},
		{"id rules", `{"worker_id":"acme.w","worker_species_id":"wrk.A","capabilities":["cap.a","bad"],"risk_tier":"low","required_controls":["ctrl.ok\n"],"currently_implements":["ctrl.ok","INVALID"],"attestation":{"code_hash":"sha256:` + hexA + `"},"entrypoints":{"cap.z":"run"}}`,
			[]Problem{
				{"attestation.code_hash", "64 lowercase hex"},
				{"capabilities[1]", `"bad" is not a valid capability id`},
				{"currently_implements[1]", `"INVALID" is not a valid control id`},
				{"entrypoints.cap.z", "does not declare"},
				{"required_controls[0]", "is not a valid control id"},
				{"worker_id", `"acme.w" is not a valid worker id`},
				{"worker_species_id", `"wrk.A" is not a valid worker species id`},
			}},
		{"entrypoint export names", goodRecord("org.acme.w", "wrk.a", `,"entrypoints":{"cap.doc.summarize":"9run"}`),
			[]Problem{{"entrypoints.cap.doc.summarize", "does not match pattern"}}},
		{"uppercase code hash", goodRecord("x.me.w", "wrk.a", `,"attestation":{"code_hash":"`+strings.ToUpper(hexA)+`"}`),
			[]Problem{{"attestation.code_hash", "64 lowercase hex"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := Validate([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted %+v", rec)
			}
			if rec != nil {
				t.Error("a rejected record was returned")
			}
			path, probs := problemsOf(t, err)
			if path != "" {
				t.Errorf("path = %q", path)
			}
			if len(probs) != len(tc.want) {
				t.Fatalf("problems = %v\nwant %v", probs, tc.want)
			}
			for i, w := range tc.want {
				if probs[i].Field != w.Field || !strings.Contains(probs[i].Message, w.Message) {
					t.Errorf("problem[%d] = %q, want field %q containing %q", i, probs[i], w.Field, w.Message)
				}
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != len(probs) || lines[0] != probs[0].String() {
				t.Errorf("error text %q", err.Error())
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	doc := `{"worker_id":"org.acme.summarizer","worker_species_id":"wrk.doc.summarizer","capabilities":["cap.doc.summarize","cap.doc.chunk"],"risk_tier":"critical",` +
		`"idempotency":"full","determinism":"captured","required_controls":["ctrl.obs.audit-log-append-only"],"currently_implements":["ctrl.obs.audit-log-append-only","ctrl.blast_radius_scoring"],` +
		`"allowed_environments":["dev","prod"],"privilege_envelope":{"network_egress":["api.example.com:443"],"secrets_access":["OPENAI_KEY"],"filesystem_writes":["/tmp/out"],"egress":{"allowlist":["api.example.com"]}},` +
		`"blast_radius":{"data":1,"network":2,"financial":0,"time":5,"reversibility":"irreversible"},"artifact_hash":"sha256:` + hexA + `",` +
		`"attestation":{"code_hash":"` + hexA + `","hash_method":"sha256-file"},"entrypoints":{"cap.doc.chunk":"chunk"},"limits":{"timeout_ms":1000},"x_vendor":{"k":[1]}}`
	rec, err := Validate([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if rec.WorkerID != "org.acme.summarizer" || rec.Entrypoint("cap.doc.chunk") != "chunk" || rec.Entrypoint("cap.doc.summarize") != "run" ||
		string(rec.Extra["x_vendor"]) != `{"k":[1]}` || rec.PrivilegeEnvelope.Egress.Allowlist[0] != "api.example.com" {
		t.Errorf("record = %+v", rec)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Validate(b); err != nil {
		t.Errorf("re-encoded record rejected: %v\n%s", err, b)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"b-good.json":     goodRecord("org.acme.b", "wrk.b", `,"currently_implements":["ctrl.obs.audit-log-append-only"]`),
		"a-good.json":     goodRecord("org.acme.a", "wrk.a", `,"capabilities":["cap.doc.summarize","cap.web.fetch"],"attestation":{"code_hash":"`+hexA+`"}`),
		"c-bad.json":      `{"worker_id":"org.acme.c","worker_species_id":"wrk.C","capabilities":["cap.doc.summarize"]}`,
		"d-broken.json":   `{"worker_id":`,
		"e-badctl.json":   goodRecord("org.acme.e", "wrk.e", `,"currently_implements":["ctrl.ok","ctrl..bad"]`),
		"notes.txt":       `not a record`,
		"sub/nested.json": goodRecord("org.acme.nested", "wrk.nested", ""),
		"f-good.JSON":     goodRecord("org.acme.f", "wrk.f", ""),
	})
	reg, warnings, err := LoadDir(dir)
	if err == nil {
		t.Fatal("bad files not reported")
	}
	if len(warnings) != 0 {
		t.Errorf("warnings = %q", warnings)
	}
	var records []*RecordError
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var re *RecordError
		if !errors.As(e, &re) {
			t.Fatalf("%v is not a *RecordError", e)
		}
		records = append(records, re)
	}
	wantFiles := []struct {
		file   string
		fields []string
	}{
		{"c-bad.json", []string{"risk_tier", "worker_species_id"}}, // schema problems and id rules together
		{"d-broken.json", []string{""}},
		{"e-badctl.json", []string{"currently_implements[1]"}},
	}
	if len(records) != len(wantFiles) {
		t.Fatalf("reported %d files, want %d:\n%v", len(records), len(wantFiles), err)
	}
	for i, w := range wantFiles {
		re := records[i]
		if re.Path != filepath.Join(dir, w.file) {
			t.Errorf("error[%d] path = %q, want %s", i, re.Path, w.file)
		}
		var fields []string
		for _, p := range re.Problems {
			fields = append(fields, p.Field)
		}
		if !slices.Equal(fields, w.fields) {
			t.Errorf("%s: fields = %q, want %q", w.file, fields, w.fields)
		}
		if !strings.HasPrefix(re.Error(), re.Path+": ") {
			t.Errorf("%s: error text %q does not start with the path", w.file, re.Error())
		}
	}
	var ids []string
	for _, r := range reg.Records() {
		ids = append(ids, r.WorkerID)
	}
	if want := []string{"org.acme.a", "org.acme.b"}; !slices.Equal(ids, want) {
		t.Errorf("enrolled %q, want %q (file-name order, *.json only, no recursion)", ids, want)
	}
	if !reg.WorkerAvailable("wrk.a") || reg.WorkerAvailable("wrk.C") || reg.WorkerAvailable("wrk.e") || reg.ControlPresent("ctrl.ok") {
		t.Error("a rejected file contributed to the registry")
	}
	if h, ok := reg.WorkerHash(context.Background(), "wrk.a"); !ok || h != hexA {
		t.Errorf("hash of wrk.a = %q %v", h, ok)
	}

	// Deterministic: a second load reports the same thing.
	reg2, _, err2 := LoadDir(dir)
	if err2.Error() != err.Error() || !reflect.DeepEqual(reg2.Records(), reg.Records()) {
		t.Error("LoadDir is not deterministic")
	}

	// A missing directory is an empty registry; a file is an error.
	reg, warnings, err = LoadDir(filepath.Join(dir, "nope"))
	if err != nil || warnings != nil || len(reg.Records()) != 0 {
		t.Errorf("missing dir: %v %v %d", err, warnings, len(reg.Records()))
	}
	if _, _, err := LoadDir(filepath.Join(dir, "notes.txt")); err == nil {
		t.Error("LoadDir on a file succeeded")
	}

	// Only good files: no error.
	good := t.TempDir()
	writeFiles(t, good, map[string]string{"x.json": goodRecord("org.acme.x", "wrk.x", "")})
	if reg, _, err := LoadDir(good); err != nil || len(reg.Records()) != 1 {
		t.Errorf("good dir: %v", err)
	}
}

func TestEnroll(t *testing.T) {
	reg := New()
	env1 := &wcp.PrivilegeEnvelope{Egress: &wcp.LegacyEgress{Allowlist: []string{"one"}}}
	env2 := &wcp.PrivilegeEnvelope{NetworkEgress: wcp.NetworkEgress{Mode: "unrestricted"}}

	w := reg.Enroll(&wcp.Record{WorkerID: "org.a.w1", WorkerSpeciesID: "wrk.a", Capabilities: []string{"cap.x", "cap.y", "cap.x"},
		CurrentlyImplements: []string{"ctrl.obs.audit-log-append-only", "INVALID_CONTROL", "ctrl.", "ctrl.ok\n", "ctrl.blast_radius_scoring"},
		PrivilegeEnvelope:   env1, Attestation: &wcp.Attestation{CodeHash: hexA}})
	if len(w) != 3 || !strings.Contains(w[0], "'INVALID_CONTROL'") || !strings.Contains(w[0], "'org.a.w1'") || !strings.Contains(w[1], "'ctrl.'") {
		t.Errorf("warnings = %q", w)
	}
	if got := reg.Controls(); !slices.Equal(got, []string{"ctrl.blast_radius_scoring", "ctrl.obs.audit-log-append-only"}) {
		t.Errorf("controls = %q", got)
	}

	// Replacing a worker keeps what the old record contributed; the last
	// non-empty envelope and the last valid code hash win.
	w = reg.Enroll(&wcp.Record{WorkerID: "org.a.w1", WorkerSpeciesID: "wrk.b", Capabilities: []string{"cap.z"}, PrivilegeEnvelope: env2,
		Attestation: &wcp.Attestation{CodeHash: "sha256:" + hexA}})
	if len(w) != 1 || !strings.Contains(w[0], "code_hash") || !strings.Contains(w[0], "'wrk.b'") {
		t.Errorf("warnings = %q", w)
	}
	reg.Enroll(&wcp.Record{WorkerID: "org.a.w2", WorkerSpeciesID: "wrk.a", PrivilegeEnvelope: env2})
	reg.Enroll(&wcp.Record{WorkerID: "org.a.w3", WorkerSpeciesID: "wrk.a", PrivilegeEnvelope: &wcp.PrivilegeEnvelope{}})
	reg.Enroll(&wcp.Record{WorkerSpeciesID: "wrk.c"})
	reg.Enroll(&wcp.Record{Capabilities: []string{"cap.orphan"}, CurrentlyImplements: []string{"ctrl.orphan"}})

	for _, s := range []string{"wrk.a", "wrk.b", "wrk.c"} {
		if !reg.WorkerAvailable(s) {
			t.Errorf("%s not available", s)
		}
	}
	if reg.WorkerAvailable("") || reg.WorkerAvailable("wrk.d") {
		t.Error("unknown species available")
	}
	if got := reg.PrivilegeEnvelope("wrk.a"); got != env2 {
		t.Errorf("envelope of wrk.a = %+v, want the last non-empty one", got)
	}
	if got := reg.PrivilegeEnvelope("wrk.b"); got != env2 || reg.PrivilegeEnvelope("wrk.c") != nil {
		t.Error("envelopes of wrk.b / wrk.c")
	}
	if h, ok := reg.WorkerHash(context.Background(), "wrk.a"); !ok || h != hexA {
		t.Errorf("hash of wrk.a = %q %v", h, ok)
	}
	if _, ok := reg.WorkerHash(context.Background(), "wrk.b"); ok {
		t.Error("an invalid code hash was registered")
	}
	var ids []string
	for _, r := range reg.Records() {
		ids = append(ids, r.WorkerID)
	}
	if want := []string{"org.a.w1", "org.a.w2", "org.a.w3", "", ""}; !slices.Equal(ids, want) {
		t.Errorf("records = %q, want %q", ids, want)
	}
	for _, id := range []string{"unknown-3", "unknown-4"} {
		if _, ok := reg.Record(id); !ok {
			t.Errorf("record %s missing", id)
		}
	}
	if rec, ok := reg.Record("org.a.w1"); !ok || rec.WorkerSpeciesID != "wrk.b" {
		t.Errorf("org.a.w1 = %+v", rec)
	}
	want := map[string][]string{"cap.x": {"wrk.a"}, "cap.y": {"wrk.a"}, "cap.z": {"wrk.b"}}
	if got := reg.Capabilities(); !reflect.DeepEqual(got, want) {
		t.Errorf("capabilities = %v, want %v", got, want)
	}
	reg.Capabilities()["cap.x"][0] = "mutated"
	if reg.Capabilities()["cap.x"][0] != "wrk.a" {
		t.Error("Capabilities exposes internal state")
	}
	if !reg.ControlPresent("ctrl.orphan") || reg.ControlPresent("ctrl.ok\n") {
		t.Error("controls of a species-less record")
	}
	if got := reg.WorkersOf("wrk.a"); len(got) != 2 || got[0].WorkerID != "org.a.w2" || got[1].WorkerID != "org.a.w3" {
		t.Errorf("WorkersOf(wrk.a) = %v", got)
	}
}

func TestIneligible(t *testing.T) {
	reg := New()
	reg.Enroll(&wcp.Record{WorkerID: "org.a.prod", WorkerSpeciesID: "wrk.prod", AllowedEnvironments: []string{"prod", "edge"}})
	reg.Enroll(&wcp.Record{WorkerID: "org.a.any", WorkerSpeciesID: "wrk.any", RequiredControls: []string{"ctrl.a"}, CurrentlyImplements: []string{"ctrl.a", "ctrl.b"}})
	reg.Enroll(&wcp.Record{WorkerID: "org.a.lazy", WorkerSpeciesID: "wrk.lazy", RequiredControls: []string{"ctrl.a", "ctrl.b"}, CurrentlyImplements: []string{"ctrl.a"}})
	reg.Enroll(&wcp.Record{WorkerID: "org.a.mixed1", WorkerSpeciesID: "wrk.mixed", AllowedEnvironments: []string{"prod"}})
	reg.Enroll(&wcp.Record{WorkerID: "org.a.mixed2", WorkerSpeciesID: "wrk.mixed", AllowedEnvironments: []string{"dev"}, RequiredControls: []string{"ctrl.x"}})
	reg.Enroll(&wcp.Record{WorkerID: "org.a.mixed3", WorkerSpeciesID: "wrk.mixed", AllowedEnvironments: []string{"dev"}})
	cases := []struct {
		species, env  string
		checkEnv, ctl bool
		want          string
		why           string
	}{
		{"wrk.prod", "dev", true, false, wcp.SkipEnvNotAllowed, "not allowed in dev"},
		{"wrk.prod", "edge", true, true, "", "allowed in edge"},
		{"wrk.prod", "dev", false, true, "", "env not checked"},
		{"wrk.any", "stage", true, true, "", "no allowed_environments means every env"},
		{"wrk.lazy", "dev", true, true, wcp.SkipWorkerControlsMissing, "does not implement ctrl.b"},
		{"wrk.lazy", "dev", true, false, "", "controls not checked"},
		{"wrk.mixed", "dev", true, true, "", "mixed3 is eligible"},
		{"wrk.mixed", "dev", true, false, "", "mixed2 is eligible"},
		{"wrk.mixed", "stage", true, true, wcp.SkipEnvNotAllowed, "nobody allows stage"},
		{"wrk.unknown", "dev", true, true, "", "no record: nothing to object to"},
	}
	for _, tc := range cases {
		if got := reg.Ineligible(tc.species, tc.env, tc.checkEnv, tc.ctl); got != tc.want {
			t.Errorf("Ineligible(%s, %s, %v, %v) = %q, want %q (%s)", tc.species, tc.env, tc.checkEnv, tc.ctl, got, tc.want, tc.why)
		}
	}
	// Controls missing on the only env-eligible worker.
	reg2 := New()
	reg2.Enroll(&wcp.Record{WorkerID: "org.a.p", WorkerSpeciesID: "wrk.m", AllowedEnvironments: []string{"prod"}})
	reg2.Enroll(&wcp.Record{WorkerID: "org.a.d", WorkerSpeciesID: "wrk.m", AllowedEnvironments: []string{"dev"}, RequiredControls: []string{"ctrl.x"}})
	if got := reg2.Ineligible("wrk.m", "dev", true, true); got != wcp.SkipWorkerControlsMissing {
		t.Errorf("got %q, want %q", got, wcp.SkipWorkerControlsMissing)
	}
}

func TestStockPrivilegePolicy(t *testing.T) {
	egress := func(dests ...string) *wcp.PrivilegeEnvelope {
		return &wcp.PrivilegeEnvelope{Egress: &wcp.LegacyEgress{Allowlist: dests}}
	}
	hosts := func(h ...string) *wcp.PrivilegeEnvelope {
		return &wcp.PrivilegeEnvelope{NetworkEgress: wcp.NetworkEgress{Hosts: h}}
	}
	allow := map[string][]string{"prod": {"api.example.com", "db.internal"}, "edge": {"api.example.com"}}
	cases := []struct {
		name       string
		policy     StockPrivilegePolicy
		env, label string
		envelope   *wcp.PrivilegeEnvelope
		ok         bool
		reason     string
	}{
		{"dev restricted is not checked", StockPrivilegePolicy{}, "dev", "RESTRICTED", egress("evil"), true, "stub_allow"},
		{"prod internal is not checked", StockPrivilegePolicy{}, "prod", "INTERNAL", egress("evil"), true, "stub_allow"},
		{"nil envelope", StockPrivilegePolicy{}, "prod", "RESTRICTED", nil, true, "stub_allow"},
		{"no egress", StockPrivilegePolicy{}, "edge", "RESTRICTED", &wcp.PrivilegeEnvelope{NetworkEgress: wcp.NetworkEgress{Mode: "none"}, SecretsAccess: []string{"x"}}, true, "stub_allow"},
		// The Hall's deviation: the hosts the sandbox grants are checked,
		// not only PyHall's legacy block (issue 9: a worker declaring
		// network_egress exfil.example.net:443 was allowed in prod).
		{"unrestricted egress", StockPrivilegePolicy{EgressAllowlist: allow}, "edge", "RESTRICTED", &wcp.PrivilegeEnvelope{NetworkEgress: wcp.NetworkEgress{Mode: "unrestricted"}}, false, "egress_unrestricted"},
		{"granted host not allow-listed", StockPrivilegePolicy{EgressAllowlist: allow}, "prod", "RESTRICTED", hosts("exfil.example.net:443"), false, "egress_not_allowlisted:exfil.example.net:443"},
		{"granted host, allow-list without port", StockPrivilegePolicy{EgressAllowlist: allow}, "prod", "RESTRICTED", hosts("api.example.com:443", "db.internal"), true, "stub_allow"},
		{"granted port not the allow-listed one", StockPrivilegePolicy{EgressAllowlist: map[string][]string{"prod": {"api.example.com:443"}}}, "prod", "RESTRICTED", hosts("api.example.com:8443"), false, "egress_not_allowlisted:api.example.com:8443"},
		{"granted hosts, no allow-list configured", StockPrivilegePolicy{}, "prod", "RESTRICTED", hosts("api.example.com"), false, "egress_denied_no_allowlist_configured"},
		{"empty destination list", StockPrivilegePolicy{}, "prod", "RESTRICTED", egress(), true, "stub_allow"},
		{"no allow-list configured", StockPrivilegePolicy{}, "prod", "RESTRICTED", egress("api.example.com"), false, "egress_denied_no_allowlist_configured"},
		{"allow-list for another env", StockPrivilegePolicy{EgressAllowlist: map[string][]string{"prod": {"api.example.com"}}}, "edge", "RESTRICTED", egress("api.example.com"), false, "egress_denied_no_allowlist_configured"},
		{"all allow-listed", StockPrivilegePolicy{EgressAllowlist: allow}, "prod", "RESTRICTED", egress("db.internal", "api.example.com"), true, "stub_allow"},
		{"first offender reported", StockPrivilegePolicy{EgressAllowlist: allow}, "prod", "RESTRICTED", egress("api.example.com", "evil.example", "worse.example"), false, "egress_not_allowlisted:evil.example"},
		{"case-sensitive", StockPrivilegePolicy{EgressAllowlist: allow}, "prod", "RESTRICTED", egress("API.example.com"), false, "egress_not_allowlisted:API.example.com"},
	}
	for _, tc := range cases {
		ok, reason, err := tc.policy.AllowsPrivilege(context.Background(), tc.env, tc.label, tc.envelope)
		if err != nil || ok != tc.ok || reason != tc.reason {
			t.Errorf("%s: got %v %q %v, want %v %q", tc.name, ok, reason, err, tc.ok, tc.reason)
		}
	}
}

func TestValidateCaseVariantMembersDoNotBypassTheSchema(t *testing.T) {
	doc := []byte(goodRecord("org.acme.w", "wrk.a", `,"Privilege_Envelope":{"filesystem_writes":["relative"]},"BLAST_RADIUS":{"data":99}`))
	if _, err := Validate(doc); err == nil || !strings.Contains(err.Error(), `Privilege_Envelope: is not a registry record field; did you mean "privilege_envelope"?`) {
		t.Fatalf("strict validation accepted case-variant members: %v", err)
	}
	rec, err := ValidateWith(doc, Options{AllowUnknownFields: true})
	if err != nil {
		t.Fatal(err)
	}
	if rec.PrivilegeEnvelope != nil || rec.BlastRadius != nil {
		t.Errorf("case-variant members were decoded: %+v %+v", rec.PrivilegeEnvelope, rec.BlastRadius)
	}
	if len(rec.Extra) != 2 {
		t.Errorf("extra = %s", rec.Extra)
	}
}
