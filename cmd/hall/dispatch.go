package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/oci"
	"github.com/wcphall/hall/internal/sandbox"
	"github.com/wcphall/hall/internal/wasmmod"
)

// exitWorkerFailed is the status of `hall run` when the worker ran and
// failed (limit hit, trap, error).
const exitWorkerFailed = 3

func enrollCommand() *cli.Command {
	return &cli.Command{
		Name:      "enroll",
		Usage:     "enroll a worker module: store it by digest, write enrolled/<worker_id>.json, compile it",
		ArgsUsage: "MODULE.wasm | oci://HOST[:PORT]/REPO:TAG | oci://HOST[:PORT]/REPO@sha256:HEX",
		Description: "The registry record comes from --record FILE, else the module's wcp.record custom section,\n" +
			"else registry_record.json beside the module. artifact_hash is set to the module's digest; a record\n" +
			"whose artifact_hash names other bytes is refused.\n" +
			"An oci:// reference is resolved to its manifest digest once; that digest's Wasm artifact and its\n" +
			"cosign signatures are fetched, checked against trust.json, and recorded (docs/SUPPLY-CHAIN.md).\n" +
			"A local module's Sigstore bundle is --bundle FILE, else MODULE.wasm.sigstore.json beside it.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "record", Usage: "registry record `FILE`"},
			&cli.StringFlag{Name: "bundle", Usage: "Sigstore bundle `FILE` of a local module (cosign sign-blob --bundle, hall sign)"},
			&cli.BoolFlag{Name: "plain-http", Usage: "talk HTTP to a registry on loopback (127.0.0.1, ::1, localhost) only"},
			&cli.StringFlag{Name: "docker-config", Usage: "Docker config `FILE` for registry credentials (default: Docker's)"},
			&cli.BoolFlag{Name: "add-rule", Usage: "append a dev-only rule for capabilities no rule routes to the worker"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		}, hallFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return failf("enroll needs exactly one MODULE.wasm")
			}
			path := c.Args().First()
			if oci.IsReference(path) {
				return enrollReference(c, path)
			}
			module, err := readModule(path)
			if err != nil {
				return failf("%v", err)
			}
			first := !c.Bool("add-rule") && firstEnrollment(c)
			req := host.EnrollRequest{Module: module, AddRule: c.Bool("add-rule") || first, Actor: localActor()}
			if req.Signed, err = localSignature(c, path); err != nil {
				return err
			}
			if rp := c.String("record"); rp != "" {
				if req.Record, err = os.ReadFile(rp); err != nil {
					return failf("--record: %v", err)
				}
				req.RecordSource = rp
			} else if !hasRecordSection(module) {
				beside := filepath.Join(filepath.Dir(path), "registry_record.json")
				if b, err := os.ReadFile(beside); err == nil {
					req.Record, req.RecordSource = b, beside
				}
			}
			// The module is untrusted until vetted: it is compiled in a
			// child process with a deadline and a memory limit.
			h, err := openHallWith(c, host.Options{MissingRulesOK: true, Compiler: selfCompiler()})
			if err != nil {
				return err
			}
			defer h.Close(contextOf(c))
			done := progress(c, "enrolling "+path+" (validating, storing and compiling the module)")
			res, err := h.Enroll(contextOf(c), req)
			done()
			if err != nil {
				return cli.Exit(prefixLines("hall: enroll refused: ", err.Error()), exitError)
			}
			if first && len(res.RulesAdded) > 0 {
				announceFirstRules(c)
			}
			return printEnrolled(c, res)
		},
	}
}

// printEnrolled prints an enrollment's result.
func printEnrolled(c *cli.Context, res *host.EnrollResult) error {
	if c.Bool("json") {
		return printJSON(c, map[string]any{
			"enrolled": true, "worker_id": res.Record.WorkerID, "worker_species_id": res.Record.WorkerSpeciesID,
			"artifact_hash": res.ArtifactHash.String(), "record_path": res.RecordPath, "module_path": res.ModulePath,
			"record_source": res.RecordSource, "replaced": res.Replaced, "previous_artifact_hash": res.PreviousArtifact,
			"unrouted_capabilities": nonNil(res.Unrouted), "rules_added": nonNil(res.RulesAdded),
			"record_digest": res.RecordDigest.String(), "privilege_envelope": res.Record.Granted(), "config": res.Record.Config,
			"provenance": res.Provenance, "provenance_change_id": res.ProvenanceID,
		})
	}
	w := c.App.Writer
	fmt.Fprintf(w, "enrolled %s (%s)\n", res.Record.WorkerID, res.Record.WorkerSpeciesID)
	fmt.Fprintf(w, "  artifact:  %s\n  module:    %s\n  record:    %s (from %s)\n", res.ArtifactHash, res.ModulePath, res.RecordPath, res.RecordSource)
	for _, cp := range res.Record.Capabilities {
		fmt.Fprintf(w, "  serves:    %s -> export %s\n", cp, res.Record.Entrypoint(cp))
	}
	fmt.Fprintf(w, "  sealed:    %s\n", res.RecordDigest)
	printProvenance(c, res.Provenance)
	printGrant(w, res.Record)
	if res.Replaced {
		fmt.Fprintf(w, "  replaced:  the previous module %s of %s\n", res.PreviousArtifact, res.Record.WorkerID)
	}
	for _, id := range res.RulesAdded {
		fmt.Fprintf(w, "  rule:      added %s (dev only) to %s\n", id, c.String("rules"))
	}
	if res.NoTrustPolicy {
		fmt.Fprintln(c.App.ErrWriter, "hall: note: no trust.json: enrolled without checking who signed the module (docs/SUPPLY-CHAIN.md)")
	}
	for _, cp := range res.Unrouted {
		fmt.Fprintf(c.App.ErrWriter, "hall: warning: no rule in %s routes %s to %s, so it cannot be dispatched (fail-closed); add a rule, or re-run with --add-rule for a dev-only one\n", c.String("rules"), cp, res.Record.WorkerSpeciesID)
	}
	return nil
}

func hasRecordSection(module []byte) bool {
	_, ok, err := wasmmod.CustomSection(module, host.RecordSection)
	return ok && err == nil
}

func runCommand() *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "decide a request and run the selected worker on standard input",
		ArgsUsage: "CAPABILITY < input",
		Description: "The worker's output goes to standard output, a one-line outcome to standard error.\n" +
			"Exit status: 0 ok, 2 denied (nothing ran), 3 the worker failed (limit, trap, error), 4 held for a human\n" +
			"approval (nothing ran; hall approvals), 1 bad input.",
		Flags: append(append(requestFlags(),
			&cli.DurationFlag{Name: "timeout", Usage: "lower the worker's time limit for this run"},
			&cli.BoolFlag{Name: "logs", Usage: "print the worker's captured log, stdout and stderr to standard error"},
			approvalFlag(),
		), append(otelFlags(), hallFlags()...)...),
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return failf("run takes one CAPABILITY (flags go before it)")
			}
			if c.NArg() == 1 {
				if c.IsSet("capability") && c.String("capability") != c.Args().First() {
					return failf("the capability is given twice (%s and --capability %s)", c.Args().First(), c.String("capability"))
				}
				if err := c.Set("capability", c.Args().First()); err != nil {
					return failf("%v", err)
				}
			}
			if err := checkApprovalFlag(c); err != nil {
				return err
			}
			in, drawn, err := routeInputDrawn(c)
			if err != nil {
				return err
			}
			// Traced as hall serve is (otel.go); the spans are flushed
			// before the process exits, whatever the exit status.
			tp, stopTracing, err := tracerProvider(c)
			if err != nil {
				return err
			}
			ctx := contextOf(c)
			if tp != nil {
				defer shutdownTracing(slog.New(slog.NewTextHandler(c.App.ErrWriter, nil)), stopTracing)
				ctx = traceparentFromEnv(ctx)
			}
			h, err := openHallWith(c, host.Options{TracerProvider: tp})
			if err != nil {
				return err
			}
			defer h.Close(contextOf(c))
			if id := c.String("approval"); id != "" && drawn {
				// The approval id is the thing to resume: the held
				// request's correlation id, not a fresh one (issue 27).
				if corr := h.ResumeCorrelation(contextOf(c), id, in.TenantID); corr != "" {
					in.CorrelationID = corr
				}
			}
			payload, err := readAllLimited(c, h.Config().MaxInputBytes())
			if err != nil {
				return err
			}
			res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: payload, Timeout: c.Duration("timeout"), ApprovalID: c.String("approval")})
			if err != nil {
				return failf("%v", err)
			}
			return printRun(c, res)
		},
	}
}

// readAllLimited reads standard input, at most one byte over limit (so
// that the sandbox reports LIMIT_INPUT without the CLI buffering more).
func readAllLimited(c *cli.Context, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(c.App.Reader, limit+1))
	if err != nil {
		return nil, failf("reading standard input: %v", err)
	}
	return b, nil
}

func printRun(c *cli.Context, res *host.RunResult) error {
	d := &res.Decision
	if c.Bool("json") {
		out := map[string]any{"decision": d, "ran": res.Ran, "outcome": res.Outcome, "worker_id": res.WorkerID, "receipt_id": res.ReceiptID}
		if res.Ran {
			out["duration_ms"] = float64(res.Duration.Microseconds()) / 1000
			if utf8.Valid(res.Output) {
				out["output"], out["output_encoding"] = string(res.Output), "utf-8"
			} else {
				out["output"], out["output_encoding"] = res.Output, "base64"
			}
			if res.Err != nil {
				out["error"] = res.Err.Error()
			}
			out["logs"] = string(res.Logs)
		}
		if err := printJSON(c, out); err != nil {
			return err
		}
	} else if res.Ran {
		c.App.Writer.Write(res.Output)
		// On a terminal, or when the outcome line goes to the same file
		// (2>&1), keep it off the output's last line.
		if n := len(res.Output); n > 0 && res.Output[n-1] != '\n' && (isTerminal(c.App.Writer) || sameFile(c.App.Writer, c.App.ErrWriter)) {
			fmt.Fprintln(c.App.Writer)
		}
	}
	ew := c.App.ErrWriter
	if c.Bool("logs") && len(res.Logs) > 0 {
		fmt.Fprintf(ew, "hall: worker log (%d bytes):\n%s", len(res.Logs), res.Logs)
		if res.Logs[len(res.Logs)-1] != '\n' {
			fmt.Fprintln(ew)
		}
	}
	switch {
	case d.Denied:
		fmt.Fprintf(ew, "hall: DENIED %s: %s (decision %s, correlation %s)\n", d.DenyReason.Code, d.DenyReason.Message, d.DecisionID, d.CorrelationID)
		capabilityHint(c, d)
		if id := host.PendingApproval(d); id != "" {
			fmt.Fprintf(ew, "hall: hint: once an approver approves it (hall approvals approve %s), resume it with: %s\n", id, resumeCommand(c, id))
			return cli.Exit("", exitPending)
		}
		return cli.Exit("", exitDenied)
	case !res.Ran:
		fmt.Fprintf(ew, "hall: dry run: allowed, %s would run (decision %s, correlation %s)\n", d.SelectedWorkerSpeciesID, d.DecisionID, d.CorrelationID)
		return nil
	case res.Err != nil:
		fmt.Fprintf(ew, "hall: %s %s: %s (%s, decision %s, correlation %s)\n", res.Outcome, res.WorkerID, host.FailureMessage(res.Outcome, res.WorkerID, res.Err), res.Duration.Round(time.Microsecond), d.DecisionID, d.CorrelationID)
		for _, hint := range workerErrorHints(c, res.WorkerID, res.Err) {
			fmt.Fprintln(ew, "hall: hint: "+hint)
		}
		if h, _ := c.App.Metadata["hall"].(*host.Hall); h != nil {
			if hint := h.FailureHint(res.Outcome, res.Err); hint != "" {
				fmt.Fprintln(ew, "hall: hint: "+hint)
			}
		}
		return cli.Exit("", exitWorkerFailed)
	}
	fmt.Fprintf(ew, "hall: ok %s %s in %s (decision %s, correlation %s, receipt %s)\n", res.WorkerID, res.Export, res.Duration.Round(time.Microsecond), d.DecisionID, d.CorrelationID, res.ReceiptID)
	return nil
}

func printJSON(c *cli.Context, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return failf("encoding JSON: %v", err)
	}
	fmt.Fprintln(c.App.Writer, string(b))
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// localActor names the operator of a CLI enrollment in the evidence
// ledger: the local user ("local:<name>").
func localActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "local:" + u.Username
	}
	return "local:uid-" + strconv.Itoa(os.Getuid())
}

// readModule reads a module to enroll, refusing more than the sandbox
// accepts (hall enroll /dev/zero must not read without limit).
func readModule(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, sandbox.DefaultMaxModuleBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > sandbox.DefaultMaxModuleBytes {
		return nil, fmt.Errorf("%s: larger than %d MiB, the largest module the Hall accepts", path, sandbox.DefaultMaxModuleBytes>>20)
	}
	return b, nil
}

// printGrant shows what enrolling granted, so an operator sees it before
// the first dispatch (the record may come from the module itself).
func printGrant(w io.Writer, rec *wcp.Record) {
	e := rec.Granted()
	line := func(what string, v []string) {
		if len(v) == 0 {
			fmt.Fprintf(w, "  grants:    %s: none\n", what)
			return
		}
		fmt.Fprintf(w, "  grants:    %s: %s\n", what, safe(strings.Join(v, ", ")))
	}
	line("writes", e.FilesystemWrites)
	line("reads", e.FilesystemReads)
	switch {
	case e.NetworkEgress.Mode == "unrestricted":
		fmt.Fprintf(w, "  grants:    network: unrestricted\n")
	default:
		line("network", e.NetworkEgress.Hosts)
	}
	line("secrets", e.SecretsAccess)
	if len(rec.Config) > 0 {
		keys := make([]string, 0, len(rec.Config))
		for k := range rec.Config {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		line("config", keys)
	}
}

// selfCompiler compiles modules in a child process of this binary
// (hall __compile), under a deadline and an address-space limit.
func selfCompiler() sandbox.Compiler {
	exe, err := os.Executable()
	if err != nil {
		return nil // in-process, bounded by the module size cap
	}
	return sandbox.CompileCommand{Path: exe, Args: []string{"__compile"}}
}
