package wcp

import (
	"encoding/json"
	"math"
	"math/big"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestRouteDecisionJSON(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("CET", 3600))
	score := PyFloat(1)
	d := RouteDecision{
		DecisionID:    uuid.MustParse("11111111-2222-4333-8444-555555555555"),
		Timestamp:     ts,
		CorrelationID: "c-1", TenantID: "t", CapabilityID: "cap.x", MatchedRuleID: "NO_MATCH",
		Env: "dev", DataLabel: "PUBLIC", TenantRisk: "low", QoSClass: "P2",
		Denied:                    true,
		DenyReason:                &DenyReason{Code: DenyNoMatchingRule, Message: "m"},
		CandidateWorkersRanked:    []CandidateWorker{{WorkerSpeciesID: "wrk.a", ScoreHint: &score, SkipReason: SkipUnavailable}},
		RequiredControlsEffective: []string{},
		PreconditionsChecked:      DefaultPreconditions(),
		TelemetryEnvelopes:        []Event{{EventID: EvtTaskDenied, Timestamp: ts, CorrelationID: "c-1", TenantID: "t", CapabilityID: "cap.x", DenyCode: DenyNoMatchingRule, DenyMessage: "m", MatchedRuleID: "NO_MATCH"}},
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"decision_id":"11111111-2222-4333-8444-555555555555","timestamp":"2026-01-02T02:04:05.000006Z",` +
		`"correlation_id":"c-1","tenant_id":"t","capability_id":"cap.x","matched_rule_id":"NO_MATCH","env":"dev","data_label":"PUBLIC","tenant_risk":"low","qos_class":"P2",` +
		`"denied":true,"deny_reason_if_denied":{"code":"DENY_NO_MATCHING_RULE","message":"m"},` +
		`"selected_worker_species_id":null,` +
		`"candidate_workers_ranked":[{"worker_species_id":"wrk.a","score_hint":1.0,"requires_controls_minimum":null,"skip_reason":"unavailable"}],` +
		`"required_controls_effective":[],"recommended_profiles_effective":[],` +
		`"escalation_effective":{"policy_gate":false,"msavx_step_up":false,"human_required_default":false,"human_required_if":[],"rationale":null},` +
		`"preconditions_checked":{"must_have_correlation_id":true,"must_attach_policy_version":true,"must_record_artifact_hash_if_executes":true,"deny_if_missing_required_controls":true,"deny_if_unsigned_artifact_in_prod":false,"deny_if_no_attestation_in_prod":false},` +
		`"artifact_hash":null,"worker_attestation_checked":false,"worker_attestation_valid":null,"dry_run":false,` +
		`"telemetry_envelopes":[{"event_id":"evt.os.task.denied","timestamp":"2026-01-02T02:04:05.000006Z","correlation_id":"c-1","tenant_id":"t","capability_id":"cap.x","deny_code":"DENY_NO_MATCHING_RULE","deny_message":"m","matched_rule_id":"NO_MATCH"}],` +
		`"request_hash":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}`
	if string(b) != want {
		t.Fatalf("JSON =\n%s\nwant\n%s", b, want)
	}

	var back RouteDecision
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Timestamp.Equal(ts) || back.DecisionID != d.DecisionID || back.Code() != DenyNoMatchingRule ||
		back.CandidateWorkersRanked[0].SkipReason != SkipUnavailable || *back.CandidateWorkersRanked[0].ScoreHint != 1 ||
		back.SelectedWorkerSpeciesID != "" || back.WorkerAttestationValid != nil || back.Allowed() {
		t.Errorf("round trip = %+v", back)
	}
	b2, err := json.Marshal(back)
	if err != nil || string(b2) != want {
		t.Errorf("second encoding differs:\n%s", b2)
	}

	// Allowed: selected and artifact hash set, deny reason null, all extra
	// deny keys in PyHall's order.
	valid := true
	d.Denied, d.DenyReason, d.SelectedWorkerSpeciesID, d.ArtifactHash, d.WorkerAttestationChecked, d.WorkerAttestationValid = false, nil, "wrk.a", "sha256:ab", true, &valid
	d.Timestamp = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	b, _ = json.Marshal(d)
	for _, frag := range []string{`"timestamp":"2026-01-02T03:04:05.000000Z","correlation_id"`, `"deny_reason_if_denied":null`, `"selected_worker_species_id":"wrk.a"`, `"artifact_hash":"sha256:ab"`, `"worker_attestation_checked":true,"worker_attestation_valid":true`} {
		if !strings.Contains(string(b), frag) {
			t.Errorf("allowed JSON lacks %s:\n%s", frag, b)
		}
	}
	if (&d).Code() != "" || !(&d).Allowed() {
		t.Error("Code/Allowed on an allowed decision")
	}
}

func TestDenyReasonKeyOrder(t *testing.T) {
	n := 2
	r, p, s := "why", "policy.v1", "wrk.a"
	dr := DenyReason{Code: DenyRequiresHumanApproval, Message: "m", BlastScore: big.NewInt(90), ShadowedRuleIDs: []string{"b"}, ShadowCount: &n,
		Missing: []string{"ctrl.a"}, TenantID: &s, Reason: &r, PolicyVersion: &p, SupervisorRequired: true, WorkerSpeciesID: &s}
	b, _ := json.Marshal(dr)
	want := `{"code":"DENY_REQUIRES_HUMAN_APPROVAL","message":"m","blast_score":90,"shadowed_rule_ids":["b"],"shadow_count":2,"missing":["ctrl.a"],"tenant_id":"wrk.a","reason":"why","policy_version":"policy.v1","supervisor_required":true,"worker_species_id":"wrk.a"}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant %s", b, want)
	}
	empty := ""
	b, _ = json.Marshal(DenyReason{Code: DenyUnknownTenant, Message: "m", TenantID: &empty})
	if string(b) != `{"code":"DENY_UNKNOWN_TENANT","message":"m","tenant_id":""}` {
		t.Errorf("empty tenant must still be reported: %s", b)
	}
}

func TestEventJSON(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)
	cases := []struct {
		e    Event
		want string
	}{
		{Event{EventID: EvtAttestationSkipped, Timestamp: ts, TenantID: "t", CorrelationID: "c", WorkerSpeciesID: "wrk.a", Env: "prod", Reason: "r", Severity: "warn"},
			`{"event_id":"evt.os.worker.attestation_skipped","correlation_id":"c","worker_species_id":"wrk.a","env":"prod","reason":"r","severity":"warn"}`},
		{Event{EventID: EvtBlastScored, Timestamp: ts, CorrelationID: "c", TenantID: "t", Env: "dev", DataLabel: "PUBLIC", PolicyVersion: "policy.v0", Decision: "ALLOW", DryRun: true},
			`{"event_id":"evt.gov.blast_scored","timestamp":"2026-01-02T03:04:05.123456Z","correlation_id":"c","tenant_id":"t","env":"dev","data_label":"PUBLIC","policy_version":"policy.v0","blast_score":0,"decision":"ALLOW","dry_run":true}`},
		{Event{EventID: "evt.custom", CorrelationID: "c", BlastScore: 3, Reason: "x"},
			`{"event_id":"evt.custom","correlation_id":"c","blast_score":3,"reason":"x"}`},
	}
	for _, tc := range cases {
		b, err := json.Marshal(tc.e)
		if err != nil || string(b) != tc.want {
			t.Errorf("JSON = %s (%v)\nwant %s", b, err, tc.want)
		}
		var back Event
		if err := json.Unmarshal(b, &back); err != nil || back.EventID != tc.e.EventID || back.CorrelationID != "c" {
			t.Errorf("unmarshal %s: %+v %v", b, back, err)
		}
	}
}

func TestRecordKeepsUnknownMembers(t *testing.T) {
	doc := `{"worker_id":"org.acme.w","worker_species_id":"wrk.a","capabilities":["cap.a"],"risk_tier":"low",` +
		`"privilege_envelope":{"network_egress":["api.example.com:443"],"egress":{"allowlist":["x"],"vendor_egress":1},"future_field":{"deep":[1,2]}},` +
		`"blast_radius":{"data":1,"network":0,"financial":0,"time":0,"reversibility":"reversible","notes":"n"},` +
		`"attestation":{"code_hash":"ab","signed_by":"ci"},` +
		`"limits":{"timeout_ms":5,"burst":true},` +
		`"x_vendor":{"a":null},"spec_version":"0.2"}`
	var rec Record
	if err := json.Unmarshal([]byte(doc), &rec); err != nil {
		t.Fatal(err)
	}
	checks := map[string]Extra{
		"record":      rec.Extra,
		"envelope":    rec.PrivilegeEnvelope.Extra,
		"egress":      rec.PrivilegeEnvelope.Egress.Extra,
		"blast":       rec.BlastRadius.Extra,
		"attestation": rec.Attestation.Extra,
		"limits":      rec.Limits.Extra,
	}
	want := map[string]Extra{
		"record":      {"x_vendor": json.RawMessage(`{"a":null}`), "spec_version": json.RawMessage(`"0.2"`)},
		"envelope":    {"future_field": json.RawMessage(`{"deep":[1,2]}`)},
		"egress":      {"vendor_egress": json.RawMessage(`1`)},
		"blast":       {"notes": json.RawMessage(`"n"`)},
		"attestation": {"signed_by": json.RawMessage(`"ci"`)},
		"limits":      {"burst": json.RawMessage(`true`)},
	}
	for k, got := range checks {
		if !reflect.DeepEqual(got, want[k]) {
			t.Errorf("%s extra = %s, want %s", k, got, want[k])
		}
	}
	if rec.PrivilegeEnvelope.NetworkEgress.Hosts[0] != "api.example.com:443" || rec.Limits.TimeoutMS != 5 || rec.Attestation.CodeHash != "ab" {
		t.Errorf("declared fields lost: %+v", rec)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var again Record
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rec, again) {
		t.Errorf("round trip differs:\n%+v\n%+v", rec, again)
	}
	// Same JSON value as the original document.
	var a, o any
	_ = json.Unmarshal(b, &a)
	_ = json.Unmarshal([]byte(doc), &o)
	if !reflect.DeepEqual(a, o) {
		t.Errorf("re-encoded record differs from the document:\n%s\n%s", b, doc)
	}
	// Unknown members come after the declared ones, sorted.
	if !strings.HasSuffix(string(b), `,"spec_version":"0.2","x_vendor":{"a":null}}`) {
		t.Errorf("extra members not appended sorted: %s", b)
	}
}

func TestNetworkEgressJSON(t *testing.T) {
	for _, tc := range []struct{ in, out string }{
		{`"none"`, `"none"`}, {`"unrestricted"`, `"unrestricted"`}, {`[]`, `[]`}, {`["a.example:1"]`, `["a.example:1"]`},
	} {
		var e NetworkEgress
		if err := json.Unmarshal([]byte(tc.in), &e); err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if b, _ := json.Marshal(e); string(b) != tc.out {
			t.Errorf("%s → %s, want %s", tc.in, b, tc.out)
		}
	}
	for _, bad := range []string{`"some"`, `5`, `{"a":1}`, `[1]`} {
		var e NetworkEgress
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Errorf("%s accepted as %+v", bad, e)
		}
	}
	if !(NetworkEgress{}).None() || !(NetworkEgress{Hosts: []string{}}).None() || (NetworkEgress{Mode: "unrestricted"}).None() || !(NetworkEgress{}).IsZero() {
		t.Error("None/IsZero")
	}
	if !(&PrivilegeEnvelope{}).IsEmpty() || (&PrivilegeEnvelope{Extra: Extra{"a": json.RawMessage(`1`)}}).IsEmpty() {
		t.Error("IsEmpty")
	}
}

func TestRulesFileKeepsUnknownMembers(t *testing.T) {
	doc := `{"rules":[{"rule_id":"r1","match":{"env":"dev"},"decision":{"candidate_workers_ranked":[]},"comment":"why","owner":{"team":"a"}},{"rule_id":"r2"}],"version":3,"generated_by":"hall"}`
	var f RulesFile
	if err := json.Unmarshal([]byte(doc), &f); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Extra, Extra{"version": json.RawMessage(`3`), "generated_by": json.RawMessage(`"hall"`)}) {
		t.Errorf("file extra = %s", f.Extra)
	}
	if !reflect.DeepEqual(f.Rules[0].Extra, Extra{"comment": json.RawMessage(`"why"`), "owner": json.RawMessage(`{"team":"a"}`)}) || f.Rules[1].Extra != nil {
		t.Errorf("rule extras = %s / %s", f.Rules[0].Extra, f.Rules[1].Extra)
	}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"rules":[{"rule_id":"r1","match":{"env":"dev"},"decision":{"candidate_workers_ranked":[]},"comment":"why","owner":{"team":"a"}},{"rule_id":"r2"}],"generated_by":"hall","version":3}`
	if string(b) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", b, want)
	}
	if err := json.Unmarshal([]byte(`{"rules":{}}`), &f); err == nil {
		t.Error("rules as an object accepted")
	}
}

func TestSmallTypes(t *testing.T) {
	for _, tc := range []struct {
		f    PyFloat
		want string
	}{{1, "1.0"}, {0.5, "0.5"}, {PyFloat(math.Copysign(0, -1)), "-0.0"}, {1e21, "1e+21"}, {100, "100.0"}} {
		if b, _ := json.Marshal(tc.f); string(b) != tc.want {
			t.Errorf("PyFloat(%v) = %s, want %s", float64(tc.f), b, tc.want)
		}
	}
	var s OptString = "x"
	if err := json.Unmarshal([]byte(`null`), &s); err != nil || s != "" {
		t.Errorf("null → %q %v", s, err)
	}
	if err := json.Unmarshal([]byte(`"<a>"`), &s); err != nil || s != "<a>" {
		t.Errorf("string → %q %v", s, err)
	}
	if b, _ := s.MarshalJSON(); string(b) != `"<a>"` {
		t.Errorf("OptString JSON %s", b)
	}
	if err := json.Unmarshal([]byte(`5`), &s); err == nil {
		t.Error("OptString accepted a number")
	}
	var a JSONArray
	if b, _ := json.Marshal(a); string(b) != "[]" {
		t.Errorf("empty JSONArray = %s", b)
	}
	if err := json.Unmarshal([]byte(`[{"a":1}]`), &a); err != nil || string(a) != `[{"a":1}]` {
		t.Errorf("JSONArray = %s %v", a, err)
	}
	if DenyPolicyGate.HTTPStatus() != http.StatusForbidden || DenyNoMatchingRule.HTTPStatus() != http.StatusNotFound || DenyCode("DENY_NEW").HTTPStatus() != http.StatusConflict {
		t.Error("HTTPStatus")
	}
	seen := map[DenyCode]bool{}
	for _, info := range DenyCodes() {
		if seen[info.Code] || !strings.HasPrefix(string(info.Code), "DENY_") || info.Meaning == "" {
			t.Errorf("bad table entry %+v", info)
		}
		seen[info.Code] = true
	}
	// WCP's 21; the Hall's three chain codes, DENY_POLICY_COST_EXCEEDED
	// and DENY_WORKER_UNTRUSTED (trust policies, docs/SUPPLY-CHAIN.md).
	if len(DenyCodes()) != 26 {
		t.Errorf("%d deny codes, want 26", len(DenyCodes()))
	}
	cfg := (*HallConfig)(nil)
	off := false
	if !cfg.CorrelationFloor() || !cfg.ControlsFloor() || !cfg.BlastFloor() {
		t.Error("nil config floors must be on")
	}
	cfg = &HallConfig{EnforceCorrelationID: &off, EnforceRequiredControls: &off, EnforceBlastScoringInProd: &off}
	if cfg.CorrelationFloor() || cfg.ControlsFloor() || cfg.BlastFloor() || !(&HallConfig{}).BlastFloor() {
		t.Error("explicit false floors")
	}
	if (&Record{}).Entrypoint("cap.a") != "run" || (&Record{Entrypoints: map[string]string{"cap.a": "go"}}).Entrypoint("cap.a") != "go" {
		t.Error("Entrypoint")
	}
}

func TestIDs(t *testing.T) {
	cases := []struct {
		kind IDKind
		id   string
		ok   bool
	}{
		{KindCapability, "cap.doc.summarize", true},
		{KindCapability, "cap.doc_x.sum-marize", true},
		{KindCapability, "cap", false},
		{KindCapability, "cap.Doc", false},
		{KindCapability, "cap..x", false},
		{KindCapability, "cap.x\n", false},
		{KindSpecies, "wrk.doc.summarizer", true},
		{KindSpecies, "cap.doc", false},
		{KindWorker, "org.acme.summarizer", true},
		{KindWorker, "x.me.w", true},
		{KindWorker, "org.acme", false},
		{KindWorker, "com.acme.w", false},
		{KindControl, "ctrl.obs.audit-log-append-only", true},
		{KindControl, "ctrl.blast_radius_scoring", true},
		{KindControl, "ctrl.", false},
		{KindControl, "ctrl..double-dot", false},
		{KindControl, "ctrl.Upper", false},
		{KindControl, "INVALID_CONTROL", false},
		{KindControl, "ctrl.ok\n", false},
		{KindOrg, "org.acme", true},
		{KindOrg, "x.me", true},
		{KindOrg, "org", false},
		{KindCapability, "cap." + strings.Repeat("a", 124), true},
		{KindCapability, "cap." + strings.Repeat("a", 125), false},
	}
	for _, tc := range cases {
		if got := ValidID(tc.kind, tc.id); got != tc.ok {
			t.Errorf("ValidID(%s, %q) = %v", tc.kind, tc.id, got)
		}
		err := CheckID(tc.kind, tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("CheckID(%s, %q) = %v", tc.kind, tc.id, err)
		}
		if err != nil && !strings.Contains(err.Error(), string(tc.kind)) {
			t.Errorf("CheckID error %q does not name the kind", err)
		}
	}
	h := strings.Repeat("0a", 32)
	if !ValidHexDigest(h) || ValidHexDigest(h+"\n") || ValidHexDigest(strings.ToUpper(h)) || ValidHexDigest(h[:62]) {
		t.Error("ValidHexDigest")
	}
	if !ValidArtifactHash("sha256:"+h) || ValidArtifactHash(h) {
		t.Error("ValidArtifactHash")
	}
}

func TestRecordMemberNamesAreCaseSensitive(t *testing.T) {
	doc := `{"worker_id":"org.acme.w","Worker_ID":"evil","privilege_envelope":{"Egress":{"allowlist":["x"]}},"PRIVILEGE_ENVELOPE":{"filesystem_writes":["relative"]},"egress":{}}`
	var rec Record
	if err := json.Unmarshal([]byte(doc), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.WorkerID != "org.acme.w" || rec.PrivilegeEnvelope == nil || rec.PrivilegeEnvelope.FilesystemWrites != nil || rec.PrivilegeEnvelope.Egress != nil {
		t.Errorf("a case variant filled a declared field: %+v / %+v", rec, rec.PrivilegeEnvelope)
	}
	want := Extra{"Worker_ID": json.RawMessage(`"evil"`), "PRIVILEGE_ENVELOPE": json.RawMessage(`{"filesystem_writes":["relative"]}`), "egress": json.RawMessage(`{}`)}
	if !reflect.DeepEqual(rec.Extra, want) || !reflect.DeepEqual(rec.PrivilegeEnvelope.Extra, Extra{"Egress": json.RawMessage(`{"allowlist":["x"]}`)}) {
		t.Errorf("extras = %s / %s", rec.Extra, rec.PrivilegeEnvelope.Extra)
	}
	// An empty legacy egress block survives a round trip without a null
	// allowlist.
	b, _ := json.Marshal(PrivilegeEnvelope{Egress: &LegacyEgress{}})
	if string(b) != `{"egress":{}}` {
		t.Errorf("empty egress = %s", b)
	}
}

// Granted shows nothing granted as an empty object, and a declared
// envelope as it is.
func TestRecordGranted(t *testing.T) {
	var r Record
	if b, err := json.Marshal(r.Granted()); err != nil || string(b) != "{}" {
		t.Fatalf("no envelope: %s %v, want {}", b, err)
	}
	r.PrivilegeEnvelope = &PrivilegeEnvelope{FilesystemWrites: []string{"/tmp/out"}}
	if b, err := json.Marshal(r.Granted()); err != nil || string(b) != `{"filesystem_writes":["/tmp/out"]}` {
		t.Fatalf("declared envelope: %s %v", b, err)
	}
}
