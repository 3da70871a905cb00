package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/conformance"
	"github.com/wcphall/hall/internal/router"
)

// parseFixtures reads the golden tests of `hall validate`, in either
// format:
//
//   - the Hall's: a JSON array of {"name", "input": RouteInput, "expect":
//     {denied, deny_code, matched_rule_id, selected_worker_species_id, …}};
//   - PyHall's: {"tests": [{"name", "input": RouteInput, "expected_rule_id",
//     "expected_denied", …}]}, where every "expected_<key>" member is the
//     expectation <key> of the Hall's format (expected_rule_id is
//     matched_rule_id).
func parseFixtures(path string, data []byte) ([]fixture, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '[' {
		var fx []fixture
		if err := json.Unmarshal(data, &fx); err != nil {
			return nil, failf("%s: expected a JSON array of {\"name\", \"input\", \"expect\"} fixtures: %v", path, err)
		}
		return fx, nil
	}
	var doc struct {
		Tests []map[string]json.RawMessage `json:"tests"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || doc.Tests == nil {
		return nil, failf("%s: expected a JSON array of {\"name\", \"input\", \"expect\"} fixtures, or PyHall's {\"tests\": [{\"name\", \"input\", \"expected_rule_id\", …}]}", path)
	}
	out := make([]fixture, len(doc.Tests))
	for i, t := range doc.Tests {
		var f fixture
		if n, ok := t["name"]; ok {
			if err := json.Unmarshal(n, &f.Name); err != nil {
				return nil, failf("%s: tests[%d].name: must be a string", path, i)
			}
		}
		for _, k := range []string{"input", "route_input", "request"} {
			if v, ok := t[k]; ok {
				f.Input = v
				break
			}
		}
		expect := map[string]json.RawMessage{}
		var unknown []string
		for k, v := range t {
			switch {
			case k == "expected_rule_id":
				expect["matched_rule_id"] = v
			case strings.HasPrefix(k, "expected_"):
				expect[strings.TrimPrefix(k, "expected_")] = v
			case k == "expect":
				var m map[string]json.RawMessage
				if err := json.Unmarshal(v, &m); err != nil {
					return nil, failf("%s: tests[%d].expect: must be an object", path, i)
				}
				for mk, mv := range m {
					expect[mk] = mv
				}
			case k == "name" || k == "input" || k == "route_input" || k == "request" || k == "description" || k == "comment":
			default:
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return nil, failf("%s: tests[%d]: unknown member(s) %s (expectations are expected_<key>, e.g. expected_rule_id, expected_denied)", path, i, strings.Join(unknown, ", "))
		}
		if len(expect) > 0 {
			b, err := json.Marshal(expect)
			if err != nil {
				return nil, failf("%s: tests[%d]: %v", path, i, err)
			}
			f.Expect = b
		}
		if f.Name == "" {
			f.Name = fmt.Sprintf("tests[%d]", i)
		}
		out[i] = f
	}
	return out, nil
}

// validateResult is the JSON form of `hall validate`.
type validateResult struct {
	Rules    string           `json:"rules"`
	Count    int              `json:"rule_count"`
	Warnings []string         `json:"warnings"`
	Shadowed []map[string]any `json:"shadowed"`
	Tests    string           `json:"tests,omitempty"`
	Passed   int              `json:"passed"`
	Failed   int              `json:"failed"`
	Failures []map[string]any `json:"failures"`
	OK       bool             `json:"ok"`
}

// validateJSON is `hall validate --json`: the same checks, one JSON
// document on standard output; exit status 1 unless ok.
func validateJSON(c *cli.Context) error {
	path := c.Args().Get(0)
	rules, err := router.LoadRules(path)
	if err != nil {
		var le *router.LoadError
		if errors.As(err, &le) {
			return cli.Exit(prefixLines("hall: ", le.Error()), exitError)
		}
		return failf("%v", err)
	}
	res := validateResult{Rules: path, Count: len(rules.Rules), Warnings: nonNil(rules.Warnings), Shadowed: []map[string]any{}, Failures: []map[string]any{}}
	for _, s := range rules.Shadows {
		res.Shadowed = append(res.Shadowed, map[string]any{"rule_id": s.Shadowed, "shadowed_by": s.Shadower, "reason": s.Reason})
	}
	if c.NArg() == 2 {
		res.Tests = c.Args().Get(1)
		data, err := os.ReadFile(res.Tests)
		if err != nil {
			return failf("%v", err)
		}
		fx, err := parseFixtures(res.Tests, data)
		if err != nil {
			return err
		}
		h, err := host.Open(contextOf(c), host.Options{Rules: path, RegistryDir: c.String("registry-dir"), ConfigFile: c.String("config"), Home: c.String("home")})
		if err != nil {
			return cli.Exit(prefixLines("hall: ", err.Error()), exitError)
		}
		defer h.Close(contextOf(c))
		for i, f := range fx {
			name := f.Name
			if name == "" {
				name = fmt.Sprintf("fixture %d", i)
			}
			var diffs []string
			in, err := wcp.ParseRouteInput(f.Input)
			switch {
			case err != nil:
				diffs = []string{"input: " + err.Error()}
			case len(f.Expect) == 0:
				diffs = []string{"expect: missing (give at least {\"denied\": ...})"}
			default:
				dec := h.Decide(contextOf(c), &in)
				if diffs, err = conformance.Compare(f.Expect, &dec); err != nil {
					diffs = []string{err.Error()}
				}
			}
			if len(diffs) > 0 {
				res.Failed++
				res.Failures = append(res.Failures, map[string]any{"name": name, "diffs": diffs})
			} else {
				res.Passed++
			}
		}
	}
	res.OK = len(res.Shadowed) == 0 && res.Failed == 0
	if err := printJSON(c, res); err != nil {
		return err
	}
	if !res.OK {
		return cli.Exit("", exitError)
	}
	return nil
}
