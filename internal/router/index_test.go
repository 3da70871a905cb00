package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/wcphall/hall/host/wcp"
)

// vectorsPath is the conformance vectors (PyHall's recorded decisions) at
// the repository root.
const vectorsPath = "../../testdata/vectors/random.json"

func TestFirstMatchOrder(t *testing.T) {
	cases := []struct {
		name  string
		rules string // the "rules" array
		in    func(*wcp.RouteInput)
		want  string // matched rule id, "" for none
	}{
		{"exact", `[{"rule_id":"a","match":{"capability_id":"cap.x"}},{"rule_id":"b","match":{"capability_id":"cap.hello.greet"}}]`, nil, "b"},
		{"wildcard before exact", `[{"rule_id":"w","match":{"env":"dev"}},{"rule_id":"e","match":{"capability_id":"cap.hello.greet"}}]`, nil, "w"},
		{"exact before wildcard", `[{"rule_id":"e","match":{"capability_id":"cap.hello.greet"}},{"rule_id":"w","match":{}}]`, nil, "e"},
		{"exact fails on env, wildcard next", `[{"rule_id":"e","match":{"capability_id":"cap.hello.greet","env":"prod"}},{"rule_id":"w","match":{"capability_id":null}}]`, nil, "w"},
		{"interleaved", `[{"rule_id":"w1","match":{"env":"prod"}},{"rule_id":"e1","match":{"capability_id":"cap.hello.greet","qos_class":"P0"}},{"rule_id":"w2","match":{"capability_id":{"any":true},"tenant_risk":"high"}},{"rule_id":"e2","match":{"capability_id":{"in":["cap.y","cap.hello.greet"]}}},{"rule_id":"w3","match":{}}]`, nil, "e2"},
		{"in list", `[{"rule_id":"a","match":{"capability_id":{"in":["cap.y","cap.hello.greet"]}}}]`, nil, "a"},
		{"in list with a repeat", `[{"rule_id":"a","match":{"capability_id":{"in":["cap.hello.greet","cap.hello.greet"],"any":false},"env":"prod"}},{"rule_id":"b","match":{"capability_id":{"in":["cap.hello.greet"]}}}]`, nil, "b"},
		{"in list of numbers", `[{"rule_id":"a","match":{"capability_id":{"in":[1,true,null]}}},{"rule_id":"b","match":{}}]`, nil, "b"},
		{"empty in list", `[{"rule_id":"a","match":{"capability_id":{"in":[]}}}]`, nil, ""},
		{"any true ignores in", `[{"rule_id":"a","match":{"capability_id":{"any":true,"in":[]}}}]`, nil, "a"},
		{"any 1 is no wildcard", `[{"rule_id":"a","match":{"capability_id":{"any":1}}},{"rule_id":"b","match":{"env":"dev"}}]`, nil, "b"},
		{"eq is no operator", `[{"rule_id":"a","match":{"capability_id":{"eq":"cap.hello.greet"}}}]`, nil, ""},
		{"number never matches", `[{"rule_id":"a","match":{"capability_id":1}},{"rule_id":"b","match":{"capability_id":["cap.hello.greet"]}}]`, nil, ""},
		{"case and spaces count", `[{"rule_id":"a","match":{"capability_id":"CAP.hello.greet"}},{"rule_id":"b","match":{"capability_id":"cap.hello.greet "}}]`, nil, ""},
		{"ignored key", `[{"rule_id":"a","match":{"capability_id":"cap.hello.greet","region":"mars"}}]`, nil, "a"},
		{"empty capability", `[{"rule_id":"a","match":{"capability_id":"cap.hello.greet"}},{"rule_id":"b","match":{"capability_id":""}}]`,
			func(in *wcp.RouteInput) { in.CapabilityID = "" }, "b"},
		{"no rules", `[]`, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := mustRules(t, `{"rules":`+tc.rules+`}`)
			in := baseInput()
			if tc.in != nil {
				tc.in(&in)
			}
			got := ""
			if r := rs.firstMatch(&in); r != nil {
				got = r.ID
			}
			if got != tc.want {
				t.Errorf("first match %q, want %q", got, tc.want)
			}
			if lin := rs.firstMatchLinear(&in); lin != rs.firstMatch(&in) {
				t.Errorf("index and scan disagree")
			}
		})
	}
}

// TestFirstMatchAfterRulesChanged: a RuleSet whose Rules were appended to
// after compiling still finds the new rules.
func TestFirstMatchAfterRulesChanged(t *testing.T) {
	rs := mustRules(t, `{"rules":[{"rule_id":"a","match":{"capability_id":"cap.x"}}]}`)
	extra := mustRules(t, oneRule(greetMatch, greetDecision))
	rs.Rules = append(rs.Rules, extra.Rules...)
	in := baseInput()
	if r := rs.firstMatch(&in); r == nil || r.ID != "rr_greet" {
		t.Fatalf("first match %v, want rr_greet", r)
	}
	if !rs.Routes(testCap, testSpecies) {
		t.Fatal("Routes misses the appended rule")
	}
	var zero RuleSet // not compiled: no index
	zero.Rules = extra.Rules
	if r := zero.firstMatch(&in); r == nil || r.ID != "rr_greet" {
		t.Fatalf("first match without index %v, want rr_greet", r)
	}
}

// namedRuleSet is a compiled rule set to check an index against, with
// inputs of its own (fixed ones; random ones are added).
type namedRuleSet struct {
	name   string
	rules  *RuleSet
	inputs []wcp.RouteInput
}

// indexTestRuleSets is every rule set we have: fuzz seeds and corpus, the
// conformance vectors, and random rule sets of every condition shape.
func indexTestRuleSets(t *testing.T) []namedRuleSet {
	t.Helper()
	docs := map[string][]byte{}
	for i, s := range fuzzRuleSeeds {
		docs[fmt.Sprintf("fuzzRuleSeeds[%d]", i)] = []byte(s)
	}
	corpus, err := filepath.Glob("testdata/fuzz/FuzzParseRules/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range corpus {
		docs[path] = readCorpusBytes(t, path)
	}
	rng := rand.New(rand.NewPCG(9, 10))
	for i := range 300 {
		docs[fmt.Sprintf("random[%d]", i)] = randomRulesDoc(rng, 1+rng.IntN(40))
	}
	var out []namedRuleSet
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		rs, err := ParseRules(docs[name])
		if err != nil {
			continue // refused rule sets decide nothing
		}
		out = append(out, namedRuleSet{name, rs, fuzzInputs()})
	}

	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Name  string          `json:"name"`
		Rules json.RawMessage `json:"rules"`
		Input json.RawMessage `json:"input"`
	}
	if err := json.Unmarshal(data, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) < 300 {
		t.Fatalf("read %d vectors, expected at least 300", len(vectors))
	}
	for _, v := range vectors {
		rs, err := ParseRules(v.Rules)
		if err != nil {
			continue
		}
		var own []wcp.RouteInput
		if in, err := wcp.ParseRouteInput(v.Input); err == nil {
			own = append(own, in)
		}
		out = append(out, namedRuleSet{v.Name, rs, own})
	}
	if len(out) < 500 {
		t.Fatalf("only %d rule sets compiled", len(out))
	}
	return out
}

// TestFirstMatchIndexEqualsScan decides many random inputs against every
// rule set of indexTestRuleSets and checks the index picks the rule the
// linear scan picks.
func TestFirstMatchIndexEqualsScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	inputs, matched := 0, 0
	for _, set := range indexTestRuleSets(t) {
		rs := set.rules
		for _, in := range append(set.inputs, randomInputs(rng, rs, 200)...) {
			got, want := rs.firstMatch(&in), rs.firstMatchLinear(&in)
			if got != want {
				t.Fatalf("%s: input %+v: index picked %s, scan picked %s", set.name, in, ruleID(got), ruleID(want))
			}
			inputs++
			if want != nil {
				matched++
			}
		}
	}
	if matched == 0 || matched == inputs {
		t.Fatalf("too weak: %d inputs, %d matched a rule", inputs, matched)
	}
	t.Logf("%d inputs, %d matched a rule", inputs, matched)
}

// TestDetectShadowsEqualsPairwise: narrowing the pairs DetectShadows
// compares reports the same shadows, in the same order, as comparing every
// pair.
func TestDetectShadowsEqualsPairwise(t *testing.T) {
	reported := 0
	for _, set := range indexTestRuleSets(t) {
		want := detectShadowsPairwise(set.rules.Rules)
		if !reflect.DeepEqual(set.rules.Shadows, want) {
			t.Fatalf("%s: shadows\n%v\nwant\n%v", set.name, set.rules.Shadows, want)
		}
		reported += len(want)
	}
	if reported < 100 {
		t.Fatalf("too weak: %d shadows in all", reported)
	}
}

// detectShadowsPairwise is PyHall's detect_shadow_rules as written: every
// ordered pair.
func detectShadowsPairwise(rules []*Rule) []Shadow {
	var out []Shadow
	for i, early := range rules {
		for _, late := range rules[i+1:] {
			out = shadowPair(out, early, late)
		}
	}
	return out
}

func ruleID(r *Rule) string {
	if r == nil {
		return "no rule"
	}
	return strconv.Quote(r.ID)
}

// readCorpusBytes reads a one-value `go test fuzz v1` file holding []byte.
func readCorpusBytes(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%s: expected a header and one value", path)
	}
	lit, ok := bytes.CutPrefix(lines[1], []byte("[]byte("))
	lit, ok2 := bytes.CutSuffix(lit, []byte(")"))
	s, err := strconv.Unquote(string(lit))
	if !ok || !ok2 || err != nil {
		t.Fatalf("%s: not a []byte value: %v", path, err)
	}
	return []byte(s)
}

var (
	randomCaps = []string{"cap.a", "cap.b", "cap.c", "cap.hello.greet", "", "cap.a "}
	randomVals = [5][]string{randomCaps, wcp.Envs(), wcp.DataLabels(), wcp.TenantRisks(), wcp.QoSClasses()}
)

// randomCond is a match condition of every shape PyHall's matcher meets:
// wildcards, exact strings, "in" lists (with repeats and non-strings), and
// conditions that never hold.
func randomCond(rng *rand.Rand, vals []string) (any, bool) {
	pick := func() any { return vals[rng.IntN(len(vals))] }
	list := func() []any {
		out := []any{}
		for range rng.IntN(4) {
			switch rng.IntN(6) {
			case 0:
				out = append(out, json.Number("1"))
			case 1:
				out = append(out, nil)
			default:
				out = append(out, pick())
			}
		}
		return out
	}
	switch rng.IntN(16) {
	case 0, 1, 2:
		return nil, false // absent
	case 3:
		return nil, true // null
	case 4, 5, 6:
		return pick(), true
	case 7:
		return map[string]any{"any": true}, true
	case 8:
		return map[string]any{"any": rng.IntN(2) == 0, "in": list()}, true
	case 9, 10, 11:
		return map[string]any{"in": list()}, true
	case 12:
		return map[string]any{"any": []any{json.Number("1"), "true", false}[rng.IntN(3)]}, true
	case 13:
		return map[string]any{"eq": pick()}, true
	case 14:
		return map[string]any{}, true
	}
	return []any{json.Number("1"), []any{pick()}, true}[rng.IntN(3)], true
}

func randomRulesDoc(rng *rand.Rand, n int) []byte {
	rules := make([]any, n)
	for i := range rules {
		match := map[string]any{}
		for k, key := range matchKeys {
			if c, present := randomCond(rng, randomVals[k]); present {
				match[key] = c
			}
		}
		if rng.IntN(10) == 0 {
			match["region"] = "mars"
		}
		rules[i] = map[string]any{"rule_id": fmt.Sprintf("r%d", i), "match": match}
	}
	return mustJSON(map[string]any{"rules": rules})
}

// randomInputs draws each of the five matched fields from the values the
// rules mention, the enums, and a few strings no rule names.
func randomInputs(rng *rand.Rand, rs *RuleSet, n int) []wcp.RouteInput {
	var pools [5][]string
	for k := range pools {
		pools[k] = append([]string{"", "zz.unknown"}, randomVals[k]...)
		for _, r := range rs.Rules {
			c := &r.conds[k]
			if c.kind == condEq {
				pools[k] = append(pools[k], c.eq)
			}
			pools[k] = append(pools[k], c.set...)
		}
	}
	out := make([]wcp.RouteInput, n)
	for i := range out {
		in := baseInput()
		for k, dst := range []*string{&in.CapabilityID, &in.Env, &in.DataLabel, &in.TenantRisk, &in.QoSClass} {
			*dst = pools[k][rng.IntN(len(pools[k]))]
		}
		out[i] = in
	}
	return out
}

// FuzzFirstMatch: for any rules document and any five matched fields, the
// index picks the rule the linear scan picks.
func FuzzFirstMatch(f *testing.F) {
	for _, s := range fuzzRuleSeeds {
		f.Add([]byte(s), "cap.hello.greet", "dev", "INTERNAL", "low", "P2")
	}
	f.Add([]byte(`{"rules":[{"rule_id":"w","match":{"env":"prod"}},{"rule_id":"e","match":{"capability_id":{"in":["cap.x","cap.x"]}}},{"rule_id":"n","match":{"capability_id":{"eq":"cap.x"}}},{"rule_id":"c","match":{}}]}`),
		"cap.x", "prod", "PUBLIC", "high", "P0")
	f.Fuzz(func(t *testing.T, doc []byte, capability, env, label, risk, qos string) {
		rs, err := ParseRules(doc)
		if err != nil {
			return
		}
		in := wcp.RouteInput{CapabilityID: capability, Env: env, DataLabel: label, TenantRisk: risk, QoSClass: qos}
		caps := []string{capability}
		for _, r := range rs.Rules {
			caps = append(caps, r.conds[0].eq)
			caps = append(caps, r.conds[0].set...)
		}
		for _, c := range caps {
			in.CapabilityID = c
			if got, want := rs.firstMatch(&in), rs.firstMatchLinear(&in); got != want {
				t.Fatalf("input %+v: index picked %s, scan picked %s", in, ruleID(got), ruleID(want))
			}
		}
	})
}
