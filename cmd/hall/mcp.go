package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	hallmcp "github.com/wcphall/hall/host/mcp"
)

func init() { extraCommands = append(extraCommands, mcpCommand()) }

func mcpCommand() *cli.Command {
	return &cli.Command{
		Name:  "mcp",
		Usage: "serve the Hall's capabilities as MCP tools over standard input and output (for agents)",
		Description: "One tool per capability that a rule routes to an enrolled worker; every call is a governed\n" +
			"dispatch, as `hall run` (docs/MCP.md). Calls run as the tenant of --tenant, HALL_TENANT, \"tenant\" in\n" +
			"mcp.json or \"default_tenant\" in hall.json. env, data label, tenant risk and QoS come from the flags,\n" +
			"else mcp.json, else dev/INTERNAL/low/P2; a client may set them per call only where --allow-override\n" +
			"(or mcp.json allow_overrides) lists them. Changes to the rules and enrolled workers reach the client\n" +
			"as notifications/tools/list_changed. Standard output carries the protocol only; logs go to standard\n" +
			"error.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "tenant", EnvVars: []string{"HALL_TENANT"}, Usage: "tenant `ID` of every call, e.g. org.acme"},
			&cli.StringFlag{Name: "env", Usage: "environment: dev, stage, prod or edge (default dev)"},
			&cli.StringFlag{Name: "data-label", Usage: "PUBLIC, INTERNAL or RESTRICTED (default INTERNAL)"},
			&cli.StringFlag{Name: "tenant-risk", Usage: "low, medium or high (default low)"},
			&cli.StringFlag{Name: "qos", Usage: "QoS class P0..P3 (default P2)"},
			&cli.StringSliceFlag{Name: "allow-override", Usage: "`FIELD` a client may set per call in _meta: env, data_label, tenant_risk, qos_class (repeatable)"},
			&cli.StringFlag{Name: "log-level", Value: "warn", Usage: "debug, info, warn or error"},
		}, append(otelFlags(), hallFlags()...)...),
		Action: func(c *cli.Context) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
				return failf("--log-level: %v", err)
			}
			logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))
			tp, stopTracing, err := tracerProvider(c) // otel.go
			if err != nil {
				return err
			}
			if tp != nil {
				logger = withTracing(logger)
				defer shutdownTracing(logger, stopTracing)
			}
			h, err := openHallWith(c, host.Options{Logger: logger, TracerProvider: tp})
			if err != nil {
				return err
			}
			defer h.Close(context.Background())
			cfg, err := hallmcp.LoadConfig(h.Options().Dir)
			if err != nil {
				return failf("%v", err)
			}
			for flag, dst := range map[string]*string{"tenant": &cfg.Tenant, "env": &cfg.Env, "data-label": &cfg.DataLabel, "tenant-risk": &cfg.TenantRisk, "qos": &cfg.QoSClass} {
				if c.IsSet(flag) {
					*dst = c.String(flag)
				}
			}
			if c.IsSet("allow-override") {
				cfg.AllowOverrides = c.StringSlice("allow-override")
			}
			if cfg.Tenant == "" {
				cfg.Tenant = configDefaultTenant(h.Config())
			}
			if err := cfg.Check(); err != nil {
				return failf("%v", err)
			}
			if cfg.Tenant == "" {
				return failf("no tenant: give --tenant ID, set HALL_TENANT, or \"tenant\" in %s", hallmcp.ConfigFile)
			}
			ctx, stop := signal.NotifyContext(contextOf(c), os.Interrupt, syscall.SIGTERM)
			defer stop()
			reloads := reloadOnChange(ctx, h, logger)
			defer reloads()
			s := hallmcp.New(h, hallmcp.Options{Config: cfg, Version: buildVersion(), Logger: logger})
			defer s.Close()
			if err := s.ServeStdio(ctx, io.NopCloser(c.App.Reader), nopWriteCloser{c.App.Writer}); err != nil {
				return failf("mcp: %v", err)
			}
			return nil
		},
	}
}

// configDefaultTenant is hall.json's default_tenant, when the Hall's
// configuration has one.
func configDefaultTenant(cfg host.Config) string {
	b, err := json.Marshal(cfg)
	if err != nil {
		return ""
	}
	var v struct {
		DefaultTenant string `json:"default_tenant"`
	}
	json.Unmarshal(b, &v)
	return v.DefaultTenant
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
