package main

// A metric names one figure of one benchmark: its package (relative to the
// module), its full name and the unit of the value.
type metric struct{ pkg, bench, unit string }

// A row is one line of an area's table: the figure measured, the figures
// shown beside it, and the anchor it is set against, measured in the same
// `make bench` run.
type row struct {
	label  string
	m      metric
	extra  []string // further units of the same benchmark, shown after m
	anchor *anchor
	budget string
}

// An anchor is the baseline a row is read against. Its ratio is the row's
// cost over the anchor's (ratioOf). When the benchmark measures the ratio
// itself, alternating the two run by run (hall/floor, the MCP overheads),
// ratioUnit names that figure of the row's benchmark and it is used
// instead; pct says it is an overhead in percent.
type anchor struct {
	label     string
	m         metric
	ratioUnit string
	pct       bool
}

// An area is one table of the report and one generated block of the
// docs/PERFORMANCE.md (<!-- bench:begin id --> … <!-- bench:end -->).
type area struct {
	id, title string
	rows      []row
}

func m(pkg, bench, unit string) metric { return metric{pkg, bench, unit} }

func anc(label string, x metric) *anchor { return &anchor{label: label, m: x} }

// engine is the bare decision engine's figure that Hall.Decide is read
// against: one rule, the real clock and random UUIDs, as Hall.Decide uses.
var engine = anc("bare engine, `Decide/allow-1rule/defaults`", m("internal/router", "BenchmarkDecide/allow-1rule/defaults", "ns/op"))

// areas are the report's tables, in order. Each anchor is the closest
// baseline the repository measures: the layer below (the bare engine
// under Hall.Decide, the raw sandbox call under a dispatch, the ledger's
// own write rate under the HTTP API), the same benchmark without the
// feature being paid for, or the program a Hall command competes with.
var areas = []area{
	{id: "engine", title: "Decision engine", rows: []row{
		{label: "allow, 1 rule (fixed clock and id)", m: m("internal/router", "BenchmarkDecide/allow-1rule", "ns/op"), extra: []string{"allocs/op", "B/op"},
			budget: "< 1 µs, ≤ 10 allocs"},
		{label: "allow, 1 rule, real clock and UUIDs", m: m("internal/router", "BenchmarkDecide/allow-1rule/defaults", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("fixed clock and id", m("internal/router", "BenchmarkDecide/allow-1rule", "ns/op"))},
		{label: "match the last of 50 rules", m: m("internal/router", "BenchmarkDecide/match-last-50rules", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("1 rule", m("internal/router", "BenchmarkDecide/allow-1rule", "ns/op")), budget: "< 3 µs"},
		{label: "match the last of 50 rules, real clock and UUIDs", m: m("internal/router", "BenchmarkDecide/match-last-50rules/defaults", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("fixed clock and id", m("internal/router", "BenchmarkDecide/match-last-50rules", "ns/op"))},
		{label: "no rule matches", m: m("internal/router", "BenchmarkDecide/no-match", "ns/op"), extra: []string{"allocs/op", "B/op"}},
		{label: "no rule matches, real clock and UUIDs", m: m("internal/router", "BenchmarkDecide/no-match/defaults", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("fixed clock and id", m("internal/router", "BenchmarkDecide/no-match", "ns/op"))},
		{label: "10,000 rules, match the last", m: m("internal/router", "BenchmarkDecideRules/rules=10000/match-last", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("1 rule", m("internal/router", "BenchmarkDecideRules/rules=1/match-last", "ns/op")), budget: "< 5 µs, allocs independent of n"},
		{label: "10,000 rules, none matches", m: m("internal/router", "BenchmarkDecideRules/rules=10000/no-match", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("1 rule", m("internal/router", "BenchmarkDecideRules/rules=1/no-match", "ns/op"))},
		{label: "10,000 wildcard rules, none matches (linear: the index cannot skip)", m: m("internal/router", "BenchmarkDecideRules/rules=10000/wildcards-no-match", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("1 rule", m("internal/router", "BenchmarkDecideRules/rules=1/wildcards-no-match", "ns/op"))},
		{label: "20 CEL policies (`internal/policy`)", m: m("internal/policy", "BenchmarkEvaluate20", "ns/op"), extra: []string{"allocs/op"}},
		{label: "policy cost bomb over 59 KB of request.items, stopped by the default cost limit (10.8 s per decision before issue 25)", m: m("internal/policy", "BenchmarkCostLimit/bomb-59KB", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("a linear scan of the same items", m("internal/policy", "BenchmarkCostLimit/scan-59KB", "ns/op")), budget: "< 1 s"},
	}},
	{id: "hall-decide", title: "Hall.Decide", rows: []row{
		{label: "1 enrolled worker", m: m("host", "BenchmarkHallDecide/workers=1", "ns/op"), extra: []string{"allocs/op"}, anchor: engine},
		{label: "100 enrolled workers", m: m("host", "BenchmarkHallDecide/workers=100", "ns/op"), extra: []string{"allocs/op"}, anchor: engine},
		{label: "1,000 enrolled workers", m: m("host", "BenchmarkHallDecide/workers=1000", "ns/op"), extra: []string{"allocs/op"}, anchor: engine},
		{label: "10,000 enrolled workers", m: m("host", "BenchmarkHallDecide/workers=10000", "ns/op"), extra: []string{"allocs/op"}, anchor: engine},
	}},
	{id: "dispatch", title: "Dispatch", rows: []row{
		{label: "reused instance, tiny worker", m: m("host", "BenchmarkDispatch/reused-tiny", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("sandbox call, reused instance (`CallReused`)", m("internal/sandbox", "BenchmarkCallReused", "ns/op")), budget: "< 100 µs"},
		{label: "fresh pre-instantiated instance, tiny worker", m: m("host", "BenchmarkDispatch/fresh-tiny", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("sandbox call, fresh instance (`CallFresh/wat`)", m("internal/sandbox", "BenchmarkCallFresh/wat", "ns/op")), budget: "< 1 ms"},
		{label: "fresh instance, standard-Go summarizer", m: m("host", "BenchmarkDispatch/fresh-go-summarizer", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("sandbox call, fresh instance of a standard-Go guest (`CallFresh/go`)", m("internal/sandbox", "BenchmarkCallFresh/go", "ns/op"))},
		{label: "reused instance, tiny worker, with ledger (decision and receipt in one fsynced commit)", m: m("host", "BenchmarkDispatch/reused-tiny/ledger", "ns/op"), extra: []string{"allocs/op"},
			anchor: anc("the same without a ledger", m("host", "BenchmarkDispatch/reused-tiny", "ns/op"))},
		{label: "parallel fresh-instance throughput, standard-Go summarizer", m: m("host", "BenchmarkDispatchParallel", "dispatches/s"),
			anchor: anc("sandbox calls, standard-Go guest (`CallFreshParallel`)", m("internal/sandbox", "BenchmarkCallFreshParallel", "calls/s")), budget: "≥ 600/s"},
		{label: "one hop (`hall_invoke_mem`, sdk `Call.Invoke`) of an echo worker, no ledger", m: m("host", "BenchmarkChainHop/nop/echo", "hop-µs"),
			anchor: &anchor{label: "direct `Hall.Run` of the same worker, alternated", m: m("host", "BenchmarkChainHop/nop/echo", "direct-µs"), ratioUnit: "overhead-%", pct: true}, budget: "≤ 15%"},
		{label: "process CPU of that hop", m: m("host", "BenchmarkChainHop/nop/echo", "hop-cpu-µs"),
			anchor: &anchor{label: "direct `Hall.Run` of the same worker, alternated", m: m("host", "BenchmarkChainHop/nop/echo", "direct-cpu-µs"), ratioUnit: "overhead-cpu-%", pct: true}, budget: "≤ 15%"},
		{label: "the same hop through `hall_invoke` (JSON in kernel blocks: modules of the first SDK)", m: m("host", "BenchmarkChainHop/nop/echo-legacy", "hop-cpu-µs"),
			anchor: &anchor{label: "direct `Hall.Run` of the same worker, alternated (CPU)", m: m("host", "BenchmarkChainHop/nop/echo-legacy", "direct-cpu-µs"), ratioUnit: "overhead-cpu-%", pct: true}},
		{label: "one hop of a worker computing ~5 ms, no ledger", m: m("host", "BenchmarkChainHop/nop/work", "hop-µs"),
			anchor: &anchor{label: "direct `Hall.Run` of the same worker, alternated", m: m("host", "BenchmarkChainHop/nop/work", "direct-µs"), ratioUnit: "overhead-%", pct: true}, budget: "≤ 15%"},
		{label: "process CPU of that hop", m: m("host", "BenchmarkChainHop/nop/work", "hop-cpu-µs"),
			anchor: &anchor{label: "direct `Hall.Run` of the same worker, alternated", m: m("host", "BenchmarkChainHop/nop/work", "direct-cpu-µs"), ratioUnit: "overhead-cpu-%", pct: true}, budget: "≤ 15%"},
		{label: "one hop of an echo worker, with ledger (decision and receipt in one commit, as a direct run)", m: m("host", "BenchmarkChainHop/ledger/echo", "hop-µs"),
			anchor: &anchor{label: "direct `Hall.Run` of the same worker, alternated", m: m("host", "BenchmarkChainHop/ledger/echo", "direct-µs"), ratioUnit: "overhead-%", pct: true}, budget: "≤ 15%"},
		{label: "process CPU of that hop", m: m("host", "BenchmarkChainHop/ledger/echo", "hop-cpu-µs"),
			anchor: &anchor{label: "direct `Hall.Run` of the same worker, alternated", m: m("host", "BenchmarkChainHop/ledger/echo", "direct-cpu-µs"), ratioUnit: "overhead-cpu-%", pct: true}, budget: "≤ 15%"},
		{label: "`hall run` process end to end, warm compilation cache (summarizer)", m: m("host", "BenchmarkHallRunProcess", "ns/op"),
			anchor: anc("the same dispatch in process (`Dispatch/fresh-go-summarizer`)", m("host", "BenchmarkDispatch/fresh-go-summarizer", "ns/op")), budget: "< 60 ms"},
	}},
	{id: "sandbox", title: "Sandbox", rows: []row{
		{label: "call on a reused instance, WAT", m: m("internal/sandbox", "BenchmarkCallReused", "ns/op"), extra: []string{"allocs/op"}},
		{label: "call on a fresh pre-instantiated instance, WAT", m: m("internal/sandbox", "BenchmarkCallFresh/wat", "ns/op"), extra: []string{"allocs/op"}},
		{label: "call on a fresh pre-instantiated instance, standard Go", m: m("internal/sandbox", "BenchmarkCallFresh/go", "ns/op"), extra: []string{"allocs/op"}},
		{label: "fresh-instance throughput, standard Go (instantiation included)", m: m("internal/sandbox", "BenchmarkCallFreshParallel", "calls/s")},
		{label: "tight loop with termination checks, per iteration", m: m("internal/sandbox", "BenchmarkLoopTermination/close_on_done", "ns/iter"),
			anchor: anc("the same loop unchecked", m("internal/sandbox", "BenchmarkLoopTermination/no_check", "ns/iter"))},
		{label: "the same with yield points (how every worker is compiled, issue 25), per iteration", m: m("internal/sandbox", "BenchmarkLoopTermination/yield_points", "ns/iter"),
			anchor: anc("termination checks only", m("internal/sandbox", "BenchmarkLoopTermination/close_on_done", "ns/iter"))},
		{label: "compile 20,000 nested blocks", m: m("internal/sandbox", "BenchmarkCompileHostile/nested-blocks-20k", "ns/op"), extra: []string{"module-bytes"}},
		{label: "compile a 1 MB function body", m: m("internal/sandbox", "BenchmarkCompileHostile/huge-body-1MB", "ns/op"), extra: []string{"module-bytes"}},
		{label: "compile 20,000 functions", m: m("internal/sandbox", "BenchmarkCompileHostile/many-functions-20k", "ns/op"), extra: []string{"module-bytes"}},
	}},
	{id: "footprint", title: "Footprint", rows: []row{
		{label: "1,000 workers, each dispatched once through `Hall.Run`: RSS", m: m("host", "BenchmarkIdleWorkers", "MiB-rss"), extra: []string{"MiB-hwm", "MiB-heap"},
			budget: "≤ 300 MiB"},
		{label: "kept by the loaded workers between dispatches (`Loads().IdleBytes`)", m: m("host", "BenchmarkIdleWorkers", "MiB-idle"), extra: []string{"loaded"},
			budget: "≤ 64 MiB (`Options.IdleMemory`)"},
		{label: "compiled modules for 1,000 workers of one module", m: m("host", "BenchmarkIdleWorkers", "compiled-modules"), budget: "1"},
		{label: "loaded-but-idle worker beyond the shared compiled module (sandbox, no ready instance)", m: m("internal/sandbox", "BenchmarkIdleWorkers/workers=1000/ready=none", "KiB/idle-worker"),
			budget: "≤ 1 MiB"},
		{label: "1,000 workers (sandbox), each called once: Go heap", m: m("internal/sandbox", "BenchmarkIdleWorkers/workers=1000", "MiB-heap"), extra: []string{"MiB-rss", "MiB-ready"}},
		{label: "100 workers (sandbox), each called once: Go heap", m: m("internal/sandbox", "BenchmarkIdleWorkers/workers=100", "MiB-heap"), extra: []string{"MiB-rss", "MiB-ready"}},
	}},
	{id: "fair-cpu", title: "Cores shared between tenants (issue 25)", rows: []row{
		{label: "benign p99 under 8 CPU loops of another tenant, default slots", m: m("host", "BenchmarkFairCPU/default", "ms-p99-loaded"), extra: []string{"benign-refused"},
			anchor: &anchor{label: "the benign p99 alone, alternated", m: m("host", "BenchmarkFairCPU/default", "ms-p99-alone"), ratioUnit: "loaded/alone-p99"}, budget: "≤ 3× alone, 0 refused"},
		{label: "the same at `--max-concurrent 4`", m: m("host", "BenchmarkFairCPU/max-concurrent-4", "ms-p99-loaded"), extra: []string{"benign-refused"},
			anchor: &anchor{label: "the benign p99 alone, alternated", m: m("host", "BenchmarkFairCPU/max-concurrent-4", "ms-p99-alone"), ratioUnit: "loaded/alone-p99"}, budget: "≤ 3× alone, 0 refused"},
	}},
	{id: "floor", title: "One-shot `hall run` against the floor", rows: []row{
		{label: "`hall run` of count_vowels, warm cache (median)", m: m("host", "BenchmarkHallRunFloor", "ms/hall-run"),
			anchor: &anchor{label: "the floor: plain Extism, same export, warm cache (median)", m: m("host", "BenchmarkHallRunFloor", "ms/floor"), ratioUnit: "hall/floor"},
			budget: "≤ 1.3×"},
	}},
	{id: "ledger", title: "Evidence ledger and verification", rows: []row{
		{label: "one receipt at a time, fsync each", m: m("internal/ledger", "BenchmarkAppend/SyncFull", "receipts/s"), extra: []string{"allocs/op"},
			anchor: anc("without fsync at commit (`SyncNormal`)", m("internal/ledger", "BenchmarkAppend/SyncNormal", "receipts/s"))},
		{label: "concurrent writers, group commit, fsync", m: m("internal/ledger", "BenchmarkAppendParallel/SyncFull", "receipts/s"), extra: []string{"writes/commit"},
			anchor: anc("one at a time (`Append/SyncFull`)", m("internal/ledger", "BenchmarkAppend/SyncFull", "receipts/s"))},
		{label: "decision + receipt pairs, concurrent, fsync", m: m("internal/ledger", "BenchmarkDispatchPair/SyncFull", "receipts/s"), extra: []string{"writes/commit"},
			anchor: anc("receipts alone (`AppendParallel/SyncFull`)", m("internal/ledger", "BenchmarkAppendParallel/SyncFull", "receipts/s"))},
		{label: "route decisions (2.5 kB, 4 envelopes), concurrent, fsync", m: m("internal/ledger", "BenchmarkRecordDecisionParallel", "decisions/s"), extra: []string{"cpu-µs/decision", "wchar-B/decision", "writes/commit"},
			anchor: anc("receipts alone (`AppendParallel/SyncFull`)", m("internal/ledger", "BenchmarkAppendParallel/SyncFull", "receipts/s"))},
		{label: "contained dispatch: decision + receipt in one write, concurrent, fsync", m: m("internal/ledger", "BenchmarkRecordDispatchParallel", "dispatches/s"), extra: []string{"cpu-µs/dispatch", "writes/commit"},
			anchor: anc("decision, then receipt (`DispatchPair/SyncFull`)", m("internal/ledger", "BenchmarkDispatchPair/SyncFull", "receipts/s"))},
		{label: "`hall audit verify`, 100,000 receipts in 8 tenants", m: m("internal/ledger", "BenchmarkVerifyReceipts", "s/verify"), extra: []string{"receipts/s", "B/op"},
			budget: "≤ 3 s"},
		{label: "verify 50,000 receipts + 50,000 decisions", m: m("internal/ledger", "BenchmarkVerifyEvidence", "entries/s"), extra: []string{"B/op"}},
		{label: "one Ed25519 signature check, Hall's verifier", m: m("internal/ledger", "BenchmarkSignatureVerify/table", "ns/op"),
			anchor: anc("`crypto/ed25519.Verify`", m("internal/ledger", "BenchmarkSignatureVerify/crypto-ed25519", "ns/op"))},
	}},
	{id: "http", title: "HTTP", rows: []row{
		{label: "`POST /wcp/run`, standard-Go summarizer, fresh instance", m: m("host/server", "BenchmarkRunHTTP/summarizer", "dispatches/s"), extra: []string{"p50-ms", "p99-ms"},
			anchor: anc("in process, no ledger (`DispatchParallel`)", m("host", "BenchmarkDispatchParallel", "dispatches/s")), budget: "≥ 400/s"},
		{label: "`POST /wcp/run`, small WAT worker, per-tenant instance reuse", m: m("host/server", "BenchmarkRunHTTP/wat-noop", "dispatches/s"), extra: []string{"p50-ms", "p99-ms"},
			anchor: anc("the ledger's share alone: decision and receipt in one write (`RecordDispatchParallel`)", m("internal/ledger", "BenchmarkRecordDispatchParallel", "dispatches/s")), budget: "≥ 3,000/s"},
		{label: "`POST /wcp/route`", m: m("host/server", "BenchmarkRouteHTTP", "decisions/s"), extra: []string{"p50-ms", "p99-ms", "allocs/op"},
			anchor: anc("the ledger's share alone: the same decisions (`RecordDecisionParallel`)", m("internal/ledger", "BenchmarkRecordDecisionParallel", "decisions/s")), budget: "≥ 6,000/s"},
		{label: "bearer token check (cached), parallel", m: m("internal/auth", "BenchmarkAuthenticate", "ns/op"), extra: []string{"allocs/op"}},
		{label: "`POST /wcp/run` traced (always-on, OTLP/HTTP to a local receiver), summarizer", m: m("host/server", "BenchmarkTracingOverhead/summarizer", "on-dispatches/s"), extra: []string{"overhead-iqr-%", "cpu-overhead-%", "cpu-overhead-iqr-%"},
			anchor: &anchor{label: "untraced, same worker, alternated", m: m("host/server", "BenchmarkTracingOverhead/summarizer", "off-dispatches/s"), ratioUnit: "overhead-%", pct: true}, budget: "≤ 5%"},
		{label: "`POST /wcp/run` traced (always-on, OTLP/HTTP to a local receiver), small WAT worker", m: m("host/server", "BenchmarkTracingOverhead/wat-noop", "on-dispatches/s"), extra: []string{"overhead-iqr-%", "cpu-overhead-%", "cpu-overhead-iqr-%"},
			anchor: &anchor{label: "untraced, same worker, alternated", m: m("host/server", "BenchmarkTracingOverhead/wat-noop", "off-dispatches/s"), ratioUnit: "overhead-%", pct: true}, budget: "≤ 5%"},
		{label: "the SDK's share alone: a traced dispatch's four spans and 17 attributes, made and exported over OTLP/HTTP to a local receiver (CPU µs per dispatch)", m: m("internal/tracing", "BenchmarkSpanExport", "cpu-µs/op"), extra: []string{"B/op", "allocs/op", "otlp-B/op"}},
	}},
	{id: "postgres", title: "PostgreSQL beside SQLite", rows: []row{
		{label: "`POST /wcp/route` on PostgreSQL, alternated with SQLite in 6 rounds (median)", m: m("host/server", "BenchmarkPostgresHTTP/route/alternating", "postgres-decisions/s"), extra: []string{"pct-of-sqlite", "roundtrips/op"},
			anchor: &anchor{label: "SQLite, same requests, alternated", m: m("host/server", "BenchmarkPostgresHTTP/route/alternating", "sqlite-decisions/s"), ratioUnit: "cost-x-sqlite"}, budget: "≥ 60% of SQLite"},
		{label: "`POST /wcp/run` on PostgreSQL, alternated with SQLite in 6 rounds (median)", m: m("host/server", "BenchmarkPostgresHTTP/run/alternating", "postgres-dispatches/s"), extra: []string{"pct-of-sqlite", "roundtrips/op"},
			anchor: &anchor{label: "SQLite, same requests, alternated", m: m("host/server", "BenchmarkPostgresHTTP/run/alternating", "sqlite-dispatches/s"), ratioUnit: "cost-x-sqlite"}, budget: "≥ 60% of SQLite"},
		{label: "`POST /wcp/route` on PostgreSQL, one run", m: m("host/server", "BenchmarkPostgresHTTP/route/postgres", "decisions/s"), extra: []string{"p50-ms", "p99-ms", "roundtrips/op"},
			anchor: anc("SQLite, one run", m("host/server", "BenchmarkPostgresHTTP/route/sqlite", "decisions/s")), budget: "≥ 60% of SQLite"},
		{label: "`POST /wcp/run` on PostgreSQL, one run", m: m("host/server", "BenchmarkPostgresHTTP/run/postgres", "dispatches/s"), extra: []string{"p50-ms", "p99-ms", "roundtrips/op"},
			anchor: anc("SQLite, one run", m("host/server", "BenchmarkPostgresHTTP/run/sqlite", "dispatches/s")), budget: "≥ 60% of SQLite"},
		{label: "`POST /wcp/run` on PostgreSQL, 8 tenants (8 chains locked apart)", m: m("host/server", "BenchmarkPostgresHTTP/run/postgres-8-tenants", "dispatches/s"), extra: []string{"p99-ms", "roundtrips/op"},
			anchor: anc("one tenant", m("host/server", "BenchmarkPostgresHTTP/run/postgres", "dispatches/s"))},
		{label: "`POST /wcp/run`, 3 nodes of one database on one 2-core machine, same 32 connections (contention, not scaling)", m: m("host/server", "BenchmarkPostgresHTTP/run/postgres-3-nodes", "dispatches/s"), extra: []string{"p99-ms", "roundtrips/op"},
			anchor: anc("one node", m("host/server", "BenchmarkPostgresHTTP/run/postgres", "dispatches/s"))},
	}},
	{id: "mcp", title: "MCP overhead", rows: []row{
		{label: "`tools/call` over Streamable HTTP, plain client", m: m("host/mcp", "BenchmarkMCPOverhead", "mcp-call-µs/call"),
			anchor: &anchor{label: "`POST /wcp/run`, same worker, alternated", m: m("host/mcp", "BenchmarkMCPOverhead", "wcp-run-µs/call"), ratioUnit: "overhead-%", pct: true},
			budget: "≤ 15%"},
		{label: "`tools/call` with the Go SDK's client", m: m("host/mcp", "BenchmarkMCPOverhead", "sdk-call-µs/call"),
			anchor: &anchor{label: "`POST /wcp/run`, same worker, alternated", m: m("host/mcp", "BenchmarkMCPOverhead", "wcp-run-µs/call"), ratioUnit: "sdk-overhead-%", pct: true}},
		{label: "process CPU per `tools/call`, plain client", m: m("host/mcp", "BenchmarkMCPOverhead", "mcp-cpu-µs/call"),
			anchor: &anchor{label: "process CPU per `POST /wcp/run`", m: m("host/mcp", "BenchmarkMCPOverhead", "wcp-cpu-µs/call"), ratioUnit: "cpu-overhead-%", pct: true}},
	}},
	{id: "sdk", title: "Guest SDK", rows: []row{
		{label: "1 MiB in and out of a standard-Go worker, plain Extism host (per echoed MiB)", m: m("sdk", "BenchmarkEcho1MiB", "MB/s"), extra: []string{"moved-MB/s"}},
	}},
}
