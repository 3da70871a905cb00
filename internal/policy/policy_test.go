package policy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wcphall/hall/internal/policy"
)

func facts() *policy.Facts {
	return &policy.Facts{
		Input: policy.Input{CapabilityID: "cap.doc.summarize", Env: "prod", DataLabel: "INTERNAL", TenantRisk: "low", QoSClass: "P2",
			TenantID: "org.acme", CorrelationID: "c-1", Request: map[string]any{"writes": true}, BlastScore: -1},
		Worker: policy.Worker{ID: "org.acme.summarizer", Species: "wrk.doc.summarizer", RiskTier: "high",
			Envelope:     policy.Envelope{FilesystemWrites: []string{"/tmp/out"}},
			ModuleDigest: "sha256:" + strings.Repeat("a", 64)},
		Rule:       policy.Rule{ID: "rr_summarize"},
		BlastScore: -1,
		Now:        time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		gated  bool
		want   policy.Outcome
		policy string
		reason string
		steps  string // what Steps yields: "id effect result, …"
		mutate func(*policy.Facts)
	}{
		{name: "no policies allow", doc: `{"policies": []}`, want: policy.Allow, steps: ""},
		{name: "require human for prod writes by high-risk workers",
			doc:  `{"policies": [{"id": "prod-writes", "when": "input.env == 'prod' && worker.risk_tier == 'high' && size(worker.envelope.filesystem_writes) > 0", "effect": "REQUIRE_HUMAN", "reason": "prod writes by a high-risk worker"}]}`,
			want: policy.RequireHuman, policy: "prod-writes", reason: "prod writes by a high-risk worker", steps: "prod-writes REQUIRE_HUMAN match"},
		{name: "not matching allows",
			doc:    `{"policies": [{"id": "prod-writes", "when": "input.env == 'prod' && worker.risk_tier == 'high'", "effect": "REQUIRE_HUMAN"}]}`,
			mutate: func(f *policy.Facts) { f.Worker.RiskTier = "low" }, want: policy.Allow, steps: "prod-writes REQUIRE_HUMAN no_match"},
		{name: "deny overrides require human whatever the order",
			doc:  `{"policies": [{"id": "h", "when": "true", "effect": "REQUIRE_HUMAN"}, {"id": "d", "when": "tenant == 'org.acme'", "effect": "DENY", "reason": "no"}]}`,
			want: policy.Deny, policy: "d", reason: "no", steps: "d DENY match"},
		{name: "each policy reached is a step, in evaluation order",
			doc:  `{"policies": [{"id": "h", "when": "true", "effect": "REQUIRE_HUMAN"}, {"id": "d1", "when": "false", "effect": "DENY"}, {"id": "d2", "when": "tenant == 'org.acme'", "effect": "DENY"}, {"id": "d3", "when": "true", "effect": "DENY"}]}`,
			want: policy.Deny, policy: "d2", steps: "d1 DENY no_match, d2 DENY match"},
		{name: "human after the denies",
			doc:  `{"policies": [{"id": "h1", "when": "false", "effect": "REQUIRE_HUMAN"}, {"id": "h2", "when": "true", "effect": "REQUIRE_HUMAN"}, {"id": "d1", "when": "false", "effect": "DENY"}]}`,
			want: policy.RequireHuman, policy: "h2", steps: "d1 DENY no_match, h1 REQUIRE_HUMAN no_match, h2 REQUIRE_HUMAN match"},
		{name: "an error names what the one-by-one pass reached",
			doc:  `{"policies": [{"id": "h", "when": "true", "effect": "REQUIRE_HUMAN"}, {"id": "n", "when": "false", "effect": "DENY"}, {"id": "e", "when": "input.request.egress == true", "effect": "DENY"}]}`,
			want: policy.Deny, policy: "e", steps: "h REQUIRE_HUMAN match, n DENY no_match, e DENY error"},
		{name: "policy_gate policies skip ungated requests",
			doc:  `{"policies": [{"id": "g", "applies_to": "policy_gate", "when": "true", "effect": "DENY"}]}`,
			want: policy.Allow, steps: ""},
		{name: "policy_gate policies apply to gated requests",
			doc:   `{"policies": [{"id": "g", "applies_to": "policy_gate", "when": "true", "effect": "DENY"}]}`,
			gated: true, want: policy.Deny, policy: "g", reason: "policy g", steps: "g DENY match"},
		{name: "request payload",
			doc:  `{"policies": [{"id": "w", "when": "input.request.?writes.orValue(false) == true", "effect": "REQUIRE_HUMAN"}]}`,
			want: policy.RequireHuman, policy: "w", steps: "w REQUIRE_HUMAN match"},
		{name: "evaluation error fails closed",
			doc:  `{"policies": [{"id": "missing-key", "when": "input.request.egress == true", "effect": "REQUIRE_HUMAN"}]}`,
			want: policy.Deny, policy: "missing-key", steps: "missing-key REQUIRE_HUMAN error"},
		{name: "time",
			doc:  `{"policies": [{"id": "weekend", "when": "now.getDayOfWeek() == 5", "effect": "DENY"}]}`,
			want: policy.Deny, policy: "weekend", steps: "weekend DENY match"},
		{name: "module digest",
			doc:  `{"policies": [{"id": "pin", "when": "!worker.module_digest.startsWith('sha256:aaaa')", "effect": "DENY"}]}`,
			want: policy.Allow, steps: "pin DENY no_match"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := policy.Parse("policy.json", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			f := facts()
			if tc.mutate != nil {
				tc.mutate(f)
			}
			got := s.Evaluate(f, tc.gated)
			if got.Outcome != tc.want || got.Policy != tc.policy || (tc.reason != "" && got.Reason != tc.reason) {
				t.Fatalf("got %+v, want %s by %q (%q)", got, tc.want, tc.policy, tc.reason)
			}
			var steps []string
			for st := range s.Steps(got, tc.gated) {
				steps = append(steps, st.ID+" "+string(st.Effect)+" "+string(st.Result))
			}
			if g := strings.Join(steps, ", "); g != tc.steps {
				t.Errorf("steps %q, want %q", g, tc.steps)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"not json", `{`, "policy.json: (document): not a valid policy file"},
		{"unknown key", `{"policy": []}`, `unknown field "policy"`},
		{"undeclared variable", `{"policies": [{"id": "p1", "when": "input.env == 'prod' &&\n inptu.env == 'x'", "effect": "DENY"}]}`,
			"policy.json: policies[0] (p1).when at 2:2: undeclared reference to 'inptu'"},
		{"unknown field", `{"policies": [{"id": "p1", "when": "worker.risk == 'high'", "effect": "DENY"}]}`,
			"policies[0] (p1).when at 1:7: undefined field 'risk'"},
		{"not bool", `{"policies": [{"id": "p1", "when": "input.env", "effect": "DENY"}]}`, "policies[0] (p1).when: is of type string; it must be a bool"},
		{"bad effect", `{"policies": [{"id": "p1", "when": "true", "effect": "deny"}]}`, `policies[0] (p1).effect: "deny" must be DENY or REQUIRE_HUMAN`},
		{"bad id", `{"policies": [{"id": "P 1", "when": "true", "effect": "DENY"}]}`, `policies[0] (P 1).id: "P 1" is not a policy id`},
		{"duplicate id", `{"policies": [{"id": "a", "when": "true", "effect": "DENY"}, {"id": "a", "when": "true", "effect": "DENY"}]}`, `policies[1] (a).id: duplicate of policies[0]`},
		{"empty when", `{"policies": [{"id": "a", "effect": "DENY"}]}`, `policies[0] (a).when: is required`},
		{"bad applies_to", `{"policies": [{"id": "a", "when": "true", "effect": "DENY", "applies_to": "some"}]}`, `policies[0] (a).applies_to: "some" must be`},
		{"bad ttl", `{"approvals": {"enabled": true, "expires_after": "soon"}, "policies": []}`, `approvals.expires_after: "soon" is not a positive duration`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := policy.Parse("policy.json", []byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDigestAndApprovals(t *testing.T) {
	s, err := policy.Parse("p", []byte(`{"approvals": {"enabled": true, "expires_after": "30m"}, "policies": []}`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Digest(), "sha256:") || len(s.Digest()) != 71 {
		t.Fatalf("digest %q", s.Digest())
	}
	if !s.Approvals().Enabled || s.ApprovalTTL() != 30*time.Minute {
		t.Fatalf("approvals %+v %v", s.Approvals(), s.ApprovalTTL())
	}
	var none *policy.Set
	if none.Digest() != "" || none.Evaluate(facts(), true).Outcome != policy.Allow || none.Approvals().Enabled {
		t.Fatal("nil set is not empty")
	}
}

// twentyPolicies is a realistic set of 20 policies none of which matches
// facts(), so that every one is evaluated.
func twentyPolicies() string {
	var ps []string
	for i := range 20 {
		var when string
		switch i % 4 {
		case 0:
			when = fmt.Sprintf("input.env == 'prod' && worker.risk_tier == 'critical' && input.tenant_risk == 'high%d'", i)
		case 1:
			when = fmt.Sprintf("tenant == 'org.evil%d' || worker.id == 'org.banned.w%d'", i, i)
		case 2:
			when = fmt.Sprintf("worker.blast_radius.financial > %d && input.data_label == 'RESTRICTED'", 50+i)
		case 3:
			when = fmt.Sprintf("'evil%d.example' in worker.envelope.network_egress", i)
		}
		ps = append(ps, fmt.Sprintf(`{"id": "p%d", "when": %q, "effect": "DENY"}`, i, when))
	}
	return `{"policies": [` + strings.Join(ps, ",") + `]}`
}

func BenchmarkEvaluate20(b *testing.B) {
	s, err := policy.Parse("p", []byte(twentyPolicies()))
	if err != nil {
		b.Fatal(err)
	}
	f := facts()
	if r := s.Evaluate(f, false); r.Outcome != policy.Allow {
		b.Fatalf("%+v", r)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Evaluate(f, false)
	}
}
