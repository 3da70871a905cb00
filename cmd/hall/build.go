package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/fsutil"
	"github.com/wcphall/hall/internal/registry"
	"github.com/wcphall/hall/internal/wasmmod"
)

func init() {
	extraCommands = append(extraCommands, buildCommand(), inspectCommand())
}

// recordFlags set fields of the registry record; each names the field it
// sets so that a problem with the field can point back at the flag.
var recordFlags = map[string]string{
	"worker_id":                            "--worker-id",
	"worker_species_id":                    "--species",
	"capabilities":                         "--capability",
	"risk_tier":                            "--risk-tier",
	"required_controls":                    "--control",
	"currently_implements":                 "--control",
	"allowed_environments":                 "--env",
	"privilege_envelope":                   "--write-dir, --read-dir, --egress, --secret",
	"privilege_envelope.filesystem_writes": "--write-dir",
	"privilege_envelope.filesystem_reads":  "--read-dir",
	"privilege_envelope.network_egress":    "--egress",
	"privilege_envelope.secrets_access":    "--secret",
	"blast_radius":                         "--blast",
	"entrypoints":                          "--entrypoint",
	"owner":                                "--owner",
	"contact":                              "--contact",
}

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build a Go worker package to .wasm with its registry record embedded",
		ArgsUsage: "[PKG_DIR]",
		Description: "Runs `go build` with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared in PKG_DIR (default \".\"),\n" +
			"loads PKG_DIR/registry_record.json (or starts a new one), applies the flags, asks for the rest when\n" +
			"standard input is a terminal (unless --no-input), validates the record, checks that the module\n" +
			"exports every capability's entrypoint, embeds the record (without artifact_hash) as the module's\n" +
			"wcp.record custom section and writes the module to the working directory (-o to choose).\n" +
			"The record file is written with artifact_hash \"sha256:<digest of the module>\" when flags or answers\n" +
			"changed it, when it already has an artifact_hash, with --write-record, or when it is a worker of the\n" +
			"working directory not tracked by git: building a package elsewhere, or a checked-out record, leaves\n" +
			"the source tree as it was.\n" +
			"Example: hall build --no-input --worker-id org.acme.summarizer --species wrk.doc.summarizer \\\n" +
			"           --capability cap.doc.summarize --entrypoint cap.doc.summarize=summarize -o summarizer.wasm",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "module `FILE` to write (default: <package dir name>.wasm in the working directory)"},
			&cli.BoolFlag{Name: "write-record", Usage: "write the record file with artifact_hash even when nothing else changed in it"},
			&cli.StringFlag{Name: "record", Usage: "registry record `FILE` to read and update (default: PKG_DIR/registry_record.json)"},
			&cli.BoolFlag{Name: "no-input", Usage: "never prompt, even on a terminal"},
			&cli.BoolFlag{Name: "no-store", Usage: "do not put the module in the Hall's artifact store (--home)"},
			homeFlag(),
			&cli.BoolFlag{Name: "accessible", EnvVars: []string{"HALL_ACCESSIBLE"}, Usage: "line-by-line prompts (screen readers) instead of the full-screen form"},
			&cli.StringFlag{Name: "worker-id", Usage: "worker_id, e.g. org.acme.summarizer"},
			&cli.StringFlag{Name: "species", Usage: "worker_species_id, e.g. wrk.doc.summarizer"},
			&cli.StringSliceFlag{Name: "capability", Usage: "capabilities (repeatable), e.g. cap.doc.summarize"},
			&cli.StringFlag{Name: "risk-tier", Usage: "risk_tier: low, medium, high or critical"},
			&cli.StringSliceFlag{Name: "control", Usage: "a control the worker requires and implements (repeatable; sets required_controls and currently_implements)"},
			&cli.StringSliceFlag{Name: "env", Usage: "allowed_environments (repeatable): dev, stage, prod, edge"},
			&cli.StringSliceFlag{Name: "write-dir", Usage: "privilege_envelope.filesystem_writes (repeatable): a directory the worker may write"},
			&cli.StringSliceFlag{Name: "read-dir", Usage: "privilege_envelope.filesystem_reads (repeatable): a directory the worker may read"},
			&cli.StringSliceFlag{Name: "egress", Usage: "privilege_envelope.network_egress (repeatable): host[:port] the worker may reach, or none"},
			&cli.StringSliceFlag{Name: "secret", Usage: "privilege_envelope.secrets_access (repeatable): a secret NAME the worker may ask for"},
			&cli.StringFlag{Name: "blast", Usage: "blast_radius, e.g. data=1,network=0,financial=0,time=1,reversibility=reversible"},
			&cli.StringSliceFlag{Name: "entrypoint", Usage: "entrypoints (repeatable): cap=export, the export serving a capability (default export: run)"},
			&cli.StringFlag{Name: "owner", Usage: "owner, e.g. org.acme"},
			&cli.StringFlag{Name: "contact", Usage: "contact, e.g. you@acme.com"},
		},
		Action: buildAction,
	}
}

func buildAction(c *cli.Context) error {
	if c.NArg() > 1 {
		return failf("build takes one PKG_DIR")
	}
	pkgDir := "."
	if c.NArg() == 1 {
		pkgDir = c.Args().First()
	}
	absPkg, err := filepath.Abs(pkgDir)
	if err != nil {
		return failf("%v", err)
	}
	if st, err := os.Stat(absPkg); err != nil || !st.IsDir() {
		return failf("%s is not a directory", pkgDir)
	}
	// Like `go build`, the module goes to the working directory: building
	// a package elsewhere (hall build plugins/summarizer) leaves its source
	// tree as it was.
	out := c.String("output")
	if out == "" {
		out = filepath.Base(absPkg) + ".wasm"
	}
	recPath := c.String("record")
	if recPath == "" {
		recPath = filepath.Join(pkgDir, "registry_record.json")
	}

	rec, err := loadRecord(recPath)
	if err != nil {
		return err
	}
	hadHash := rec.ArtifactHash != ""
	before := recordWithoutHash(rec)
	if err := applyRecordFlags(c, rec); err != nil {
		return err
	}
	if !c.Bool("no-input") && isTerminal(c.App.Reader) {
		if err := runWizard(c, rec); err != nil {
			return err
		}
	}
	rec.ArtifactHash = ""
	embedded, err := checkRecord(recPath, rec)
	if err != nil {
		return err
	}

	done := progress(c, "building "+absPkg+" (go build for wasip1; a first build compiles the Go runtime)")
	module, err := goBuild(c, absPkg, out)
	done()
	if err != nil {
		return err
	}
	info, err := wasmmod.Inspect(module)
	if err != nil {
		return failf("go build wrote an unreadable module: %v", err)
	}
	var missing []string
	for _, cp := range rec.Capabilities {
		if export := rec.Entrypoint(cp); !info.HasExport(export, wasmmod.KindFunc) {
			missing = append(missing, fmt.Sprintf("hall: %s: entrypoints.%s: the module exports no function %q to serve %s (exports: %s); add `//go:wasmexport %s`, or map the capability with --entrypoint %s=EXPORT",
				recPath, cp, export, cp, funcExports(info), export, cp))
		}
	}
	if len(missing) > 0 {
		return cli.Exit(strings.Join(missing, "\n"), exitError)
	}
	module, err = wasmmod.SetCustomSection(module, host.RecordSection, embedded)
	if err != nil {
		return failf("embedding the record: %v", err)
	}
	if err := fsutil.WriteFileAtomic(out, module, 0o644); err != nil {
		return failf("%v", err)
	}
	sum := sha256.Sum256(module)
	rec.ArtifactHash = "sha256:" + hex.EncodeToString(sum[:])
	// A record file is source: it is rewritten when asked (flags, answers,
	// --write-record), when it already keeps an artifact_hash that would
	// otherwise go stale, or when it is the working directory's own worker
	// and not tracked by git (a new worker: hall new, then hall build).
	// Building a package elsewhere (hall build $HALL_SRC/plugins/summarizer)
	// or a checked-out record leaves the source tree as it was.
	own := !gitTracked(recPath) && withinWorkingDir(absPkg)
	writeRecord := own || hadHash || c.Bool("write-record") || recordWithoutHash(rec) != before
	if writeRecord {
		pretty, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return failf("encoding the record: %v", err)
		}
		if err := fsutil.WriteFileAtomic(recPath, append(pretty, '\n'), 0o644); err != nil {
			return failf("%v", err)
		}
	}

	// The module also goes into the artifact store, so that the record alone
	// enrolls it (POST /enroll to a `hall serve` sharing this state
	// directory, as in the seed's quick start).
	stored := ""
	if !c.Bool("no-store") {
		store, err := host.OpenLocalArtifacts(c.String("home"))
		if err == nil {
			_, err = store.Put(contextOf(c), module)
		}
		if err != nil {
			return failf("storing the module in the artifact store: %v (or pass --no-store)", err)
		}
		stored = host.ArtifactPath(store, wcp.Digest(sum))
	}

	w := c.App.Writer
	fmt.Fprintf(w, "built %s (%s, %d bytes)\n", out, rec.ArtifactHash, len(module))
	if v := goToolchain(c); v != "" {
		fmt.Fprintf(w, "  toolchain: %s (reproducible: the same source and Go release give this digest anywhere)\n", v)
	}
	if stored != "" {
		fmt.Fprintf(w, "  stored:   %s\n", stored)
	}
	fmt.Fprintf(w, "  worker:   %s (%s), risk tier %s\n", rec.WorkerID, rec.WorkerSpeciesID, rec.RiskTier)
	if writeRecord {
		fmt.Fprintf(w, "  record:   %s (written with artifact_hash; embedded as %s)\n", recPath, host.RecordSection)
	} else {
		fmt.Fprintf(w, "  record:   %s (read, left unchanged; embedded as %s)\n", recPath, host.RecordSection)
	}
	for _, cp := range rec.Capabilities {
		fmt.Fprintf(w, "  serves:   %s -> export %s\n", cp, rec.Entrypoint(cp))
	}
	for _, warn := range envelopeWarnings(rec, info) {
		fmt.Fprintln(c.App.ErrWriter, "hall: warning: "+warn)
	}
	return nil
}

// gitTracked reports whether path is a file git tracks (false when git or
// a repository is not there).
func gitTracked(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	cmd := exec.Command("git", "-C", filepath.Dir(abs), "ls-files", "--error-unmatch", "--", filepath.Base(abs))
	return cmd.Run() == nil
}

// withinWorkingDir reports whether dir is the working directory or below it.
func withinWorkingDir(dir string) bool {
	wd, err := os.Getwd()
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(wd, dir)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// recordWithoutHash is the record's JSON without artifact_hash, to tell
// whether flags or answers changed it.
func recordWithoutHash(rec *wcp.Record) string {
	cp := *rec
	cp.ArtifactHash = ""
	b, _ := json.Marshal(&cp)
	return string(b)
}

// loadRecord reads the record file, or starts a new record when there is
// none. It is not validated here: flags and prompts may complete it.
func loadRecord(path string) (*wcp.Record, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &wcp.Record{RiskTier: "low"}, nil
	}
	if err != nil {
		return nil, failf("%v", err)
	}
	// A misspelt member (risk_teir) would be dropped by the decoder and the
	// field left at its default: refused, naming the closest known one.
	if unknown := registry.UnknownFields(data); len(unknown) > 0 {
		return nil, recordProblems(path, &registry.RecordError{Problems: unknown})
	}
	var rec wcp.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		// The schema's messages name the field; fall back to the decoder's.
		if _, verr := registry.Validate(data); verr != nil {
			return nil, recordProblems(path, verr)
		}
		return nil, failf("%s: %v", path, err)
	}
	return &rec, nil
}

// checkRecord validates the record as it will be embedded (no
// artifact_hash) and returns that embedded form.
func checkRecord(path string, rec *wcp.Record) ([]byte, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, failf("encoding the record: %v", err)
	}
	// An unset id or list is missing, not empty: drop it so that the
	// schema says "is required" rather than "minLength".
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, failf("encoding the record: %v", err)
	}
	for _, k := range []string{"worker_id", "worker_species_id", "capabilities"} {
		if v := string(m[k]); v == `""` || v == "null" {
			delete(m, k)
			data = nil
		}
	}
	if data == nil {
		if data, err = json.Marshal(m); err != nil {
			return nil, failf("encoding the record: %v", err)
		}
	}
	if _, err := registry.Validate(data); err != nil {
		return nil, recordProblems(path, err)
	}
	return data, nil
}

// recordProblems is one line per problem, naming the file, the field and,
// when a flag sets the field, the flag.
func recordProblems(path string, err error) error {
	var re *registry.RecordError
	if !errors.As(err, &re) {
		return failf("%s: %v", path, err)
	}
	lines := make([]string, len(re.Problems))
	for i, p := range re.Problems {
		lines[i] = "hall: " + path + ": " + p.String()
		if flag := flagOf(p.Field); flag != "" {
			lines[i] += " (set with " + flag + ")"
		}
	}
	return cli.Exit(strings.Join(lines, "\n"), exitError)
}

// flagOf returns the flags that set field ("privilege_envelope.secrets_access[0]"
// → "--secret"), trying the field and then each enclosing member.
func flagOf(field string) string {
	f, _, _ := strings.Cut(field, "[")
	for f != "" {
		if flag := recordFlags[f]; flag != "" {
			return flag
		}
		i := strings.LastIndex(f, ".")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return ""
}

// applyRecordFlags sets the fields the flags name; a flag given replaces
// the whole field (a repeatable flag gives the whole list).
func applyRecordFlags(c *cli.Context, rec *wcp.Record) error {
	if c.IsSet("worker-id") {
		rec.WorkerID = c.String("worker-id")
	}
	if c.IsSet("species") {
		rec.WorkerSpeciesID = c.String("species")
	}
	if c.IsSet("capability") {
		rec.Capabilities = c.StringSlice("capability")
	}
	if c.IsSet("risk-tier") {
		rec.RiskTier = c.String("risk-tier")
	}
	if c.IsSet("control") {
		rec.RequiredControls = c.StringSlice("control")
		rec.CurrentlyImplements = c.StringSlice("control")
	}
	if c.IsSet("env") {
		rec.AllowedEnvironments = c.StringSlice("env")
	}
	if c.IsSet("owner") {
		rec.Owner = c.String("owner")
	}
	if c.IsSet("contact") {
		rec.Contact = c.String("contact")
	}
	env := func() *wcp.PrivilegeEnvelope {
		if rec.PrivilegeEnvelope == nil {
			rec.PrivilegeEnvelope = &wcp.PrivilegeEnvelope{NetworkEgress: wcp.NetworkEgress{Mode: "none"}}
		}
		return rec.PrivilegeEnvelope
	}
	for _, f := range []struct {
		flag string
		dst  func() *[]string
	}{
		{"write-dir", func() *[]string { return &env().FilesystemWrites }},
		{"read-dir", func() *[]string { return &env().FilesystemReads }},
	} {
		if c.IsSet(f.flag) {
			dirs, err := absDirs(c.StringSlice(f.flag))
			if err != nil {
				return failf("--%s: %v", f.flag, err)
			}
			*f.dst() = dirs
		}
	}
	if c.IsSet("secret") {
		env().SecretsAccess = c.StringSlice("secret")
	}
	if c.IsSet("egress") {
		env().NetworkEgress = parseEgress(c.StringSlice("egress"))
	}
	if c.IsSet("blast") {
		if rec.BlastRadius == nil {
			rec.BlastRadius = &wcp.BlastRadius{}
		}
		if err := parseBlast(c.String("blast"), rec.BlastRadius); err != nil {
			return failf("--blast: %v", err)
		}
	}
	if c.IsSet("entrypoint") {
		for _, kv := range c.StringSlice("entrypoint") {
			cp, export, ok := strings.Cut(kv, "=")
			if !ok || cp == "" || export == "" {
				return failf("--entrypoint %q: entrypoints: want CAPABILITY=EXPORT, e.g. cap.doc.summarize=summarize", kv)
			}
			if rec.Entrypoints == nil {
				rec.Entrypoints = map[string]string{}
			}
			rec.Entrypoints[cp] = export
		}
	}
	return nil
}

// absDirs makes relative directories absolute (relative to the working
// directory): the sandbox mounts each at the same absolute path.
func absDirs(dirs []string) ([]string, error) {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			a, err := filepath.Abs(d)
			if err != nil {
				return nil, err
			}
			d = a
		}
		out = append(out, d)
	}
	return out, nil
}

// parseEgress reads "none", "unrestricted" or host[:port] entries.
func parseEgress(vals []string) wcp.NetworkEgress {
	var hosts []string
	for _, v := range vals {
		v = strings.TrimSpace(v)
		switch v {
		case "":
		case "none", "unrestricted":
			if len(vals) == 1 {
				return wcp.NetworkEgress{Mode: v}
			}
			hosts = append(hosts, v) // mixed with hosts: left for Validate to name
		default:
			hosts = append(hosts, v)
		}
	}
	if len(hosts) == 0 {
		return wcp.NetworkEgress{Mode: "none"}
	}
	return wcp.NetworkEgress{Hosts: hosts}
}

// parseBlast applies "key=value,..." to br; keys not given keep their value.
func parseBlast(s string, br *wcp.BlastRadius) error {
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok {
			return fmt.Errorf("blast_radius: %q is not key=value (keys: data, network, financial, time, reversibility)", kv)
		}
		var dst *int
		switch k {
		case "data":
			dst = &br.Data
		case "network":
			dst = &br.Network
		case "financial":
			dst = &br.Financial
		case "time":
			dst = &br.Time
		case "reversibility":
			br.Reversibility = v
			continue
		default:
			return fmt.Errorf("blast_radius: unknown dimension %q (keys: data, network, financial, time, reversibility)", k)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("blast_radius.%s: %q is not an integer 0-5", k, v)
		}
		*dst = n
	}
	return nil
}

// goBuild compiles the package for wasip1 as a reactor and returns the
// module's bytes. The compiler's messages go to stderr as they are.
// reproducibleBuildFlags and reproducibleBuildEnv make hall build's module
// a function of the source and the Go toolchain's version only: the same
// package built in another folder, by another user (GOPATH, GOCACHE), gives
// the same bytes, hence the same artifact_hash. -trimpath removes the
// folder and module-cache paths Go would otherwise embed (the newcomer's
// two digests, issue 27); -buildvcs=false keeps a dirty or clean git
// checkout from changing the bytes (the record's digest, not the VCS
// stamp, is what names the build); the variables a user may have set that
// change code generation (GOWASM, GOEXPERIMENT, GOFLAGS) are reset.
// docs/GUIDE.md, "Reproducible builds", documents the set.
var (
	reproducibleBuildFlags = []string{"-buildmode=c-shared", "-trimpath", "-buildvcs=false"}
	reproducibleBuildEnv   = []string{"GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOWASM=", "GOEXPERIMENT=", "GOFLAGS="}
)

// goToolchain is the Go release hall build used (go env GOVERSION), ""
// when it cannot tell.
func goToolchain(c *cli.Context) string {
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	out, err := exec.CommandContext(contextOf(c), goBin, "env", "GOVERSION").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func goBuild(c *cli.Context, absPkg, out string) ([]byte, error) {
	tmpDir, err := os.MkdirTemp("", "hall-build-")
	if err != nil {
		return nil, failf("%v", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, filepath.Base(out))
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.CommandContext(contextOf(c), goBin, append([]string{"build"}, append(reproducibleBuildFlags, "-o", tmp, ".")...)...)
	cmd.Dir = absPkg
	cmd.Env = append(os.Environ(), reproducibleBuildEnv...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimRight(stderr.String(), "\n")
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, failf("running %s build: %v", goBin, err)
		}
		if msg != "" {
			fmt.Fprintln(c.App.ErrWriter, msg)
		}
		return nil, failf("go build (%s go build %s) of %s failed", strings.Join(reproducibleBuildEnv, " "), strings.Join(reproducibleBuildFlags, " "), absPkg)
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		fmt.Fprintln(c.App.ErrWriter, s)
	}
	module, err := os.ReadFile(tmp)
	if err != nil {
		return nil, failf("%v", err)
	}
	return module, nil
}

// envelopeWarnings points at host functions the module imports that its
// privilege envelope makes useless (every call would be refused).
func envelopeWarnings(rec *wcp.Record, info wasmmod.Info) []string {
	env := rec.PrivilegeEnvelope
	if env == nil {
		env = &wcp.PrivilegeEnvelope{}
	}
	var out []string
	if info.HasImport("extism:host/user", "hall_secret") && len(env.SecretsAccess) == 0 {
		out = append(out, "the module calls hall_secret but privilege_envelope.secrets_access is empty: every secret will be refused (add --secret NAME)")
	}
	if info.HasImport("extism:host/user", "hall_http") && env.NetworkEgress.None() {
		out = append(out, "the module calls hall_http but privilege_envelope.network_egress is none: every request will be refused (add --egress host[:port])")
	}
	return out
}

func funcExports(info wasmmod.Info) string {
	if names := info.Functions(); len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return "none"
}

func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}
