// Package server is the Hall's HTTP API: `hall serve`. It is a thin layer
// over package host, as the CLI is: every decision, dispatch and enrollment
// goes through the same *host.Hall methods, never a second implementation.
//
//	h, _ := host.Open(ctx, host.Options{Dir: "."})
//	tokens, _ := host.OpenLocalTokens(".hall")
//	handler := server.New(h, server.Config{Tokens: tokens})
//	err := server.ListenAndServe(ctx, "127.0.0.1:8765", handler, server.ServeOptions{})
//
// The endpoints, their authentication and their status codes are
// documented in docs/HTTP.md.
//
// # Notes
//
//   - Every error is JSON {"error": {"code", "message", "field"?}} and every
//     response carries an X-Request-ID header (the caller's, when it sent a
//     sane one).
//   - A dispatch is detached from its HTTP request: a client that hangs up
//     does not cancel a running worker or the commit of its receipt (the
//     worker's own time limit bounds it). Graceful shutdown waits for
//     dispatches in flight for the same reason.
//   - Concurrent dispatches are bounded by the Hall's dispatch slots,
//     shared fairly between tenants in host.Hall.Run (host/admission.go),
//     which MCP tool calls pass through too: a dispatch waits for a slot
//     within its worker's time limit and is refused with 503 and
//     Retry-After after it, or at once when its tenant already has as
//     many dispatches waiting as there are slots. Config.MaxConcurrent
//     adds an optional bound of the server's own, refused at once.
//   - Metrics live in a registry of the server's own, not the process-wide
//     default one, so two servers in one process do not collide.
package server
