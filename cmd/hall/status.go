package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/ledger"
)

func init() { extraCommands = append(extraCommands, statusCommand()) }

// statusReport is the JSON form of `hall status`.
type statusReport struct {
	Dir             string          `json:"dir"`
	Home            string          `json:"home"`
	Rules           statusRules     `json:"rules"`
	Workers         []statusWorker  `json:"workers"`
	Capabilities    []string        `json:"capabilities"`
	SkippedRecords  []string        `json:"skipped_records"`
	ComplianceLevel string          `json:"compliance_level"`
	Enabled         map[string]bool `json:"enabled"`
	Ledger          statusLedger    `json:"ledger"`
	Online          bool            `json:"online"`
	Server          statusServer    `json:"server"`
	// Snapshot is the digest of the snapshot in force (what a node of a
	// shared database serves once it has loaded every change).
	Snapshot string `json:"snapshot"`
	// Database says where the shared state is ("" for the files of
	// --home).
	Database string `json:"database,omitempty"`
}

type statusRules struct {
	Path     string `json:"path"`
	Exists   bool   `json:"exists"`
	Count    int    `json:"count"`
	Shadowed int    `json:"shadowed"`
}

type statusWorker struct {
	WorkerID     string   `json:"worker_id"`
	Species      string   `json:"worker_species_id"`
	Capabilities []string `json:"capabilities"`
	ArtifactHash string   `json:"artifact_hash"`
}

type statusLedger struct {
	Path              string `json:"path"`
	HeadReceiptID     string `json:"head_receipt_id,omitempty"`
	HeadReceiptHash   string `json:"head_receipt_hash,omitempty"`
	HeadReceiptTenant string `json:"head_receipt_tenant,omitempty"`
	Changes           int    `json:"changes"`
	HeadChangeID      string `json:"head_change_id,omitempty"`
	HeadChangeHash    string `json:"head_change_hash,omitempty"`
}

type statusServer struct {
	Address   string `json:"address"`
	Answering bool   `json:"answering"`
	Online    *bool  `json:"online,omitempty"`
	Version   string `json:"version,omitempty"`
	Error     string `json:"error,omitempty"`
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show this Hall: rules, workers, capabilities, compliance level, ledger head, and whether a server answers",
		ArgsUsage: " ",
		Description: "Reads the same files as the other commands (rules.json, enrolled/, hall.json, the state directory)\n" +
			"and asks GET /health of the server at --addr (HALL_ADDR; what `hall serve` listens on by default).\n" +
			"Online is the server's state when one answers; a Hall the CLI opens is always online.",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "addr", EnvVars: []string{"HALL_ADDR"}, Value: "127.0.0.1:8765", Usage: "`ADDRESS` of the hall serve to ask"},
			&cli.BoolFlag{Name: "json", Usage: "print the status as JSON"},
		}, hallFlags()...),
		Action: statusAction,
	}
}

func statusAction(c *cli.Context) error {
	ctx := contextOf(c)
	_, statErr := os.Stat(c.String("rules"))
	h, err := openHallWith(c, host.Options{MissingRulesOK: true})
	if err != nil {
		return err
	}
	defer h.Close(ctx)
	opts := h.Options()
	dir, _ := filepath.Abs(".")
	rep := statusReport{
		Dir:            dir,
		Home:           opts.Home,
		Rules:          statusRules{Path: opts.Rules, Exists: statErr == nil, Count: len(h.Rules().Rules), Shadowed: len(h.Rules().Shadows)},
		Workers:        []statusWorker{},
		Capabilities:   []string{},
		SkippedRecords: []string{},
		Online:         h.Online(),
		Ledger:         statusLedger{Path: filepath.Join(opts.Home, "hall.db")},
		Server:         statusServer{Address: c.String("addr")},
	}
	rep.Snapshot = h.SnapshotDigest()
	if databaseURL(c) != "" {
		// The rules, records and evidence are in the database.
		rep.Database = "postgres (--database-url)"
		rep.Rules.Path, rep.Rules.Exists, statErr = "db:rules", len(h.Rules().Rules) > 0, nil
		rep.Ledger.Path = rep.Database
	}
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return failf("--rules: %v", statErr)
	}
	for _, r := range h.Registry().Records() {
		rep.Workers = append(rep.Workers, statusWorker{r.WorkerID, r.WorkerSpeciesID, r.Capabilities, r.ArtifactHash})
	}
	for cp := range h.Registry().Capabilities() {
		rep.Capabilities = append(rep.Capabilities, cp)
	}
	slices.Sort(rep.Capabilities)
	if p := h.Problems(); p != nil {
		for _, e := range unjoin(p) {
			rep.SkippedRecords = append(rep.SkippedRecords, e.Error())
		}
	}
	rep.ComplianceLevel, rep.Enabled = server.Compliance(h)
	ev, err := h.Evidence()
	if err != nil {
		return failf("evidence ledger: %v", err)
	}
	if rs, err := ev.Receipts(ctx, ledger.Filter{Limit: 1}); err != nil {
		return failf("evidence ledger: %v", err)
	} else if len(rs) == 1 {
		rep.Ledger.HeadReceiptID, rep.Ledger.HeadReceiptHash, rep.Ledger.HeadReceiptTenant = rs[0].ReceiptID, rs[0].ReceiptHash, rs[0].TenantID
	}
	if chs, err := ev.Changes(ctx, ""); err != nil {
		return failf("evidence ledger: %v", err)
	} else if n := len(chs); n > 0 {
		rep.Ledger.Changes = n
		rep.Ledger.HeadChangeID, rep.Ledger.HeadChangeHash = chs[n-1].ChangeID, chs[n-1].Hash
	}
	rep.Server = probeServer(ctx, c.String("addr"))
	if rep.Server.Online != nil {
		rep.Online = *rep.Server.Online
	}

	if c.Bool("json") {
		return printJSON(c, rep)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "hall status of %s\n", rep.Dir)
	if rep.Rules.Exists {
		fmt.Fprintf(w, "  rules:         %s: %d rules, %d shadowed\n", rep.Rules.Path, rep.Rules.Count, rep.Rules.Shadowed)
	} else {
		fmt.Fprintf(w, "  rules:         %s: none yet (every request is denied; the first hall enroll here creates it)\n", rep.Rules.Path)
	}
	ids := make([]string, len(rep.Workers))
	for i, wk := range rep.Workers {
		ids[i] = wk.WorkerID
	}
	fmt.Fprintf(w, "  workers:       %d enrolled%s\n", len(ids), listSuffix(ids))
	if len(rep.SkippedRecords) > 0 {
		fmt.Fprintf(w, "  skipped:       %d records that do not load (see hall route or the lines above)\n", len(rep.SkippedRecords))
	}
	fmt.Fprintf(w, "  capabilities:  %s\n", orNone(strings.Join(rep.Capabilities, ", ")))
	fmt.Fprintf(w, "  compliance:    %s\n", rep.ComplianceLevel)
	fmt.Fprintf(w, "  snapshot:      %s\n", rep.Snapshot)
	fmt.Fprintf(w, "  ledger:        %s\n", rep.Ledger.Path)
	if rep.Ledger.HeadReceiptID != "" {
		fmt.Fprintf(w, "    head receipt: %s (tenant %s) %s\n", rep.Ledger.HeadReceiptID, rep.Ledger.HeadReceiptTenant, rep.Ledger.HeadReceiptHash)
	} else {
		fmt.Fprintln(w, "    head receipt: none (nothing has run)")
	}
	if rep.Ledger.HeadChangeID != "" {
		fmt.Fprintf(w, "    change chain: %d changes, head %s %s\n", rep.Ledger.Changes, rep.Ledger.HeadChangeID, rep.Ledger.HeadChangeHash)
	} else {
		fmt.Fprintln(w, "    change chain: empty")
	}
	switch s := rep.Server; {
	case s.Answering:
		fmt.Fprintf(w, "  server:        http://%s answers (version %s, %s)\n", s.Address, s.Version, map[bool]string{true: "online", false: "offline"}[rep.Online])
	default:
		fmt.Fprintf(w, "  server:        nothing answers on http://%s (start one with hall serve)\n", s.Address)
	}
	return nil
}

// probeServer asks GET /health of a hall serve at addr, briefly.
func probeServer(ctx context.Context, addr string) statusServer {
	s := statusServer{Address: addr}
	ctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/health", nil)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.Error = err.Error()
		return s
	}
	defer resp.Body.Close()
	var body struct {
		Online  *bool  `json:"online"`
		Version string `json:"version"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		s.Error = fmt.Sprintf("GET /health answered %s, not a Hall", resp.Status)
		return s
	}
	s.Answering, s.Online, s.Version = true, body.Online, body.Version
	return s
}

func listSuffix(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " (" + strings.Join(ids, ", ") + ")"
}
