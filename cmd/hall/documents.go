package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
)

func init() {
	extraCommands = append(extraCommands, documentCommand(host.DocRules, "the routing rules (rules.json)"),
		documentCommand(host.DocConfig, "the Hall configuration (hall.json)"))
}

// documentCommand is `hall rules|config get|set`; `hall policy get|set`
// are documentSubcommands of the policy command.
func documentCommand(kind host.DocKind, what string) *cli.Command {
	return &cli.Command{
		Name:        string(kind),
		Usage:       "read or replace " + what + ", in the files of this folder or the database of --database-url",
		Subcommands: documentSubcommands(kind, what),
	}
}

// documentSubcommands are get and set of one snapshot document.
func documentSubcommands(kind host.DocKind, what string) []*cli.Command {
	return []*cli.Command{{
		Name:      "get",
		Usage:     "print " + what + " as stored, byte for byte",
		ArgsUsage: " ",
		Flags:     hallFlags(),
		Action: func(c *cli.Context) error {
			h, err := openHallWith(c, host.Options{MissingRulesOK: true})
			if err != nil {
				return err
			}
			defer h.Close(contextOf(c))
			d, err := h.Document(contextOf(c), kind)
			if err != nil {
				return failf("%s: %s", kind, safeMsg(err.Error()))
			}
			if !d.Present {
				return failf("%s: there is none yet (hall %s set FILE stores one)", d.Name, kind)
			}
			c.App.Writer.Write(d.Data)
			return nil
		},
	}, {
		Name:  "set",
		Usage: "replace " + what + " with FILE ('-' for stdin): validated, recorded in the evidence ledger as a change, then in force",
		Description: "The document must compile as the Hall loads it; nothing changes otherwise. With --if-match, it replaces only\n" +
			"the stored document of that digest (as printed by `hall " + string(kind) + " get | sha256sum`, as sha256:<hex>; none: there is none).",
		ArgsUsage: "FILE",
		Flags:     append([]cli.Flag{&cli.StringFlag{Name: "if-match", Usage: "replace only the stored document of this `DIGEST`"}}, hallFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return failf("hall %s set FILE: one file ('-' for stdin)", kind)
			}
			var data []byte
			var err error
			if c.Args().First() == "-" {
				data, err = io.ReadAll(os.Stdin)
			} else {
				data, err = os.ReadFile(c.Args().First())
			}
			if err != nil {
				return failf("%v", err)
			}
			h, err := openHallWith(c, host.Options{MissingRulesOK: true})
			if err != nil {
				return err
			}
			defer h.Close(contextOf(c))
			digest, err := h.ReplaceDocument(contextOf(c), kind, data, c.String("if-match"), localActor())
			var de *host.DocumentError
			var re *host.RulesError
			switch {
			case errors.As(err, &de), errors.As(err, &re):
				return failf("%s: %s", c.Args().First(), safeMsg(err.Error()))
			case err != nil:
				return failf("%s", safeMsg(err.Error()))
			}
			fmt.Fprintf(c.App.ErrWriter, "hall: %s replaced (%s), recorded in the evidence ledger\n", kind, digest)
			return nil
		},
	}}
}
