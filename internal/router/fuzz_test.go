package router

import (
	"bytes"
	"context"
	"encoding/json"
	"math/big"
	"testing"

	"github.com/wcphall/hall/host/wcp"
)

var fuzzRuleSeeds = []string{
	`{"rules":[]}`,
	oneRule(greetMatch, greetDecision),
	`{"rules":[{"rule_id":"A","match":{}},{"rule_id":"B","match":{}},{"rule_id":"C","match":{"env":"dev"}}]}`,
	`{"rules":[{"rule_id":"r","match":{"capability_id":{"any":true},"env":{"in":["dev","prod",1,null,true]},"qos_class":{"eq":"P0"},"x":[1]},` +
		`"decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.hello.greeter","score_hint":1e308},{},{"worker_species_id":0}],` +
		`"required_controls_suggested":["ctrl.blast_radius_scoring","ctrl.privilege_envelopes_required"],` +
		`"escalation":{"policy_gate":"on","human_required_if":[{}],"rationale":"r"},"preconditions":{"must_have_correlation_id":0},"recommended_profiles":[{"p":1}]}}]}`,
	`{"rules":[{"rule_id":"r","match":{"env":{"in":"dev"}}}]}`,
	`{"rules":[{"rule_id":1}]}`,
	`{"rules":{}}`,
	`[]`,
	`{"rules":[{"rule_id":"r","decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.a","score_hint":1e999}]}}]}`,
}

// fuzzInputs are fixed inputs every compiled rule set must decide.
func fuzzInputs() []wcp.RouteInput {
	a := baseInput()
	b := baseInput()
	b.Env, b.DataLabel, b.QoSClass, b.Request = "prod", "RESTRICTED", "P0", json.RawMessage(`{"egress":true}`)
	c := baseInput()
	c.Env, c.CorrelationID, c.DryRun, c.BlastScore = "edge", "", true, big.NewInt(3)
	return []wcp.RouteInput{a, b, c}
}

func FuzzParseRules(f *testing.F) {
	for _, s := range fuzzRuleSeeds {
		f.Add([]byte(s))
	}
	reg := newRegistry(greeterRecord())
	opts := fixedOpts(Options{
		Gate:             gateAnswer("ALLOW", "policy.v1", "ok"),
		RegisteredHashes: hashes{testSpecies: goodHash},
		CurrentHashes:    hashes{testSpecies: goodHash},
		Envelopes:        reg,
		Privilege:        privFunc(func(string, string, *wcp.PrivilegeEnvelope) (bool, string, error) { return true, "ok", nil }),
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := ParseRules(data)
		if err != nil {
			if rs != nil {
				t.Fatal("error with a rule set")
			}
			if _, ok := err.(*LoadError); !ok {
				t.Fatalf("error %T is not a *LoadError", err)
			}
			return
		}
		if len(rs.ShadowedIDs()) != len(rs.Shadows) {
			t.Fatal("ShadowedIDs and Shadows disagree")
		}
		for _, in := range fuzzInputs() {
			d := Decide(context.Background(), &in, rs, reg, opts)
			checkInvariants(t, &in, &d)
		}
	})
}

// checkInvariants holds for every decision: no recovered panic (nothing
// here fails on purpose), and PyHall's allow/deny shapes.
func checkInvariants(t *testing.T, in *wcp.RouteInput, d *wcp.RouteDecision) {
	t.Helper()
	if d.Code() == wcp.DenyInternalError {
		t.Fatalf("internal error: %s", d.DenyReason.Message)
	}
	if d.Denied != (d.DenyReason != nil) {
		t.Fatalf("denied=%v with reason %+v", d.Denied, d.DenyReason)
	}
	if h, err := in.RequestHash(); err != nil || h != d.RequestHash {
		t.Fatalf("request_hash %s, want %s (%v)", d.RequestHash, h, err)
	}
	if d.DryRun != in.DryRun {
		t.Fatal("dry_run not copied")
	}
	for _, e := range d.TelemetryEnvelopes {
		if e.DryRun != in.DryRun {
			t.Fatalf("%s: dry_run %v", e.EventID, e.DryRun)
		}
	}
	if d.Denied {
		if len(d.TelemetryEnvelopes) != 1 || d.TelemetryEnvelopes[0].EventID != wcp.EvtTaskDenied || d.SelectedWorkerSpeciesID != "" {
			t.Fatalf("deny shape: %v selected %q", eventIDs(d), d.SelectedWorkerSpeciesID)
		}
		if d.Code() != wcp.DenyNoAvailableWorker && len(d.CandidateWorkersRanked) != 0 {
			t.Fatalf("%s with candidates", d.Code())
		}
	} else {
		n := len(d.TelemetryEnvelopes)
		if n < 3 || d.TelemetryEnvelopes[n-1].EventID != wcp.EvtPolicyGated || d.SelectedWorkerSpeciesID == "" {
			t.Fatalf("allow shape: %v selected %q", eventIDs(d), d.SelectedWorkerSpeciesID)
		}
		selected := 0
		for _, c := range d.CandidateWorkersRanked {
			if c.SkipReason == "" {
				selected++
				if string(d.SelectedWorkerSpeciesID) != c.WorkerSpeciesID {
					t.Fatalf("selected %q but candidate %q has no skip reason", d.SelectedWorkerSpeciesID, c.WorkerSpeciesID)
				}
			}
		}
		if selected != 1 {
			t.Fatalf("%d candidates without skip reason", selected)
		}
	}
	if _, err := json.Marshal(d); err != nil {
		t.Fatalf("decision does not encode: %v", err)
	}
}

func FuzzDecide(f *testing.F) {
	f.Add("cap.hello.greet", uint8(0), uint8(1), uint8(0), uint8(2), "acme", "c-1", int64(-1), false, []byte(`{}`))
	f.Add("cap.hello.greet", uint8(2), uint8(2), uint8(2), uint8(0), "acme", " ", int64(90), true, []byte(`{"egress":1,"writes":"x"}`))
	f.Add("cap.other", uint8(3), uint8(0), uint8(1), uint8(3), "", "c\n", int64(101), false, []byte(`{"external_call":[0]}`))
	f.Add("cap.secret.delete", uint8(1), uint8(1), uint8(1), uint8(1), "globex", "c", int64(85), true, []byte(`{"mutates_state":{"a":1}}`))
	rs := mustRules(f, `{"rules":[`+
		`{"rule_id":"rr_greet","match":{"capability_id":"cap.hello.greet","env":{"in":["dev","stage"]}},"decision":`+greetDecision+`},`+
		`{"rule_id":"rr_prod","match":{"capability_id":{"in":["cap.hello.greet","cap.secret.delete"]},"env":{"in":["prod","edge"]}},"decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.ghost"},{"worker_species_id":"wrk.hello.greeter"}],"required_controls_suggested":["ctrl.blast_radius_scoring"],"escalation":{"policy_gate":true}}},`+
		`{"rule_id":"rr_catch_all","match":{"data_label":"PUBLIC"}}]}`)
	reg := newRegistry(greeterRecord())
	envs, labels, risks, qos := wcp.Envs(), wcp.DataLabels(), wcp.TenantRisks(), wcp.QoSClasses()
	f.Fuzz(func(t *testing.T, capability string, env, label, risk, q uint8, tenant, corr string, blast int64, dry bool, request []byte) {
		in := wcp.RouteInput{
			CapabilityID: capability, Env: envs[int(env)%len(envs)], DataLabel: labels[int(label)%len(labels)],
			TenantRisk: risks[int(risk)%len(risks)], QoSClass: qos[int(q)%len(qos)], TenantID: tenant, CorrelationID: corr, DryRun: dry,
		}
		if blast >= -1 {
			in.BlastScore = big.NewInt(blast)
		}
		if json.Valid(request) && bytes.HasPrefix(bytes.TrimSpace(request), []byte("{")) {
			in.Request = request
		}
		for _, cfg := range []*wcp.HallConfig{nil, ptr(wcp.DefaultStrict()), {RequireSignatory: true, AllowedTenants: []string{"acme"}}} {
			opts := fixedOpts(Options{Config: cfg, Gate: gateAnswer("ALLOW", "policy.v2", "ok"),
				RegisteredHashes: reg, CurrentHashes: hashes{testSpecies: ""}, Envelopes: reg, Privilege: privFunc(func(string, string, *wcp.PrivilegeEnvelope) (bool, string, error) { return true, "", nil })})
			d1 := Decide(context.Background(), &in, rs, reg, opts)
			checkInvariants(t, &in, &d1)
			d2 := Decide(context.Background(), &in, rs, reg, opts)
			b1, _ := json.Marshal(d1)
			b2, _ := json.Marshal(d2)
			if !bytes.Equal(b1, b2) {
				t.Fatalf("not deterministic:\n%s\n%s", b1, b2)
			}
		}
	})
}
