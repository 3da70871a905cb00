package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/wcphall/hall/internal/wasmtest"
)

// fixtures are the test workers, built once per test binary from the sources
// in testdata/sandbox (see the build notes at the top of each source).
var fixtures struct {
	goguest, adversary, bigmem, loop, fsescape, countVowels []byte
	// hostile_test.go
	startloop, starttrigger, sleep, startsleep, bigtable, tablegrow, recurse []byte
	// grant_test.go
	startwrite, initwrite, startcoin []byte
}

// cacheDir is shared by every Engine of the test binary so the Go guest is
// compiled once.
var cacheDir string

const testdataDir = "../../testdata/sandbox"

func TestMain(m *testing.M) {
	// The test binary doubles as the compiler child of CompileCommand
	// (compile_test.go), as the hall binary does with "hall __compile".
	if len(os.Args) == 3 && os.Args[1] == "__compile" {
		if err := CompileChild(os.Stdin, os.Args[2], 0); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox tests: fixture setup failed:", err)
		os.Exit(2)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	tmp, err := os.MkdirTemp("", "sandbox-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	cacheDir = filepath.Join(tmp, "cache")

	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		return 0, errors.New("wat2wasm not found in PATH: install wabt (apt-get install -y wabt); the adversarial fixtures are WAT")
	}
	for name, dst := range map[string]*[]byte{
		"adversary": &fixtures.adversary, "bigmem": &fixtures.bigmem,
		"loop": &fixtures.loop, "fsescape": &fixtures.fsescape,
		"startloop": &fixtures.startloop, "starttrigger": &fixtures.starttrigger,
		"sleep": &fixtures.sleep, "startsleep": &fixtures.startsleep,
		"bigtable": &fixtures.bigtable, "tablegrow": &fixtures.tablegrow, "recurse": &fixtures.recurse,
		"startwrite": &fixtures.startwrite, "initwrite": &fixtures.initwrite, "startcoin": &fixtures.startcoin,
	} {
		out := filepath.Join(tmp, name+".wasm")
		cmd := exec.Command(wat2wasm, filepath.Join(testdataDir, name+".wat"), "-o", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			return 0, fmt.Errorf("wat2wasm %s: %v\n%s", name, err, b)
		}
		if *dst, err = os.ReadFile(out); err != nil {
			return 0, err
		}
	}

	if fixtures.goguest, err = wasmtest.Build(filepath.Join(testdataDir, "goguest")); err != nil {
		return 0, err
	}
	if fixtures.countVowels, err = os.ReadFile(filepath.Join(testdataDir, "count_vowels.wasm")); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

func newEngine(tb testing.TB, cfg Config) *Engine {
	tb.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = cacheDir
	}
	if cfg.CacheKey == nil {
		cfg.CacheKey = testCacheKey
	}
	e, err := New(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Close(context.Background()) })
	return e
}

func load(tb testing.TB, e *Engine, wasm []byte, spec Spec) *Worker {
	tb.Helper()
	w, err := e.Load(context.Background(), wasm, spec)
	if err != nil {
		tb.Fatalf("Load %s: %v", spec.Name, err)
	}
	tb.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

func call(tb testing.TB, w *Worker, req Request) *Result {
	tb.Helper()
	res, err := w.Call(context.Background(), req)
	if err != nil {
		tb.Fatalf("Call %s: %v", req.Export, err)
	}
	return res
}

func wantCode(tb testing.TB, err error, code string) *Error {
	tb.Helper()
	var se *Error
	if !errors.As(err, &se) {
		tb.Fatalf("got error %v (%T), want *Error with code %s", err, err, code)
	}
	if se.Code != code {
		tb.Fatalf("got code %s (%s), want %s", se.Code, se.Message, code)
	}
	return se
}

// compileWAT compiles inline WAT source for one-off fixtures.
func compileWAT(tb testing.TB, src string) []byte {
	tb.Helper()
	dir := tb.TempDir()
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
		tb.Fatal(err)
	}
	if b, err := exec.Command("wat2wasm", in, "-o", out).CombinedOutput(); err != nil {
		tb.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
