// Package wasmmod reads and edits the binary container of a WebAssembly
// module without compiling it: the import and export tables a Hall checks
// against a worker's privilege envelope before enrollment, and the custom
// sections in which a signature or a build note can travel with the module.
//
// The package parses only the module structure (header, section framing,
// the import, export and custom sections). It does not validate code,
// types or limits the way a runtime does; a module that passes Inspect may
// still be rejected by wazero. It is pure Go and never executes guest code.
//
// # Notes
//
//   - Every function accepts arbitrary bytes: malformed input yields an error
//     wrapping ErrMalformed that names the byte offset at fault, never a panic
//     (FuzzInspect keeps that promise).
//   - Functions never modify their input slice; results do not alias it.
//   - Only core modules (binary format version 1) are understood; component
//     model binaries are rejected with ErrMalformed.
package wasmmod
