package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/policy"
)

// exitPending is the status of `hall run` when the request is held for a
// human approval (docs/POLICY.md), and of `hall route` when a dispatch of
// the request would be: nothing ran, an approver can let it run.
const exitPending = 4

func init() {
	extraCommands = append(extraCommands, policyCommand(), approvalsCommand())
	categories["policy"] = "Routing"
	categories["approvals"] = "Routing"
	for path, n := range map[string]int{"policy test": 1, "approvals list": 0, "approvals show": 1, "approvals approve": 1, "approvals deny": 1} {
		maxArgs[path] = n
	}
}

// policyFixture is one test of `hall policy test`: what a policy sees, and
// the outcome the policy set must answer.
type policyFixture struct {
	Name   string          `json:"name"`
	Input  json.RawMessage `json:"input"`
	Worker json.RawMessage `json:"worker"`
	Rule   json.RawMessage `json:"rule"`
	// BlastScore is the router's score (default -1: not scored).
	BlastScore *int64 `json:"blast_score"`
	// Now is the decision's time, RFC 3339 (default: now).
	Now string `json:"now"`
	// Gated evaluates as for a rule that sets escalation.policy_gate
	// (default: the fixture's rule.policy_gate).
	Gated  *bool `json:"gated"`
	Expect struct {
		Outcome  policy.Outcome `json:"outcome"`
		PolicyID *string        `json:"policy_id"`
	} `json:"expect"`
}

func policyCommand() *cli.Command {
	return &cli.Command{
		Name:  "policy",
		Usage: "test, read or replace the policy set (docs/POLICY.md)",
		Subcommands: append(documentSubcommands(host.DocPolicy, "the policy set (policy.json)"), &cli.Command{
			Name:      "test",
			Usage:     "evaluate the policies on fixture files and compare each outcome with the expected one",
			ArgsUsage: "FIXTURES.json",
			Description: "FIXTURES.json is a JSON array of {\"name\", \"input\": {capability_id, env, data_label, tenant_id, request, ...},\n" +
				"\"worker\": {id, risk_tier, envelope: {filesystem_writes, ...}, ...}, \"rule\": {id, policy_gate, ...},\n" +
				"\"blast_score\"?, \"now\"?, \"expect\": {\"outcome\": \"ALLOW\"|\"DENY\"|\"REQUIRE_HUMAN\", \"policy_id\"?}}: the\n" +
				"variables a policy sees, named as in the policies. Exit status 0 only when every fixture passes.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "policies", Value: "policy.json", Usage: "policy `FILE`"},
				&cli.BoolFlag{Name: "json", Usage: "print the results as JSON"},
			},
			Action: policyTest,
		}),
	}
}

type fixtureResult struct {
	Name   string        `json:"name"`
	Passed bool          `json:"passed"`
	Got    policy.Result `json:"got"`
	Diffs  []string      `json:"diffs,omitempty"`
}

func policyTest(c *cli.Context) error {
	if c.NArg() != 1 {
		return failf("policy test needs FIXTURES.json")
	}
	path := c.String("policies")
	data, err := os.ReadFile(path)
	if err != nil {
		return failf("--policies: %v", err)
	}
	set, err := policy.Parse(path, data)
	if err != nil {
		return cli.Exit(prefixLines("hall: ", err.Error()), exitError)
	}
	fpath := c.Args().First()
	raw, err := os.ReadFile(fpath)
	if err != nil {
		return failf("%v", err)
	}
	var fxs []json.RawMessage
	if err := json.Unmarshal(raw, &fxs); err != nil {
		return failf("%s: expected a JSON array of {\"name\", \"input\", \"worker\", \"rule\", \"expect\"} fixtures: %v", fpath, err)
	}
	var results []fixtureResult
	failed := 0
	for i, rawFx := range fxs {
		res := runPolicyFixture(set, fmt.Sprintf("%s: [%d]", fpath, i), rawFx)
		if res.Name == "" {
			res.Name = fmt.Sprintf("fixture %d", i)
		}
		if !res.Passed {
			failed++
		}
		results = append(results, res)
	}
	if c.Bool("json") {
		if err := printJSON(c, map[string]any{"policy_set_digest": set.Digest(), "results": results, "passed": len(fxs) - failed, "failed": failed}); err != nil {
			return err
		}
	} else {
		w := c.App.Writer
		for _, r := range results {
			if !r.Passed {
				fmt.Fprintf(w, "FAIL %s\n  %s\n", r.Name, strings.Join(r.Diffs, "\n  "))
			}
		}
		fmt.Fprintf(w, "%s (%s): %d passed, %d failed\n", path, set.Digest(), len(fxs)-failed, failed)
	}
	if failed > 0 {
		return cli.Exit("", exitError)
	}
	return nil
}

// runPolicyFixture decodes and evaluates one fixture; where names it in
// decoding errors.
func runPolicyFixture(set *policy.Set, where string, raw json.RawMessage) fixtureResult {
	var fx policyFixture
	fail := func(format string, args ...any) fixtureResult {
		return fixtureResult{Name: fx.Name, Diffs: []string{where + ": " + fmt.Sprintf(format, args...)}}
	}
	if err := strictJSON(raw, &fx); err != nil {
		return fail("%v", err)
	}
	f := policy.Facts{Input: policy.Input{BlastScore: -1}, BlastScore: -1, Now: time.Now().UTC()}
	for _, part := range []struct {
		name string
		raw  json.RawMessage
		dst  any
	}{{"input", fx.Input, &f.Input}, {"worker", fx.Worker, &f.Worker}, {"rule", fx.Rule, &f.Rule}} {
		if len(part.raw) == 0 {
			continue
		}
		if err := strictJSON(part.raw, part.dst); err != nil {
			return fail("%s: %v (the fields are those a policy reads, docs/POLICY.md)", part.name, err)
		}
	}
	if fx.BlastScore != nil {
		f.BlastScore = *fx.BlastScore
	}
	if fx.Now != "" {
		t, err := time.Parse(time.RFC3339Nano, fx.Now)
		if err != nil {
			return fail("now: %q is not an RFC 3339 time", fx.Now)
		}
		f.Now = t
	}
	switch fx.Expect.Outcome {
	case policy.Allow, policy.Deny, policy.RequireHuman:
	default:
		return fail("expect.outcome: %q must be ALLOW, DENY or REQUIRE_HUMAN", fx.Expect.Outcome)
	}
	gated := f.Rule.PolicyGate
	if fx.Gated != nil {
		gated = *fx.Gated
	}
	got := set.Evaluate(&f, gated)
	res := fixtureResult{Name: fx.Name, Got: got, Passed: true}
	if got.Outcome != fx.Expect.Outcome {
		res.Diffs = append(res.Diffs, fmt.Sprintf("outcome: got %s (%s), want %s", got.Outcome, got.Reason, fx.Expect.Outcome))
	}
	if fx.Expect.PolicyID != nil && got.Policy != *fx.Expect.PolicyID {
		res.Diffs = append(res.Diffs, fmt.Sprintf("policy_id: got %q, want %q", got.Policy, *fx.Expect.PolicyID))
	}
	res.Passed = len(res.Diffs) == 0
	return res
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// validatePolicies is `hall validate`'s policy check: the policy file
// beside RULES.json, when there is one, must compile. It reports whether
// something is wrong.
func validatePolicies(c *cli.Context, rulesPath string) bool {
	path := filepath.Join(filepath.Dir(rulesPath), "policy.json")
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false
	}
	w := c.App.Writer
	if err != nil {
		fmt.Fprintf(w, "policy: %v\n", err)
		return true
	}
	set, err := policy.Parse(path, data)
	if err != nil {
		fmt.Fprintln(w, prefixLines("policy: ", err.Error()))
		return true
	}
	a := set.Approvals()
	fmt.Fprintf(w, "%s: %d policies (%s), approvals %s\n", path, set.Len(), set.Digest(), map[bool]string{true: "enabled", false: "off"}[a.Enabled])
	return false
}

// heldForHuman reports whether a decision waits for, or would wait for, a
// human: a dispatch held with a pending approval, or a policy's
// REQUIRE_HUMAN while the Hall's approvals are enabled (`hall route`).
func heldForHuman(c *cli.Context, d *wcp.RouteDecision) bool {
	if host.PendingApproval(d) != "" {
		return true
	}
	h, _ := c.App.Metadata["hall"].(*host.Hall)
	return h != nil && d.Denied && d.Policy != nil && d.Policy.Outcome == string(policy.RequireHuman) && h.Policies().Approvals().Enabled
}
