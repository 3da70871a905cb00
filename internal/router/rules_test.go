package router

import (
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

func loadProblems(t *testing.T, err error) []wcp.FieldError {
	t.Helper()
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LoadError", err, err)
	}
	return le.Problems
}

func problemFields(ps []wcp.FieldError) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Field
	}
	return out
}

func TestParseRulesErrors(t *testing.T) {
	rule := func(match, decision string) string {
		return `{"rules":[{"rule_id":"r1","match":` + match + `,"decision":` + decision + `}]}`
	}
	cases := []struct {
		name   string
		doc    string
		fields []string
		says   string // a fragment of the first problem's message
	}{
		{"not JSON", `{"rules":[`, []string{"(document)"}, "not valid JSON"},
		{"trailing data", `{"rules":[]} {}`, []string{"(document)"}, "not valid JSON"},
		{"not an object", `[{"rule_id":"r1"}]`, []string{"(document)"}, "must be an object"},
		{"rules missing", `{"rule":[]}`, []string{"rules"}, "is required"},
		{"rules not an array", `{"rules":{"rule_id":"r1"}}`, []string{"rules"}, "must be an array"},
		{"rules null", `{"rules":null}`, []string{"rules"}, "must be an array"},
		{"rule not an object", `{"rules":[{"rule_id":"ok"},"r2",3]}`, []string{"rules[1]", "rules[2]"}, "must be an object"},
		{"rule_id missing", `{"rules":[{"match":{}}]}`, []string{"rules[0].rule_id"}, "is required"},
		{"rule_id null", `{"rules":[{"rule_id":null}]}`, []string{"rules[0].rule_id"}, "not null"},
		{"rule_id number", `{"rules":[{"rule_id":7}]}`, []string{"rules[0].rule_id"}, "must be a string"},
		{"match not an object", `{"rules":[{"rule_id":"r1","match":["env"]}]}`, []string{"rules[0].match"}, "must be an object"},
		{"decision not an object", `{"rules":[{"rule_id":"r1","decision":"allow"}]}`, []string{"rules[0].decision"}, "must be an object"},
		{"in is a string (PyHall substring test)", rule(`{"env":{"in":"development"}}`, `{}`), []string{"rules[0].match.env.in"}, `the string "development"`},
		{"in is null", rule(`{"env":{"in":null}}`, `{}`), []string{"rules[0].match.env.in"}, "got null"},
		{"in is a number", rule(`{"qos_class":{"in":2}}`, `{}`), []string{"rules[0].match.qos_class.in"}, "the number 2"},
		{"in is an object", rule(`{"data_label":{"in":{"PUBLIC":1}}}`, `{}`), []string{"rules[0].match.data_label.in"}, "an object"},
		{"in under an ignored key", rule(`{"region":{"in":"eu"}}`, `{}`), []string{"rules[0].match.region.in"}, "must be an array"},
		{"in holds unhashable values", rule(`{"env":{"in":["dev",["prod"],{"a":1}]}}`, `{}`), []string{"rules[0].match.env.in[1]", "rules[0].match.env.in[2]"}, "not an array"},
		{"candidates null", rule(`{}`, `{"candidate_workers_ranked":null}`), []string{"rules[0].decision.candidate_workers_ranked"}, "must be an array"},
		{"candidates object", rule(`{}`, `{"candidate_workers_ranked":{"worker_species_id":"wrk.a"}}`), []string{"rules[0].decision.candidate_workers_ranked"}, "must be an array"},
		{"candidate not an object", rule(`{}`, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.a"},"wrk.b"]}`), []string{"rules[0].decision.candidate_workers_ranked[1]"}, "must be an object"},
		{"candidate species a number", rule(`{}`, `{"candidate_workers_ranked":[{"worker_species_id":5}]}`), []string{"rules[0].decision.candidate_workers_ranked[0].worker_species_id"}, "must be a string"},
		{"candidate score a string", rule(`{}`, `{"candidate_workers_ranked":[{"worker_species_id":"wrk.a","score_hint":"high"}]}`), []string{"rules[0].decision.candidate_workers_ranked[0].score_hint"}, "must be a number"},
		{"controls null", rule(`{}`, `{"required_controls_suggested":null}`), []string{"rules[0].decision.required_controls_suggested"}, "must be an array"},
		{"control not a string", rule(`{}`, `{"required_controls_suggested":["ctrl.a",1,null]}`), []string{"rules[0].decision.required_controls_suggested[1]", "rules[0].decision.required_controls_suggested[2]"}, "control id string"},
		{"escalation null", rule(`{}`, `{"escalation":null}`), []string{"rules[0].decision.escalation"}, "must be an object"},
		{"escalation bad bool", rule(`{}`, `{"escalation":{"policy_gate":"maybe","msavx_step_up":2,"human_required_default":null}}`),
			[]string{"rules[0].decision.escalation.policy_gate", "rules[0].decision.escalation.msavx_step_up", "rules[0].decision.escalation.human_required_default"}, "true or false"},
		{"escalation human_required_if", rule(`{}`, `{"escalation":{"human_required_if":{"env":"prod"}}}`), []string{"rules[0].decision.escalation.human_required_if"}, "must be an array"},
		{"escalation human_required_if element", rule(`{}`, `{"escalation":{"human_required_if":[{"env":"prod"},"x"]}}`), []string{"rules[0].decision.escalation.human_required_if[1]"}, "must be an object"},
		{"escalation rationale", rule(`{}`, `{"escalation":{"rationale":42}}`), []string{"rules[0].decision.escalation.rationale"}, "string or null"},
		{"preconditions null", rule(`{}`, `{"preconditions":null}`), []string{"rules[0].decision.preconditions"}, "must be an object"},
		{"precondition null value", rule(`{}`, `{"preconditions":{"must_have_correlation_id":null,"deny_if_missing_required_controls":"nope"}}`),
			[]string{"rules[0].decision.preconditions.must_have_correlation_id", "rules[0].decision.preconditions.deny_if_missing_required_controls"}, "true or false"},
		{"profiles not an array", rule(`{}`, `{"recommended_profiles":{"p":1}}`), []string{"rules[0].decision.recommended_profiles"}, "must be an array"},
		{"profile not an object", rule(`{}`, `{"recommended_profiles":[{"p":1},[]]}`), []string{"rules[0].decision.recommended_profiles[1]"}, "must be an object"},
		{"every problem of every rule",
			`{"rules":[{"rule_id":"ok","match":{"env":"dev"}},{"match":{"env":{"in":"dev"}},"decision":{"escalation":null}},{"rule_id":"r3","decision":{"candidate_workers_ranked":null}}]}`,
			[]string{"rules[1].rule_id", "rules[1].match.env.in", "rules[1].decision.escalation", "rules[2].decision.candidate_workers_ranked"}, "is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := ParseRules([]byte(tc.doc))
			if err == nil {
				t.Fatalf("accepted: %d rules", len(rs.Rules))
			}
			if rs != nil {
				t.Error("a failed load returned a rule set")
			}
			ps := loadProblems(t, err)
			if got := problemFields(ps); !slices.Equal(got, tc.fields) {
				t.Errorf("fields = %q, want %q\n%v", got, tc.fields, err)
			}
			if !strings.Contains(ps[0].Message, tc.says) {
				t.Errorf("message %q does not say %q", ps[0].Message, tc.says)
			}
			// Each problem is one line of the error, prefixed by the source.
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(ps) || !strings.HasPrefix(lines[0], "rules: "+ps[0].Field+": ") {
				t.Errorf("error text %q", err.Error())
			}
		})
	}
}

func TestLoadRulesNamesTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(path, []byte(`{"rules":[{"rule_id":"r1","match":{"env":{"in":"prod"}}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRules(path)
	ps := loadProblems(t, err)
	if want := path + ": rules[0].match.env.in: "; !strings.HasPrefix(err.Error(), want) || len(ps) != 1 {
		t.Errorf("error %q does not start with %q", err, want)
	}
	if _, err := LoadRules(filepath.Join(dir, "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(`{"rules":[{"rule_id":"r1"},{"rule_id":"r2","match":{"env":"prod"}}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := LoadRules(good)
	if err != nil || len(rs.Rules) != 2 || rs.Rules[1].ID != "r2" {
		t.Fatalf("LoadRules(good) = %v, %v", rs, err)
	}
}

func TestParseRulesDefaults(t *testing.T) {
	rs := mustRules(t, `{"rules":[{"rule_id":"r1","match":null,"decision":null},{"rule_id":"r2"}],"version":"ignored"}`)
	for _, r := range rs.Rules {
		if len(r.cands) != 0 || len(r.Controls()) != 0 || r.Controls() == nil || !reflect.DeepEqual(r.esc, wcp.Escalation{}) || r.pre != wcp.DefaultPreconditions() || r.profiles != nil {
			t.Errorf("%s: defaults not applied: %+v", r.ID, r)
		}
	}
	if len(rs.Warnings) != 0 || len(rs.Shadows) != 1 || rs.Shadows[0] != (Shadow{"r1", "r2", rs.Shadows[0].Reason}) {
		t.Errorf("warnings %q shadows %+v", rs.Warnings, rs.Shadows)
	}

	r := mustRules(t, `{"rules":[{"rule_id":"r","decision":{"candidate_workers_ranked":[{"worker_species_id":"wrk.b"},{},{"worker_species_id":"wrk.a"}],`+
		`"required_controls_suggested":["ctrl.z","ctrl.a","ctrl.z","ctrl.blast_radius_scoring"]}}]}`).Rules[0]
	if got := r.Species(); !slices.Equal(got, []string{"wrk.b", "", "wrk.a"}) {
		t.Errorf("Species() = %q", got)
	}
	if got := r.Controls(); !slices.Equal(got, []string{"ctrl.a", "ctrl.blast_radius_scoring", "ctrl.z"}) {
		t.Errorf("Controls() = %q", got)
	}
	if !r.blastCtl || r.privCtl {
		t.Errorf("special controls: blast %v priv %v", r.blastCtl, r.privCtl)
	}
}

func TestParseRulesWarnings(t *testing.T) {
	rs := mustRules(t, `{"rules":[`+
		`{"rule_id":"dup","match":{"capability_id":"cap.a","region":"eu"}},`+
		`{"rule_id":"dup","match":{"capability_id":"cap.b"}},`+
		`{"rule_id":"eq","match":{"capability_id":{"eq":"cap.c"}}},`+
		`{"rule_id":"num","match":{"qos_class":2}},`+
		`{"rule_id":"anyone","match":{"env":{"any":1}}}]}`)
	want := []string{
		`rules[0].match.region: the matcher ignores this key`,
		`rules[1]: rule_id "dup" is also used by rules[0]`,
		`rules[2].match.capability_id: {"eq":"cap.c"} is not an operator and never matches`,
		`rules[3].match.qos_class: 2 never equals a string`,
		`rules[4].match.env: {"any":1} is not an operator and never matches`,
	}
	if len(rs.Warnings) != len(want) {
		t.Fatalf("warnings = %q", rs.Warnings)
	}
	for i, w := range want {
		if !strings.HasPrefix(rs.Warnings[i], w) {
			t.Errorf("warning[%d] = %q, want prefix %q", i, rs.Warnings[i], w)
		}
	}
}

func TestRuleMatches(t *testing.T) {
	in := baseInput() // cap.hello.greet dev INTERNAL low P2
	cases := []struct {
		match string
		want  bool
	}{
		{`{}`, true},
		{`{"capability_id":"cap.hello.greet"}`, true},
		{`{"capability_id":"CAP.hello.greet"}`, false},
		{`{"capability_id":"cap.hello.greet "}`, false},
		{`{"capability_id":null,"env":null}`, true},
		{`{"env":{"in":["stage","dev"]}}`, true},
		{`{"env":{"in":["prod"]}}`, false},
		{`{"env":{"in":[]}}`, false},
		{`{"qos_class":{"in":[2,"P1"]}}`, false},
		{`{"env":{"any":true}}`, true},
		{`{"env":{"any":false,"in":["dev"]}}`, true},
		{`{"env":{"any":false}}`, false},
		{`{"env":{"any":"true"}}`, false},
		{`{"env":{}}`, false},
		{`{"env":["dev"]}`, false},
		{`{"capability_id":"cap.hello.greet","env":"dev","data_label":"INTERNAL","tenant_risk":"low","qos_class":"P2"}`, true},
		{`{"capability_id":"cap.hello.greet","env":"dev","data_label":"INTERNAL","tenant_risk":"low","qos_class":"P3"}`, false},
		{`{"tenant_risk":{"in":["low"]},"region":"mars"}`, true},
	}
	for _, tc := range cases {
		rs := mustRules(t, `{"rules":[{"rule_id":"r","match":`+tc.match+`}]}`)
		if got := rs.Rules[0].Matches(&in); got != tc.want {
			t.Errorf("match %s: got %v, want %v", tc.match, got, tc.want)
		}
	}
}

func TestDetectShadows(t *testing.T) {
	cases := []struct {
		name  string
		rules string // rules as id:match pairs
		want  []Shadow
	}{
		{"catch-all first shadows everything",
			`[{"rule_id":"A","match":{}},{"rule_id":"B","match":{}},{"rule_id":"C","match":{"env":"dev"}}]`,
			[]Shadow{{"A", "B", ""}, {"A", "C", ""}, {"B", "C", ""}}},
		{"identical with the same id is not reported",
			`[{"rule_id":"A","match":{"env":"dev"}},{"rule_id":"A","match":{"env":"dev"}}]`, nil},
		{"narrower early rule is not a shadow",
			`[{"rule_id":"narrow","match":{"capability_id":"x","env":"prod"}},{"rule_id":"broad","match":{"capability_id":"x"}}]`, nil},
		{"broad early rule shadows narrow late rule",
			`[{"rule_id":"rr_broad","match":{"capability_id":"x"}},{"rule_id":"rr_narrow","match":{"capability_id":"x","env":"prod"}}]`,
			[]Shadow{{"rr_broad", "rr_narrow", ""}}},
		{"python equality: any 1 equals any true",
			`[{"rule_id":"A","match":{"env":{"any":1}}},{"rule_id":"B","match":{"env":{"any":true}}}]`,
			[]Shadow{{"A", "B", ""}}},
		{"in list covers a member and a sub-list",
			`[{"rule_id":"A","match":{"env":{"in":["dev","stage","prod"]}}},{"rule_id":"B","match":{"env":"stage"}},{"rule_id":"C","match":{"env":{"in":["prod","dev"]}}},{"rule_id":"D","match":{"env":{"in":[]}}}]`,
			[]Shadow{{"A", "B", ""}, {"A", "C", ""}, {"A", "D", ""}, {"C", "D", ""}}},
		{"in list does not cover eq or any",
			`[{"rule_id":"A","match":{"capability_id":{"in":["cap.secret.delete"]}}},{"rule_id":"B","match":{"capability_id":{"eq":"cap.secret.delete"}}},{"rule_id":"C","match":{"capability_id":{"any":true}}}]`,
			nil},
		{"any-true early covers an eq late (SHADOW-003)",
			`[{"rule_id":"allow-any","match":{"capability_id":{"any":true},"env":{"in":["dev","stage","prod","edge"]}}},{"rule_id":"deny-secret","match":{"capability_id":{"eq":"cap.secret.delete"},"env":"prod"}}]`,
			[]Shadow{{"allow-any", "deny-secret", ""}}},
		{"unknown key in early makes it narrower",
			`[{"rule_id":"A","match":{"foo":"bar"}},{"rule_id":"B","match":{"env":"dev"}}]`, nil},
		{"unknown key only in late is covered",
			`[{"rule_id":"A","match":{"env":"dev"}},{"rule_id":"B","match":{"env":"dev","foo":"bar"}}]`,
			[]Shadow{{"A", "B", ""}}},
		{"late null key needs early absent or any",
			`[{"rule_id":"A","match":{"env":"dev"}},{"rule_id":"B","match":{"env":null}},{"rule_id":"C","match":{"env":{"any":true}}},{"rule_id":"D","match":{"env":null,"qos_class":"P0"}}]`,
			[]Shadow{{"B", "C", ""}, {"B", "D", ""}, {"C", "D", ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := mustRules(t, `{"rules":`+tc.rules+`}`)
			got := rs.Shadows
			if len(got) != len(tc.want) {
				t.Fatalf("shadows = %+v, want %+v", got, tc.want)
			}
			var ids []string
			for i, s := range got {
				if s.Shadower != tc.want[i].Shadower || s.Shadowed != tc.want[i].Shadowed {
					t.Errorf("shadow[%d] = %s→%s, want %s→%s", i, s.Shadower, s.Shadowed, tc.want[i].Shadower, tc.want[i].Shadowed)
				}
				if !strings.Contains(s.Reason, `"`+s.Shadowed+`"`) {
					t.Errorf("reason %q does not name the shadowed rule", s.Reason)
				}
				if s.Shadower != s.Shadowed && strings.Contains(s.Reason, "matches every input") && !strings.Contains(s.Reason, `"`+s.Shadower+`"`) {
					t.Errorf("reason %q does not name the shadowing rule", s.Reason)
				}
				ids = append(ids, s.Shadowed)
			}
			if !slices.Equal(rs.ShadowedIDs(), ids) {
				t.Errorf("ShadowedIDs() = %q, want %q", rs.ShadowedIDs(), ids)
			}
		})
	}
}

func TestShadowReasonsNameBothRules(t *testing.T) {
	rs := mustRules(t, `{"rules":[{"rule_id":"rr_early","match":{"env":"dev"}},{"rule_id":"rr_same","match":{"env":"dev"}},{"rule_id":"rr_late","match":{"env":"dev","qos_class":"P0"}}]}`)
	if len(rs.Shadows) != 3 {
		t.Fatalf("shadows = %+v", rs.Shadows)
	}
	identical, semantic := rs.Shadows[0], rs.Shadows[1]
	if identical.Shadower != "rr_early" || identical.Shadowed != "rr_same" || !strings.Contains(identical.Reason, "identical match conditions") {
		t.Errorf("identical = %+v", identical)
	}
	if semantic.Shadower != "rr_early" || semantic.Shadowed != "rr_late" ||
		!strings.Contains(semantic.Reason, `"rr_early"`) || !strings.Contains(semantic.Reason, `"rr_late"`) ||
		!strings.Contains(semantic.Reason, `{"env":"dev","qos_class":"P0"}`) {
		t.Errorf("semantic = %+v", semantic)
	}
	b, err := json.Marshal(semantic)
	if err != nil || !strings.HasPrefix(string(b), `{"shadower":"rr_early","shadowed":"rr_late","reason":`) {
		t.Errorf("JSON %s %v", b, err)
	}
}

func TestCompileRulesFromWireType(t *testing.T) {
	rules := []wcp.Rule{
		{RuleID: "r1", Match: json.RawMessage(`{"env":{"in":["dev"]}}`), Decision: json.RawMessage(`{"candidate_workers_ranked":[{"worker_species_id":"wrk.a"}]}`)},
		{RuleID: "r2"},
	}
	rs, err := CompileRules(rules)
	if err != nil || len(rs.Rules) != 2 || rs.Rules[0].ID != "r1" || !slices.Equal(rs.Rules[0].Species(), []string{"wrk.a"}) {
		t.Fatalf("CompileRules = %+v, %v", rs, err)
	}
	_, err = CompileRules([]wcp.Rule{{RuleID: "bad", Match: json.RawMessage(`{"env":{"in":"dev"}}`)}})
	if got := problemFields(loadProblems(t, err)); !slices.Equal(got, []string{"rules[0].match.env.in"}) {
		t.Errorf("fields = %q", got)
	}
}
