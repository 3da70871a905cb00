package sandbox

import (
	"context"
	"time"
)

// DefaultCompileTimeout bounds one out-of-process compilation.
const DefaultCompileTimeout = 60 * time.Second

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

func (e *Engine) compileOffPath(ctx context.Context, wasm []byte) error { return nil }
