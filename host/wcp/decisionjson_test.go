package wcp

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// checkDecision compares RouteDecision's appenders with the reference
// encoders (oracle_test.go): AppendJSON and MarshalJSON with the
// reflection-based MarshalJSON, errors included; AppendCanonicalJSON and
// CanonicalJSON of the wire form with the decoder-based CanonicalJSON of
// the reference wire form.
func checkDecision(t testing.TB, d *RouteDecision) {
	t.Helper()
	// The reference encoder calls Event.MarshalJSON; it must write what
	// it always did.
	for i := range d.TelemetryEnvelopes {
		e := &d.TelemetryEnvelopes[i]
		want := oracleEventJSON(e)
		if got := e.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("Event.AppendJSON\n got %q\nwant %q", got, want)
		}
		wantC, err := oracleCanonicalJSON(want)
		if got := e.appendCanonical(nil); err != nil || !bytes.Equal(got, wantC) {
			t.Fatalf("Event.appendCanonical\n got %q\nwant %q (%v)", got, wantC, err)
		}
	}
	want, werr := oracleMarshalDecision(*d)
	got, gerr := d.AppendJSON([]byte("prefix"))
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
		t.Fatalf("AppendJSON error %v, reference %v\ndecision %+v", gerr, werr, d)
	}
	if werr != nil {
		if string(got) != "prefix" {
			t.Fatalf("AppendJSON failed but wrote %q", got)
		}
		if m, err := d.MarshalJSON(); m != nil || err == nil || err.Error() != werr.Error() {
			t.Fatalf("MarshalJSON = %q, %v; reference error %v", m, err, werr)
		}
		c, err := d.AppendCanonicalJSON([]byte("prefix"))
		if err == nil || err.Error() != werr.Error() || string(c) != "prefix" {
			t.Fatalf("AppendCanonicalJSON = %q, %v; reference error %v", c, err, werr)
		}
		return
	}
	if string(got) != "prefix"+string(want) {
		t.Fatalf("AppendJSON:\n got %q\nwant %q", got[len("prefix"):], want)
	}
	if m, err := d.MarshalJSON(); err != nil || !bytes.Equal(m, want) {
		t.Fatalf("MarshalJSON = %q, %v", m, err)
	}
	// json.Marshal compacts what MarshalJSON returns, which fails only
	// for a decision nested beyond encoding/json's limit.
	var compacted bytes.Buffer
	if cerr := json.Compact(&compacted, want); cerr != nil {
		if _, err := json.Marshal(d); err == nil {
			t.Fatalf("json.Marshal accepted a decision it cannot compact (%v)", cerr)
		}
	} else if m, err := json.Marshal(d); err != nil || !bytes.Equal(m, want) {
		t.Fatalf("json.Marshal = %q, %v", m, err)
	}

	wantC, werrC := oracleCanonicalJSON(want)
	gotC, gerrC := d.AppendCanonicalJSON([]byte("prefix"))
	if (werrC == nil) != (gerrC == nil) || werrC != nil && werrC.Error() != gerrC.Error() {
		t.Fatalf("AppendCanonicalJSON error %v, reference %v", gerrC, werrC)
	}
	if werrC != nil {
		if string(gotC) != "prefix" {
			t.Fatalf("AppendCanonicalJSON failed but wrote %q", gotC)
		}
		return
	}
	if string(gotC) != "prefix"+string(wantC) {
		t.Fatalf("AppendCanonicalJSON:\n got %q\nwant %q\nwire %q", gotC[len("prefix"):], wantC, want)
	}
	if c, err := CanonicalJSON(want); err != nil || !bytes.Equal(c, wantC) {
		t.Fatalf("CanonicalJSON(wire) = %q, %v\nwant %q", c, err, wantC)
	}
	// The direct path wrote it, unless a raw field is nested to the limit.
	if _, ok := d.appendCanonical(nil); !ok && rawDepth(d.RecommendedProfilesEffective) < maxNestingDepth-2 &&
		rawDepth(d.EscalationEffective.HumanRequiredIf) < maxNestingDepth-2 {
		t.Fatalf("AppendCanonicalJSON took the long way for %q", want)
	}
}

// rawDepth is the nesting depth of raw JSON (brackets outside strings).
func rawDepth(raw []byte) int {
	depth, most, inString := 0, 0, false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == '[' || c == '{'):
			depth++
			most = max(most, depth)
		case !inString && (c == ']' || c == '}'):
			depth--
		}
	}
	return most
}

// edgeStrings hold every escape class of both encoders: control
// characters, quote and backslash, HTML characters, U+2028/U+2029, DEL,
// invalid UTF-8 of every kind, U+FFFD itself, astral characters.
var edgeStrings = []string{
	"", "plain", "\x00\x01\x07\b\t\n\v\f\r\x0e\x1f\x7f", `"\/'`, "<script>&amp;</script>", "a\u2028b\u2029c",
	"\xff", "a\xffb", "\xe2\x80", "\xe2\x80\xa8\xe2\x80", "\xed\xa0\x80", "\xc0\xaf", "\xf0\x9f\x98", "\xf4\x90\x80\x80",
	"\uFFFD", "\U0001F600 \uFB33 \u00e9 \uFEFF", "\\u003c", "\u0080\u07ff\u0800\uffff\U00010000\U0010FFFF",
	strings.Repeat("x<", 40) + "\xfe",
}

// allASCII is every byte below 0x80.
var allASCII = func() string {
	var b [128]byte
	for i := range b {
		b[i] = byte(i)
	}
	return string(b[:])
}()

// setStrings sets every string of d to s.
func setStrings(d *RouteDecision, s string) {
	d.CorrelationID, d.TenantID, d.CapabilityID, d.MatchedRuleID = s, s, s, s
	d.Env, d.DataLabel, d.TenantRisk, d.QoSClass = s, s, s, s
	d.SelectedWorkerSpeciesID, d.ArtifactHash = OptString(s), OptString(s)
	d.RequiredControlsEffective = []string{s, s + "x"}
	d.EscalationEffective.Rationale = &s
	d.DenyReason = &DenyReason{Code: DenyCode(s), Message: s, ShadowedRuleIDs: []string{s}, Missing: []string{s},
		TenantID: &s, Reason: &s, PolicyVersion: &s, WorkerSpeciesID: &s, PendingApprovalID: &s, ApprovalExpiresAt: &s}
	ctls := []string{s}
	d.CandidateWorkersRanked = []CandidateWorker{{WorkerSpeciesID: s, RequiresControlsMinimum: &ctls, SkipReason: OptString(s)}}
	for i := range d.TelemetryEnvelopes {
		e := &d.TelemetryEnvelopes[i]
		e.CorrelationID, e.TenantID, e.TaskID, e.CapabilityID, e.Env, e.DataLabel = s, s, s, s, s, s
		e.MatchedRuleID, e.SelectedWorkerSpeciesID, e.WorkerSpeciesID, e.PolicyVersion, e.QoSClass = s, s, s, s, s
		e.Decision, e.Reason, e.Severity, e.DenyCode, e.DenyMessage = s, s, s, DenyCode(s), s
	}
	d.TelemetryEnvelopes = append(d.TelemetryEnvelopes, Event{EventID: s, CorrelationID: s, Reason: s})
	d.Policy = &PolicyEvidence{SetDigest: s, Outcome: s, PolicyID: s, ApprovalID: s}
}

func TestDecisionJSONStrings(t *testing.T) {
	for _, s := range append(edgeStrings, allASCII) {
		d := benchDecision()
		setStrings(&d, s)
		checkDecision(t, &d)
		// Every event layout, with the string everywhere.
		for _, id := range []string{EvtTaskDenied, EvtBlastScored, EvtPrivilegeChecked, EvtAttestationSkipped, EvtTaskRouted, EvtWorkerSelected, EvtPolicyGated, "evt.custom", s} {
			d.TelemetryEnvelopes[0].EventID = id
			checkDecision(t, &d)
		}
	}
}

func TestDecisionJSONUnset(t *testing.T) {
	// Everything zero: nil slices and pointers, empty strings, no policy.
	checkDecision(t, &RouteDecision{})
	// Empty but non-nil everywhere.
	empty, none := "", []string{}
	var nilCtls []string
	d := RouteDecision{
		RequiredControlsEffective:    []string{},
		CandidateWorkersRanked:       []CandidateWorker{{RequiresControlsMinimum: &none}, {RequiresControlsMinimum: &nilCtls}},
		TelemetryEnvelopes:           []Event{},
		RecommendedProfilesEffective: JSONArray{},
		EscalationEffective:          Escalation{HumanRequiredIf: JSONArray("null"), Rationale: &empty},
		DenyReason:                   &DenyReason{ShadowedRuleIDs: []string{}, Missing: []string{}, TenantID: &empty},
		Policy:                       &PolicyEvidence{},
	}
	checkDecision(t, &d)
	d.TelemetryEnvelopes = []Event{{}, {EventID: EvtTaskRouted}, {EventID: "evt.x", DryRun: true, BlastScore: -1}}
	checkDecision(t, &d)
}

func TestDecisionJSONNumbers(t *testing.T) {
	d := benchDecision()
	d.Denied = true
	for _, s := range []string{"0", "-1", "90", "999999999999999", "1000000000000000", "9007199254740993", "-9007199254740993",
		"123456789012345678901234567890", strings.Repeat("9", 400), "-" + strings.Repeat("7", 320)} {
		score, _ := new(big.Int).SetString(s, 10)
		n := int(score.Int64())
		d.DenyReason = &DenyReason{Code: DenyRequiresHuman, Message: "m", BlastScore: score, ShadowCount: &n, SupervisorRequired: true}
		checkDecision(t, &d)
	}
	for _, n := range []int{math.MaxInt64, math.MinInt64, 1 << 53, 1<<53 + 1, -(1<<53 + 1), 1e15 - 1, 1e15, -1e15 + 1, -1e15} {
		d.DenyReason = &DenyReason{ShadowCount: &n}
		d.TelemetryEnvelopes[0].BlastScore = n
		d.TelemetryEnvelopes[1].EventID, d.TelemetryEnvelopes[1].BlastScore = "evt.custom", n
		checkDecision(t, &d)
	}
	for _, f := range []float64{0, math.Copysign(0, -1), 1, -1, 0.1 + 0.2, 1e20, 1e21, 1e-6, 1e-7, 5e-324, math.MaxFloat64, -math.MaxFloat64,
		123456789, 1.5, math.NaN(), math.Inf(1), math.Inf(-1)} {
		pf := PyFloat(f)
		d.CandidateWorkersRanked[1].ScoreHint = &pf
		checkDecision(t, &d)
	}
}

func TestDecisionJSONRaw(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, raw := range []string{
		"", "null", " null", "null ", "[]", "[ ]", " [ 1 , 2 ] \n", `[1.0,1e2,-0,12345678901234567890,1e400]`,
		`[{"b":1,"a":2,"a":3}]`, "[\"<&>\u2028\u2029\", \"\\u003c\\u2028\", \"\xff\xe2\x80\xa8\"]", `{"z":[],"y":{}}`, `"x"`, `1`, `true`,
		"[\"a\\\"<\"]", "[\"\\\\\", \"<\"]",
		// Not JSON: MarshalJSON fails.
		"[1,", "nul", "[1] [2]", "[1]x", `{"a"}`, "[\"\x01\"]", "[01]",
		// The nesting limit, alone and inside the decision.
		nest(9997), nest(9998), nest(9999), nest(10000), nest(10001),
	} {
		d := benchDecision()
		d.RecommendedProfilesEffective = JSONArray(raw)
		checkDecision(t, &d)
		d = benchDecision()
		d.EscalationEffective.HumanRequiredIf = JSONArray(raw)
		checkDecision(t, &d)
	}
}

func TestDecisionJSONTimes(t *testing.T) {
	d := benchDecision()
	for _, ts := range []time.Time{{}, time.Date(2026, 1, 2, 3, 4, 5, 999999999, time.FixedZone("X", -5*3600-1800)),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)} {
		d.Timestamp = ts
		d.TelemetryEnvelopes[0].Timestamp = ts
		d.TelemetryEnvelopes[1].EventID, d.TelemetryEnvelopes[1].Timestamp = "evt.custom", ts
		checkDecision(t, &d)
	}
}

// TestDecisionJSONGolden pins the bytes of one realistic decision, wire
// and canonical, independently of both encoders.
func TestDecisionJSONGolden(t *testing.T) {
	d := benchDecision()
	wire, err := d.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	const wantWire = `{"decision_id":"0190f1c2-7d3e-7a4b-9c5d-6e7f8091a2b3","timestamp":"2026-03-04T05:06:07.891011Z","correlation_id":"550e8400-e29b-41d4-a716-446655440000",` +
		`"tenant_id":"tenant-acme","capability_id":"cap.doc.summarize","matched_rule_id":"rr_doc_summarize_prod","env":"prod","data_label":"INTERNAL","tenant_risk":"low","qos_class":"P2",` +
		`"denied":false,"deny_reason_if_denied":null,"selected_worker_species_id":"wrk.doc.summarizer",` +
		`"candidate_workers_ranked":[{"worker_species_id":"wrk.doc.summarizer","score_hint":1.0,"requires_controls_minimum":["ctrl.obs.audit-log-append-only"],"skip_reason":null},` +
		`{"worker_species_id":"wrk.doc.summarizer.large","score_hint":0.73,"requires_controls_minimum":null,"skip_reason":"already_selected"},` +
		`{"worker_species_id":"wrk.ghost.none","score_hint":0.25,"requires_controls_minimum":null,"skip_reason":"unavailable"}],` +
		`"required_controls_effective":["ctrl.obs.audit-log-append-only","ctrl.blast_radius_scoring"],"recommended_profiles_effective":[{"profile":"fast","weight":2}],` +
		`"escalation_effective":{"policy_gate":false,"msavx_step_up":false,"human_required_default":false,"human_required_if":[],"rationale":null},` +
		`"preconditions_checked":{"must_have_correlation_id":true,"must_attach_policy_version":true,"must_record_artifact_hash_if_executes":true,"deny_if_missing_required_controls":true,"deny_if_unsigned_artifact_in_prod":false,"deny_if_no_attestation_in_prod":false},` +
		`"artifact_hash":"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","worker_attestation_checked":true,"worker_attestation_valid":true,"dry_run":false,` +
		`"telemetry_envelopes":[{"event_id":"evt.gov.blast_scored","timestamp":"2026-03-04T05:06:07.891011Z","correlation_id":"550e8400-e29b-41d4-a716-446655440000","tenant_id":"tenant-acme","env":"prod","data_label":"INTERNAL","policy_version":"policy.v0","blast_score":25,"decision":"ALLOW"},` +
		`{"event_id":"evt.os.task.routed","timestamp":"2026-03-04T05:06:07.891011Z","correlation_id":"550e8400-e29b-41d4-a716-446655440000","tenant_id":"tenant-acme","task_id":"task_default","capability_id":"cap.doc.summarize","matched_rule_id":"rr_doc_summarize_prod","selected_worker_species_id":"wrk.doc.summarizer","policy_version":"policy.v0","qos_class":"P2"},` +
		`{"event_id":"evt.os.worker.selected","timestamp":"2026-03-04T05:06:07.891011Z","correlation_id":"550e8400-e29b-41d4-a716-446655440000","tenant_id":"tenant-acme","capability_id":"cap.doc.summarize","selected_worker_species_id":"wrk.doc.summarizer","reason":"first_available_candidate"},` +
		`{"event_id":"evt.os.policy.gated","timestamp":"2026-03-04T05:06:07.891011Z","correlation_id":"550e8400-e29b-41d4-a716-446655440000","tenant_id":"tenant-acme","capability_id":"cap.doc.summarize","decision":"ALLOW","policy_version":"policy.v0","reason":"no_gate_required"}],` +
		`"request_hash":"sha256:c9e4ab2f5a8ac4a3b3c5f1d1f5f4c0e0b1b2c0b3a4f6c2e9b1d0c8e7f6a5b4c3",` +
		`"policy":{"set_digest":"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae","outcome":"ALLOW"}}`
	// The request hash is sha256("request"); take it from the output
	// rather than spell it out.
	got := string(wire)
	i := strings.Index(got, `"request_hash":"sha256:`) + len(`"request_hash":"sha256:`)
	want := strings.Replace(wantWire, wantWire[strings.Index(wantWire, `"request_hash":"sha256:`)+len(`"request_hash":"sha256:`):][:64], got[i:i+64], 1)
	if got != want {
		t.Fatalf("wire\n got %s\nwant %s", got, want)
	}
	c, err := d.AppendCanonicalJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(c), `{"artifact_hash":"sha256:9f86`) || !strings.HasSuffix(string(c), `"worker_attestation_checked":true,"worker_attestation_valid":true}`) ||
		!strings.Contains(string(c), `{"blast_score":25,"correlation_id":`) || !strings.Contains(string(c), `"score_hint":1,`) {
		t.Errorf("canonical = %s", c)
	}
	checkDecision(t, &d)
}

// fuzzBytes hands out fuzz input piece by piece (zeros when used up).
type fuzzBytes struct{ b []byte }

func (f *fuzzBytes) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}

func (f *fuzzBytes) bool() bool { return f.byte()&1 == 1 }

func (f *fuzzBytes) u64() uint64 {
	var buf [8]byte
	n := copy(buf[:], f.b)
	f.b = f.b[n:]
	return binary.LittleEndian.Uint64(buf[:])
}

// str takes a length byte and that many bytes.
func (f *fuzzBytes) str() string {
	n := min(int(f.byte()), len(f.b))
	s := string(f.b[:n])
	f.b = f.b[n:]
	return s
}

func (f *fuzzBytes) strp() *string {
	if !f.bool() {
		return nil
	}
	s := f.str()
	return &s
}

func (f *fuzzBytes) strs() []string {
	switch n := f.byte() % 5; n {
	case 0:
		return nil
	default:
		out := make([]string, n-1)
		for i := range out {
			out[i] = f.str()
		}
		return out
	}
}

// raw is a JSONArray: mostly JSON-ish text (some of it valid).
func (f *fuzzBytes) raw() JSONArray {
	switch f.byte() % 4 {
	case 0:
		return nil
	case 1:
		return JSONArray(`[` + f.str() + `]`)
	default:
		return JSONArray(f.str())
	}
}

func (f *fuzzBytes) event() Event {
	ids := []string{EvtTaskDenied, EvtBlastScored, EvtPrivilegeChecked, EvtAttestationSkipped, EvtTaskRouted, EvtWorkerSelected, EvtPolicyGated}
	e := Event{}
	if c := int(f.byte()); c < len(ids)*30 {
		e.EventID = ids[c%len(ids)]
	} else {
		e.EventID = f.str()
	}
	if f.bool() {
		e.Timestamp = time.Unix(int64(f.u64()%(1<<36)), int64(f.u64()%1e9))
	}
	e.CorrelationID, e.TenantID, e.TaskID, e.CapabilityID, e.Env, e.DataLabel = f.str(), f.str(), f.str(), f.str(), f.str(), f.str()
	e.MatchedRuleID, e.SelectedWorkerSpeciesID, e.WorkerSpeciesID, e.PolicyVersion, e.QoSClass = f.str(), f.str(), f.str(), f.str(), f.str()
	e.BlastScore = int(int64(f.u64()) >> (f.byte() % 64))
	e.Decision, e.Reason, e.Severity, e.DenyCode, e.DenyMessage = f.str(), f.str(), f.str(), DenyCode(f.str()), f.str()
	e.DryRun = f.bool()
	return e
}

// fuzzDecision builds a decision from fuzz bytes: every field, nil or not.
func fuzzDecision(data []byte) *RouteDecision {
	f := &fuzzBytes{data}
	d := &RouteDecision{}
	copy(d.DecisionID[:], f.str())
	d.Timestamp = time.Unix(int64(f.u64()%(1<<36)), int64(f.u64()%1e9))
	d.CorrelationID, d.TenantID, d.CapabilityID, d.MatchedRuleID = f.str(), f.str(), f.str(), f.str()
	d.Env, d.DataLabel, d.TenantRisk, d.QoSClass = f.str(), f.str(), f.str(), f.str()
	d.Denied = f.bool()
	if f.bool() {
		r := &DenyReason{Code: DenyCode(f.str()), Message: f.str()}
		if f.bool() {
			r.BlastScore = new(big.Int).SetBytes([]byte(f.str()))
			if f.bool() {
				r.BlastScore.Neg(r.BlastScore)
			}
		}
		r.ShadowedRuleIDs = f.strs()
		if f.bool() {
			n := int(int64(f.u64()) >> (f.byte() % 64))
			r.ShadowCount = &n
		}
		r.Missing = f.strs()
		r.TenantID, r.Reason, r.PolicyVersion = f.strp(), f.strp(), f.strp()
		r.SupervisorRequired = f.bool()
		r.WorkerSpeciesID, r.PendingApprovalID, r.ApprovalExpiresAt = f.strp(), f.strp(), f.strp()
		d.DenyReason = r
	}
	d.SelectedWorkerSpeciesID = OptString(f.str())
	if n := f.byte() % 5; n > 0 {
		d.CandidateWorkersRanked = make([]CandidateWorker, n-1)
		for i := range d.CandidateWorkersRanked {
			c := &d.CandidateWorkersRanked[i]
			c.WorkerSpeciesID = f.str()
			if f.bool() {
				var s PyFloat
				if f.bool() {
					s = PyFloat(math.Float64frombits(f.u64()))
				} else {
					s = PyFloat(int8(f.byte())) / 4
				}
				c.ScoreHint = &s
			}
			if f.bool() {
				ctls := f.strs()
				c.RequiresControlsMinimum = &ctls
			}
			c.SkipReason = OptString(f.str())
		}
	}
	d.RequiredControlsEffective = f.strs()
	d.RecommendedProfilesEffective = f.raw()
	d.EscalationEffective = Escalation{PolicyGate: f.bool(), MsavxStepUp: f.bool(), HumanRequiredDefault: f.bool(), HumanRequiredIf: f.raw(), Rationale: f.strp()}
	d.PreconditionsChecked = Preconditions{f.bool(), f.bool(), f.bool(), f.bool(), f.bool(), f.bool()}
	d.ArtifactHash = OptString(f.str())
	d.WorkerAttestationChecked = f.bool()
	if f.bool() {
		v := f.bool()
		d.WorkerAttestationValid = &v
	}
	d.DryRun = f.bool()
	if n := f.byte() % 6; n > 0 {
		d.TelemetryEnvelopes = make([]Event, n-1)
		for i := range d.TelemetryEnvelopes {
			d.TelemetryEnvelopes[i] = f.event()
		}
	}
	copy(d.RequestHash[:], f.str())
	if f.bool() {
		d.Policy = &PolicyEvidence{SetDigest: f.str(), Outcome: f.str(), PolicyID: f.str(), ApprovalID: f.str()}
	}
	return d
}

// FuzzDecisionJSON builds decisions from fuzz bytes and compares both of
// their encodings with the reference encoders.
func FuzzDecisionJSON(f *testing.F) {
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 64))
	f.Add(bytes.Repeat([]byte{3, 'a', '<', 0xe2, 1}, 80))
	f.Add([]byte("\x10uuid-uuid-uuid-u\x01\x02\x03\x04\x05\x06\x07\x08\x01\x02\x03\x04\x05\x06\x07\x08\x03c-1\x01t\x05cap.x" +
		"\x07rr_\xff<>\x04prod\x08INTERNAL\x03low\x02P2\x01\x01\x04DENY\x05m\xe2\x80\xa8&\x01\x02\x05\x02\x02\x01"))
	var seed []byte
	for i := range 600 {
		seed = append(seed, byte(i*37), byte(i), 4, '[', '1', ',', '"', '\\', 'u', '2', '0', '2', '8', '"', ']')
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkDecision(t, fuzzDecision(data))
	})
}

// TestDecisionJSONZeroUUID: the zero decision id and time are written
// out, not omitted.
func TestDecisionJSONZeroUUID(t *testing.T) {
	d := RouteDecision{DecisionID: uuid.Nil}
	b, err := d.AppendJSON(nil)
	if err != nil || !strings.HasPrefix(string(b), `{"decision_id":"00000000-0000-0000-0000-000000000000","timestamp":"0001-01-01T00:00:00.000000Z",`) {
		t.Fatalf("%s %v", b, err)
	}
}

// TestAppendTime: the hand-written timestamp is AppendFormat's.
func TestAppendTime(t *testing.T) {
	times := []time.Time{{}, time.Unix(0, 0), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 12, 31, 23, 59, 59, 1000, time.UTC),
		time.Date(2026, 3, 4, 5, 6, 7, 891011999, time.FixedZone("X", 13*3600+45*60)), time.Date(2026, 3, 4, 0, 0, 0, 999, time.FixedZone("Y", -1))}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		times = append(times, time.Unix(rng.Int64N(1<<38)-1<<37, rng.Int64N(2e9)).In(time.FixedZone("Z", rng.IntN(100000)-50000)))
	}
	for _, ts := range times {
		want := `"` + ts.UTC().Format(TimeLayout) + `"`
		if got := appendTime([]byte("x"), ts); string(got) != "x"+want {
			t.Fatalf("appendTime(%v) = %s, want %s", ts, got, want)
		}
	}
}
