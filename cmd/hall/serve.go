package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
)

func init() { extraCommands = append(extraCommands, serveCommand(), tokensCommand()) }

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the Hall API over HTTP (enrollment, discovery, governed dispatch, receipts, metrics)",
		Description: "Loads rules.json, enrolled/ and the state directory like the other commands, and serves\n" +
			"the endpoints of docs/HTTP.md. Every endpoint but /health and /metrics needs a bearer token:\n" +
			"create one with `hall tokens create --admin` or `--tenant ID`. Changes to the rules, hall.json,\n" +
			"enrolled/ and the artifact store (by `hall enroll`, an editor or a deploy) are applied without a\n" +
			"restart; SIGHUP reloads them too. A change that does not load is logged and the last good state\n" +
			"keeps serving. SIGINT or SIGTERM stops accepting connections and new dispatches (503 HALL_CLOSED)\n" +
			"and waits, up to --shutdown-grace, for dispatches in flight to finish and commit their receipts;\n" +
			"those still running then are cancelled and recorded with outcome CANCELLED before the ledger closes.\n" +
			"Logs go to standard error, one record per line: JSON by default, --log-format text for key=value\n" +
			"lines; the first record is the startup summary (address, home, rules, workers, compliance level).\n" +
			"The API is described at GET /openapi.json.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "addr", EnvVars: []string{"HALL_ADDR"}, Value: "127.0.0.1:8765", Usage: "listen `ADDRESS` (host:port; port 0 picks a free one)"},
			&cli.IntFlag{Name: "max-concurrent", Usage: "dispatch slots (dispatches running at once), shared fairly between tenants; a dispatch waits for one within its time limit (default 16 per CPU)"},
			&cli.Float64Flag{Name: "tenant-share", Usage: "share of the dispatch slots one tenant may hold while another tenant wants one, in (0, 1] (default 0.5; 1: no cap)"},
			&cli.Int64Flag{Name: "memory-budget-mb", Usage: "host memory in `MiB` all concurrent dispatches may take together; wins over hall.json's limits.memory_budget_mb (default: that, else half of physical memory)"},
			&cli.Int64Flag{Name: "max-body", Value: server.DefaultMaxBody, Usage: "largest JSON request body in `BYTES`"},
			&cli.Int64Flag{Name: "max-upload", Value: server.DefaultMaxUpload, Usage: "largest module upload in `BYTES`"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "how long shutdown waits for HTTP requests in flight to be answered"},
			&cli.DurationFlag{Name: "shutdown-grace", Value: host.DefaultShutdownGrace, Usage: "how long shutdown lets dispatches in flight finish before cancelling them (each then recorded CANCELLED); 0: cancel at once"},
			&cli.IntFlag{Name: "mcp-sessions-per-token", Value: server.DefaultMCPSessionsPerToken, Usage: "MCP sessions one token may hold open over /mcp; one more is refused 429 SESSION_QUOTA"},
			&cli.IntFlag{Name: "console-sessions-per-token", Value: server.DefaultConsoleSessionsPerToken, Usage: "console sessions one token may hold; signing in once more ends its oldest"},
			&cli.IntFlag{Name: "signin-per-minute", Value: server.DefaultSigninPerMinute, Usage: "console sign-in attempts per minute from one address, after a burst of as many (429 SIGNIN_THROTTLED beyond); -1: no throttle"},
			&cli.StringSliceFlag{Name: "cors-origin", Usage: "allow the pages of browser `ORIGIN` (scheme://host[:port], or \"*\" for any, never with credentials) to call the API; repeat for several; added to hall.json's http.cors_origins (default: none)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", EnvVars: []string{"HALL_LOG_FORMAT"}, Value: "json", Usage: "json (one JSON object per line) or text (key=value lines)"},
			&cli.BoolFlag{Name: "no-migrate", Usage: "with --database-url: refuse to start on a database whose schema is not this Hall's instead of migrating it (hall db migrate does it)"},
		}, append(append(otelFlags(), tlsFlags()...), hallFlags()...)...),
		Action: func(c *cli.Context) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return failf("--log-level: %v", err)
			}
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(100) // a long-running server: the default
			}
			logger, err := serverLogger(c, level)
			if err != nil {
				return err
			}
			opts, err := serveOptions(c)
			if err != nil {
				return err
			}
			for _, o := range c.StringSlice("cors-origin") {
				if err := host.CheckCORSOrigin(o); err != nil {
					return failf("--cors-origin: %v", err)
				}
			}
			tp, stopTracing, err := tracerProvider(c) // otel.go
			if err != nil {
				return err
			}
			if tp != nil {
				logger = withTracing(logger)
				defer shutdownTracing(logger, stopTracing)
			}
			opts.Logger, opts.Compiler, opts.TracerProvider = logger, selfCompiler(), tp
			h, err := openHallWith(c, opts)
			if err != nil {
				return err
			}
			defer closeDatabase(c) // after the Hall (defers run last first)
			defer h.Close(context.Background())
			tokens, err := openTokens(c)
			if err != nil {
				return err
			}
			defer tokens.Close()
			handler := server.New(h, server.Config{
				Tokens:    tokens,
				MaxBody:   c.Int64("max-body"),
				MaxUpload: c.Int64("max-upload"),
				Logger:    logger,
				Version:   buildVersion(),
				Quotas: server.Quotas{
					MCPSessionsPerToken:     c.Int("mcp-sessions-per-token"),
					ConsoleSessionsPerToken: c.Int("console-sessions-per-token"),
					SigninPerMinute:         c.Int("signin-per-minute"),
				},
				// Besides hall.json's http.cors_origins (docs/HTTP.md, "CORS").
				CORSOrigins: c.StringSlice("cors-origin"),
			})
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return failf("--addr: %v", err)
			}
			ctx, stop := signal.NotifyContext(contextOf(c), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ln, scheme, stopTLS, err := secureListener(ctx, c, ln, logger)
			if err != nil {
				return err
			}
			defer stopTLS()
			// A signal shuts the Hall down at once, beside the HTTP server's
			// own shutdown: it stops admitting and grants the dispatches in
			// flight their grace period, then records those it cancels
			// (host.Hall.Shutdown). The ledger stays open for the requests
			// still being answered; the deferred Close releases it.
			drained := make(chan error, 1)
			shutdownOnSignal := context.AfterFunc(ctx, func() { drained <- h.Shutdown(context.Background()) })
			reloads := reloadOnChange(ctx, h, logger)
			defer reloads()
			logStartup(logger, h, scheme, ln.Addr().String())
			logKeyStanding(ctx, logger, h)
			err = server.Serve(ctx, ln, handler, server.ServeOptions{
				WriteTimeout:    writeTimeout(h.Config()),
				ShutdownTimeout: c.Duration("shutdown-timeout"),
				Logger:          logger,
			})
			if !shutdownOnSignal() {
				// The signal came: Shutdown runs; wait for its end.
				if cerr := <-drained; cerr != nil {
					logger.Error("hall: shutdown", "error", cerr.Error())
					err = errors.Join(err, cerr)
				}
			}
			if err != nil {
				return failf("%v", err)
			}
			logger.Info("hall: stopped; every dispatch admitted finished or was recorded CANCELLED")
			return nil
		},
	}
}

// serveOptions are the Hall's dispatch bounds given as flags, checked:
// each refusal names the flag and what it takes.
func serveOptions(c *cli.Context) (host.Options, error) {
	o := host.Options{MaxConcurrent: c.Int("max-concurrent"), TenantShare: c.Float64("tenant-share")}
	switch g := c.Duration("shutdown-grace"); {
	case g < 0:
		return o, failf("--shutdown-grace: %v is negative; give how long dispatches in flight may run on at shutdown (e.g. 15s), or 0 to cancel them at once", g)
	case g == 0:
		o.ShutdownGrace = -1 // host: no wait
	default:
		o.ShutdownGrace = g
	}
	if o.MaxConcurrent < 0 {
		return o, failf("--max-concurrent: %d is negative; give the number of dispatch slots, or 0 for 16 per CPU", o.MaxConcurrent)
	}
	if o.TenantShare < 0 || o.TenantShare > 1 {
		return o, failf("--tenant-share: %v is not a share of the dispatch slots; give a fraction in (0, 1] (0.5: half the slots; 1: no cap), or leave it out", o.TenantShare)
	}
	mb := c.Int64("memory-budget-mb")
	if err := host.CheckMemoryBudgetMB("--memory-budget-mb", mb); err != nil {
		return o, failf("%v", err)
	}
	o.MemoryBudget = uint64(mb) << 20
	return o, nil
}

// reloadOnChange applies changes made on disk while the server runs: it
// watches the Hall's files and reloads on SIGHUP, until ctx is done. The
// returned function stops both and waits for them.
func reloadOnChange(ctx context.Context, h *host.Hall, logger *slog.Logger) (wait func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		err := h.Watch(ctx, func(err error) { logger.Error("hall: reload", "error", err.Error()) })
		if err != nil && ctx.Err() == nil {
			logger.Error("hall: watching the Hall's files failed; changes on disk apply on SIGHUP only", "error", err.Error())
		}
	})
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	wg.Go(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := h.Reload(ctx); err != nil {
					logger.Error("hall: SIGHUP: reload failed; the previous rules, configuration and workers keep serving", "error", err.Error())
					continue
				}
				args := []any{"rules", len(h.Rules().Rules), "workers", h.Registry().Len()}
				if p := h.Problems(); p != nil {
					args = append(args, "problems", p.Error())
				}
				logger.Info("hall: SIGHUP: reloaded", args...)
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// writeTimeout leaves a response time for the longest dispatch the Hall
// allows plus a margin for deciding and committing the receipt.
func writeTimeout(cfg host.Config) time.Duration {
	limit := host.DefaultTimeout
	if cfg.Limits.TimeoutMS > 0 {
		limit = time.Duration(cfg.Limits.TimeoutMS) * time.Millisecond
	}
	return max(2*time.Minute, limit+time.Minute)
}
