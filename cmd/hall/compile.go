package main

import (
	"errors"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/internal/sandbox"
)

func init() { extraCommands = append(extraCommands, compileCommand()) }

// compileCommand is the hidden child of sandbox.CompileCommand: the hall
// binary re-executed to compile one module (stdin) into a compilation
// cache directory under an address-space limit, off the serving path.
func compileCommand() *cli.Command {
	return &cli.Command{
		Name:      "__compile",
		Hidden:    true,
		Usage:     "compile a module (stdin) into a compilation cache directory (internal)",
		ArgsUsage: "CACHE_DIR",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return errors.New("__compile: want one argument, the cache directory")
			}
			if err := sandbox.CompileChild(os.Stdin, c.Args().First(), 0); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			return nil
		},
	}
}
