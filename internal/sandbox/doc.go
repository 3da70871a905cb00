// Package sandbox runs Hall workers: Extism-ABI WebAssembly modules executed
// by wazero under a privilege envelope (Policy) and resource Limits.
//
// The package knows nothing about routing, records or tenants beyond an opaque
// reuse key: the caller decides whether a worker may run and passes the
// resulting Policy and Limits; sandbox enforces them and reports the outcome of
// each call as data (Result) or as an *Error carrying one of the sandbox
// outcome codes of docs/ABI.md.
//
// Typical use:
//
//	eng, err := sandbox.New(ctx, sandbox.Config{CacheDir: dir, Secrets: sandbox.EnvSecrets{}})
//	...
//	w, err := eng.Load(ctx, wasm, sandbox.Spec{Name: "wrk.demo", Policy: policy})
//	...
//	res, err := w.Call(ctx, sandbox.Request{Export: "run", Input: in})
//	var se *sandbox.Error
//	if errors.As(err, &se) && se.Code == sandbox.CodeLimitTimeout { ... }
//
// # Boundaries
//
//   - Each Worker has its own wazero Runtime (one trust domain per worker);
//     only the compilation cache is shared between workers of an Engine.
//   - The filesystem is a root-confined view built on os.Root, never wazero
//     directory mounts; see RATIONALE.md.
//   - Network access exists only through the hall_http host function and
//     Extism's http_request (served by this package, extism_http.go), and
//     only to the Policy.Egress entries; WASI sockets are unavailable.
//   - Every call runs on a never-used instance unless Spec.Reuse is set, and an
//     instance that trapped or timed out is always discarded.
//   - Guest code that runs outside a call (a start section, when Load or a
//     pool refill instantiates the module) gets no grant: no mount, and the
//     host functions and Extism's config_get trap there. A module with a
//     start section and any grant is instantiated only inside calls, so a
//     caller that records its decision before Call has no guest code with
//     a grant run before that decision (grants.go, RATIONALE.md).
package sandbox
