package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/ledger"
)

// serverLogger is the one logger of `hall serve`: every line it writes,
// the startup summary and the load problems included, has the format
// --log-format names.
func serverLogger(c *cli.Context, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "json":
		return slog.New(slog.NewJSONHandler(c.App.ErrWriter, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(c.App.ErrWriter, opts)), nil
	default:
		return nil, usageErrorf("serve", "--log-format %q: json or text", c.String("log-format"))
	}
}

// logStartup is the first record of a serving Hall: where it listens and
// what it serves.
func logStartup(logger *slog.Logger, h *host.Hall, scheme, addr string) {
	base := scheme + "://" + addr
	level, _ := server.Compliance(h)
	opts := h.Options()
	logger.Info("hall: serving the Hall API",
		"url", base,
		"console", base+"/console",
		"address", addr,
		"home", opts.Home,
		"rules_file", opts.Rules,
		"rules", len(h.Rules().Rules),
		"workers", h.Registry().Len(),
		"capabilities", len(h.Registry().Capabilities()),
		"compliance_level", level,
		"online", h.Online(),
		"max_concurrent", h.Admission().Slots,
		"tenant_max_concurrent", h.Admission().TenantSlots,
		"memory_budget", memoryBudgetText(h.MemoryBudget()),
		"version", buildVersion(),
		"openapi", base+"/openapi.json",
	)
}

// memoryBudgetText is the Hall-wide memory budget as the startup summary
// shows it.
func memoryBudgetText(b uint64) string {
	if b == 0 {
		return "half of physical memory (default)"
	}
	return fmt.Sprintf("%d MiB", b>>20)
}

// logKeyStanding warns when this node's signing key may not sign for the
// ledger (a node of a shared database whose key is not admitted, or was
// revoked), with the command that admits it: until then the node decides
// nothing (503 KEY_NOT_ADMITTED) and /health says so.
func logKeyStanding(ctx context.Context, logger *slog.Logger, h *host.Hall) {
	ev, err := h.Evidence()
	if err != nil {
		return
	}
	ks, ok := ev.(interface {
		KeyStanding(ctx context.Context) (ledger.KeyStanding, error)
	})
	if !ok {
		return
	}
	st, err := ks.KeyStanding(ctx)
	if err != nil || st.Signs() {
		return
	}
	if st.Admit != "" {
		logger.Warn("hall: this node's signing key is not admitted to the shared ledger's keyring: it decides nothing (503 KEY_NOT_ADMITTED) until an administrator runs: "+st.Admit,
			"key_id", st.KeyID, "standing", st.Standing, "admit", st.Admit)
		return
	}
	logger.Warn("hall: this node's signing key was "+st.Standing+": it decides nothing (503 KEY_NOT_ADMITTED); give it a new key and have that admitted (hall keys admit)",
		"key_id", st.KeyID, "standing", st.Standing)
}
