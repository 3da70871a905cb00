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
	"strings"

	extism "github.com/extism/go-sdk"
	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// Exit codes.
const (
	exitOK     = 0
	exitError  = 1 // bad input, usage errors, files that do not load, internal failure
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
	// Guest log_* lines pass Extism's level filter, process-wide and off
	// by default, before they reach a run's logs: the program sets it, the
	// host library never does.
	extism.SetLogLevel(extism.LogLevelInfo)
	app := newApp(stdin, stdout, stderr)
	args, err := normalizeArgs(app, args)
	if err == nil {
		err = app.Run(interspersed(app.Commands, args))
	}
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
	"new": "Workers", "build": "Workers", "inspect": "Workers", "enroll": "Workers", "run": "Workers",
	"record": "Workers", "call": "Workers",
	"route": "Routing", "validate": "Routing", "conformance": "Routing",
	"receipts": "Evidence", "audit": "Evidence", "keys": "Evidence", "replay": "Evidence",
	"serve": "HTTP API", "tokens": "HTTP API",
	"status": "Hall", "version": "Hall", "completion": "Hall",
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
		HideVersion:          true,                         // --version is handled by normalizeArgs
		ExitErrHandler:       func(*cli.Context, error) {}, // run() reports errors
		OnUsageError:         usageError,
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
		if cat, ok := categories[c.Name]; ok {
			c.Category = cat
		}
	}
	walkCommands(app.Commands, "", func(path string, c *cli.Command) {
		c.OnUsageError = usageError
		if c.Action != nil {
			c.Action = requireFlags(path, c)
		}
		if max, ok := maxArgs[path]; ok && c.Action != nil {
			c.Action = refuseExtraArgs(path, max, c.Action)
		}
		if readCommands[path] && c.Action != nil {
			c.Action = requireHall(path, c.Action)
		}
	})
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
		Name:      "version",
		Usage:     "print the Hall's version (also: hall --version)",
		ArgsUsage: " ",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print {version, go, module} as JSON"}},
		Action: func(c *cli.Context) error {
			if c.Bool("json") {
				out := map[string]any{"version": buildVersion()}
				if bi, ok := debug.ReadBuildInfo(); ok {
					out["go"], out["module"] = bi.GoVersion, bi.Main.Path
				}
				return printJSON(c, out)
			}
			fmt.Fprintf(c.App.Writer, "hall %s\n", buildVersion())
			return nil
		},
	}
}

// failf is an error exit with one message.
func failf(format string, args ...any) error {
	return cli.Exit("hall: "+fmt.Sprintf(format, args...), exitError)
}

// usageErrorf is a usage error: one message and where to read the usage,
// on standard error only, exit status 1.
func usageErrorf(cmd, format string, args ...any) error {
	help := "hall --help"
	if cmd != "" {
		help = "hall " + cmd + " --help"
	}
	return cli.Exit(fmt.Sprintf("hall: %s\nRun '%s' for usage.", fmt.Sprintf(format, args...), help), exitError)
}

// requireFlags takes c's required flags out of urfave/cli's hands, which
// prints the whole help on standard output for a missing one, and checks
// them before c's action instead: one line on stderr naming the flag.
func requireFlags(path string, c *cli.Command) cli.ActionFunc {
	var required []string
	for _, f := range c.Flags {
		if sf, ok := f.(*cli.StringFlag); ok && sf.Required {
			sf.Required = false
			required = append(required, sf.Name)
		}
	}
	action := c.Action
	if len(required) == 0 {
		return action
	}
	return func(ctx *cli.Context) error {
		for _, name := range required {
			if !ctx.IsSet(name) {
				return usageErrorf(path, "--%s is required", name)
			}
		}
		return action(ctx)
	}
}

// usageError is every command's OnUsageError: urfave/cli would print the
// whole help on standard output.
func usageError(c *cli.Context, err error, _ bool) error {
	name := ""
	if c != nil && c.Command != nil && c.Command.Name != "" && c.Command.Name != "hall" {
		name = strings.TrimPrefix(c.Command.HelpName, "hall ")
	}
	msg := strings.Replace(err.Error(), "flag provided but not defined: -", "unknown flag --", 1)
	msg = strings.Replace(msg, "flag needs an argument: -", "flag needs a value: --", 1)
	if c != nil && c.Command != nil {
		msg += flagSuggestion(err.Error(), c.Command.Flags)
	}
	return usageErrorf(name, "%s", msg)
}
