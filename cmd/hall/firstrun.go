package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"
)

// firstEnrollment reports whether `hall enroll` runs in a folder that has
// no rules file yet and no enrolled worker: the first enrollment of a new
// Hall. The enrollment then creates the rules file with an explicit
// dev-only rule for the worker's capabilities (as --add-rule does) and,
// once it has, says so (announceFirstRules; nothing is announced before it
// happens: a refused enrollment creates nothing); a folder that already has rules keeps them as they are (fail-closed:
// a capability no rule routes stays undispatchable).
func firstEnrollment(c *cli.Context) bool {
	rules := c.String("rules")
	if _, err := os.Stat(rules); !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if entries, err := os.ReadDir(c.String("registry-dir")); err == nil && len(entries) > 0 {
		return false
	}
	return true
}

// announceFirstRules says that the first enrollment created the rules file.
func announceFirstRules(c *cli.Context) {
	fmt.Fprintf(c.App.ErrWriter, "hall: created %s with a dev-only rule for this worker: first enrollment here (env dev only; every other request stays denied)\n", c.String("rules"))
}
