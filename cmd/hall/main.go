// Command hall is the Hall's command-line interface: route requests,
// validate rules, run the WCP conformance vectors, enroll and run workers.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1 // bad input, files that do not load, internal failure
	exitDenied = 2 // the Hall denied the request
)

func main() {
	// A command lives for milliseconds and allocates a module's worth of
	// memory while loading it: collecting garbage then costs more than it
	// saves (serve sets it back, see serve.go).
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	// HALL_CPUPROFILE=FILE writes a CPU profile of the command (for
	// diagnosing slow runs: go tool pprof FILE).
	if path := os.Getenv("HALL_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				code := run(os.Args, os.Stdin, os.Stdout, os.Stderr)
				pprof.StopCPUProfile()
				f.Close()
				os.Exit(code)
			}
		}
	}
	os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdin, stdout, stderr)
	err := app.Run(interspersed(app.Commands, args))
	if err == nil {
		return exitOK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := ec.Error(); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintln(stderr, "hall: "+err.Error())
	return exitError
}

// categories group the commands in `hall help`.
var categories = map[string]string{
	"build": "Workers", "inspect": "Workers", "enroll": "Workers", "run": "Workers",
	"route": "Routing", "validate": "Routing", "conformance": "Routing",
	"receipts": "Evidence", "audit": "Evidence", "keys": "Evidence", "replay": "Evidence",
	"serve": "HTTP API", "tokens": "HTTP API",
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:                 "hall",
		Usage:                "govern and run sandboxed WebAssembly workers (WCP)",
		Version:              buildVersion(),
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		HideVersion:          true,
		ExitErrHandler:       func(*cli.Context, error) {}, // run() reports errors
		Commands: append([]*cli.Command{
			routeCommand(),
			runCommand(),
			enrollCommand(),
			validateCommand(),
			conformanceCommand(),
			versionCommand(),
		}, extraCommands...),
	}
	for _, c := range app.Commands {
		c.Category = categories[c.Name]
	}
	return app
}

// extraCommands are registered by the init functions of the files that
// define them (one file per command family).
var extraCommands []*cli.Command

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the Hall's version",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "hall %s\n", buildVersion())
			return nil
		},
	}
}

// failf is an error exit with one message.
func failf(format string, args ...any) error {
	return cli.Exit("hall: "+fmt.Sprintf(format, args...), exitError)
}
