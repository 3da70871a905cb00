package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"text/template"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/fsutil"
	"github.com/wcphall/hall/sdk"
)

func init() { extraCommands = append(extraCommands, newCommand()) }

// hallModule is the module the SDK is published in.
const hallModule = "github.com/wcphall/hall"

func newCommand() *cli.Command {
	return &cli.Command{
		Name:      "new",
		Usage:     "scaffold a Go worker: a handler using the SDK, its registry record and a test",
		ArgsUsage: "NAME",
		Description: "Creates the folder NAME with go.mod, main.go (one capability, served by the export run),\n" +
			"main_test.go (the handler's logic, tested natively), registry_record.json and .gitignore.\n" +
			"Then: hall build NAME (from anywhere), hall enroll NAME.wasm, hall run CAPABILITY < input.\n" +
			"The SDK is copied into the scaffold (third_party/hall/sdk, the SDK this hall was built with, or that of\n" +
			"--sdk DIR, a Hall checkout) and go.mod replaces the module with that folder (a relative path), so the\n" +
			"scaffold builds offline, anywhere it is copied to. Once the module is published: delete third_party/,\n" +
			"drop the replace line and run go get github.com/wcphall/hall/sdk@latest.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "module", Usage: "Go module `PATH` (default: example.com/NAME)"},
			&cli.StringFlag{Name: "worker-id", Usage: "worker_id (default: org.example.NAME)"},
			&cli.StringFlag{Name: "species", Usage: "worker_species_id (default: wrk.example.NAME)"},
			&cli.StringFlag{Name: "capability", Usage: "the capability it serves (default: cap.example.NAME)"},
			&cli.StringFlag{Name: "sdk", EnvVars: []string{"HALL_SRC"}, Usage: "a Hall source `DIR` to copy the SDK from (default: the SDK hall was built with)"},
		},
		Action: newAction,
	}
}

// idSegment turns a folder name into an id segment: lowercase letters,
// digits, '-' and '_', starting with a letter or digit.
func idSegment(name string) string {
	s := strings.ToLower(name)
	s = regexp.MustCompile(`[^a-z0-9_-]+`).ReplaceAllString(s, "-")
	return strings.TrimLeft(s, "-_")
}

func newAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErrorf("new", "new needs the NAME of the worker's folder, e.g. hall new summarizer")
	}
	dir := c.Args().First()
	name := filepath.Base(filepath.Clean(dir))
	seg := idSegment(name)
	if seg == "" {
		return failf("%q: a worker's name needs a letter or digit", name)
	}
	if _, err := os.Stat(dir); err == nil {
		return failf("%s already exists: choose another NAME, or remove it", dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return failf("%v", err)
	}
	d := scaffold{
		Module:     or(c.String("module"), "example.com/"+seg),
		WorkerID:   or(c.String("worker-id"), "org.example."+seg),
		Species:    or(c.String("species"), "wrk.example."+seg),
		Capability: or(c.String("capability"), "cap.example."+seg),
		Name:       name,
		GoVersion:  goLine(),
	}
	for _, id := range []struct {
		kind wcp.IDKind
		v    string
		flag string
	}{{wcp.KindWorker, d.WorkerID, "--worker-id"}, {wcp.KindSpecies, d.Species, "--species"}, {wcp.KindCapability, d.Capability, "--capability"}} {
		if err := wcp.CheckID(id.kind, id.v); err != nil {
			return failf("%s: %v", id.flag, err)
		}
	}
	sdkFiles, how, err := sdkSource(c.String("sdk"))
	if err != nil {
		return err
	}
	d.Require, d.Replace = "v0.0.0", "./"+vendoredSDK

	files := map[string]string{}
	for fname, tmpl := range scaffoldFiles {
		var b bytes.Buffer
		if err := template.Must(template.New(fname).Parse(tmpl)).Execute(&b, d); err != nil {
			return failf("scaffold %s: %v", fname, err)
		}
		files[fname] = b.String()
	}
	for name, src := range sdkFiles {
		files[filepath.ToSlash(filepath.Join(vendoredSDK, "sdk", name))] = src
	}
	names := make([]string, 0, len(files))
	for fname := range files {
		names = append(names, fname)
	}
	sort.Strings(names)
	for _, fname := range names {
		path := filepath.Join(dir, filepath.FromSlash(fname))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return failf("%v", err)
		}
		if err := fsutil.WriteFileAtomic(path, []byte(files[fname]), 0o644); err != nil {
			return failf("%v", err)
		}
	}
	w := c.App.Writer
	fmt.Fprintf(w, "created %s: a worker serving %s (%s, %s)\n", dir, d.Capability, d.WorkerID, d.Species)
	fmt.Fprintf(w, "  %s/main.go              the handler (edit handle)\n", dir)
	fmt.Fprintf(w, "  %s/main_test.go         its test: cd %s && go test ./...\n", dir, dir)
	fmt.Fprintf(w, "  %s/registry_record.json what it may touch (nothing yet)\n", dir)
	fmt.Fprintf(w, "  %s/%s/        the Hall SDK, copied (go.mod replaces the module with it)\n", dir, vendoredSDK)
	fmt.Fprintf(w, "next:\n  hall build %s\n  hall enroll %s.wasm\n  echo 'some words to count' | hall run %s\n", dir, name, d.Capability)
	fmt.Fprintf(c.App.ErrWriter, "hall: SDK: %s\n", how)
	return nil
}

func or(s, def string) string {
	if s != "" {
		return s
	}
	return def
}

// goLine is the go directive of the scaffold: the version of the
// toolchain hall was built with, which is at least the SDK module's own
// (a lower one makes go build ask for go mod tidy).
func goLine() string {
	v := strings.TrimPrefix(runtime.Version(), "go")
	if i := strings.IndexAny(v, " -+"); i >= 0 {
		v = v[:i]
	}
	if strings.Count(v, ".") == 1 && !strings.ContainsAny(v, "abcdefghijklmnopqrstuvwxyz") {
		v += ".0"
	}
	if v == "" || strings.ContainsAny(v, "abcdefghijklmnopqrstuvwxyz") {
		return "1.26.0"
	}
	return v
}

// vendoredSDK is where a scaffold keeps its copy of the Hall module's SDK
// (a module of its own, github.com/wcphall/hall, holding only sdk/), relative
// to the scaffold's root. A relative replace keeps the scaffold buildable
// wherever it is copied and its build reproducible: no path of the machine
// that ran hall new is in it.
const vendoredSDK = "third_party/hall"

// sdkSource returns the SDK's Go files to copy into a scaffold (name →
// content, tests left out) and a sentence saying where they come from: the
// sdk/ folder of the Hall source given (--sdk, HALL_SRC), else the SDK
// this binary was built with.
func sdkSource(given string) (files map[string]string, how string, err error) {
	files = map[string]string{}
	if given != "" {
		abs, err := filepath.Abs(given)
		if err != nil {
			return nil, "", failf("--sdk: %v", err)
		}
		if !isHallSource(abs) {
			return nil, "", failf("--sdk %s: not a Hall source tree (no go.mod of %s with sdk/ beside it)", given, hallModule)
		}
		if err := collectSDK(os.DirFS(filepath.Join(abs, "sdk")), files); err != nil {
			return nil, "", failf("--sdk %s: %v", given, err)
		}
		return files, "copied from the Hall source at " + abs + " (--sdk / HALL_SRC) into " + vendoredSDK, nil
	}
	if err := collectSDK(sdk.Source(), files); err != nil {
		return nil, "", failf("the SDK built into hall: %v", err)
	}
	version := "a development build"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		version = bi.Main.Version
	}
	return files, "the SDK this hall was built with (" + version + "), copied into " + vendoredSDK, nil
}

// collectSDK adds the package's non-test Go files of fsys's root to files.
func collectSDK(fsys fs.FS, files map[string]string) error {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return err
		}
		files[n] = string(b)
	}
	if _, ok := files["dispatch.go"]; !ok {
		return errors.New("no sdk/dispatch.go: not the Hall SDK")
	}
	return nil
}

func isHallSource(dir string) bool {
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil || !bytes.HasPrefix(bytes.TrimSpace(mod), []byte("module "+hallModule+"\n")) {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "sdk", "dispatch.go"))
	return err == nil
}

// scaffold is what the templates fill in.
type scaffold struct {
	Module, WorkerID, Species, Capability, Name, GoVersion string
	Require, Replace                                       string
}

var scaffoldFiles = map[string]string{
	"go.mod": `module {{.Module}}

go {{.GoVersion}}

require ` + hallModule + ` {{.Require}}

// The Hall module is not published yet: its SDK is copied into
// {{.Replace}} (hall new). Once it is, delete that folder and this line
// and run: go get ` + hallModule + `/sdk@latest
replace ` + hallModule + ` => {{.Replace}}
`,
	vendoredSDK + "/go.mod": `// The Hall SDK (github.com/wcphall/hall/sdk), copied by hall new so that
// this worker builds offline and anywhere. Do not edit: a newer hall new,
// or the published module, replaces it.
module ` + hallModule + `

go {{.GoVersion}}
`,
	"main.go": `// Command {{.Name}} is a Hall worker serving {{.Capability}}: it counts the
// words and lines of its input and answers {"words": N, "lines": N}.
//
// Build it with hall build (GOOS=wasip1 GOARCH=wasm go build
// -buildmode=c-shared, record embedded), then hall enroll {{.Name}}.wasm.
package main

import (
	"bytes"

	"` + hallModule + `/sdk"
)

// Capability is the capability this worker serves (registry_record.json).
const Capability = "{{.Capability}}"

// Handlers are registered in init: a -buildmode=c-shared module runs
// package initialization but never main.
func init() {
	sdk.Handle(Capability, func(c *sdk.Call) error {
		out, err := handle(c.Input())
		if err != nil {
			return err
		}
		return c.OutputJSON(out)
	})
}

// Counts is the worker's answer.
type Counts struct {
	Words int ` + "`json:\"words\"`" + `
	Lines int ` + "`json:\"lines\"`" + `
}

// handle is the worker's logic, kept free of the SDK so that main_test.go
// tests it natively (go test ./...).
func handle(input []byte) (Counts, error) {
	return Counts{Words: len(bytes.Fields(input)), Lines: bytes.Count(input, []byte("\n"))}, nil
}

// run is the export the Hall calls for {{.Capability}} (the record's
// default entrypoint).
//
//go:wasmexport run
func run() int32 { return sdk.Dispatch(Capability) }

func main() {}
`,
	"main_test.go": `package main

import "testing"

func TestHandle(t *testing.T) {
	for _, tc := range []struct {
		name  string
		input string
		want  Counts
	}{
		{"empty", "", Counts{}},
		{"two lines", "one two\nthree\n", Counts{Words: 3, Lines: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := handle([]byte(tc.input))
			if err != nil || got != tc.want {
				t.Fatalf("handle(%q) = %+v, %v; want %+v", tc.input, got, err, tc.want)
			}
		})
	}
}
`,
	"registry_record.json": `{
  "worker_id": "{{.WorkerID}}",
  "worker_species_id": "{{.Species}}",
  "capabilities": ["{{.Capability}}"],
  "risk_tier": "low",
  "idempotency": "full",
  "determinism": "full",
  "required_controls": [],
  "currently_implements": [],
  "allowed_environments": ["dev"],
  "privilege_envelope": {
    "secrets_access": [],
    "network_egress": "none",
    "filesystem_writes": [],
    "tools": []
  },
  "blast_radius": {"data": 0, "network": 0, "financial": 0, "time": 0, "reversibility": "reversible"},
  "owner": "org.example"
}
`,
	".gitignore": "*.wasm\n.hall/\n",
}
