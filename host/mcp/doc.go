// Package mcp serves a Hall's governed capabilities as Model Context
// Protocol tools, over stdio (`hall mcp`) and Streamable HTTP (`/mcp` of
// `hall serve`), with the official Go SDK
// (github.com/modelcontextprotocol/go-sdk).
//
// It translates and nothing more: tools/list is the capabilities a rule
// routes to an enrolled worker, and tools/call is host.Hall.Run — the same
// decision, sandbox, limits and evidence receipt as `hall run` and
// POST /wcp/run. Governance (rules, policy, attestation, envelopes) stays
// in package host.
//
//	s := mcp.New(h, mcp.Options{Config: cfg})
//	defer s.Close()
//	err := s.ServeStdio(ctx, os.Stdin, os.Stdout)         // hall mcp
//	http.Handle("/mcp", s.Handler(mcp.HTTPOptions{...}))  // hall serve
//
// # Notes
//
//   - Tool names are derived from capability ids by ToolName: stable,
//     within the character set and length every agent accepts. No two
//     tools ever share a name: capabilities whose names collide are each
//     renamed with a longer hash suffix (said in tools/list and the log),
//     or refused when even that collides.
//   - The tenant of a call is the bearer token's on HTTP (the client cannot
//     name another) and the configured tenant on stdio.
//   - A denial is a tool result with isError set and the deny code, never
//     a protocol error, so that the agent can read why.
//   - A cancelled call (notifications/cancelled) stops the worker; the
//     Hall records the dispatch with outcome CANCELLED.
//   - The tool list follows the Hall: after an enrollment, a rules change
//     or a reload, connected clients get notifications/tools/list_changed.
package mcp
