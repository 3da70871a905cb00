package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/auth"
	"github.com/wcphall/hall/host/server"
)

func init() { extraCommands = append(extraCommands, serveCommand(), tokensCommand()) }

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the Hall API over HTTP (enrollment, discovery, governed dispatch, receipts, metrics)",
		Description: "Loads rules.json, enrolled/ and the state directory like the other commands, and serves\n" +
			"the endpoints of docs/HTTP.md. Every endpoint but /health and /metrics needs a bearer token:\n" +
			"create one with `hall tokens create --admin` or `--tenant ID`. SIGINT or SIGTERM stops accepting\n" +
			"connections and waits for dispatches in flight to finish and commit their receipts.\n" +
			"Logs go to standard error as JSON lines.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8765", Usage: "listen `ADDRESS` (host:port; port 0 picks a free one)"},
			&cli.IntFlag{Name: "max-concurrent", Usage: "bound on dispatches in flight; more are refused with 503 (default 16 per CPU)"},
			&cli.Int64Flag{Name: "max-body", Value: server.DefaultMaxBody, Usage: "largest JSON request body in `BYTES`"},
			&cli.Int64Flag{Name: "max-upload", Value: server.DefaultMaxUpload, Usage: "largest module upload in `BYTES`"},
			&cli.DurationFlag{Name: "shutdown-timeout", Value: 30 * time.Second, Usage: "how long shutdown waits for requests in flight"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
		}, hallFlags()...),
		Action: func(c *cli.Context) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return failf("--log-level: %v", err)
			}
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(100) // a long-running server: the default
			}
			logger := slog.New(slog.NewJSONHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
			h, err := openHallWith(c, host.Options{Logger: logger})
			if err != nil {
				return err
			}
			defer h.Close(context.Background())
			tokens, err := auth.Open(filepath.Join(c.String("home"), auth.DBFile))
			if err != nil {
				return failf("%v", err)
			}
			defer tokens.Close()
			handler := server.New(h, server.Config{
				Tokens:        tokens,
				MaxBody:       c.Int64("max-body"),
				MaxUpload:     c.Int64("max-upload"),
				MaxConcurrent: c.Int("max-concurrent"),
				Logger:        logger,
				Version:       buildVersion(),
			})
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return failf("--addr: %v", err)
			}
			ctx, stop := signal.NotifyContext(contextOf(c), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(c.App.ErrWriter, "hall: serving the Hall API on http://%s\n", ln.Addr())
			err = server.Serve(ctx, ln, handler, server.ServeOptions{
				WriteTimeout:    writeTimeout(h.Config()),
				ShutdownTimeout: c.Duration("shutdown-timeout"),
				Logger:          logger,
			})
			if err != nil {
				return failf("%v", err)
			}
			fmt.Fprintln(c.App.ErrWriter, "hall: stopped; dispatches in flight completed")
			return nil
		},
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
