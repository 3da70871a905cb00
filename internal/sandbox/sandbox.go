package sandbox

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
)

// Policy is a worker's privilege envelope: what it may touch besides its own
// memory. The zero Policy grants nothing.
type Policy struct {
	// Writes are absolute host directories mounted read-write at the same
	// path in the guest.
	Writes []string
	// Reads are absolute host directories mounted read-only at the same path.
	Reads []string
	// Egress lists "host" or "host:port" entries hall_http and Extism's
	// http_request may reach. A
	// missing port means the scheme's default port (80 for http, 443 for
	// https). Empty means no network at all.
	Egress []string
	// PropagateTrace sends the W3C trace context of each exchange's span
	// upstream (traceparent, tracestate) when the call is traced
	// (Request.Tracer); false: never.
	PropagateTrace bool
	// Secrets are the secret names the worker may read through hall_secret.
	Secrets []string
	// Deterministic selects wazero's fake clocks and deterministic random
	// source. The default (false) gives the guest real wall and monotonic
	// clocks, real sleeps and crypto/rand.
	Deterministic bool
}

// Limits bound one call. In a Spec, zero fields mean "the Hall default"
// (Config.Max); every field is capped by Config.Max.
type Limits struct {
	// Timeout is the wall-clock limit of a call, guest initialisation
	// included (LIMIT_TIMEOUT).
	Timeout time.Duration
	// MemoryBytes bounds each linear memory of an instance (the guest's and
	// the Extism kernel's, which holds input and output), rounded down to
	// whole 64 KiB pages (LIMIT_MEMORY).
	MemoryBytes uint64
	// InputBytes bounds Request.Input (LIMIT_INPUT, checked before running).
	InputBytes int64
	// OutputBytes bounds Result.Output (LIMIT_OUTPUT).
	OutputBytes int64
	// LogBytes bounds Result.Logs; what does not fit is dropped.
	LogBytes int
	// WriteBytes bounds the bytes of regular files in the worker's write
	// directories, and WriteFiles their entries (files and directories),
	// counted from what they hold when the worker is loaded (LIMIT_DISK).
	WriteBytes int64
	WriteFiles int64
	// StackBytes is the call stack budget of an instance: every call of a
	// function the module defines is charged an over-estimate of its frame
	// (wasmmod.GuardStack), and a call that does not fit traps
	// (LIMIT_STACK). The host memory of a call's stack stays below
	// 4 × StackBytes (budget.go).
	StackBytes uint64
}

// DefaultLimits returns the limits used for every zero field of
// Config.Max (a value: changing it changes no Engine's limits).
func DefaultLimits() Limits {
	return Limits{
		Timeout:     10 * time.Second,
		MemoryBytes: 64 << 20,
		InputBytes:  1 << 20,
		OutputBytes: 1 << 20,
		LogBytes:    64 << 10,
		WriteBytes:  64 << 20,
		WriteFiles:  1024,
		StackBytes:  16 << 20,
	}
}

// minMemoryBytes is the Extism kernel's initial memory (16 pages); no
// instance can exist below it.
const minMemoryBytes = 16 * wasmPageSize

func (l Limits) withDefaults(d Limits) Limits {
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.MemoryBytes == 0 {
		l.MemoryBytes = d.MemoryBytes
	}
	if l.InputBytes <= 0 {
		l.InputBytes = d.InputBytes
	}
	if l.OutputBytes <= 0 {
		l.OutputBytes = d.OutputBytes
	}
	if l.LogBytes <= 0 {
		l.LogBytes = d.LogBytes
	}
	if l.WriteBytes <= 0 {
		l.WriteBytes = d.WriteBytes
	}
	if l.WriteFiles <= 0 {
		l.WriteFiles = d.WriteFiles
	}
	if l.StackBytes == 0 {
		l.StackBytes = d.StackBytes
	}
	return l
}

func (l Limits) capped(c Limits) Limits {
	l.Timeout = min(l.Timeout, c.Timeout)
	l.MemoryBytes = min(l.MemoryBytes, c.MemoryBytes)
	l.InputBytes = min(l.InputBytes, c.InputBytes)
	l.OutputBytes = min(l.OutputBytes, c.OutputBytes)
	l.LogBytes = min(l.LogBytes, c.LogBytes)
	l.WriteBytes = min(l.WriteBytes, c.WriteBytes)
	l.WriteFiles = min(l.WriteFiles, c.WriteFiles)
	l.StackBytes = min(l.StackBytes, c.StackBytes)
	return l
}

// SecretSource supplies secret values for hall_secret. Implementations must
// be safe for concurrent use.
type SecretSource interface {
	// Secret returns the value of the named secret and whether it exists.
	Secret(name string) (string, bool)
}

// EnvSecrets reads secret NAME from the host environment variable
// HALL_SECRET_<NAME>, NAME upper-cased with every character outside [A-Z0-9]
// replaced by '_'. Only names a Policy declares are ever asked for.
type EnvSecrets struct{}

// Secret implements SecretSource.
func (EnvSecrets) Secret(name string) (string, bool) {
	var b strings.Builder
	b.WriteString("HALL_SECRET_")
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return os.LookupEnv(b.String())
}

// Config configures an Engine.
type Config struct {
	// CacheDir holds wazero's compilation cache so that a fresh process
	// loads known modules without recompiling. It is created with mode 0700
	// and refused if group or others can write it. "" keeps the cache in
	// memory only.
	//
	// The cache holds machine code the Hall executes, with no integrity
	// check beyond a CRC32 (wazero offers no way to authenticate its
	// entries): whoever can write this directory can run code in the
	// host process. Keep it out of any directory less trusted than the
	// Hall's binary, the state directory included (RATIONALE.md,
	// "Compilation caches").
	CacheDir string
	// FormCacheDir holds the Hall's own derived forms of each module (its
	// merged data segments and its guarded call stack), each entry
	// authenticated with an HMAC-SHA256 under CacheKey: an entry that does
	// not verify is discarded, logged as altered and rebuilt from the
	// module given to Load. It may live in a directory others can write
	// (the state directory). "" means CacheDir. Created with mode 0700.
	FormCacheDir string
	// CacheKey authenticates the entries of FormCacheDir (at least 32
	// bytes, secret: the Hall derives it from its evidence signing key).
	// Without it the forms are neither read from nor written to disk, and
	// a fresh process rebuilds them (~25–45 ms each for a 1.9 MB
	// standard-Go module).
	CacheKey []byte
	// Max is the Hall ceiling for every Spec's Limits and the default for
	// their zero fields. Zero fields of Max take DefaultLimits.
	Max Limits
	// Secrets backs hall_secret. Nil means every declared secret is
	// SECRET_UNAVAILABLE.
	Secrets SecretSource
	// Logger receives the Engine's own diagnostics and the guests' Extism
	// log_* lines, at their mapped levels (guestlog.go). Nil discards them.
	Logger *slog.Logger
	// MemoryBudget is the host memory, in bytes, that all concurrent calls
	// of the Engine may take together, each counted at its worst case
	// (two linear memories at Limits.MemoryBytes, its tables and a fixed
	// engine overhead; RATIONALE.md, "Memory budget"). A call waits, within
	// its own deadline, until it fits (MEMORY_BUDGET when it never does).
	// Zero means DefaultMemoryBudgetFraction of physical memory.
	MemoryBudget uint64
	// Compiler, when set, compiles modules off the serving path: Load
	// runs it (with the wasm to compile, the cache directory and a deadline)
	// before compiling in process, which then loads the machine code it
	// left in the compilation cache. It needs a CacheDir. See
	// CompileCommand and RATIONALE.md, "Compilation".
	Compiler Compiler
	// CompileTimeout bounds one compilation by Compiler (default
	// DefaultCompileTimeout).
	CompileTimeout time.Duration
	// MaxModuleBytes caps the size of a module Load accepts (default
	// DefaultMaxModuleBytes). Without a Compiler, it is the only bound on
	// in-process compilation.
	MaxModuleBytes int
	// IdleMemory bounds the host memory that ready instances (pooled
	// never-used ones and idle ones kept for reuse) of all Workers hold
	// together. An instance that would not fit displaces those of the
	// least recently called Workers, which stop refilling their pools until
	// their next call; when nothing older can make room it is not kept.
	// Zero means DefaultIdleMemory. See RATIONALE.md, "Shared compiled
	// code and idle memory".
	IdleMemory uint64
}

// Engine compiles and runs workers. It is safe for concurrent use.
//
// # Notes
//
//   - All Workers of an Engine share one wazero CompilationCache, and
//     Workers of the same module (and memory limit) share one compiled
//     module: its wazero Runtime, machine code and decoded form are held
//     once, with a reference count (shared.go). Instances, mounts, egress
//     and secrets stay per Worker.
//   - Ready instances of all Workers are bounded together by
//     Config.IdleMemory, least recently called Workers giving way first.
type Engine struct {
	cache    wazero.CompilationCache
	cacheDir string // "" when the cache is in memory only
	// forms is the authenticated cache of derived wasm forms
	// (formcache.go).
	forms   formCache
	max     Limits
	secrets SecretSource
	log     *slog.Logger
	// egressHooks is nil outside this package's tests (egress.go).
	egressHooks *egressTestHooks

	budget         *memoryBudget
	compiler       Compiler
	compileTimeout time.Duration
	maxModule      int

	mu      sync.Mutex
	workers map[*Worker]struct{}
	closed  bool
	// plugins are the compiled modules shared by Workers (shared.go),
	// guarded by mu.
	plugins map[pluginKey]*sharedPlugin

	// idle accounts the memory of ready instances (shared.go).
	idle idleMemory
}

// New returns an Engine.
//
// New refuses to start when EXTISM_ENABLE_WASI_OUTPUT is set in the process
// environment: Extism would then send every guest's stdout and stderr to the
// host's, bypassing Limits.LogBytes.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if _, ok := os.LookupEnv("EXTISM_ENABLE_WASI_OUTPUT"); ok {
		return nil, errors.New("sandbox: EXTISM_ENABLE_WASI_OUTPUT is set; unset it so guest output stays captured and bounded")
	}
	max := cfg.Max.withDefaults(DefaultLimits())
	if max.MemoryBytes < minMemoryBytes {
		return nil, fmt.Errorf("sandbox: Config.Max.MemoryBytes %d is below the Extism kernel's %d bytes", max.MemoryBytes, minMemoryBytes)
	}
	e := &Engine{max: max, secrets: cfg.Secrets, log: cfg.Logger, workers: map[*Worker]struct{}{},
		compiler: cfg.Compiler, compileTimeout: cfg.CompileTimeout, maxModule: cfg.MaxModuleBytes,
		plugins: map[pluginKey]*sharedPlugin{}}
	e.idle.limit = cfg.IdleMemory
	if e.idle.limit == 0 {
		e.idle.limit = DefaultIdleMemory
	}
	if cfg.MemoryBudget == 0 {
		cfg.MemoryBudget = defaultMemoryBudget()
	}
	e.budget = newMemoryBudget(cfg.MemoryBudget)
	if e.compileTimeout <= 0 {
		e.compileTimeout = DefaultCompileTimeout
	}
	if e.maxModule <= 0 {
		e.maxModule = DefaultMaxModuleBytes
	}
	if cfg.Compiler != nil && cfg.CacheDir == "" {
		return nil, errors.New("sandbox: Config.Compiler needs a CacheDir to leave the compiled code in")
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.CacheKey) > 0 && len(cfg.CacheKey) < 32 {
		return nil, fmt.Errorf("sandbox: Config.CacheKey has %d bytes; give at least 32 secret bytes (or none: no form cache on disk)", len(cfg.CacheKey))
	}
	formDir := cmp.Or(cfg.FormCacheDir, cfg.CacheDir)
	e.forms = formCache{key: slices.Clone(cfg.CacheKey), log: e.log}
	if formDir != "" && len(cfg.CacheKey) > 0 {
		if err := privateDir(formDir, "Config.FormCacheDir"); err != nil {
			return nil, err
		}
		e.forms.dir = formDir
	}
	if cfg.CacheDir == "" {
		e.cache = wazero.NewCompilationCache()
		return e, nil
	}
	if err := privateDir(cfg.CacheDir, "Config.CacheDir"); err != nil {
		return nil, err
	}
	c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("sandbox: cache dir: %w", err)
	}
	e.cache, e.cacheDir = c, cfg.CacheDir
	return e, nil
}

// privateDir creates dir with mode 0700 if needed and refuses it when group
// or others can write it.
func privateDir(dir, field string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sandbox: %s: %w", field, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("sandbox: %s: %w", field, err)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("sandbox: %s: %s is writable by group or others (mode %v); chmod go-w it", field, dir, st.Mode().Perm())
	}
	return nil
}

// Close closes every Worker of the Engine and the compilation cache. Calls in
// progress fail.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ws := make([]*Worker, 0, len(e.workers))
	for w := range e.workers {
		ws = append(ws, w)
	}
	e.mu.Unlock()
	var errs []error
	for _, w := range ws {
		errs = append(errs, w.Close(ctx))
	}
	errs = append(errs, e.cache.Close(ctx))
	return errors.Join(errs...)
}

// Spec describes how one worker module is run.
type Spec struct {
	// Name identifies the worker in logs and error messages.
	Name string
	// Policy is the worker's privilege envelope.
	Policy Policy
	// Limits per call; zero fields take Config.Max, all capped by it.
	Limits Limits
	// Pool is how many pre-instantiated, never-used instances are kept ready
	// (refilled in the background). 0 means 2; negative means none. A
	// module with a start section and any Policy grant is never
	// pre-instantiated, whatever Pool says: its start section would run
	// with the grant outside a call (grants.go).
	Pool int
	// Reuse lets an instance serve further calls with the same
	// Request.ReuseKey. Instances are never reused after a trap, a timeout
	// or a memory limit.
	Reuse bool
	// Digest, when not zero, is the SHA-256 of the wasm given to Load,
	// known to the caller (an artifact store that verified it): Load then
	// does not hash the module again. A wrong digest makes Workers of
	// different modules share compiled code: pass only a verified one.
	Digest [32]byte
}

// validatePolicy checks the shape of a Policy; it does not touch the network.
func validatePolicy(p Policy) error {
	for _, list := range []struct {
		field string
		dirs  []string
	}{{"Writes", p.Writes}, {"Reads", p.Reads}} {
		for i, d := range list.dirs {
			if !filepath.IsAbs(d) || filepath.Clean(d) != d {
				return fmt.Errorf("policy %s[%d]: %q must be a clean absolute path", list.field, i, d)
			}
			st, err := os.Stat(d)
			if err != nil {
				return fmt.Errorf("policy %s[%d]: %w", list.field, i, err)
			}
			if !st.IsDir() {
				return fmt.Errorf("policy %s[%d]: %q is not a directory", list.field, i, d)
			}
		}
	}
	for i, h := range p.Egress {
		if _, _, err := parseEgress(h); err != nil {
			return fmt.Errorf("Policy.Egress[%d]: %w", i, err)
		}
	}
	return nil
}

// parseEgress splits a "host" or "host:port" entry; port 0 means "the
// scheme's default".
func parseEgress(entry string) (string, int, error) {
	if entry == "" || strings.ContainsAny(entry, "/*@ ") {
		return "", 0, fmt.Errorf("%q: want host or host:port", entry)
	}
	host, port := entry, 0
	if h, p, err := net.SplitHostPort(entry); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return "", 0, fmt.Errorf("%q: bad port", entry)
		}
		host, port = h, n
	} else if strings.Count(entry, ":") > 1 {
		host = strings.Trim(entry, "[]") // bare IPv6 literal
	}
	return strings.ToLower(host), port, nil
}

// wasmMagic is the binary module header (magic and version 1). Load accepts
// only this: never text, never precompiled machine code.
var wasmMagic = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

func checkModuleBytes(wasm []byte, maxBytes int) error {
	if len(wasm) > maxBytes {
		return errorf(CodeModuleInvalid, "module of %d bytes exceeds the Hall's module size limit of %d bytes", len(wasm), maxBytes)
	}
	if !bytes.HasPrefix(wasm, wasmMagic) {
		return errorf(CodeModuleInvalid, "not a WebAssembly binary module (bad magic or version)")
	}
	return nil
}
