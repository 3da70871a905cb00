package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/internal/conformance"
)

func conformanceCommand() *cli.Command {
	return &cli.Command{
		Name:  "conformance",
		Usage: "run WCP conformance vectors (PyHall's recorded decisions) through the Hall's engine",
		Subcommands: []*cli.Command{
			{
				Name:      "decide",
				Usage:     "print one decision per vector, as a JSON array",
				ArgsUsage: "FILE",
				Action: func(c *cli.Context) error {
					vs, err := readVectors(c)
					if err != nil {
						return err
					}
					out := make([]any, len(vs))
					for i := range vs {
						o, err := conformance.Run(contextOf(c), &vs[i])
						if err != nil {
							return failf("vector %d: %v", i, err)
						}
						out[i] = o
					}
					b, err := json.MarshalIndent(out, "", "  ")
					if err != nil {
						return failf("encoding decisions: %v", err)
					}
					fmt.Fprintln(c.App.Writer, string(b))
					return nil
				},
			},
			{
				Name:      "check",
				Usage:     "compare each vector's decision with its expect block; print failures and a summary",
				ArgsUsage: "FILE",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print {passed, failed, failures: [{name, diffs}]} as JSON"}},
				Action: func(c *cli.Context) error {
					vs, err := readVectors(c)
					if err != nil {
						return err
					}
					failed := 0
					failures := []map[string]any{}
					w := c.App.Writer
					if c.Bool("json") {
						w = io.Discard
					}
					for i := range vs {
						v := &vs[i]
						name := v.Name
						if name == "" {
							name = fmt.Sprintf("vector %d", i)
						}
						o, err := conformance.Run(contextOf(c), v)
						var diffs []string
						if err == nil {
							diffs, err = conformance.Compare(v.Expect, o)
						}
						if err != nil {
							diffs = []string{err.Error()}
						}
						if len(diffs) > 0 {
							failed++
							failures = append(failures, map[string]any{"name": name, "diffs": diffs})
							fmt.Fprintf(w, "FAIL %s\n  %s\n", name, strings.Join(diffs, "\n  "))
						}
					}
					fmt.Fprintf(w, "%d passed, %d failed\n", len(vs)-failed, failed)
					if c.Bool("json") {
						if err := printJSON(c, map[string]any{"passed": len(vs) - failed, "failed": failed, "failures": failures}); err != nil {
							return err
						}
					}
					if failed > 0 {
						return cli.Exit("", exitError)
					}
					return nil
				},
			},
		},
	}
}

func readVectors(c *cli.Context) ([]conformance.Vector, error) {
	if c.NArg() != 1 {
		return nil, failf("%s needs exactly one FILE of vectors (one vector object or an array)", c.Command.Name)
	}
	data, err := readFileOrStdin(c, c.Args().First())
	if err != nil {
		return nil, failf("%v", err)
	}
	vs, err := conformance.Parse(data)
	if err != nil {
		return nil, failf("%s: %v", c.Args().First(), err)
	}
	return vs, nil
}
