package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/conformance"
	"github.com/wcphall/hall/internal/router"
)

// fixture is one golden test of `hall validate`: a RouteInput and the
// parts of the decision it must produce (the keys of a conformance
// vector's expect block).
type fixture struct {
	Name   string          `json:"name"`
	Input  json.RawMessage `json:"input"`
	Expect json.RawMessage `json:"expect"`
}

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check a rules file (structure, shadowed rules) and run golden test fixtures against it",
		ArgsUsage: "RULES.json [TESTS.json]",
		Description: "TESTS.json is a JSON array of {\"name\", \"input\": RouteInput, \"expect\": {denied, deny_code,\n" +
			"matched_rule_id, selected_worker_species_id, ...}}; each is decided with the registry and\n" +
			"configuration given by --registry-dir and --config. Exit status 0 only when the rules load,\n" +
			"no rule is shadowed and every fixture passes. PyHall's golden format, {\"tests\": [{\"name\", \"input\",\n" +
			"\"expected_rule_id\", \"expected_denied\", ...}]}, is read too.",
		Flags: append(hallFlags()[1:], &cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}),
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 || c.NArg() > 2 {
				return usageErrorf("validate", "validate needs RULES.json and optionally TESTS.json")
			}
			if c.Bool("json") {
				return validateJSON(c)
			}
			w := c.App.Writer
			path := c.Args().Get(0)
			rules, err := router.LoadRules(path)
			if err != nil {
				var le *router.LoadError
				if errors.As(err, &le) {
					return cli.Exit(prefixLines("hall: ", le.Error()), exitError)
				}
				return failf("%v", err)
			}
			ew := c.App.ErrWriter // warnings and problems go to standard error
			for _, warn := range rules.Warnings {
				fmt.Fprintf(ew, "hall: warning: %s: %s\n", path, warn)
			}
			for _, s := range rules.Shadows {
				fmt.Fprintf(ew, "hall: shadowed: rule %s is shadowed by rule %s: %s\n", s.Shadowed, s.Shadower, s.Reason)
			}
			fmt.Fprintf(w, "%s: %d rules, %d shadowed\n", path, len(rules.Rules), len(rules.Shadows))
			bad := validatePolicies(c, path) || len(rules.Shadows) > 0
			if c.NArg() == 2 {
				failed, err := runFixtures(c, path, c.Args().Get(1))
				if err != nil {
					return err
				}
				bad = bad || failed > 0
			}
			if bad {
				return cli.Exit("", exitError)
			}
			return nil
		},
	}
}

func runFixtures(c *cli.Context, rulesPath, testsPath string) (failed int, err error) {
	data, err := os.ReadFile(testsPath)
	if err != nil {
		return 0, failf("%v", err)
	}
	fx, err := parseFixtures(testsPath, data)
	if err != nil {
		return 0, err
	}
	h, err := host.Open(contextOf(c), host.Options{
		Rules:       rulesPath,
		RegistryDir: c.String("registry-dir"),
		ConfigFile:  c.String("config"),
		Home:        c.String("home"),
	})
	if err != nil {
		return 0, cli.Exit(prefixLines("hall: ", err.Error()), exitError)
	}
	w := c.App.Writer
	for i, f := range fx {
		name := f.Name
		if name == "" {
			name = fmt.Sprintf("fixture %d", i)
		}
		var diffs []string
		in, err := wcp.ParseRouteInput(f.Input)
		if err != nil {
			diffs = []string{"input: " + err.Error()}
		} else if len(f.Expect) == 0 {
			diffs = []string{"expect: missing (give at least {\"denied\": ...})"}
		} else {
			dec := h.Decide(contextOf(c), &in)
			diffs, err = conformance.Compare(f.Expect, &dec)
			if err != nil {
				diffs = []string{err.Error()}
			}
		}
		if len(diffs) > 0 {
			failed++
			fmt.Fprintf(w, "FAIL %s\n  %s\n", name, strings.Join(diffs, "\n  "))
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", len(fx)-failed, failed)
	return failed, nil
}
