// Package tracing holds what the Hall's packages share to emit OpenTelemetry
// spans: the instrumentation scope, the attribute keys of docs/OBSERVABILITY.md,
// W3C trace-context propagation, and a log handler that puts the current
// trace and span ids on every log record.
//
// Tracing is off unless an embedder gives host.Options.TracerProvider (the
// hall CLI builds one from the OTEL_* environment variables). Off, every
// helper here is a nil check: no span, no attribute, no allocation
// (BenchmarkHallDecide and BenchmarkDispatch in host measure it).
//
// Nothing here sets process-wide OpenTelemetry state (otel.SetTracerProvider,
// otel.SetTextMapPropagator): only cmd/hall may, and it does not need to.
//
// # Notes
//
//   - Attributes name what was decided and run (ids, codes, digests, sizes),
//     never payloads, secrets, headers, query strings or configuration
//     values; TestTracingNeverExportsPayload asserts it against the
//     OpenTelemetry Collector.
package tracing
