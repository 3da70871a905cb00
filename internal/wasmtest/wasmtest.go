// Package wasmtest builds Go workers to .wasm and runs them on a plain
// Extism host with stand-ins for the Hall host functions: the one way the
// tests of the SDK, the plugins, the host and the CLI get real modules.
package wasmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
)

// BuildTo compiles the Go package pkg (a path the go command accepts,
// relative to the caller's working directory) for wasip1 as a reactor,
// the way docs/ABI.md workers are built, into the file out.
func BuildTo(pkg, out string) error {
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %v\n%s", pkg, err, msg)
	}
	return nil
}

// Build is BuildTo a temporary file, returning the module bytes.
func Build(pkg string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "wasmtest")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "worker.wasm")
	if err := BuildTo(pkg, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// MustBuild is Build for TestMain: it exits the test binary on failure.
func MustBuild(dir string) []byte {
	b, err := Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	return b
}

var cache = wazero.NewCompilationCache()

// Hall is a stand-in for the Hall's side of the ABI: secrets are never
// declared, egress is always denied (a network_egress "none" envelope), and
// emitted events are recorded.
type Hall struct {
	mu     sync.Mutex
	events []map[string]any
}

// Events returns the events emitted so far.
func (h *Hall) Events() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.events...)
}

func (h *Hall) functions() []extism.HostFunction {
	i64 := []extism.ValueType{extism.ValueTypeI64}
	deny := func(code string) extism.HostFunctionStackCallback {
		return func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
			b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": "not in the privilege envelope"}})
			off, err := p.WriteBytes(b)
			if err != nil {
				panic(err)
			}
			stack[0] = off
		}
	}
	emit := func(ctx context.Context, p *extism.CurrentPlugin, stack []uint64) {
		raw, err := p.ReadBytes(stack[0])
		if err != nil {
			panic(err)
		}
		var ev map[string]any
		if err := json.Unmarshal(raw, &ev); err != nil {
			panic(fmt.Sprintf("hall_emit: event is not a JSON object: %v", err))
		}
		h.mu.Lock()
		h.events = append(h.events, ev)
		h.mu.Unlock()
	}
	return []extism.HostFunction{
		extism.NewHostFunctionWithStack("hall_secret", deny("SECRET_NOT_DECLARED"), i64, i64),
		extism.NewHostFunctionWithStack("hall_http", deny("EGRESS_DENIED"), i64, i64),
		extism.NewHostFunctionWithStack("hall_emit", emit, i64, nil),
	}
}

// NewPlugin instantiates wasm on a plain Extism host (extism.NewPlugin with
// WASI) with config in the manifest and h's host functions (h may be nil).
func NewPlugin(tb testing.TB, wasm []byte, config map[string]string, h *Hall) *extism.Plugin {
	tb.Helper()
	if h == nil {
		h = &Hall{}
	}
	return NewPluginWith(tb, wasm, config, h.functions())
}

// NewPluginWith is NewPlugin with the caller's host functions.
func NewPluginWith(tb testing.TB, wasm []byte, config map[string]string, funcs []extism.HostFunction) *extism.Plugin {
	tb.Helper()
	p, err := extism.NewPlugin(context.Background(), extism.Manifest{
		Wasm:   []extism.Wasm{extism.WasmData{Data: wasm}},
		Config: config,
	}, extism.PluginConfig{
		EnableWasi:    true,
		RuntimeConfig: wazero.NewRuntimeConfig().WithCompilationCache(cache),
	}, funcs)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { p.Close(context.Background()) })
	return p
}
