package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/fsutil"
	"github.com/wcphall/hall/internal/sandbox"
	"github.com/wcphall/hall/internal/wasmmod"
)

func init() { extraCommands = append(extraCommands, recordCommand(), callCommand()) }

// recordCommand embeds a registry record into a module built by any
// toolchain (Rust, JavaScript, C, Zig, WAT…): what hall build does for Go.
func recordCommand() *cli.Command {
	return &cli.Command{
		Name:  "record",
		Usage: "the registry record a module carries (its wcp.record custom section)",
		Subcommands: []*cli.Command{{
			Name:      "embed",
			Usage:     "validate a registry record and write it into any module as its wcp.record section (replacing one it has)",
			ArgsUsage: "MODULE.wasm",
			Description: "For plugins built by any Extism PDK (Rust, JavaScript, C, Zig, Haskell, WAT…): the module then\n" +
				"enrolls with hall enroll MODULE.wasm alone, and hall inspect shows the record. The record is checked\n" +
				"as hall build checks it (schema, ids, every capability's entrypoint exported by the module);\n" +
				"artifact_hash is left out (it names the module's own bytes, which embedding changes).\n" +
				"Example: hall record embed count_vowels.wasm --record count_vowels.json",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "record", Required: true, Usage: "registry record `FILE` (JSON)"},
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "module `FILE` to write (default: MODULE.wasm, in place)"},
			},
			Action: recordEmbedAction,
		}},
	}
}

func recordEmbedAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return failf("record embed needs one MODULE.wasm")
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
	recPath := c.String("record")
	rec, err := loadRecord(recPath)
	if err != nil {
		return err
	}
	rec.ArtifactHash = ""
	embedded, err := checkRecord(recPath, rec)
	if err != nil {
		return err
	}
	var missing []string
	for _, cp := range rec.Capabilities {
		if export := rec.Entrypoint(cp); !info.HasExport(export, wasmmod.KindFunc) {
			missing = append(missing, fmt.Sprintf("hall: %s: entrypoints.%s: %s exports no function %q to serve %s (exports: %s); map the capability to one of them in entrypoints",
				recPath, cp, path, export, cp, funcExports(info)))
		}
	}
	if len(missing) > 0 {
		return cli.Exit(strings.Join(missing, "\n"), exitError)
	}
	out, err := wasmmod.SetCustomSection(module, host.RecordSection, embedded)
	if err != nil {
		return failf("embedding the record: %v", err)
	}
	dst := c.String("output")
	if dst == "" {
		dst = path
	}
	if err := fsutil.WriteFileAtomic(dst, out, 0o644); err != nil {
		return failf("%v", err)
	}
	sum := sha256.Sum256(out)
	fmt.Fprintf(c.App.Writer, "embedded the record of %s (%s) into %s (sha256:%s, %d bytes)\n", rec.WorkerID, rec.WorkerSpeciesID, dst, hex.EncodeToString(sum[:]), len(out))
	for _, cp := range rec.Capabilities {
		fmt.Fprintf(c.App.Writer, "  serves:   %s -> export %s\n", cp, rec.Entrypoint(cp))
	}
	for _, warn := range envelopeWarnings(rec, info) {
		fmt.Fprintln(c.App.ErrWriter, "hall: warning: "+warn)
	}
	return nil
}

// callCommand runs one export of a module ad hoc, as the Extism CLI's
// `extism call` does, in the Hall's sandbox with no grant at all.
//
// It is deliberately outside governance: no rule, no decision, no policy,
// no receipt, no state directory (nothing is opened or created), and
// nothing the module could reach (no files, no network, no secrets, no
// configuration). So it needs none of the evidence a dispatch produces,
// and says so on standard error. It uses the sandbox directly, as a
// development tool of this binary: package host still runs guest code
// only through a Hall.
func callCommand() *cli.Command {
	return &cli.Command{
		Name:      "call",
		Usage:     "run one export of a module ad hoc in the sandbox, with no grants and outside governance (nothing decided or recorded)",
		ArgsUsage: "MODULE.wasm FUNCTION",
		Description: "Like `extism call`: the export's output goes to standard output, a one-line outcome to standard error.\n" +
			"The module gets no files, network, secrets or configuration, and the sandbox's default limits.\n" +
			"Nothing is decided, recorded or created: use hall enroll and hall run for a governed dispatch.\n" +
			"Exit status: 0 ok, 3 the call failed (trap, limit, error), 1 bad input.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "input", Usage: "the call's input `TEXT` (default: empty)"},
			&cli.StringFlag{Name: "input-file", Usage: "read the input from `FILE` ('-' for standard input)"},
			&cli.DurationFlag{Name: "timeout", Usage: "time limit of the call (default: the sandbox's, 10s)"},
			&cli.BoolFlag{Name: "logs", Usage: "print the module's log, stdout and stderr to standard error"},
		},
		Action: callAction,
	}
}

func callAction(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageErrorf("call", "call needs MODULE.wasm and the FUNCTION to call, e.g. hall call count_vowels.wasm count_vowels --input 'hello'")
	}
	path, export := c.Args().Get(0), c.Args().Get(1)
	var input []byte
	switch f := c.String("input-file"); {
	case f != "" && c.IsSet("input"):
		return failf("give --input or --input-file, not both")
	case f == "-":
		b, err := io.ReadAll(c.App.Reader)
		if err != nil {
			return failf("reading standard input: %v", err)
		}
		input = b
	case f != "":
		b, err := os.ReadFile(f)
		if err != nil {
			return failf("--input-file: %v", err)
		}
		input = b
	default:
		input = []byte(c.String("input"))
	}
	module, err := os.ReadFile(path)
	if err != nil {
		return failf("%v", err)
	}
	info, err := wasmmod.Inspect(module)
	if err != nil {
		return failf("%s: not a WebAssembly module: %v", path, err)
	}
	if !info.HasExport(export, wasmmod.KindFunc) {
		msg := fmt.Sprintf("%s exports no function %q", path, export)
		if s := suggestAll(export, info.Functions(), 1); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		}
		return failf("%s (exports: %s)", msg, funcExports(info))
	}
	ctx := contextOf(c)
	eng, err := sandbox.New(ctx, sandbox.Config{})
	if err != nil {
		return failf("sandbox: %v", err)
	}
	defer eng.Close(ctx)
	w, err := eng.Load(ctx, module, sandbox.Spec{Name: path, Pool: -1})
	if err != nil {
		return failf("%s: %v", path, err)
	}
	defer w.Close(ctx)
	fmt.Fprintf(c.App.ErrWriter, "hall: call %s %s outside governance: no rule, no decision, no grants (no files, network, secrets or config), nothing recorded\n", path, export)
	res, err := w.Call(ctx, sandbox.Request{Export: export, Input: input, Timeout: c.Duration("timeout")})
	if res != nil {
		c.App.Writer.Write(res.Output)
		if n := len(res.Output); n > 0 && res.Output[n-1] != '\n' && sameFile(c.App.Writer, c.App.ErrWriter) {
			fmt.Fprintln(c.App.Writer)
		}
		if c.Bool("logs") && len(res.Logs) > 0 {
			fmt.Fprintf(c.App.ErrWriter, "hall: module log (%d bytes):\n%s", len(res.Logs), res.Logs)
			if res.Logs[len(res.Logs)-1] != '\n' {
				fmt.Fprintln(c.App.ErrWriter)
			}
		}
	}
	var d time.Duration
	if res != nil {
		d = res.Duration.Round(time.Microsecond)
	}
	if err != nil {
		var se *sandbox.Error
		if errors.As(err, &se) {
			return cli.Exit(fmt.Sprintf("hall: %s %s: %s (%s)", se.Code, export, se.Message, d), exitWorkerFailed)
		}
		return cli.Exit(fmt.Sprintf("hall: %s: %v (%s)", export, err, d), exitWorkerFailed)
	}
	fmt.Fprintf(c.App.ErrWriter, "hall: ok %s in %s (not recorded)\n", export, d)
	return nil
}
