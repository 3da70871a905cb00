// Package host is the embeddable Hall: a governed host for WebAssembly
// workers that implements WCP, the Worker Class Protocol. It is the one
// public way to decide, run and record; the CLI (cmd/hall), the HTTP API
// (host/server) and the MCP server (host/mcp) are thin layers over it.
//
// # Opening a Hall
//
// A Hall works over a directory holding its routing rules (rules.json), the
// enrolled workers' records (enrolled/), an optional configuration
// (hall.json) and policy set (policy.json), and a state directory (.hall/)
// with the evidence ledger, the module store and the signing key. The
// rules, records, configuration and policy set may live elsewhere (a
// database shared by several Halls): Options.Stores.Source is a [SnapshotSource]
// that stores those documents, and the Hall parses, seals and records
// them as it does the files.
//
//	h, err := host.Open(ctx, host.Options{Dir: "."})
//	if err != nil { ... }
//	defer h.Close(ctx) // stops admitting, waits for running dispatches and their receipts
//
// # Enrolling, deciding, running
//
//	res, err := h.Enroll(ctx, host.EnrollRequest{Module: wasm, Record: record})
//	dec := h.Decide(ctx, &input)                              // a RouteDecision, recorded; nothing runs
//	out, err := h.Run(ctx, host.RunRequest{Input: input, Payload: payload}) // decide, run in the sandbox, record a receipt
//
// A denial is data (a RouteDecision with a DENY_* code), never an error.
// Run is the only way guest code runs: the selected worker's module is
// checked against the digest sealed at enrollment, instantiated with
// exactly the grants its privilege envelope declares (no network unless
// allow-listed, writes only to its paths, only the secrets it names) and
// bounded in time, memory, stack and output; its outcome is a signed,
// hash-chained receipt.
//
// # Evidence
//
// Everything that can change a decision — the rules, the policy set (or its
// absence), the configuration, the enrolled records — forms a snapshot with
// one digest, recorded in the signed change chain before the first decision
// made under it. Every decision and receipt names its snapshot; approvals
// are signed changes bound to the snapshot they were granted under.
// [Hall.Evidence] reads the ledger and verifies it, as `hall audit verify`
// does.
//
// # Storage
//
// Everything kept between requests goes through one seam, [Stores]: the
// snapshot inputs (Source), the evidence ledger with its approvals
// (Evidence), the HTTP API's tokens (Tokens) and the modules by digest
// (Artifacts). [OpenLocalStores] opens the default, SQLite and files in
// the state directory; Options.Stores hands a Hall other implementations.
// The hall CLI and host/server open state only through these functions,
// and internal/storetest is the contract every implementation passes.
//
// # Extension points
//
// Options carries the few things an embedder supplies: a policy gate for
// rules that name one, a secret source for the secrets workers declare, a
// logger, a compiler that compiles modules off the serving path, the
// stores, and limits.
// Values the Hall returns (Config, Rules, Policies, Options, decisions) are
// copies: changing them changes nothing in force.
//
// # Notes
//
//   - The engines (decision engine, sandbox, ledger, stores) live under
//     internal/ and are not importable: an embedder cannot run guest code or
//     sign evidence except through a Hall.
//   - The module github.com/wcphall/hall is not published yet: an embedder
//     depends on it through a replace directive to a clone
//     (go mod edit -require=github.com/wcphall/hall@v0.0.0
//     -replace=github.com/wcphall/hall=PATH) until it is, then through
//     go get github.com/wcphall/hall@latest.
//   - Library code sets no process-wide state; guest log lines reach the
//     Hall's logger only if the program sets Extism's log level (the CLI
//     does).
package host
