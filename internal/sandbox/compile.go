package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"time"

	"github.com/tetratelabs/wazero"
)

// DefaultCompileTimeout bounds one out-of-process compilation.
const DefaultCompileTimeout = 60 * time.Second

// DefaultCompileMemory is the address-space limit of a compiler child
// process (CompileCommand.MemoryBytes).
const DefaultCompileMemory = 2 << 30

// DefaultMaxModuleBytes caps the modules Load accepts: as the HTTP API's
// module upload limit.
const DefaultMaxModuleBytes = 64 << 20

// Compiler compiles a module into a compilation cache directory, off the
// serving path (for instance in a child process with a deadline and
// resource limits, CompileCommand). It returns an error when the module
// could not be compiled within its bounds.
type Compiler interface {
	Compile(ctx context.Context, wasm []byte, cacheDir string) error
}

// CompileCommand is a Compiler that runs a child process: Path with Args
// and the cache directory as its last argument, the module on its standard
// input, an environment holding only HALL_COMPILE_MEMORY. The child is
// expected to call CompileChild (the hall binary does, as the hidden
// subcommand "hall __compile"). It is killed at the compile deadline.
//
// # Notes
//
//   - The child limits its own address space (RLIMIT_AS) to MemoryBytes
//     before compiling: a module whose compilation needs more fails there,
//     not in the serving process.
//   - That limit is enforced on linux only (darwin accepts RLIMIT_AS but
//     does not enforce it; windows has no such limit): elsewhere Compile
//     starts no child and returns an error naming the platform, and so
//     does CompileChild when asked for a limit.
//   - The machine code it leaves in the cache is what the serving process
//     then loads: the cache directory must be writable by the Hall only
//     (Config.CacheDir is refused otherwise).
type CompileCommand struct {
	Path string
	Args []string
	// MemoryBytes is the child's address-space limit (default
	// DefaultCompileMemory).
	MemoryBytes uint64
}

// Compile implements Compiler.
func (c CompileCommand) Compile(ctx context.Context, wasm []byte, cacheDir string) error {
	mem := c.MemoryBytes
	if mem == 0 {
		mem = DefaultCompileMemory
	}
	if err := addressSpaceLimitGap(runtime.GOOS, runtime.GOARCH); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, c.Path, append(append([]string(nil), c.Args...), cacheDir)...)
	cmd.Stdin = bytes.NewReader(wasm)
	cmd.Env = []string{"HALL_COMPILE_MEMORY=" + strconv.FormatUint(mem, 10)}
	var out limitedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return fmt.Errorf("compilation did not finish within its deadline: %w", ctx.Err())
	}
	if err != nil {
		return fmt.Errorf("compiler process: %v: %s", err, bytes.TrimSpace(out.b))
	}
	return nil
}

type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// CompileChild is the body of a compiler child process (CompileCommand):
// it limits its own address space to HALL_COMPILE_MEMORY bytes, reads a
// module of at most maxBytes from r and compiles it into the wazero
// compilation cache at cacheDir with the runtime configuration Load uses,
// so the serving process finds the machine code there.
func CompileChild(r io.Reader, cacheDir string, maxBytes int) error {
	if s := os.Getenv("HALL_COMPILE_MEMORY"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("HALL_COMPILE_MEMORY: %v", err)
		}
		if err := limitAddressSpace(n); err != nil {
			return err
		}
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxModuleBytes
	}
	wasm, err := io.ReadAll(io.LimitReader(r, int64(maxBytes)+1))
	if err != nil {
		return err
	}
	if err := checkModuleBytes(wasm, maxBytes); err != nil {
		return err
	}
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(cacheDir)
	if err != nil {
		return err
	}
	defer cache.Close(ctx)
	rt := wazero.NewRuntimeWithConfig(ctx, runtimeConfig(cache))
	defer rt.Close(ctx)
	// With the yield listener, as Load compiles (cpu.go): the listener
	// is part of wazero's cache key.
	cm, err := rt.CompileModule(withYields(ctx), wasm)
	if err != nil {
		return errorf(CodeModuleInvalid, "%v", err)
	}
	return cm.Close(ctx)
}

// runtimeConfig is the wazero configuration of every worker Runtime. The
// compiler child must use the same: wazero's cache key covers the module
// bytes and the termination checks, so any difference is a cache miss.
func runtimeConfig(cache wazero.CompilationCache) wazero.RuntimeConfig {
	return wazero.NewRuntimeConfig().WithCompilationCache(cache).WithCloseOnContextDone(true)
}

// compileOffPath runs the configured Compiler on wasm, the exact bytes Load
// then compiles, under CompileTimeout. Without a Compiler it does nothing:
// compilation happens in process, bounded by MaxModuleBytes only.
func (e *Engine) compileOffPath(ctx context.Context, wasm []byte) error {
	if e.compiler == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.compileTimeout)
	defer cancel()
	if err := e.compiler.Compile(ctx, wasm, e.cacheDir); err != nil {
		var se *Error
		if errors.As(err, &se) {
			return se
		}
		return errorf(CodeModuleInvalid, "not compiled within the Hall's bounds (%v, see CompileTimeout and CompileCommand.MemoryBytes): %v", e.compileTimeout, err)
	}
	return nil
}
