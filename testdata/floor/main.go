// Command floor is the anchor of `hall run`'s one-shot cost (issue 12): the
// least a Go program does to run one export of a module through Extism
// from a warm wazero compilation cache, with no governance at all. It
// reads the module, compiles it (the cache holds the machine code), calls
// EXPORT with standard input and prints the output.
//
//	go build -o floor ./testdata/floor
//	floor CACHE_DIR MODULE.wasm EXPORT < input
//
// `make bench` times `hall run` against it on the same module and cache
// directory; the ratio is what governance (decision, attestation, sandbox
// policy, signed receipt) costs a one-shot process.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	extism "github.com/extism/go-sdk"
	"github.com/tetratelabs/wazero"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: floor CACHE_DIR MODULE.wasm EXPORT < input")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2], os.Args[3]); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(cacheDir, module, export string) error {
	ctx := context.Background()
	wasm, err := os.ReadFile(module)
	if err != nil {
		return err
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		return err
	}
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return err
	}
	defer cache.Close(ctx)
	cfg := wazero.NewRuntimeConfig().WithCompilationCache(cache).WithCloseOnContextDone(true)
	plugin, err := extism.NewPlugin(ctx, extism.Manifest{Wasm: []extism.Wasm{extism.WasmData{Data: wasm}}},
		extism.PluginConfig{RuntimeConfig: cfg, EnableWasi: true}, nil)
	if err != nil {
		return err
	}
	defer plugin.Close(ctx)
	_, out, err := plugin.Call(export, input)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(out)
	return err
}
