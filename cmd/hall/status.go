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
	Dir          string         `json:"dir"`
	Home         string         `json:"home"`
	Rules        statusRules    `json:"rules"`
	Workers      []statusWorker `json:"workers"`
	Capabilities []string       `json:"capabilities"`
	// Unrouted are the capabilities no rule routes to a worker serving
	// them: listed, enrolled, and never dispatched (fail-closed).
	Unrouted        []string        `json:"unrouted_capabilities"`
	SnapshotDigest  string          `json:"snapshot_digest"`
	SkippedRecords  []string        `json:"skipped_records"`
	ComplianceLevel string          `json:"compliance_level"`
	Enabled         map[string]bool `json:"enabled"`
	Ledger          statusLedger    `json:"ledger"`
	Online          bool            `json:"online"`
	Server          statusServer    `json:"server"`
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
	// SnapshotDigest is the snapshot the server decides under; SameHall
	// whether it is this folder's (absent when nothing answers).
	SnapshotDigest string `json:"snapshot_digest,omitempty"`
	SameHall       *bool  `json:"same_hall,omitempty"`
	Error          string `json:"error,omitempty"`
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
			&cli.StringFlag{Name: "addr", EnvVars: []string{"HALL_ADDR"}, Value: "127.0.0.1:8765", Usage: "`ADDRESS` of the hall serve to ask: host:port (plain HTTP), or a URL (https://host:port for a server with --tls-cert)"},
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
		Unrouted:       []string{},
		SkippedRecords: []string{},
		Online:         h.Online(),
		Ledger:         statusLedger{Path: filepath.Join(opts.Home, "hall.db")},
		Server:         statusServer{Address: c.String("addr")},
	}
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
	rules := h.Rules()
	for cp, species := range h.Registry().Capabilities() {
		rep.Capabilities = append(rep.Capabilities, cp)
		if !slices.ContainsFunc(species, func(sp string) bool { return rules.Routes(cp, sp) }) {
			rep.Unrouted = append(rep.Unrouted, cp)
		}
	}
	slices.Sort(rep.Capabilities)
	slices.Sort(rep.Unrouted)
	rep.SnapshotDigest = h.SnapshotDigest()
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
	if rep.Server.Answering && rep.Server.SnapshotDigest != "" {
		same := rep.Server.SnapshotDigest == rep.SnapshotDigest
		rep.Server.SameHall = &same
	}
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
	caps := make([]string, len(rep.Capabilities))
	for i, cp := range rep.Capabilities {
		caps[i] = cp
		if slices.Contains(rep.Unrouted, cp) {
			caps[i] += " (no rule routes it)"
		}
	}
	fmt.Fprintf(w, "  capabilities:  %s\n", orNone(strings.Join(caps, ", ")))
	if len(rep.Unrouted) > 0 {
		fmt.Fprintf(w, "                 a capability no rule routes is denied DENY_NO_MATCHING_RULE: add a rule to %s, or enroll again with hall enroll --add-rule MODULE.wasm (dev only)\n", rep.Rules.Path)
	}
	fmt.Fprintf(w, "  compliance:    %s\n", rep.ComplianceLevel)
	fmt.Fprintf(w, "  snapshot:      %s\n", rep.SnapshotDigest)
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
	case s.SameHall != nil && !*s.SameHall:
		fmt.Fprintf(w, "  server:        %s answers, but serves ANOTHER Hall (snapshot %s; this folder's is %s): it was started in another folder, with other files, or has not reloaded this folder's changes yet\n", serverURL(s.Address), s.SnapshotDigest, rep.SnapshotDigest)
	case s.Answering:
		fmt.Fprintf(w, "  server:        %s answers (version %s, %s)\n", serverURL(s.Address), s.Version, map[bool]string{true: "online", false: "offline"}[rep.Online])
	default:
		fmt.Fprintf(w, "  server:        nothing answers on %s (start one with hall serve)%s\n", serverURL(s.Address), errSuffix(s.Error))
	}
	return nil
}

// probeServer asks GET /health of a hall serve at addr, briefly.
func probeServer(ctx context.Context, addr string) statusServer {
	s := statusServer{Address: addr}
	ctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, serverURL(addr)+"/health", nil)
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
		Online         *bool  `json:"online"`
		Version        string `json:"version"`
		SnapshotDigest string `json:"snapshot_digest"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		s.Error = fmt.Sprintf("GET /health answered %s, not a Hall", resp.Status)
		return s
	}
	s.Answering, s.Online, s.Version, s.SnapshotDigest = true, body.Online, body.Version, body.SnapshotDigest
	return s
}

func listSuffix(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return " (" + strings.Join(ids, ", ") + ")"
}

// serverURL is the base URL of --addr: host:port means plain HTTP, a URL
// is taken as it is (https:// for hall serve --tls-cert).
func serverURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimRight(addr, "/")
	}
	return "http://" + addr
}

// errSuffix is ": why" for a probe that failed with a reason worth
// showing (a TLS or HTTP mismatch), "" for a plain refusal.
func errSuffix(e string) string {
	if e == "" || strings.Contains(e, "connection refused") {
		return ""
	}
	return ": " + e
}
