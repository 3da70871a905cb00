package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/wcphall/hall/internal/tracing"
)

// Tracing of hall serve, hall mcp and hall run (docs/OBSERVABILITY.md): off unless
// the standard OpenTelemetry environment or a flag asks for it. The
// variables are the SDK's own, read by the SDK and the OTLP exporters:
// OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (and
// their _HEADERS, _TIMEOUT, _INSECURE, _CERTIFICATE…),
// OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
// OTEL_TRACES_EXPORTER, OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*, OTEL_SDK_DISABLED.
//
// Tracing settings are not in hall.json on purpose: hall.json is
// governance (every key is part of the sealed snapshot, and changes what
// is decided or run), tracing only changes what an operator sees.

func otelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "otel-endpoint", Usage: "send traces over OTLP to `URL` (as OTEL_EXPORTER_OTLP_ENDPOINT: http://host:4318 for http/protobuf, http://host:4317 for grpc); default: the OTEL_* environment, tracing off when it names no exporter"},
		&cli.StringFlag{Name: "otel-protocol", Usage: "OTLP protocol: http/protobuf or grpc (as OTEL_EXPORTER_OTLP_PROTOCOL; default http/protobuf)"},
	}
}

// envFirst is the value of the first of names that is set and not empty.
func envFirst(names ...string) string {
	for _, n := range names {
		if v := strings.TrimSpace(os.Getenv(n)); v != "" {
			return v
		}
	}
	return ""
}

// tracerProvider builds the process's tracer provider from the flags and
// the OTEL_* environment: nil (tracing off) unless an exporter is named
// or an endpoint given. The returned function flushes and stops it.
func tracerProvider(c *cli.Context) (trace.TracerProvider, func(context.Context) error, error) {
	none := func(context.Context) error { return nil }
	if strings.EqualFold(envFirst("OTEL_SDK_DISABLED"), "true") {
		return nil, none, nil
	}
	endpoint := c.String("otel-endpoint")
	exporter := strings.ToLower(envFirst("OTEL_TRACES_EXPORTER"))
	switch exporter {
	case "none":
		return nil, none, nil
	case "", "otlp":
	default:
		return nil, none, failf("OTEL_TRACES_EXPORTER=%s: hall exports traces over OTLP only; set otlp (or leave it unset with an OTLP endpoint), or none", exporter)
	}
	if exporter == "" && endpoint == "" && envFirst("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, none, nil
	}
	protocol := c.String("otel-protocol")
	if protocol == "" {
		protocol = envFirst("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	ctx := contextOf(c)
	var exp sdktrace.SpanExporter
	var err error
	switch protocol {
	case "", "http/protobuf":
		var opts []otlptracehttp.Option
		if endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(strings.TrimSuffix(endpoint, "/")+"/v1/traces"))
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	case "grpc":
		var opts []otlptracegrpc.Option
		if endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(endpoint))
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	default:
		flag := "--otel-protocol"
		if !c.IsSet("otel-protocol") {
			flag = "OTEL_EXPORTER_OTLP_PROTOCOL"
		}
		return nil, none, failf("%s %q: give http/protobuf or grpc", flag, protocol)
	}
	if err != nil {
		return nil, none, failf("OTLP trace exporter: %v", err)
	}
	// service.name "hall" unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES say otherwise (the environment wins).
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "hall"), attribute.String("service.version", buildVersion())),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, none, failf("OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME: %v", err)
	}
	// The sampler comes from OTEL_TRACES_SAMPLER (default parentbased_always_on),
	// the batching from OTEL_BSP_*: the SDK reads both.
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}

// traceparentFromEnv returns ctx with the remote parent that the
// TRACEPARENT and TRACESTATE environment variables carry (OpenTelemetry's
// environment variables as context propagation carriers): a script or CI
// job that traces itself makes hall run's trace a child of its own. An
// absent or malformed TRACEPARENT is no parent.
func traceparentFromEnv(ctx context.Context) context.Context {
	return tracing.Extract(ctx, propagation.MapCarrier{"traceparent": os.Getenv("TRACEPARENT"), "tracestate": os.Getenv("TRACESTATE")})
}

// withTracing is logger with trace_id and span_id on every record logged
// under a traced context (internal/tracing.LogHandler).
func withTracing(logger *slog.Logger) *slog.Logger {
	return slog.New(tracing.LogHandler(logger.Handler()))
}

// tracingFlushTimeout bounds the flush of buffered spans at exit.
const tracingFlushTimeout = 5 * time.Second

// shutdownTracing flushes the spans still buffered, bounded, and reports
// a failure on logger.
func shutdownTracing(logger *slog.Logger, stop func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
	defer cancel()
	if err := stop(ctx); err != nil {
		logger.Error("hall: flushing traces", "error", fmt.Sprint(err))
	}
}
