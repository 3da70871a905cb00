package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/internal/suggest"
)

// globalFlags may come before the command (`hall --home DIR status`); they
// are moved after it, where the command's own definition parses them.
var globalFlags = []string{"home", "rules", "registry-dir", "config"}

// maxArgs is how many positional arguments each command takes; more are a
// usage error rather than silently ignored.
var maxArgs = map[string]int{
	"route": 0, "run": 1, "enroll": 1, "validate": 2, "version": 0,
	"conformance check": 1, "conformance decide": 1,
	"build": 1, "inspect": 1, "new": 1, "status": 0, "completion": 1,
	"serve": 0, "tokens create": 0, "tokens list": 0, "tokens revoke": 1,
	"receipts": 0, "receipts show": 1, "receipts external": 0, "audit verify": 0, "audit export": 0,
	"keys show": 0, "replay": 1, "record embed": 1, "call": 2,
}

// walkCommands calls fn for every command and subcommand with its path
// ("tokens create").
func walkCommands(cmds []*cli.Command, prefix string, fn func(path string, c *cli.Command)) {
	for _, c := range cmds {
		path := strings.TrimSpace(prefix + " " + c.Name)
		fn(path, c)
		walkCommands(c.Subcommands, path, fn)
	}
}

// refuseExtraArgs wraps a command's action with a check of its number of
// positional arguments.
func refuseExtraArgs(path string, max int, action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() > max {
			extra := c.Args().Slice()[max:]
			if max == 0 {
				return usageErrorf(path, "%s takes no arguments, got %q (options are flags: --name value)", path, strings.Join(extra, " "))
			}
			return usageErrorf(path, "%s takes at most %d argument(s) (%s), got %d; unexpected %q", path, max, strings.TrimSpace(c.Command.ArgsUsage), c.NArg(), strings.Join(extra, " "))
		}
		return action(c)
	}
}

// normalizeArgs applies the CLI's conventions before urfave/cli parses the
// arguments: --version, global flags before the command, and an unknown
// command or subcommand as a usage error with a suggestion (urfave/cli
// would print "No help topic" and exit 3, the status of a failed worker).
func normalizeArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) < 2 || slices.Contains(args, "--generate-bash-completion") {
		return args, nil
	}
	var globals []string
	i := 1
	for ; i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-"; i++ {
		a := args[i]
		switch a {
		case "--version", "-version", "-v", "-V":
			return []string{args[0], "version"}, nil
		case "--help", "-help", "-h":
			return args, nil
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !slices.Contains(globalFlags, name) {
			hint := ""
			if s := suggestOne(name, append(slices.Clone(globalFlags), "version", "help")); s != "" {
				hint = "; did you mean --" + s + "?"
			}
			return nil, usageErrorf("", "unknown flag %s before the command%s (before it: --home, --rules, --registry-dir, --config, --version; other flags go after the command)", a, hint)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, usageErrorf("", "flag --%s needs a value", name)
			}
			i++
			val = args[i]
		}
		globals = append(globals, "--"+name+"="+val)
	}
	if i == len(args) {
		if len(globals) > 0 {
			return nil, usageErrorf("", "no command after %s", strings.Join(globals, " "))
		}
		return args, nil
	}
	out := []string{args[0]}
	cmds := app.Commands
	var cmd *cli.Command
	path := ""
	for ; i < len(args); i++ {
		name := args[i]
		if cmd != nil && (len(cmds) == 0 || strings.HasPrefix(name, "-")) {
			break
		}
		if name == "help" || name == "h" {
			if cmd == nil {
				return args, nil
			}
			break
		}
		next := findCommand(cmds, name)
		if next == nil {
			var names []string
			for _, c := range cmds {
				if !c.Hidden {
					names = append(names, c.Names()...)
				}
			}
			what, help := "command", "hall --help"
			if cmd != nil {
				what, help = "subcommand of hall "+path, "hall "+path+" --help"
			}
			msg := fmt.Sprintf("hall: unknown %s %q", what, name)
			if s := suggestOne(name, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			return nil, cli.Exit(msg+"\nRun '"+help+"' for the list.", exitError)
		}
		cmd, cmds = next, next.Subcommands
		path = strings.TrimSpace(path + " " + next.Name)
		out = append(out, name)
	}
	// A global flag the command does not use (hall --home DIR version)
	// concerns state the command does not touch: it is dropped.
	for _, g := range globals {
		name, _, _ := strings.Cut(strings.TrimPrefix(g, "--"), "=")
		if hasFlag(cmd, name) {
			out = append(out, g)
		}
	}
	return append(out, args[i:]...), nil
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func hasFlag(c *cli.Command, name string) bool {
	for _, f := range c.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// suggestOne returns the candidate closest to s (edit distance at most 2, or
// a prefix of at least 3 characters), or "".
func suggestOne(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		d := suggest.Distance(s, c)
		if len(s) >= 3 && strings.HasPrefix(c, s) && d > 1 {
			d = 1
		}
		if d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// suggestAll returns the candidates within edit distance 3 of s, closest
// first, at most n.
func suggestAll(s string, candidates []string, n int) []string {
	return suggest.Closest(s, candidates, n)
}
