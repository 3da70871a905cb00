package main

import (
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// readCommands only read a Hall. Run where there is none, they stop
// before anything is opened: opening a Hall creates its state directory,
// and a newcomer's hall status in the wrong folder left a .hall/ there
// whose empty ledger hall audit verify then "verified" (issue 27).
var readCommands = map[string]bool{
	"status": true, "receipts": true, "receipts show": true, "audit verify": true, "audit export": true,
	"approvals list": true, "approvals show": true, "keys show": true, "tokens list": true,
}

// requireHall runs action only when the state directory (--home,
// HALL_HOME) exists; otherwise it says where a Hall is (the nearest
// folder above the working directory that holds a .hall/) and how to
// point at one, and creates nothing.
//
// hall status also runs in a folder holding a Hall's files (rules.json or
// enrolled/) but no state yet: that is a Hall, not the wrong folder.
func requireHall(path string, action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		home := c.String("home")
		if st, err := os.Stat(home); err == nil && st.IsDir() {
			return action(c)
		}
		if path == "status" {
			for _, f := range []string{c.String("rules"), c.String("registry-dir")} {
				if _, err := os.Stat(f); f != "" && err == nil {
					return action(c)
				}
			}
		}
		abs, _ := filepath.Abs(home)
		wd, _ := os.Getwd()
		where := "run from the folder of your Hall"
		if found := hallAbove(wd); found != "" {
			where = "run from " + found + ", which has one"
		}
		return failf("no Hall here: %s does not exist (nothing was created); %s, or set HALL_HOME (or --home) to its state directory. A Hall starts with hall enroll MODULE.wasm.", abs, where)
	}
}

// hallAbove returns the nearest folder above dir holding a .hall state
// directory, or "".
func hallAbove(dir string) string {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		if st, err := os.Stat(filepath.Join(d, ".hall")); err == nil && st.IsDir() {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}
