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
// dev-only rule for the worker's capabilities (as --add-rule does) and says
// so; a folder that already has rules keeps them as they are (fail-closed:
// a capability no rule routes stays undispatchable).
func firstEnrollment(c *cli.Context) bool {
	rules := c.String("rules")
	if _, err := os.Stat(rules); !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	if entries, err := os.ReadDir(c.String("registry-dir")); err == nil && len(entries) > 0 {
		return false
	}
	fmt.Fprintf(c.App.ErrWriter, "hall: %s does not exist: first enrollment here, so it is created with a dev-only rule for this worker (env dev only; every other request stays denied)\n", rules)
	return true
}
