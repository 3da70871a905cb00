package router

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/registry"
)

// Shared fixtures: one greeter worker implementing the audit-log control
// (and the two special controls), one rule routing cap.hello.greet to it.

const (
	testCap     = "cap.hello.greet"
	testSpecies = "wrk.hello.greeter"
	ctrlAudit   = "ctrl.obs.audit-log-append-only"
	goodHash    = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	otherHash   = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

var testEpoch = time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC)

var testDecisionID = uuid.MustParse("11111111-2222-4333-8444-555555555555")

func mustRules(t testing.TB, doc string) *RuleSet {
	t.Helper()
	rs, err := ParseRules([]byte(doc))
	if err != nil {
		t.Fatalf("ParseRules: %v\n%s", err, doc)
	}
	return rs
}

// oneRule is {"rules":[{"rule_id":"rr_greet","match":<match>,"decision":<decision>}]}.
func oneRule(match, decision string) string {
	return `{"rules":[{"rule_id":"rr_greet","match":` + match + `,"decision":` + decision + `}]}`
}

const (
	greetMatch    = `{"capability_id":"cap.hello.greet"}`
	greetDecision = `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter","score_hint":1}],"required_controls_suggested":["ctrl.obs.audit-log-append-only"]}`
)

func greeterRecord() *wcp.Record {
	return &wcp.Record{
		WorkerID:            "org.example.greeter",
		WorkerSpeciesID:     testSpecies,
		Capabilities:        []string{testCap},
		CurrentlyImplements: []string{ctrlAudit, ctrlBlastScoring, ctrlPrivilegeEnvelopes},
	}
}

func newRegistry(recs ...*wcp.Record) *registry.Registry {
	reg := registry.New()
	for _, r := range recs {
		reg.Enroll(r)
	}
	return reg
}

func baseInput() wcp.RouteInput {
	return wcp.RouteInput{
		CapabilityID:  testCap,
		Env:           "dev",
		DataLabel:     "INTERNAL",
		TenantRisk:    "low",
		QoSClass:      "P2",
		TenantID:      "acme",
		CorrelationID: "c-1",
	}
}

// Stand-ins for the extension points.

type gateFunc func(context.Context, PolicyContext) (PolicyResult, error)

func (f gateFunc) Evaluate(ctx context.Context, pc PolicyContext) (PolicyResult, error) {
	return f(ctx, pc)
}

func gateAnswer(decision, version, reason string) PolicyGate {
	return gateFunc(func(context.Context, PolicyContext) (PolicyResult, error) {
		return PolicyResult{Decision: decision, PolicyVersion: version, Reason: reason}, nil
	})
}

type hashes map[string]string

func (h hashes) WorkerHash(_ context.Context, species string) (string, bool) {
	v, ok := h[species]
	return v, ok
}

type panicHashes struct{}

func (panicHashes) WorkerHash(context.Context, string) (string, bool) { panic("hash source exploded") }

type privFunc func(env, label string, env2 *wcp.PrivilegeEnvelope) (bool, string, error)

func (f privFunc) AllowsPrivilege(_ context.Context, env, label string, e *wcp.PrivilegeEnvelope) (bool, string, error) {
	return f(env, label, e)
}

type noEnvelopes struct{}

func (noEnvelopes) PrivilegeEnvelope(string) *wcp.PrivilegeEnvelope { return nil }

// panicRegistry panics in ControlPresent (an internal failure Decide must
// turn into a denial) or in WorkerAvailable (PyHall: the candidate is
// unavailable).
type panicRegistry struct {
	*registry.Registry
	controls, available bool
}

func (p panicRegistry) ControlPresent(c string) bool {
	if p.controls {
		panic("controls exploded")
	}
	return p.Registry.ControlPresent(c)
}

func (p panicRegistry) WorkerAvailable(s string) bool {
	if p.available {
		panic("availability exploded")
	}
	return p.Registry.WorkerAvailable(s)
}

// panicHandler is a slog handler that panics: a failure inside Decide
// before any rule matched.
type panicHandler struct{}

func (panicHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (panicHandler) Handle(context.Context, slog.Record) error { panic("logger exploded") }
func (h panicHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h panicHandler) WithGroup(string) slog.Handler           { return h }

// extraOf returns deny_reason_if_denied as JSON without code and message.
func extraOf(t *testing.T, d *wcp.RouteDecision) map[string]any {
	t.Helper()
	if d.DenyReason == nil {
		return nil
	}
	b, err := json.Marshal(d.DenyReason)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "code")
	delete(m, "message")
	return m
}

func jsonMap(t *testing.T, s string) map[string]any {
	t.Helper()
	if s == "" {
		return map[string]any{}
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	return m
}

func eventIDs(d *wcp.RouteDecision) []string {
	ids := make([]string, len(d.TelemetryEnvelopes))
	for i, e := range d.TelemetryEnvelopes {
		ids[i] = e.EventID
	}
	return ids
}

func candidatesJSON(t *testing.T, d *wcp.RouteDecision) string {
	t.Helper()
	b, err := json.Marshal(d.CandidateWorkersRanked)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func escJSON(t *testing.T, e wcp.Escalation) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fixedOpts(o Options) Options {
	o.Now = func() time.Time { return testEpoch }
	o.NewID = func() uuid.UUID { return testDecisionID }
	return o
}

func boolp(b bool) *bool { return &b }

const defaultEsc = `{"policy_gate":false,"msavx_step_up":false,"human_required_default":false,"human_required_if":[],"rationale":null}`

// denyCodeCoverage collects the codes TestDecideDenies observed.
var denyCodeCoverage []wcp.DenyCode

type denyCase struct {
	name    string
	rules   string
	records []*wcp.Record
	reg     Registry // overrides records
	opts    Options
	input   func(*wcp.RouteInput)

	code     wcp.DenyCode
	matched  string
	extra    string   // JSON object of the payload keys besides code and message
	controls []string // required_controls_effective
	esc      string   // escalation_effective JSON ("" = default)
	cands    string   // candidate_workers_ranked JSON ("" = [])
	checked  bool
	valid    *bool
	check    func(t *testing.T, d *wcp.RouteDecision)
}

func TestDecideDenies(t *testing.T) {
	greet := oneRule(greetMatch, greetDecision)
	gated := oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}],"required_controls_suggested":["ctrl.obs.audit-log-append-only"],"escalation":{"policy_gate":true,"rationale":"rule says so"}}`)
	gatedEsc := `{"policy_gate":true,"msavx_step_up":false,"human_required_default":false,"human_required_if":[],"rationale":"rule says so"}`
	priv := oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}],"required_controls_suggested":["ctrl.privilege_envelopes_required"]}`)
	attest := func(o Options) Options {
		o.Config = &wcp.HallConfig{RequireWorkerAttestation: true}
		return o
	}
	rec := greeterRecord()
	restricted := &wcp.Record{
		WorkerID: "org.example.fetcher", WorkerSpeciesID: testSpecies, Capabilities: []string{testCap},
		CurrentlyImplements: []string{ctrlPrivilegeEnvelopes},
		PrivilegeEnvelope:   &wcp.PrivilegeEnvelope{Egress: &wcp.LegacyEgress{Allowlist: []string{"api.example.com", "evil.example.net"}}},
	}

	restrictedReg := newRegistry(restricted)

	cases := []denyCase{
		{
			name: "unknown tenant with require_signatory", rules: greet, records: []*wcp.Record{rec},
			opts: Options{Config: &wcp.HallConfig{RequireSignatory: true, AllowedTenants: []string{"globex", "ACME"}}},
			code: wcp.DenyUnknownTenant, matched: "PRE_ROUTING", extra: `{"tenant_id":"acme"}`,
		},
		{
			name: "empty tenant with require_signatory is an unknown tenant first", rules: greet, records: []*wcp.Record{rec},
			opts:  Options{Config: &wcp.HallConfig{RequireSignatory: true, AllowedTenants: []string{"acme"}}},
			input: func(in *wcp.RouteInput) { in.TenantID = "" },
			code:  wcp.DenyUnknownTenant, matched: "PRE_ROUTING", extra: `{"tenant_id":""}`,
		},
		{
			name: "blank tenant", rules: greet, records: []*wcp.Record{rec},
			input: func(in *wcp.RouteInput) { in.TenantID = " \t\u00a0\x1c" },
			code:  wcp.DenyMissingTenantID, matched: "PRE_ROUTING",
		},
		{
			name: "blast score below range", rules: greet, records: []*wcp.Record{rec},
			input: func(in *wcp.RouteInput) { in.BlastScore = bigInt("-1") },
			code:  wcp.DenyInvalidInput, matched: "PRE_ROUTING", extra: `{"blast_score":-1}`,
		},
		{
			name: "blast score above range", rules: greet, records: []*wcp.Record{rec},
			input: func(in *wcp.RouteInput) { in.BlastScore = bigInt("101") },
			code:  wcp.DenyInvalidInput, matched: "PRE_ROUTING", extra: `{"blast_score":101}`,
		},
		{
			name: "huge blast score", rules: greet, records: []*wcp.Record{rec},
			input: func(in *wcp.RouteInput) { in.BlastScore = bigInt("100000000000000000000000") },
			code:  wcp.DenyInvalidInput, matched: "PRE_ROUTING", extra: `{"blast_score":100000000000000000000000}`,
			check: func(t *testing.T, d *wcp.RouteDecision) {
				b, _ := json.Marshal(d.DenyReason)
				if !strings.Contains(string(b), `"blast_score":100000000000000000000000`) {
					t.Errorf("deny reason %s lacks the exact blast_score", b)
				}
			},
		},
		{
			name: "shadowed rules in prod", records: []*wcp.Record{rec},
			rules: `{"rules":[{"rule_id":"A","match":{}},{"rule_id":"B","match":{}},{"rule_id":"C","match":{"env":"dev"}}]}`,
			input: func(in *wcp.RouteInput) { in.Env = "prod" },
			code:  wcp.DenyShadowRulesDetected, matched: "NO_MATCH", extra: `{"shadowed_rule_ids":["B","C","C"],"shadow_count":3}`,
		},
		{
			name: "shadowed rules in edge, unrelated to the request", records: []*wcp.Record{rec},
			rules: `{"rules":[` +
				`{"rule_id":"rr_greet","match":{"capability_id":"cap.hello.greet"},"decision":` + greetDecision + `},` +
				`{"rule_id":"rr_broad","match":{"capability_id":"cap.other"}},` +
				`{"rule_id":"rr_narrow","match":{"capability_id":"cap.other","env":"prod"}}]}`,
			input: func(in *wcp.RouteInput) { in.Env = "edge" },
			code:  wcp.DenyShadowRulesDetected, matched: "NO_MATCH", extra: `{"shadowed_rule_ids":["rr_narrow"],"shadow_count":1}`,
		},
		{
			name: "no matching rule", rules: greet, records: []*wcp.Record{rec},
			input: func(in *wcp.RouteInput) { in.CapabilityID = "cap.hello.greet2" },
			code:  wcp.DenyNoMatchingRule, matched: "NO_MATCH",
		},
		{
			name: "no rules at all", rules: `{"rules":[]}`, records: []*wcp.Record{rec},
			code: wcp.DenyNoMatchingRule, matched: "NO_MATCH",
		},
		{
			name: "unknown operator never matches", rules: oneRule(`{"capability_id":{"eq":"cap.hello.greet"}}`, greetDecision), records: []*wcp.Record{rec},
			code: wcp.DenyNoMatchingRule, matched: "NO_MATCH",
		},
		{
			name: "empty correlation id", rules: gated, records: []*wcp.Record{rec},
			input: func(in *wcp.RouteInput) { in.CorrelationID = "" },
			code:  wcp.DenyMissingCorrelationID, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "whitespace correlation id enforced by the floor although the rule waives it", records: []*wcp.Record{rec},
			rules: oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}],"preconditions":{"must_have_correlation_id":false}}`),
			input: func(in *wcp.RouteInput) { in.CorrelationID = " \u2028 " },
			code:  wcp.DenyMissingCorrelationID, matched: "rr_greet", controls: []string{},
			check: func(t *testing.T, d *wcp.RouteDecision) {
				if d.PreconditionsChecked.MustHaveCorrelationID {
					t.Error("preconditions_checked should report the rule's false")
				}
			},
		},
		{
			name: "correlation id enforced by the rule when the floor is off", rules: greet, records: []*wcp.Record{rec},
			opts:  Options{Config: &wcp.HallConfig{EnforceCorrelationID: boolp(false)}},
			input: func(in *wcp.RouteInput) { in.CorrelationID = "\t" },
			code:  wcp.DenyMissingCorrelationID, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "missing required controls", records: []*wcp.Record{rec},
			rules: oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}],"required_controls_suggested":["ctrl.z.last","ctrl.obs.audit-log-append-only","ctrl.a.first","ctrl.z.last"],"escalation":{"policy_gate":true}}`),
			code:  wcp.DenyMissingRequiredControls, matched: "rr_greet",
			extra:    `{"missing":["ctrl.a.first","ctrl.z.last"]}`,
			controls: []string{"ctrl.a.first", ctrlAudit, "ctrl.z.last"},
		},
		{
			name: "missing controls with an empty registry", rules: greet, reg: registry.New(),
			code: wcp.DenyMissingRequiredControls, matched: "rr_greet", extra: `{"missing":["ctrl.obs.audit-log-append-only"]}`, controls: []string{ctrlAudit},
		},
		{
			name: "blast score too high in prod (computed)", records: []*wcp.Record{rec},
			rules: oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}],"escalation":{"msavx_step_up":true,"rationale":"r"}}`),
			input: func(in *wcp.RouteInput) {
				in.Env, in.DataLabel, in.QoSClass, in.Request = "prod", "RESTRICTED", "P0", json.RawMessage(`{"egress":1}`)
			},
			code: wcp.DenyRequiresHuman, matched: "rr_greet", controls: []string{},
			extra: `{"blast_score":90,"reason":"REQUIRE_HUMAN_HIGH_BLAST"}`,
			esc:   `{"policy_gate":false,"msavx_step_up":true,"human_required_default":true,"human_required_if":[],"rationale":"REQUIRE_HUMAN_HIGH_BLAST"}`,
		},
		{
			name: "blast score exactly 85 at the edge (computed)", records: []*wcp.Record{rec}, rules: greet,
			input: func(in *wcp.RouteInput) {
				in.Env, in.QoSClass, in.Request = "edge", "P0", json.RawMessage(`{"external_call":"x","mutates_state":[0]}`)
			},
			code: wcp.DenyRequiresHuman, matched: "rr_greet", controls: []string{ctrlAudit},
			extra: `{"blast_score":85,"reason":"REQUIRE_HUMAN_HIGH_BLAST"}`,
			esc:   `{"policy_gate":false,"msavx_step_up":false,"human_required_default":true,"human_required_if":[],"rationale":"REQUIRE_HUMAN_HIGH_BLAST"}`,
		},
		{
			name: "caller blast score raises the computed one", records: []*wcp.Record{rec}, rules: greet,
			input: func(in *wcp.RouteInput) { in.Env, in.DataLabel, in.BlastScore = "prod", "PUBLIC", bigInt("85") },
			code:  wcp.DenyRequiresHuman, matched: "rr_greet", controls: []string{ctrlAudit},
			extra: `{"blast_score":85,"reason":"REQUIRE_HUMAN_HIGH_BLAST"}`,
			esc:   `{"policy_gate":false,"msavx_step_up":false,"human_required_default":true,"human_required_if":[],"rationale":"REQUIRE_HUMAN_HIGH_BLAST"}`,
		},
		{
			name: "policy gate required but unconfigured", rules: gated, records: []*wcp.Record{rec},
			code: wcp.DenyPolicyGateUnconfigured, matched: "rr_greet", controls: []string{ctrlAudit}, esc: gatedEsc,
		},
		{
			name: "policy gate denies", rules: gated, records: []*wcp.Record{rec},
			opts: Options{Gate: gateAnswer("DENY", "policy.v7", "tenant over quota")},
			code: wcp.DenyPolicyGate, matched: "rr_greet", controls: []string{ctrlAudit},
			extra: `{"reason":"tenant over quota","policy_version":"policy.v7"}`,
			esc:   `{"policy_gate":true,"msavx_step_up":false,"human_required_default":false,"human_required_if":[],"rationale":"tenant over quota"}`,
		},
		{
			name: "policy gate requires a human", rules: gated, records: []*wcp.Record{rec},
			opts: Options{Gate: gateAnswer("REQUIRE_HUMAN", "policy.v8", "big spender")},
			code: wcp.DenyRequiresHumanApproval, matched: "rr_greet", controls: []string{ctrlAudit},
			extra: `{"reason":"big spender","policy_version":"policy.v8","supervisor_required":true}`,
			esc:   `{"policy_gate":true,"msavx_step_up":false,"human_required_default":true,"human_required_if":[],"rationale":"big spender"}`,
		},
		{
			name: "policy gate answers lowercase allow", rules: gated, records: []*wcp.Record{rec},
			opts: Options{Gate: gateAnswer("allow", "policy.v1", "ok")},
			code: wcp.DenyPolicyGateInvalidResponse, matched: "rr_greet", controls: []string{ctrlAudit},
			esc: `{"policy_gate":true,"msavx_step_up":false,"human_required_default":false,"human_required_if":[],"rationale":"invalid_gate_response"}`,
		},
		{
			name: "policy gate answers nothing", rules: gated, records: []*wcp.Record{rec},
			opts: Options{Gate: gateAnswer("", "", "")},
			code: wcp.DenyPolicyGateInvalidResponse, matched: "rr_greet", controls: []string{ctrlAudit},
			esc: `{"policy_gate":true,"msavx_step_up":false,"human_required_default":false,"human_required_if":[],"rationale":"invalid_gate_response"}`,
		},
		{
			name: "policy gate fails", rules: gated, records: []*wcp.Record{rec},
			opts: Options{Gate: gateFunc(func(context.Context, PolicyContext) (PolicyResult, error) {
				return PolicyResult{Decision: "ALLOW"}, errors.New("ValueError: opa unreachable")
			})},
			code: wcp.DenyInternalError, matched: "rr_greet", controls: []string{ctrlAudit}, esc: gatedEsc,
			check: func(t *testing.T, d *wcp.RouteDecision) {
				if strings.Contains(d.DenyReason.Message, "opa") || strings.Contains(d.DenyReason.Message, "ValueError") {
					t.Errorf("gate error leaked into the message: %q", d.DenyReason.Message)
				}
			},
		},
		{
			name: "policy gate panics", rules: gated, records: []*wcp.Record{rec},
			opts: Options{Gate: gateFunc(func(context.Context, PolicyContext) (PolicyResult, error) { panic("gate exploded") })},
			code: wcp.DenyInternalError, matched: "rr_greet", controls: []string{ctrlAudit}, esc: gatedEsc,
		},
		{
			name: "no available worker", records: []*wcp.Record{rec},
			rules: oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.ghost","score_hint":0.5},{"score_hint":2},{"worker_species_id":""},{"worker_species_id":false}],"escalation":{"human_required_if":[{"env":"prod"}]}}`),
			code:  wcp.DenyNoAvailableWorker, matched: "rr_greet", controls: []string{},
			esc: `{"policy_gate":false,"msavx_step_up":false,"human_required_default":false,"human_required_if":[{"env":"prod"}],"rationale":null}`,
			cands: `[{"worker_species_id":"wrk.ghost","score_hint":0.5,"requires_controls_minimum":null,"skip_reason":"unavailable"},` +
				`{"worker_species_id":"__missing__","score_hint":2.0,"requires_controls_minimum":null,"skip_reason":"unavailable"},` +
				`{"worker_species_id":"__missing__","score_hint":null,"requires_controls_minimum":null,"skip_reason":"unavailable"},` +
				`{"worker_species_id":"__missing__","score_hint":null,"requires_controls_minimum":null,"skip_reason":"unavailable"}]`,
		},
		{
			name: "no candidates at all (catch-all default deny)", records: []*wcp.Record{rec},
			rules: `{"rules":[{"rule_id":"rr_default_deny","match":{}}]}`,
			code:  wcp.DenyNoAvailableWorker, matched: "rr_default_deny", controls: []string{}, cands: `[]`,
		},
		{
			name: "panicking availability makes the candidate unavailable",
			reg:  panicRegistry{Registry: newRegistry(rec), available: true}, rules: greet,
			code: wcp.DenyNoAvailableWorker, matched: "rr_greet", controls: []string{ctrlAudit},
			cands: `[{"worker_species_id":"wrk.hello.greeter","score_hint":1.0,"requires_controls_minimum":null,"skip_reason":"unavailable"}]`,
		},
		{
			name: "strict env check leaves no worker", rules: greet,
			records: []*wcp.Record{{WorkerID: "org.example.greeter", WorkerSpeciesID: testSpecies, Capabilities: []string{testCap}, CurrentlyImplements: []string{ctrlAudit}, AllowedEnvironments: []string{"prod"}}},
			opts:    Options{Config: &wcp.HallConfig{EnforceAllowedEnvironments: true}},
			code:    wcp.DenyNoAvailableWorker, matched: "rr_greet", controls: []string{ctrlAudit},
			cands: `[{"worker_species_id":"wrk.hello.greeter","score_hint":1.0,"requires_controls_minimum":null,"skip_reason":"env_not_allowed"}]`,
		},
		{
			name: "attestation unconfigured", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{}),
			code: wcp.DenyAttestationUnconfigured, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "attestation with only the current hash source", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{CurrentHashes: hashes{testSpecies: goodHash}}),
			code: wcp.DenyAttestationUnconfigured, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "attestation with only the registered hash source", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{RegisteredHashes: hashes{testSpecies: goodHash}}),
			code: wcp.DenyAttestationUnconfigured, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "no registered hash", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{RegisteredHashes: hashes{}, CurrentHashes: hashes{testSpecies: goodHash}}),
			code: wcp.DenyWorkerAttestationMissing, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "registered hash source panics", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{RegisteredHashes: panicHashes{}, CurrentHashes: hashes{testSpecies: goodHash}}),
			code: wcp.DenyWorkerAttestationMissing, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "empty registered hash is invalid, not missing", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{RegisteredHashes: hashes{testSpecies: ""}, CurrentHashes: hashes{testSpecies: goodHash}}),
			code: wcp.DenyWorkerAttestationInvalidHash, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "registered hash with a trailing newline is invalid (deliberate deviation)", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{RegisteredHashes: hashes{testSpecies: goodHash + "\n"}, CurrentHashes: hashes{testSpecies: goodHash + "\n"}}),
			code: wcp.DenyWorkerAttestationInvalidHash, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "uppercase registered hash is invalid", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{RegisteredHashes: hashes{testSpecies: strings.ToUpper(goodHash)}, CurrentHashes: hashes{testSpecies: goodHash}}),
			code: wcp.DenyWorkerAttestationInvalidHash, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "current hash unavailable", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{RegisteredHashes: hashes{testSpecies: goodHash}, CurrentHashes: hashes{}}),
			code: wcp.DenyWorkerHashUnavailable, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "current hash source panics", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{RegisteredHashes: hashes{testSpecies: goodHash}, CurrentHashes: panicHashes{}}),
			code: wcp.DenyWorkerHashUnavailable, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "current hash malformed", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{RegisteredHashes: hashes{testSpecies: goodHash}, CurrentHashes: hashes{testSpecies: "sha256:" + goodHash}}),
			code: wcp.DenyWorkerHashUnavailable, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "worker tampered", rules: greet, records: []*wcp.Record{rec},
			opts: attest(Options{RegisteredHashes: hashes{testSpecies: goodHash}, CurrentHashes: hashes{testSpecies: otherHash}}),
			code: wcp.DenyWorkerTampered, matched: "rr_greet", controls: []string{ctrlAudit},
			extra: `{"worker_species_id":"wrk.hello.greeter"}`, checked: true, valid: boolp(false),
			check: func(t *testing.T, d *wcp.RouteDecision) {
				b, _ := json.Marshal(d)
				if strings.Contains(string(b), goodHash) || strings.Contains(string(b), otherHash) {
					t.Error("hash values must never appear in the decision")
				}
			},
		},
		{
			name: "privilege envelopes required by the rule but unconfigured", rules: priv, records: []*wcp.Record{rec},
			code: wcp.DenyPrivilegeEnvelopeUnconfigured, matched: "rr_greet", controls: []string{ctrlPrivilegeEnvelopes},
		},
		{
			name: "privilege envelopes required by the hall floor but half configured", rules: greet, records: []*wcp.Record{rec},
			opts: Options{Config: &wcp.HallConfig{EnforcePrivilegeEnvelopes: true}, Envelopes: noEnvelopes{}},
			code: wcp.DenyPrivilegeEnvelopeUnconfigured, matched: "rr_greet", controls: []string{ctrlAudit},
		},
		{
			name: "privilege envelope violated (stock policy, no allow-list)", rules: priv, reg: restrictedReg,
			input: func(in *wcp.RouteInput) { in.Env, in.DataLabel = "prod", "RESTRICTED" },
			opts: Options{
				Config:    &wcp.HallConfig{EnforceBlastScoringInProd: boolp(false)},
				Envelopes: restrictedReg,
				Privilege: registry.StockPrivilegePolicy{},
			},
			code: wcp.DenyPrivilegeEnvelopeViolated, matched: "rr_greet", controls: []string{ctrlPrivilegeEnvelopes},
			extra: `{"reason":"egress_denied_no_allowlist_configured","worker_species_id":"wrk.hello.greeter"}`,
		},
		{
			name: "privilege envelope violated after attestation passed", rules: priv, reg: restrictedReg,
			input: func(in *wcp.RouteInput) { in.Env, in.DataLabel = "edge", "RESTRICTED" },
			opts: Options{
				Config:           &wcp.HallConfig{EnforceBlastScoringInProd: boolp(false), RequireWorkerAttestation: true},
				Envelopes:        restrictedReg,
				RegisteredHashes: hashes{testSpecies: goodHash}, CurrentHashes: hashes{testSpecies: goodHash},
				Privilege: registry.StockPrivilegePolicy{EgressAllowlist: map[string][]string{"edge": {"api.example.com"}}},
			},
			code: wcp.DenyPrivilegeEnvelopeViolated, matched: "rr_greet", controls: []string{ctrlPrivilegeEnvelopes},
			extra: `{"reason":"egress_not_allowlisted:evil.example.net","worker_species_id":"wrk.hello.greeter"}`,
		},
		{
			name: "privilege check fails", rules: priv, records: []*wcp.Record{rec},
			opts: Options{Envelopes: noEnvelopes{}, Privilege: privFunc(func(string, string, *wcp.PrivilegeEnvelope) (bool, string, error) {
				return true, "", errors.New("RuntimeError: policy store down")
			})},
			code: wcp.DenyInternalError, matched: "rr_greet", controls: []string{ctrlPrivilegeEnvelopes},
			check: func(t *testing.T, d *wcp.RouteDecision) {
				if strings.Contains(d.DenyReason.Message, "RuntimeError") {
					t.Errorf("privilege error leaked into the message: %q", d.DenyReason.Message)
				}
			},
		},
		{
			name: "privilege check panics", rules: priv, records: []*wcp.Record{rec},
			opts: Options{Envelopes: noEnvelopes{}, Privilege: privFunc(func(string, string, *wcp.PrivilegeEnvelope) (bool, string, error) {
				panic("privilege exploded")
			})},
			code: wcp.DenyInternalError, matched: "rr_greet", controls: []string{ctrlPrivilegeEnvelopes},
		},
		{
			name: "internal failure before a match is recovered", rules: greet, records: []*wcp.Record{rec},
			opts: Options{Config: &wcp.HallConfig{RequireCredential: true}, Logger: slog.New(panicHandler{})},
			code: wcp.DenyInternalError, matched: "PRE_ROUTING",
		},
		{
			name: "internal failure after a match is recovered",
			reg:  panicRegistry{Registry: newRegistry(rec), controls: true}, rules: greet,
			code: wcp.DenyInternalError, matched: "rr_greet", controls: []string{ctrlAudit},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := mustRules(t, tc.rules)
			reg := tc.reg
			if reg == nil {
				reg = newRegistry(tc.records...)
			}
			in := baseInput()
			if tc.input != nil {
				tc.input(&in)
			}
			d := Decide(context.Background(), &in, rs, reg, fixedOpts(tc.opts))
			assertDenied(t, &d, &in, tc)
			denyCodeCoverage = append(denyCodeCoverage, d.Code())
			if tc.check != nil {
				tc.check(t, &d)
			}
		})
	}
}

// assertDenied checks a denial's code and payload and the common deny
// shape of BEHAVIOUR.md §3.1.
func assertDenied(t *testing.T, d *wcp.RouteDecision, in *wcp.RouteInput, tc denyCase) {
	t.Helper()
	if !d.Denied || d.DenyReason == nil {
		t.Fatalf("allowed (selected %q), want %s", d.SelectedWorkerSpeciesID, tc.code)
	}
	if d.Code() != tc.code {
		t.Fatalf("code = %s (%s), want %s", d.Code(), d.DenyReason.Message, tc.code)
	}
	if d.DenyReason.Message == "" {
		t.Error("empty deny message")
	}
	if d.MatchedRuleID != tc.matched {
		t.Errorf("matched_rule_id = %q, want %q", d.MatchedRuleID, tc.matched)
	}
	if got, want := extraOf(t, d), jsonMap(t, tc.extra); !reflect.DeepEqual(got, want) {
		t.Errorf("deny extra = %v, want %v", got, want)
	}
	wantControls := tc.controls
	if wantControls == nil {
		wantControls = []string{}
	}
	if !slices.Equal(d.RequiredControlsEffective, wantControls) || d.RequiredControlsEffective == nil {
		t.Errorf("required_controls_effective = %#v, want %#v", d.RequiredControlsEffective, wantControls)
	}
	wantEsc := tc.esc
	if wantEsc == "" {
		wantEsc = defaultEsc
	}
	if got := escJSON(t, d.EscalationEffective); got != wantEsc {
		t.Errorf("escalation_effective = %s\nwant %s", got, wantEsc)
	}
	wantCands := tc.cands
	if wantCands == "" {
		wantCands = "[]"
	}
	if got := candidatesJSON(t, d); got != wantCands {
		t.Errorf("candidate_workers_ranked = %s\nwant %s", got, wantCands)
	}
	if d.WorkerAttestationChecked != tc.checked || !reflect.DeepEqual(d.WorkerAttestationValid, tc.valid) {
		t.Errorf("attestation checked/valid = %v/%v, want %v/%v", d.WorkerAttestationChecked, d.WorkerAttestationValid, tc.checked, tc.valid)
	}
	if d.SelectedWorkerSpeciesID != "" || d.ArtifactHash != "" || len(d.RecommendedProfilesEffective) != 0 {
		t.Errorf("deny carries selected=%q artifact=%q profiles=%s", d.SelectedWorkerSpeciesID, d.ArtifactHash, d.RecommendedProfilesEffective)
	}
	if d.DecisionID != testDecisionID || !d.Timestamp.Equal(testEpoch) {
		t.Errorf("decision id/timestamp = %v/%v, want the Options' %v/%v", d.DecisionID, d.Timestamp, testDecisionID, testEpoch)
	}
	if d.CorrelationID != in.CorrelationID || d.TenantID != in.TenantID || d.CapabilityID != in.CapabilityID ||
		d.Env != in.Env || d.DataLabel != in.DataLabel || d.TenantRisk != in.TenantRisk || d.QoSClass != in.QoSClass {
		t.Error("input fields not copied raw into the decision")
	}
	if len(d.TelemetryEnvelopes) != 1 {
		t.Fatalf("telemetry = %v, want exactly one %s", eventIDs(d), wcp.EvtTaskDenied)
	}
	e := d.TelemetryEnvelopes[0]
	if e.EventID != wcp.EvtTaskDenied || e.DenyCode != tc.code || e.MatchedRuleID != tc.matched ||
		e.DenyMessage != d.DenyReason.Message || !e.Timestamp.Equal(testEpoch) || e.DryRun != in.DryRun {
		t.Errorf("deny event = %+v", e)
	}
}

func bigInt(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("bad test integer " + s)
	}
	return n
}

func allowDecide(t *testing.T, rules string, reg Registry, opts Options, in wcp.RouteInput) wcp.RouteDecision {
	t.Helper()
	d := Decide(context.Background(), &in, mustRules(t, rules), reg, fixedOpts(opts))
	if d.Denied {
		t.Fatalf("denied %s (%s), want allowed", d.Code(), d.DenyReason.Message)
	}
	if d.DenyReason != nil {
		t.Fatalf("allowed decision carries a deny reason %+v", d.DenyReason)
	}
	return d
}

func TestDecideAllowSelectsFirstAvailable(t *testing.T) {
	other := &wcp.Record{WorkerID: "org.example.other", WorkerSpeciesID: "wrk.hello.other", Capabilities: []string{testCap}}
	rules := oneRule(`{"capability_id":"cap.hello.greet","env":{"in":["dev","stage"]},"data_label":{"any":true},"tenant_risk":null}`,
		`{"candidate_workers_ranked":[`+
			`{"worker_species_id":"wrk.ghost","score_hint":0.25},`+
			`{"score_hint":3},`+
			`{"worker_species_id":"wrk.hello.greeter","score_hint":1},`+
			`{"worker_species_id":"wrk.hello.greeter"},`+
			`{"worker_species_id":"wrk.hello.other","score_hint":1e21}],`+
			`"required_controls_suggested":["ctrl.obs.audit-log-append-only","ctrl.obs.audit-log-append-only"],`+
			`"escalation":{"msavx_step_up":"yes","human_required_default":1,"rationale":"echo only"},`+
			`"preconditions":{"deny_if_no_attestation_in_prod":"on","must_attach_policy_version":0},`+
			`"recommended_profiles":[{"profile":"fast","weight":2}]}`)
	d := allowDecide(t, rules, newRegistry(greeterRecord(), other), Options{}, baseInput())

	if d.SelectedWorkerSpeciesID != testSpecies || d.MatchedRuleID != "rr_greet" {
		t.Errorf("selected %q by %q", d.SelectedWorkerSpeciesID, d.MatchedRuleID)
	}
	wantCands := `[{"worker_species_id":"wrk.ghost","score_hint":0.25,"requires_controls_minimum":null,"skip_reason":"unavailable"},` +
		`{"worker_species_id":"__missing__","score_hint":3.0,"requires_controls_minimum":null,"skip_reason":"unavailable"},` +
		`{"worker_species_id":"wrk.hello.greeter","score_hint":1.0,"requires_controls_minimum":null,"skip_reason":null},` +
		`{"worker_species_id":"wrk.hello.greeter","score_hint":null,"requires_controls_minimum":null,"skip_reason":"already_selected"},` +
		`{"worker_species_id":"wrk.hello.other","score_hint":1e+21,"requires_controls_minimum":null,"skip_reason":"already_selected"}]`
	if got := candidatesJSON(t, &d); got != wantCands {
		t.Errorf("candidates = %s\nwant %s", got, wantCands)
	}
	if !slices.Equal(d.RequiredControlsEffective, []string{ctrlAudit}) {
		t.Errorf("required_controls_effective = %v", d.RequiredControlsEffective)
	}
	if got, want := string(d.RecommendedProfilesEffective), `[{"profile":"fast","weight":2}]`; got != want {
		t.Errorf("recommended_profiles_effective = %s, want %s", got, want)
	}
	if got, want := escJSON(t, d.EscalationEffective), `{"policy_gate":false,"msavx_step_up":true,"human_required_default":true,"human_required_if":[],"rationale":"echo only"}`; got != want {
		t.Errorf("escalation_effective = %s, want %s", got, want)
	}
	wantPre := wcp.DefaultPreconditions()
	wantPre.DenyIfNoAttestationInProd = true
	wantPre.MustAttachPolicyVersion = false
	if d.PreconditionsChecked != wantPre {
		t.Errorf("preconditions_checked = %+v, want %+v", d.PreconditionsChecked, wantPre)
	}
	if d.WorkerAttestationChecked || d.WorkerAttestationValid != nil || d.ArtifactHash != "" || d.DryRun {
		t.Errorf("attestation %v/%v artifact %q dry_run %v", d.WorkerAttestationChecked, d.WorkerAttestationValid, d.ArtifactHash, d.DryRun)
	}
	if d.DecisionID != testDecisionID || !d.Timestamp.Equal(testEpoch) {
		t.Errorf("decision id/timestamp not taken from Options: %v %v", d.DecisionID, d.Timestamp)
	}
	if got, want := eventIDs(&d), []string{wcp.EvtTaskRouted, wcp.EvtWorkerSelected, wcp.EvtPolicyGated}; !slices.Equal(got, want) {
		t.Fatalf("events = %v, want %v", got, want)
	}
	b, err := json.Marshal(d.TelemetryEnvelopes)
	if err != nil {
		t.Fatal(err)
	}
	ts := `"2026-03-04T05:06:07.891011Z"`
	want := `[{"event_id":"evt.os.task.routed","timestamp":` + ts + `,"correlation_id":"c-1","tenant_id":"acme","task_id":"task_default","capability_id":"cap.hello.greet","matched_rule_id":"rr_greet","selected_worker_species_id":"wrk.hello.greeter","policy_version":"policy.v0","qos_class":"P2"},` +
		`{"event_id":"evt.os.worker.selected","timestamp":` + ts + `,"correlation_id":"c-1","tenant_id":"acme","capability_id":"cap.hello.greet","selected_worker_species_id":"wrk.hello.greeter","reason":"first_available_candidate"},` +
		`{"event_id":"evt.os.policy.gated","timestamp":` + ts + `,"correlation_id":"c-1","tenant_id":"acme","capability_id":"cap.hello.greet","decision":"ALLOW","policy_version":"policy.v0","reason":"no_gate_required"}]`
	if string(b) != want {
		t.Errorf("telemetry =\n%s\nwant\n%s", b, want)
	}
}

func TestDecideTelemetryOrder(t *testing.T) {
	const (
		blast  = wcp.EvtBlastScored
		priv   = wcp.EvtPrivilegeChecked
		skip   = wcp.EvtAttestationSkipped
		routed = wcp.EvtTaskRouted
		sel    = wcp.EvtWorkerSelected
		gated  = wcp.EvtPolicyGated
	)
	withControls := func(ctls ...string) string {
		b, _ := json.Marshal(append([]string{}, ctls...))
		return oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}],"required_controls_suggested":`+string(b)+`}`)
	}
	allowAll := privFunc(func(string, string, *wcp.PrivilegeEnvelope) (bool, string, error) { return true, "ok", nil })
	cases := []struct {
		name    string
		rules   string
		opts    Options
		input   func(*wcp.RouteInput)
		ids     []string
		blast   int    // expected blast_score of evt.gov.blast_scored
		version string // policy_version of every allow event that carries one
		reason  string // reason of evt.os.policy.gated
		attest  bool
	}{
		{name: "dev, nothing optional", rules: withControls(ctrlAudit),
			ids: []string{routed, sel, gated}, version: "policy.v0", reason: "no_gate_required"},
		{name: "dev with blast control", rules: withControls(ctrlBlastScoring),
			ids: []string{blast, routed, sel, gated}, blast: 30, version: "policy.v0", reason: "no_gate_required"},
		{name: "dev blast score 100 never denies", rules: withControls(ctrlBlastScoring),
			input: func(in *wcp.RouteInput) { in.BlastScore = bigInt("100") },
			ids:   []string{blast, routed, sel, gated}, blast: 100, version: "policy.v0", reason: "no_gate_required"},
		{name: "prod floor scores blast and warns on skipped attestation", rules: withControls(),
			input: func(in *wcp.RouteInput) { in.Env, in.DataLabel = "prod", "PUBLIC" },
			ids:   []string{blast, skip, routed, sel, gated}, blast: 25, version: "policy.v0", reason: "no_gate_required"},
		{name: "prod caller score 84 is allowed", rules: withControls(),
			input: func(in *wcp.RouteInput) { in.Env, in.DataLabel, in.BlastScore = "prod", "PUBLIC", bigInt("84") },
			ids:   []string{blast, skip, routed, sel, gated}, blast: 84, version: "policy.v0", reason: "no_gate_required"},
		{name: "prod string false egress is truthy", rules: withControls(),
			input: func(in *wcp.RouteInput) {
				in.Env, in.DataLabel, in.Request = "prod", "RESTRICTED", json.RawMessage(`{"egress":"false","writes":0}`)
			},
			ids: []string{blast, skip, routed, sel, gated}, blast: 80, version: "policy.v0", reason: "no_gate_required"},
		{name: "prod with the blast floor off", rules: withControls(),
			opts:  Options{Config: &wcp.HallConfig{EnforceBlastScoringInProd: boolp(false)}},
			input: func(in *wcp.RouteInput) { in.Env, in.DataLabel = "prod", "RESTRICTED" },
			ids:   []string{skip, routed, sel, gated}, version: "policy.v0", reason: "no_gate_required"},
		{name: "edge with privilege control", rules: withControls(ctrlPrivilegeEnvelopes),
			opts:  Options{Envelopes: noEnvelopes{}, Privilege: allowAll},
			input: func(in *wcp.RouteInput) { in.Env, in.DataLabel = "edge", "PUBLIC" },
			ids:   []string{blast, priv, skip, routed, sel, gated}, blast: 25, version: "policy.v0", reason: "no_gate_required"},
		{name: "prod with everything and a gate", attest: true,
			rules: oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}],"escalation":{"policy_gate":true}}`),
			opts: Options{
				Config:           &wcp.HallConfig{RequireWorkerAttestation: true, EnforcePrivilegeEnvelopes: true},
				RegisteredHashes: hashes{testSpecies: goodHash}, CurrentHashes: hashes{testSpecies: goodHash},
				Envelopes: noEnvelopes{}, Privilege: allowAll,
				Gate: gateAnswer("ALLOW", "policy.v9", "fine"),
			},
			input: func(in *wcp.RouteInput) { in.Env, in.DataLabel = "prod", "PUBLIC" },
			ids:   []string{blast, priv, routed, sel, gated}, blast: 25, version: "policy.v9", reason: "policy_gate_allow"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput()
			if tc.input != nil {
				tc.input(&in)
			}
			d := allowDecide(t, tc.rules, newRegistry(greeterRecord()), tc.opts, in)
			if got := eventIDs(&d); !slices.Equal(got, tc.ids) {
				t.Fatalf("events = %v, want %v", got, tc.ids)
			}
			if d.WorkerAttestationChecked != tc.attest || (tc.attest && (d.WorkerAttestationValid == nil || !*d.WorkerAttestationValid)) ||
				(!tc.attest && d.WorkerAttestationValid != nil) {
				t.Errorf("attestation checked/valid = %v/%v, want %v", d.WorkerAttestationChecked, d.WorkerAttestationValid, tc.attest)
			}
			for _, e := range d.TelemetryEnvelopes {
				if e.CorrelationID != "c-1" {
					t.Errorf("%s: correlation_id %q", e.EventID, e.CorrelationID)
				}
				switch e.EventID {
				case blast:
					if e.BlastScore != tc.blast || e.PolicyVersion != tc.version || e.Decision != "ALLOW" || e.Env != in.Env || e.DataLabel != in.DataLabel {
						t.Errorf("blast event = %+v, want score %d version %s", e, tc.blast, tc.version)
					}
				case priv:
					if e.WorkerSpeciesID != testSpecies || e.PolicyVersion != tc.version || e.Decision != "ALLOW" {
						t.Errorf("privilege event = %+v", e)
					}
				case skip:
					if e.WorkerSpeciesID != testSpecies || e.Env != in.Env || e.Severity != "warn" ||
						e.Reason != "require_worker_attestation=False or hall_config=None" || !e.Timestamp.IsZero() || e.TenantID != "" {
						t.Errorf("attestation_skipped event = %+v", e)
					}
				case routed:
					if e.PolicyVersion != tc.version || e.TaskID != DefaultTaskID || e.MatchedRuleID != "rr_greet" {
						t.Errorf("routed event = %+v", e)
					}
				case gated:
					if e.PolicyVersion != tc.version || e.Reason != tc.reason || e.Decision != "ALLOW" {
						t.Errorf("gated event = %+v, want version %s reason %s", e, tc.version, tc.reason)
					}
				}
			}
		})
	}
}

func TestDecideStrictSelection(t *testing.T) {
	greeter := greeterRecord()
	greeter.AllowedEnvironments = []string{"prod"}
	greeter.RequiredControls = []string{"ctrl.sec.sandbox"}
	backup := &wcp.Record{WorkerID: "org.example.backup", WorkerSpeciesID: "wrk.hello.backup", Capabilities: []string{testCap},
		AllowedEnvironments: []string{"dev", "stage"}, RequiredControls: []string{ctrlAudit}, CurrentlyImplements: []string{ctrlAudit}}
	rules := oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"},{"worker_species_id":"wrk.hello.backup"}]}`)
	cases := []struct {
		name     string
		cfg      *wcp.HallConfig
		selected string
		skips    []string
	}{
		{"PyHall ignores allowed_environments and worker controls", nil, testSpecies, []string{"", wcp.SkipAlreadySelected}},
		{"zero config is PyHall", &wcp.HallConfig{}, testSpecies, []string{"", wcp.SkipAlreadySelected}},
		{"env enforced", &wcp.HallConfig{EnforceAllowedEnvironments: true}, "wrk.hello.backup", []string{wcp.SkipEnvNotAllowed, ""}},
		{"worker controls enforced", &wcp.HallConfig{EnforceWorkerControls: true}, "wrk.hello.backup", []string{wcp.SkipWorkerControlsMissing, ""}},
		{"default strict config", ptr(wcp.DefaultStrict()), "", nil}, // attestation unconfigured: checked below
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput()
			d := Decide(context.Background(), &in, mustRules(t, rules), newRegistry(greeter, backup), fixedOpts(Options{Config: tc.cfg}))
			if tc.selected == "" {
				if d.Code() != wcp.DenyAttestationUnconfigured {
					t.Fatalf("code = %s, want %s", d.Code(), wcp.DenyAttestationUnconfigured)
				}
				return
			}
			if d.Denied || string(d.SelectedWorkerSpeciesID) != tc.selected {
				t.Fatalf("denied=%v %s selected %q, want %q", d.Denied, d.Code(), d.SelectedWorkerSpeciesID, tc.selected)
			}
			var skips []string
			for _, c := range d.CandidateWorkersRanked {
				skips = append(skips, string(c.SkipReason))
			}
			if !slices.Equal(skips, tc.skips) {
				t.Errorf("skip reasons = %q, want %q", skips, tc.skips)
			}
		})
	}

	// A species with several workers is eligible when one of them is.
	second := &wcp.Record{WorkerID: "org.example.greeter2", WorkerSpeciesID: testSpecies, Capabilities: []string{testCap}, AllowedEnvironments: []string{"dev"}}
	in := baseInput()
	d := Decide(context.Background(), &in, mustRules(t, rules), newRegistry(greeter, second, backup),
		fixedOpts(Options{Config: &wcp.HallConfig{EnforceAllowedEnvironments: true, EnforceWorkerControls: true}}))
	if d.Denied || d.SelectedWorkerSpeciesID != testSpecies {
		t.Errorf("with an eligible second worker: denied=%v selected %q", d.Denied, d.SelectedWorkerSpeciesID)
	}
}

func ptr[T any](v T) *T { return &v }

func TestDecideDryRun(t *testing.T) {
	rules := oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}],"required_controls_suggested":["ctrl.blast_radius_scoring"]}`)
	reg := newRegistry(greeterRecord())
	in := baseInput()
	in.Env, in.DataLabel = "prod", "PUBLIC"
	wet := allowDecide(t, rules, reg, Options{}, in)
	in.DryRun = true
	dry := allowDecide(t, rules, reg, Options{}, in)

	if !dry.DryRun || wet.DryRun {
		t.Errorf("dry_run = %v/%v", dry.DryRun, wet.DryRun)
	}
	if dry.SelectedWorkerSpeciesID != wet.SelectedWorkerSpeciesID || !slices.Equal(eventIDs(&dry), eventIDs(&wet)) {
		t.Errorf("dry_run changed the outcome: %q %v vs %q %v", dry.SelectedWorkerSpeciesID, eventIDs(&dry), wet.SelectedWorkerSpeciesID, eventIDs(&wet))
	}
	if len(dry.TelemetryEnvelopes) != 5 {
		t.Fatalf("events = %v", eventIDs(&dry))
	}
	for i := range dry.TelemetryEnvelopes {
		db, _ := json.Marshal(dry.TelemetryEnvelopes[i])
		wb, _ := json.Marshal(wet.TelemetryEnvelopes[i])
		if !strings.HasSuffix(string(db), `,"dry_run":true}`) {
			t.Errorf("dry event does not end with dry_run: %s", db)
		}
		if strings.Contains(string(wb), "dry_run") {
			t.Errorf("wet event mentions dry_run: %s", wb)
		}
		if string(db) != strings.TrimSuffix(string(wb), "}")+`,"dry_run":true}` {
			t.Errorf("dry event differs beyond the dry_run key:\n%s\n%s", db, wb)
		}
	}

	// A dry-run denial is marked too.
	in.CapabilityID = "cap.unknown"
	d := Decide(context.Background(), &in, mustRules(t, rules), reg, Options{})
	if d.Code() != wcp.DenyNoMatchingRule || !d.DryRun || len(d.TelemetryEnvelopes) != 1 || !d.TelemetryEnvelopes[0].DryRun {
		t.Errorf("dry-run deny: code %s dry_run %v events %+v", d.Code(), d.DryRun, d.TelemetryEnvelopes)
	}
}

func TestDecideRequestHash(t *testing.T) {
	rules := oneRule(greetMatch, greetDecision)
	reg := newRegistry(greeterRecord())

	in := baseInput()
	d := allowDecide(t, rules, reg, Options{}, in)
	canonical := `{"blast_radius":null,"blast_score":null,"capability_id":"cap.hello.greet","correlation_id":"c-1","data_label":"INTERNAL","dry_run":false,"env":"dev","privilege_context":null,"qos_class":"P2","request":{},"tenant_credential":null,"tenant_id":"acme","tenant_risk":"low"}`
	if want := wcp.Digest(sha256.Sum256([]byte(canonical))); d.RequestHash != want {
		t.Errorf("request_hash = %s, want %s", d.RequestHash, want)
	}

	// Every field enters the hash; nested keys are sorted.
	cred := "tok"
	in = baseInput()
	in.Request = json.RawMessage(`{"z": [1, 2.0, {"b": null, "a": "\u00e9"}], "a": true}`)
	in.BlastRadius = json.RawMessage(`{"data":1}`)
	in.PrivilegeContext = json.RawMessage(`{}`)
	in.BlastScore = bigInt("7")
	in.DryRun = true
	in.TenantCredential = &cred
	d = allowDecide(t, rules, reg, Options{}, in)
	canonical = `{"blast_radius":{"data":1},"blast_score":7,"capability_id":"cap.hello.greet","correlation_id":"c-1","data_label":"INTERNAL","dry_run":true,"env":"dev","privilege_context":{},"qos_class":"P2","request":{"a":true,"z":[1,2,{"a":"é","b":null}]},"tenant_credential":"tok","tenant_id":"acme","tenant_risk":"low"}` // RFC 8785: 2.0 is written 2
	if want := wcp.Digest(sha256.Sum256([]byte(canonical))); d.RequestHash != want {
		t.Errorf("request_hash = %s, want %s (of %s)", d.RequestHash, want, canonical)
	}

	// Denials carry it too, and it is independent of decision id and time.
	in.CapabilityID = "cap.unknown"
	d1 := Decide(context.Background(), &in, mustRules(t, rules), reg, Options{})
	d2 := Decide(context.Background(), &in, mustRules(t, rules), reg, Options{})
	if d1.RequestHash.IsZero() || d1.RequestHash != d2.RequestHash || d1.DecisionID == d2.DecisionID {
		t.Errorf("deny request hashes %s %s, ids %s %s", d1.RequestHash, d2.RequestHash, d1.DecisionID, d2.DecisionID)
	}
}

func TestDecideSanitizesTelemetry(t *testing.T) {
	rules := `{"rules":[{"rule_id":"rr_any","match":{"capability_id":{"any":true}},"decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}]}}]}`
	in := baseInput()
	in.CorrelationID = "c-1\nINJECTED"
	in.TenantID = "acme\x7f\r"
	in.CapabilityID = "cap.ok\nFAKE_EVENT: injected\u0085"
	d := allowDecide(t, rules, newRegistry(greeterRecord()), Options{TaskID: "task-\n42"}, in)
	if d.CorrelationID != in.CorrelationID || d.TenantID != in.TenantID || d.CapabilityID != in.CapabilityID {
		t.Error("decision ids must stay raw")
	}
	for _, e := range d.TelemetryEnvelopes {
		if e.CorrelationID != "c-1INJECTED" || e.TenantID != "acme" {
			t.Errorf("%s: correlation %q tenant %q", e.EventID, e.CorrelationID, e.TenantID)
		}
		if e.CapabilityID != "" && e.CapabilityID != "cap.okFAKE_EVENT: injected\u0085" {
			t.Errorf("%s: capability %q", e.EventID, e.CapabilityID)
		}
	}
	if e := d.TelemetryEnvelopes[0]; e.EventID != wcp.EvtTaskRouted || e.TaskID != "task-\n42" {
		t.Errorf("task_id is copied raw: %+v", e)
	}

	in.CapabilityID = "cap.none\n"
	rs := mustRules(t, oneRule(greetMatch, greetDecision))
	dd := Decide(context.Background(), &in, rs, newRegistry(), Options{})
	if e := dd.TelemetryEnvelopes[0]; e.CapabilityID != "cap.none" || e.CorrelationID != "c-1INJECTED" {
		t.Errorf("deny event not sanitized: %+v", e)
	}
}

func TestDecideChecksDisabled(t *testing.T) {
	rules := oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}],"required_controls_suggested":["ctrl.not.enrolled"],`+
		`"preconditions":{"must_have_correlation_id":false,"deny_if_missing_required_controls":"false"}}`)
	in := baseInput()
	in.CorrelationID = ""
	cfg := &wcp.HallConfig{EnforceCorrelationID: boolp(false), EnforceRequiredControls: boolp(false)}
	d := allowDecide(t, rules, newRegistry(greeterRecord()), Options{Config: cfg}, in)
	if !slices.Equal(d.RequiredControlsEffective, []string{"ctrl.not.enrolled"}) {
		t.Errorf("required_controls_effective = %v", d.RequiredControlsEffective)
	}
	for _, e := range d.TelemetryEnvelopes {
		if e.CorrelationID != "" {
			t.Errorf("%s: correlation %q", e.EventID, e.CorrelationID)
		}
	}
	// Either floor alone re-enables its check.
	cfg = &wcp.HallConfig{EnforceCorrelationID: boolp(false)}
	dd := Decide(context.Background(), &in, mustRules(t, rules), newRegistry(greeterRecord()), Options{Config: cfg})
	if dd.Code() != wcp.DenyMissingRequiredControls {
		t.Errorf("controls floor on: code %s", dd.Code())
	}
}

func TestDecideGateCalls(t *testing.T) {
	var calls []PolicyContext
	gate := gateFunc(func(_ context.Context, pc PolicyContext) (PolicyResult, error) {
		calls = append(calls, pc)
		return PolicyResult{Decision: PolicyAllow, PolicyVersion: "policy.v3", Reason: "ok"}, nil
	})
	in := baseInput()
	in.TenantID = "acme\n"
	allowDecide(t, oneRule(greetMatch, greetDecision), newRegistry(greeterRecord()), Options{Gate: gate}, in)
	if len(calls) != 0 {
		t.Fatalf("gate called %d times for a rule without policy_gate", len(calls))
	}
	rules := oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}],"escalation":{"policy_gate":"true"}}`)
	allowDecide(t, rules, newRegistry(greeterRecord()), Options{Gate: gate}, in)
	want := PolicyContext{CapabilityID: testCap, TenantID: "acme\n", Env: "dev", DataLabel: "INTERNAL", TenantRisk: "low", QoSClass: "P2", PolicyVersion: "policy.v0"}
	if len(calls) != 1 || calls[0] != want {
		t.Errorf("gate calls = %+v, want [%+v]", calls, want)
	}
}

func TestDecideShadowsOnlyInProdEdge(t *testing.T) {
	rules := `{"rules":[{"rule_id":"rr_broad_any","match":{"capability_id":{"any":true}},"decision":` + greetDecision + `},` +
		`{"rule_id":"rr_specific_prod","match":{"capability_id":{"any":true},"env":"prod"},"decision":` + greetDecision + `}]}`
	for _, env := range []string{"dev", "stage"} {
		in := baseInput()
		in.Env = env
		d := allowDecide(t, rules, newRegistry(greeterRecord()), Options{}, in)
		if d.MatchedRuleID != "rr_broad_any" {
			t.Errorf("%s: matched %q", env, d.MatchedRuleID)
		}
	}
}

func TestDecideDefaultsAndNilArguments(t *testing.T) {
	in := baseInput()
	before := time.Now().UTC()
	d1 := Decide(context.Background(), &in, mustRules(t, oneRule(greetMatch, greetDecision)), newRegistry(greeterRecord()), Options{})
	d2 := Decide(context.Background(), &in, mustRules(t, oneRule(greetMatch, greetDecision)), newRegistry(greeterRecord()), Options{})
	after := time.Now().UTC()
	if d1.DecisionID == d2.DecisionID || d1.DecisionID.Version() != 7 || d1.DecisionID.Variant() != uuid.RFC4122 {
		t.Errorf("decision ids %s %s are not fresh UUID v7s", d1.DecisionID, d2.DecisionID)
	}
	if d1.Timestamp.Before(before) || d1.Timestamp.After(after) || d1.Timestamp.Location() != time.UTC {
		t.Errorf("timestamp %v not in [%v, %v] UTC", d1.Timestamp, before, after)
	}
	if d1.TelemetryEnvelopes[0].Timestamp != d1.Timestamp {
		t.Error("telemetry and decision timestamps differ")
	}

	// Nil rules: fail closed. Nil registry: nothing is present or available.
	if d := Decide(context.Background(), &in, nil, nil, Options{}); d.Code() != wcp.DenyNoMatchingRule {
		t.Errorf("nil rules: %s", d.Code())
	}
	if d := Decide(context.Background(), &in, mustRules(t, oneRule(greetMatch, greetDecision)), nil, Options{}); d.Code() != wcp.DenyMissingRequiredControls {
		t.Errorf("nil registry: %s", d.Code())
	}
	noCtl := oneRule(greetMatch, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter"}]}`)
	if d := Decide(context.Background(), &in, mustRules(t, noCtl), nil, Options{}); d.Code() != wcp.DenyNoAvailableWorker {
		t.Errorf("nil registry, no controls: %s", d.Code())
	}
}

// Every deny code of the table must be reachable (TestDecideDenies covers
// each); this guards the table against codes Decide no longer produces.
func TestDecideDenyCodesCovered(t *testing.T) {
	// The chain codes deny a hop of a governed pipeline before or after
	// Decide: the host decides them (host/chain.go) and its chain tests
	// cover each (TestChainUndeclaredCapability, TestChainFanOutThousand,
	// TestChainBlastThreshold).
	seen := map[wcp.DenyCode]bool{wcp.DenyToolNotDeclared: true, wcp.DenyChainLimit: true, wcp.DenyChainBlast: true}
	for _, tc := range denyCodeCoverage {
		seen[tc] = true
	}
	// Codes the host decides after the router, each tested there.
	hostDecided := map[wcp.DenyCode]string{
		wcp.DenyWorkerUntrusted:    "host.TestTrustPolicySealedAndKeyRemovalDenies",
		wcp.DenyPolicyCostExceeded: "host.TestPolicyCostLimitDeniesAndIsRecorded",
	}
	for _, info := range wcp.DenyCodes() {
		if !seen[info.Code] && hostDecided[info.Code] == "" {
			t.Errorf("%s has no test case in TestDecideDenies", info.Code)
		}
	}
}
