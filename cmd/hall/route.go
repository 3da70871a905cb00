package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/pyval"
	"github.com/wcphall/hall/internal/registry"
)

// homeFlag is the state directory: artifacts, compilation cache, ledger,
// keys, tokens.
func homeFlag() cli.Flag {
	return &cli.StringFlag{Name: "home", EnvVars: []string{"HALL_HOME"}, Value: ".hall", Usage: "state `DIR` (artifacts, ledger, keys, tokens)"}
}

// hallFlags locate the Hall's files; every command that opens a Hall has them.
func hallFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "rules", Value: "rules.json", Usage: "routing rules `FILE`"},
		&cli.StringFlag{Name: "registry-dir", Value: "enrolled", Usage: "enrolled worker records `DIR`"},
		&cli.StringFlag{Name: "config", Usage: "Hall configuration `FILE` (default: hall.json if present, else the strict defaults)"},
		homeFlag(),
		keyFlag(),
		databaseFlag(),
	}
}

// requestFlags build a RouteInput; route and run share them.
func requestFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "capability", Aliases: []string{"c"}, Usage: "capability `ID` to route, e.g. cap.doc.summarize"},
		&cli.StringFlag{Name: "env", Value: "dev", Usage: "environment: dev, stage, prod or edge"},
		&cli.StringFlag{Name: "data-label", Value: "INTERNAL", Usage: "PUBLIC, INTERNAL or RESTRICTED"},
		&cli.StringFlag{Name: "tenant-risk", Value: "low", Usage: "low, medium or high"},
		&cli.StringFlag{Name: "qos", Value: "P2", Usage: "QoS class P0..P3"},
		&cli.StringFlag{Name: "tenant", EnvVars: []string{"HALL_TENANT"}, Usage: "tenant `ID`, e.g. org.acme"},
		&cli.StringFlag{Name: "correlation-id", Usage: "correlation `ID` (default: a new UUID)"},
		&cli.BoolFlag{Name: "dry-run", Usage: "decide but mark the decision as a dry run (nothing is dispatched)"},
		&cli.StringFlag{Name: "request", Usage: "the request payload as a JSON object"},
		&cli.StringFlag{Name: "input", Usage: "a whole RouteInput JSON `FILE` ('-' for stdin); flags given explicitly override its fields"},
		&cli.BoolFlag{Name: "json", Usage: "print the decision as JSON"},
	}
}

func routeCommand() *cli.Command {
	return &cli.Command{
		Name:      "route",
		Usage:     "decide a request: which worker would serve it, or why it is denied",
		ArgsUsage: " ",
		Flags:     append(requestFlags(), hallFlags()...),
		Description: "Exit status: 0 allowed, 2 denied (the deny code is printed), 1 bad input or files.\n" +
			"Example: hall route --capability cap.doc.summarize --tenant org.acme",
		Action: func(c *cli.Context) error {
			in, err := routeInput(c)
			if err != nil {
				return err
			}
			h, err := openHall(c)
			if err != nil {
				return err
			}
			defer h.Close(contextOf(c))
			dec, err := h.Route(contextOf(c), in)
			if err != nil {
				fmt.Fprintln(c.App.ErrWriter, "hall: warning: "+err.Error())
			}
			return printDecision(c, &dec)
		},
	}
}

// openHall opens the Hall the flags point at and reports skipped records
// and warnings on stderr.
func openHall(c *cli.Context) (*host.Hall, error) {
	return openHallWith(c, host.Options{})
}

// openHallWith is openHall with extra options.
func openHallWith(c *cli.Context, extra host.Options) (*host.Hall, error) {
	if databaseURL(c) != "" && extra.Stores == nil {
		st, err := postgresStores(c, keyOptions(c))
		if err != nil {
			return nil, err
		}
		extra.Stores = st
		// A new shared database holds no rules yet (PUT /admin/rules or
		// hall rules set stores them): every request is denied until then.
		extra.MissingRulesOK = true
	}
	h, err := host.Open(contextOf(c), host.Options{
		Stores:         extra.Stores,
		MissingRulesOK: extra.MissingRulesOK,
		Logger:         extra.Logger,
		Rules:          c.String("rules"),
		RegistryDir:    c.String("registry-dir"),
		ConfigFile:     c.String("config"),
		Home:           c.String("home"),
		Pool:           -1, // one-shot process: no background instances
		Compiler:       extra.Compiler,
		MemoryBudget:   extra.MemoryBudget,
		MaxConcurrent:  extra.MaxConcurrent,
		TenantShare:    extra.TenantShare,
		ShutdownGrace:  extra.ShutdownGrace,
		TracerProvider: extra.TracerProvider,
		KeyFile:        keyFile(c),
		KeyFD:          keyFD(c),
	})
	if err != nil {
		return nil, cli.Exit(prefixLines("hall: ", err.Error()), exitError)
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata["hall"] = h // for capabilityHint
	if extra.Logger != nil {
		// hall serve: load problems are records of its one log format.
		if p := h.Problems(); p != nil {
			for _, e := range unjoin(p) {
				extra.Logger.Warn("hall: skipped record", "error", e.Error())
			}
		}
		for _, w := range h.Warnings() {
			extra.Logger.Warn("hall: warning", "warning", w)
		}
		return h, nil
	}
	if p := h.Problems(); p != nil {
		var lines []string
		for _, e := range unjoin(p) {
			var re *registry.RecordError
			if errors.As(e, &re) {
				lines = append(lines, prefixLines("hall: skipped record: ", re.Error()))
			} else {
				lines = append(lines, "hall: skipped record: "+e.Error())
			}
		}
		fmt.Fprintln(c.App.ErrWriter, strings.Join(lines, "\n"))
	}
	for _, w := range h.Warnings() {
		fmt.Fprintln(c.App.ErrWriter, "hall: warning: "+w)
	}
	return h, nil
}

func contextOf(c *cli.Context) context.Context {
	if c.Context != nil {
		return c.Context
	}
	return context.Background()
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func prefixLines(prefix, s string) string {
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// routeInput builds and validates the RouteInput from --input and flags.
func routeInput(c *cli.Context) (*wcp.RouteInput, error) {
	in, _, err := routeInputDrawn(c)
	return in, err
}

// routeInputDrawn is routeInput, also reporting whether the correlation id
// was drawn here (neither --correlation-id nor --input named one).
func routeInputDrawn(c *cli.Context) (*wcp.RouteInput, bool, error) {
	obj := map[string]any{}
	drawn := false
	if path := c.String("input"); path != "" {
		data, err := readFileOrStdin(c, path)
		if err != nil {
			return nil, false, failf("--input: %v", err)
		}
		v, err := pyval.Decode(data)
		if err != nil {
			return nil, false, failf("--input %s: not valid JSON: %v", path, err)
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false, failf("--input %s: must be a JSON object (a RouteInput)", path)
		}
		obj = m
	}
	set := func(flag, field string) {
		if _, present := obj[field]; !present || c.IsSet(flag) {
			obj[field] = c.String(flag)
		}
	}
	if c.IsSet("capability") || obj["capability_id"] == nil {
		obj["capability_id"] = c.String("capability")
	}
	if obj["capability_id"] == "" {
		if c.Command.Name == "run" {
			return nil, false, usageErrorf("run", "run needs the CAPABILITY to run, e.g. hall run cap.doc.summarize < input")
		}
		return nil, false, usageErrorf(c.Command.Name, "--capability is required, e.g. --capability cap.doc.summarize")
	}
	set("env", "env")
	set("data-label", "data_label")
	set("tenant-risk", "tenant_risk")
	set("qos", "qos_class")
	if c.IsSet("tenant") || obj["tenant_id"] == nil {
		tenant, assumed, err := cliTenant(c)
		if err != nil {
			return nil, false, err
		}
		if assumed != "" {
			fmt.Fprintln(c.App.ErrWriter, "hall: "+assumed)
		}
		obj["tenant_id"] = tenant
	}
	if c.IsSet("correlation-id") {
		obj["correlation_id"] = c.String("correlation-id")
	} else if _, present := obj["correlation_id"]; !present {
		obj["correlation_id"] = uuid.NewString()
		drawn = true
	}
	if c.IsSet("dry-run") {
		obj["dry_run"] = c.Bool("dry-run")
	}
	if c.IsSet("request") {
		v, err := pyval.Decode([]byte(c.String("request")))
		if err != nil {
			return nil, false, failf("--request: not valid JSON: %v", err)
		}
		obj["request"] = v
	}
	in, err := wcp.RouteInputFromMap(obj)
	if err != nil {
		var ie *wcp.InputError
		if errors.As(err, &ie) {
			lines := make([]string, len(ie.Problems))
			for i, p := range ie.Problems {
				lines[i] = "hall: invalid request: " + p.Field + ": " + p.Message + flagHint(p.Field)
			}
			return nil, false, cli.Exit(strings.Join(lines, "\n"), exitError)
		}
		return nil, false, failf("%v", err)
	}
	return &in, drawn, nil
}

// flagHint names the flag that sets a RouteInput field.
func flagHint(field string) string {
	flag := map[string]string{
		"capability_id": "--capability", "env": "--env", "data_label": "--data-label",
		"tenant_risk": "--tenant-risk", "qos_class": "--qos", "tenant_id": "--tenant",
		"correlation_id": "--correlation-id", "request": "--request", "dry_run": "--dry-run",
	}[field]
	if flag == "" {
		return ""
	}
	return " (set it with " + flag + ")"
}

func readFileOrStdin(c *cli.Context, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(c.App.Reader)
	}
	return os.ReadFile(path)
}

// printDecision writes the decision (JSON or text) and turns a denial into
// exit status 2.
func printDecision(c *cli.Context, dec *wcp.RouteDecision) error {
	w := c.App.Writer
	if c.Bool("json") {
		b, err := json.MarshalIndent(dec, "", "  ")
		if err != nil {
			return failf("encoding the decision: %v", err)
		}
		fmt.Fprintln(w, string(b))
	} else {
		writeDecisionText(w, dec)
	}
	if dec.Denied {
		capabilityHint(c, dec)
		if heldForHuman(c, dec) {
			return cli.Exit("", exitPending)
		}
		return cli.Exit("", exitDenied)
	}
	return nil
}

// defaultTenant is the tenant of CLI requests that name none: requests
// from this machine's operator (docs/GUIDE.md, "Defaults of the CLI").
const defaultTenant = "local"

// cliTenant is the request's tenant: --tenant, else HALL_TENANT, else
// hall.json's default_tenant, else "local". When it was not given on the
// command line or in the environment, assumed says where it came from.
func cliTenant(c *cli.Context) (tenant, assumed string, err error) {
	if c.IsSet("tenant") {
		return c.String("tenant"), "", nil
	}
	path, explicit := c.String("config"), true
	if path == "" {
		path, explicit = "hall.json", false
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		cfg, perr := host.ParseConfig(data)
		if perr != nil {
			return "", "", failf("%s: %v", path, perr)
		}
		if cfg.DefaultTenant != "" {
			return cfg.DefaultTenant, "", nil
		}
	case explicit || !errors.Is(err, fs.ErrNotExist):
		return "", "", failf("--config: %v", err)
	}
	return defaultTenant, "tenant: " + defaultTenant + " (the CLI's default; name one with --tenant, HALL_TENANT or \"default_tenant\" in hall.json)", nil
}

// capabilityHint follows a DENY_NO_MATCHING_RULE denial with the enrolled
// capabilities closest to the one asked for (the denial stands: nothing
// is routed to a capability that was not asked for).
func capabilityHint(c *cli.Context, d *wcp.RouteDecision) {
	if h, _ := c.App.Metadata["hall"].(*host.Hall); h != nil {
		if hint := h.DenyHint(d); hint != "" {
			fmt.Fprintln(c.App.ErrWriter, "hall: "+hint)
		}
	}
}

func writeDecisionText(w io.Writer, d *wcp.RouteDecision) {
	dry := ""
	if d.DryRun {
		dry = " (dry run)"
	}
	if d.Denied {
		fmt.Fprintf(w, "DENIED %s%s\n  %s\n", d.DenyReason.Code, dry, d.DenyReason.Message)
	} else {
		fmt.Fprintf(w, "ALLOWED %s -> %s%s\n", d.CapabilityID, d.SelectedWorkerSpeciesID, dry)
	}
	fmt.Fprintf(w, "  rule:           %s\n", d.MatchedRuleID)
	fmt.Fprintf(w, "  decision:       %s\n", d.DecisionID)
	fmt.Fprintf(w, "  correlation:    %s\n", d.CorrelationID)
	fmt.Fprintf(w, "  tenant:         %s (%s, %s, %s, %s)\n", d.TenantID, d.Env, d.DataLabel, d.TenantRisk, d.QoSClass)
	if len(d.RequiredControlsEffective) > 0 {
		fmt.Fprintf(w, "  controls:       %s\n", strings.Join(d.RequiredControlsEffective, ", "))
	}
	for _, cw := range d.CandidateWorkersRanked {
		state := "selected"
		if cw.SkipReason != "" {
			state = "skipped: " + string(cw.SkipReason)
		}
		fmt.Fprintf(w, "  candidate:      %s (%s)\n", cw.WorkerSpeciesID, state)
	}
	if d.ArtifactHash != "" {
		fmt.Fprintf(w, "  artifact:       %s\n", d.ArtifactHash)
	}
	fmt.Fprintf(w, "  request hash:   %s\n", d.RequestHash)
	ids := make([]string, len(d.TelemetryEnvelopes))
	for i, e := range d.TelemetryEnvelopes {
		ids[i] = e.EventID
	}
	fmt.Fprintf(w, "  telemetry:      %s\n", strings.Join(ids, ", "))
}

// keyFile is --key when it names a file ("" for the state directory's
// key); keyFD is --key fd:N as an open file.
func keyFile(c *cli.Context) string {
	if k := c.String("key"); !strings.HasPrefix(k, "fd:") {
		return k
	}
	return ""
}

func keyFD(c *cli.Context) *os.File {
	n, ok := strings.CutPrefix(c.String("key"), "fd:")
	if !ok {
		return nil
	}
	fd, err := strconv.Atoi(n)
	if err != nil || fd < 0 {
		return nil
	}
	return os.NewFile(uintptr(fd), "key fd "+n)
}
