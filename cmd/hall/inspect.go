package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/registry"
	"github.com/wcphall/hall/internal/wasmmod"
)

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:      "inspect",
		Usage:     "show a module's digest, size, embedded registry record, imports and exports",
		ArgsUsage: "MODULE.wasm",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		},
		Action: inspectAction,
	}
}

// inspectResult is the JSON form of `hall inspect`.
type inspectResult struct {
	Path           string              `json:"path"`
	Digest         string              `json:"digest"`
	Size           int                 `json:"size"`
	Record         json.RawMessage     `json:"record"` // null when the module embeds none
	RecordProblems []string            `json:"record_problems"`
	Imports        map[string][]string `json:"imports"` // module → names (non-functions as "name (kind)")
	Exports        []wasmmod.Export    `json:"exports"`
	CustomSections []string            `json:"custom_sections"`
}

func inspectAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return failf("inspect needs exactly one MODULE.wasm")
	}
	path := c.Args().First()
	module, err := os.ReadFile(path)
	if err != nil {
		return failf("%v", err)
	}
	info, err := wasmmod.Inspect(module)
	if err != nil {
		return failf("%s: not a WebAssembly module: %v", path, err)
	}
	sum := sha256.Sum256(module)
	res := inspectResult{
		Path:           path,
		Digest:         "sha256:" + hex.EncodeToString(sum[:]),
		Size:           len(module),
		Record:         json.RawMessage("null"),
		RecordProblems: []string{},
		Imports:        map[string][]string{},
		Exports:        info.Exports,
		CustomSections: info.CustomSections,
	}
	if res.Exports == nil {
		res.Exports = []wasmmod.Export{}
	}
	if res.CustomSections == nil {
		res.CustomSections = []string{}
	}
	var importOrder []string
	for _, im := range info.Imports {
		if _, ok := res.Imports[im.Module]; !ok {
			importOrder = append(importOrder, im.Module)
		}
		name := im.Name
		if im.Kind != wasmmod.KindFunc {
			name += " (" + string(im.Kind) + ")"
		}
		res.Imports[im.Module] = append(res.Imports[im.Module], name)
	}
	sec, ok, err := wasmmod.CustomSection(module, host.RecordSection)
	if err != nil {
		return failf("%s: %v", path, err)
	}
	if ok {
		var pretty bytes.Buffer
		if json.Indent(&pretty, sec, "", "  ") != nil {
			res.RecordProblems = append(res.RecordProblems, "not valid JSON")
			raw, _ := json.Marshal(string(sec))
			res.Record = raw
		} else {
			res.Record = pretty.Bytes()
			if _, err := registry.Validate(sec); err != nil {
				var re *registry.RecordError
				if errors.As(err, &re) {
					for _, p := range re.Problems {
						res.RecordProblems = append(res.RecordProblems, p.String())
					}
				} else {
					res.RecordProblems = append(res.RecordProblems, err.Error())
				}
			}
		}
	}
	if c.Bool("json") {
		return printJSON(c, res)
	}

	w := c.App.Writer
	fmt.Fprintf(w, "module:   %s\n", path)
	fmt.Fprintf(w, "digest:   %s\n", res.Digest)
	fmt.Fprintf(w, "size:     %d bytes\n", res.Size)
	if ok {
		fmt.Fprintf(w, "record:   (custom section %s)\n", host.RecordSection)
		fmt.Fprintln(w, indent(string(res.Record), "  "))
	} else {
		fmt.Fprintf(w, "record:   none (no %s section: embed one with `hall build` (Go) or `hall record embed` (any language), or enroll with --record FILE)\n", host.RecordSection)
	}
	fmt.Fprintln(w, "imports:")
	if len(importOrder) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, m := range importOrder {
		fmt.Fprintf(w, "  %s: %s\n", m, strings.Join(res.Imports[m], ", "))
	}
	fmt.Fprintln(w, "exports:")
	if len(info.Exports) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, e := range info.Exports {
		fmt.Fprintf(w, "  %s (%s)\n", e.Name, e.Kind)
	}
	if len(info.CustomSections) > 0 {
		fmt.Fprintf(w, "custom sections: %s\n", strings.Join(info.CustomSections, ", "))
	}
	for _, p := range res.RecordProblems {
		fmt.Fprintf(c.App.ErrWriter, "hall: warning: %s: %s: %s\n", path, host.RecordSection, p)
	}
	return nil
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
