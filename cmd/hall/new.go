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
	"strings"
	"text/template"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/fsutil"
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
			"The SDK comes from the Hall source this hall binary was built from (a replace directive in go.mod),\n" +
			"or --sdk DIR (a Hall checkout), or, for a released hall, the published module at the same version.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "module", Usage: "Go module `PATH` (default: example.com/NAME)"},
			&cli.StringFlag{Name: "worker-id", Usage: "worker_id (default: org.example.NAME)"},
			&cli.StringFlag{Name: "species", Usage: "worker_species_id (default: wrk.example.NAME)"},
			&cli.StringFlag{Name: "capability", Usage: "the capability it serves (default: cap.example.NAME)"},
			&cli.StringFlag{Name: "sdk", EnvVars: []string{"HALL_SRC"}, Usage: "a Hall source `DIR` to take the SDK from (default: the one hall was built from)"},
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
	sdkDir, how, err := sdkSource(c.String("sdk"))
	if err != nil {
		return err
	}
	d.Replace, d.Require = sdkDir, "v0.0.0"
	if sdkDir == "" {
		d.Require = how
	}

	files := map[string]string{}
	for fname, tmpl := range scaffoldFiles {
		var b bytes.Buffer
		if err := template.Must(template.New(fname).Parse(tmpl)).Execute(&b, d); err != nil {
			return failf("scaffold %s: %v", fname, err)
		}
		files[fname] = b.String()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return failf("%v", err)
	}
	for _, fname := range []string{"go.mod", "main.go", "main_test.go", "registry_record.json", ".gitignore"} {
		if err := fsutil.WriteFileAtomic(filepath.Join(dir, fname), []byte(files[fname]), 0o644); err != nil {
			return failf("%v", err)
		}
	}
	w := c.App.Writer
	fmt.Fprintf(w, "created %s: a worker serving %s (%s, %s)\n", dir, d.Capability, d.WorkerID, d.Species)
	fmt.Fprintf(w, "  %s/main.go              the handler (edit handle)\n", dir)
	fmt.Fprintf(w, "  %s/main_test.go         its test: cd %s && go test ./...\n", dir, dir)
	fmt.Fprintf(w, "  %s/registry_record.json what it may touch (nothing yet)\n", dir)
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

// sdkSource finds the SDK a scaffold builds against: the Hall source given
// (--sdk, HALL_SRC), else the source this binary was built from (its file
// names are recorded in the binary), else, for a released hall, the
// published module at hall's own version. It returns the directory to
// replace the module with ("" for the published module) and a sentence
// saying which was chosen (for the published module: the version).
func sdkSource(given string) (dir, how string, err error) {
	if given != "" {
		abs, err := filepath.Abs(given)
		if err != nil {
			return "", "", failf("--sdk: %v", err)
		}
		if !isHallSource(abs) {
			return "", "", failf("--sdk %s: not a Hall source tree (no go.mod of %s with sdk/ beside it)", given, hallModule)
		}
		return abs, "the Hall source at " + abs + " (--sdk / HALL_SRC)", nil
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file))) // cmd/hall/new.go → the module root
		if isHallSource(root) {
			return root, "the Hall source hall was built from, " + root + " (replace directive in go.mod)", nil
		}
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Path == hallModule && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return "", bi.Main.Version, nil
	}
	return "", "", failf("cannot find the Hall SDK: hall was not built from a source tree that still exists here; pass --sdk DIR (a Hall checkout) or set HALL_SRC")
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
{{if .Replace}}
// The SDK is not published yet: it is taken from the Hall source that built
// hall. Once it is, drop this line and run: go get ` + hallModule + `/sdk@latest
replace ` + hallModule + ` => {{.Replace}}
{{end}}`,
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
