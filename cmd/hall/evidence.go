package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/ledger"
)

func init() {
	extraCommands = append(extraCommands, receiptsCommand(), auditCommand(), keysCommand(), replayCommand())
}

// auditLedger is what the evidence commands use of the state directory's
// evidence store (host.OpenLocalEvidence): the seam's EvidenceStore and the
// local ledger's audit abilities.
type auditLedger interface {
	host.EvidenceStore
	ReceiptSeq(ctx context.Context, f ledger.Filter) iter.Seq2[*ledger.Receipt, error]
	VerifyWith(ctx context.Context, o ledger.VerifyOptions) (*ledger.Report, error)
	ExportBundle(ctx context.Context, dir string) (*ledger.BundleSummary, error)
	Checkpoint(ctx context.Context) (*ledger.Checkpoint, error)
	KeyID() string
	PublicKey() ed25519.PublicKey
	KeySet(ctx context.Context) (*ledger.KeySet, error)
	RotateKey(ctx context.Context, actor string) (*ledger.Change, error)
	AdmitKey(ctx context.Context, pub ed25519.PublicKey, node, actor string) (*ledger.Change, error)
	RevokeKey(ctx context.Context, keyID, actor, reason string) (*ledger.Change, error)
	KeyStanding(ctx context.Context) (ledger.KeyStanding, error)
}

// openLedger opens the evidence ledger of the state directory; reading
// commands open it read-only and do not create it.
func openLedger(c *cli.Context, readOnly bool) (auditLedger, error) {
	opts := keyOptions(c)
	opts.ReadOnly = readOnly
	return openLedgerWith(c, opts)
}

func openLedgerWith(c *cli.Context, opts host.LocalStoreOptions) (auditLedger, error) {
	if databaseURL(c) != "" {
		st, err := postgresStores(c, opts)
		if err != nil {
			return nil, err
		}
		l, ok := st.Evidence.(auditLedger)
		if !ok {
			return nil, failf("the evidence store of --database-url cannot be audited by this command")
		}
		return l, nil
	}
	s, err := host.OpenLocalEvidence(c.String("home"), opts)
	if errors.Is(err, host.ErrNoEvidence) {
		return nil, failf("%v (or pass --home / HALL_HOME)", err)
	}
	if err != nil {
		return nil, failf("%s", safeMsg(err.Error()))
	}
	l, ok := s.(auditLedger)
	if !ok {
		s.Close()
		return nil, failf("the evidence store of %s cannot be audited by this command", c.String("home"))
	}
	return l, nil
}

func receiptsCommand() *cli.Command {
	return &cli.Command{
		Name:  "receipts",
		Usage: "list evidence receipts of dispatches (newest first)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "correlation-id", Usage: "only this correlation `ID`"},
			&cli.StringFlag{Name: "tenant", Usage: "only this tenant"},
			&cli.StringFlag{Name: "worker", Usage: "only this worker id"},
			&cli.StringFlag{Name: "since", Usage: "only receipts since `WHEN`: a duration back from now (90m, 1h, 2d) or an RFC 3339 time (2026-12-07T10:00:00Z) or date (2026-12-07, UTC)"},
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "at most `N` receipts (0: all)"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			homeFlag(), databaseFlag(),
		},
		Action: func(c *cli.Context) error {
			s, err := openLedger(c, true)
			if err != nil {
				return err
			}
			defer s.Close()
			if c.Int("limit") < 0 {
				return failf("--limit must be 0 (all) or positive")
			}
			f := ledger.Filter{CorrelationID: c.String("correlation-id"), TenantID: c.String("tenant"), WorkerID: c.String("worker"), Limit: c.Int("limit")}
			if w := c.String("since"); w != "" {
				t, err := parseSince(w, time.Now())
				if err != nil {
					return failf("%v", err)
				}
				f.Since = t
			}
			seq := s.ReceiptSeq(contextOf(c), f)
			if c.Bool("json") {
				// One receipt at a time: memory stays flat however many
				// there are (issue 12).
				return printReceiptsJSON(c, seq)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RECEIPT\tDISPATCHED\tTENANT\tWORKER\tCAPABILITY\tOUTCOME\tMS\tCORRELATION")
			n := 0
			for r, err := range seq {
				if err != nil {
					tw.Flush()
					return failf("%v", err)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\n", safe(r.ReceiptID), r.DispatchedAt.Format(time.RFC3339), safe(r.TenantID),
					safe(r.WorkerID), safe(r.CapabilityID), safe(r.Outcome), r.DurationMS, safe(r.CorrelationID))
				n++
			}
			tw.Flush()
			fmt.Fprintf(c.App.ErrWriter, "%d receipt(s)\n", n)
			return nil
		},
		Subcommands: []*cli.Command{externalCommand(), {
			Name:      "show",
			Usage:     "print one receipt: what ran (worker, module and record digests) under which privilege envelope, then the signed receipt",
			ArgsUsage: "RECEIPT_ID",
			Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print only the signed receipt as JSON"},
				&cli.BoolFlag{Name: "tree", Usage: "print the chain of dispatches the receipt belongs to, from its root: each hop's worker, outcome, duration, blast score and module digest (with --json, as JSON)"}, homeFlag(), databaseFlag()},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return failf("receipts show needs one RECEIPT_ID")
				}
				s, err := openLedger(c, true)
				if err != nil {
					return err
				}
				defer s.Close()
				if c.Bool("tree") {
					return printReceiptTree(c, s, c.Args().First())
				}
				r, err := s.Receipt(contextOf(c), c.Args().First())
				if errors.Is(err, ledger.ErrNotFound) {
					return failf("no receipt %s", safe(c.Args().First()))
				}
				if err != nil {
					return failf("%v", err)
				}
				if !c.Bool("json") {
					printReceipt(c.App.Writer, r)
					printReceiptSigner(c, s, r)
					fmt.Fprintln(c.App.Writer, "\nsigned receipt:")
				}
				return printSafeJSON(c, r)
			},
		}},
	}
}

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "verify or export the evidence ledger",
		Subcommands: []*cli.Command{
			auditVerifyCommand(),
			auditCheckpointCommand(),
			{
				Name:  "export",
				Usage: "write every receipt as JSON Lines (stream by stream, chain order), or with --bundle an evidence bundle an auditor verifies without the Hall (docs/EVIDENCE.md)",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` instead of standard output"},
					&cli.StringFlag{Name: "bundle", Usage: "write an evidence bundle (every chain, the key set, the checkpoints) into the new `DIR`"},
					homeFlag(), keyFlag(), databaseFlag(),
				},
				Action: func(c *cli.Context) error {
					s, err := openLedger(c, true)
					if err != nil {
						return err
					}
					defer s.Close()
					if dir := c.String("bundle"); dir != "" {
						return exportBundle(c, s, dir)
					}
					w := c.App.Writer
					if p := c.String("output"); p != "" {
						f, err := os.Create(p)
						if err != nil {
							return failf("%v", err)
						}
						defer f.Close()
						w = f
					}
					if err := s.Export(contextOf(c), w); err != nil {
						return failf("%v", err)
					}
					return nil
				},
			},
		},
	}
}

// printReceiptsJSON writes what printSafeJSON writes for the slice of
// the receipts (an indented JSON array, "[]" when empty), encoding one
// receipt at a time.
func printReceiptsJSON(c *cli.Context, seq iter.Seq2[*ledger.Receipt, error]) error {
	w := bufio.NewWriterSize(c.App.Writer, 64<<10)
	n := 0
	for r, err := range seq {
		if err != nil {
			w.Flush()
			return failf("%v", err)
		}
		b, err := json.MarshalIndent(r, "  ", "  ")
		if err != nil {
			w.Flush()
			return failf("encoding JSON: %v", err)
		}
		if n == 0 {
			w.WriteString("[\n  ")
		} else {
			w.WriteString(",\n  ")
		}
		writeSafeJSON(w, b)
		n++
	}
	if n == 0 {
		w.WriteString("[]\n")
	} else {
		w.WriteString("\n]\n")
	}
	if err := w.Flush(); err != nil {
		return failf("%v", err)
	}
	return nil
}

func keysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "the Hall's evidence-signing keys: this node's key, the keyring of a shared database",
		Subcommands: []*cli.Command{
			keysShowCommand(),
			keysRotateCommand(),
			keysAdmitCommand(),
			keysRevokeCommand(),
		},
	}
}

func replayCommand() *cli.Command {
	return &cli.Command{
		Name:      "replay",
		Usage:     "re-run a receipt's module on the same input, as a decided and receipted dispatch, and report whether the output hash matches",
		ArgsUsage: "RECEIPT_ID < input",
		Description: "The replay is decided under the rules, policies and hall.json in force now, for the original\n" +
			"request's tenant, capability, env and data_label; allowed, it runs the receipt's module and sealed\n" +
			"record with the original guest config and leaves a receipt whose replay_of names RECEIPT_ID.\n" +
			"Exit 0 on a match, 3 on a mismatch, 2 when the replay is denied.",
		Flags: append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}}, hallFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return failf("replay needs one RECEIPT_ID")
			}
			h, err := openHall(c)
			if err != nil {
				return err
			}
			defer h.Close(contextOf(c))
			input, err := readAllLimited(c, h.Config().MaxInputBytes())
			if err != nil {
				return err
			}
			res, err := h.Replay(contextOf(c), c.Args().First(), input)
			if errors.Is(err, ledger.ErrNotFound) {
				return failf("no receipt %s", safe(c.Args().First()))
			}
			if err != nil {
				return failf("%s", safeMsg(err.Error()))
			}
			d := &res.Decision
			if c.Bool("json") {
				if err := printJSON(c, map[string]any{"receipt_id": res.ReceiptID, "replay_receipt_id": res.ReplayReceiptID, "decision_id": d.DecisionID.String(),
					"denied": d.Denied, "worker_id": res.WorkerID, "artifact_hash": res.ArtifactHash,
					"recorded_output_hash": res.RecordedOutputHash, "output_hash": res.OutputHash, "outcome": res.Outcome, "match": res.Match}); err != nil {
					return err
				}
			}
			if d.Denied {
				fmt.Fprintf(c.App.ErrWriter, "hall: replay DENIED %s: %s (decision %s, correlation %s); nothing ran\n", d.DenyReason.Code, safe(d.DenyReason.Message), d.DecisionID, safe(d.CorrelationID))
				if host.PendingApproval(d) != "" {
					return cli.Exit("", exitPending)
				}
				return cli.Exit("", exitDenied)
			}
			if !c.Bool("json") {
				verdict := "MATCH"
				if !res.Match {
					verdict = "MISMATCH"
				}
				fmt.Fprintf(c.App.Writer, "%s receipt %s (%s, %s)\n  recorded output: %s\n  replayed output: %s (%s)\n  replay receipt:  %s (decision %s)\n", verdict, safe(res.ReceiptID), safe(res.WorkerID), safe(res.ArtifactHash),
					safe(orNone(res.RecordedOutputHash)), safe(orNone(res.OutputHash)), safe(res.Outcome), safe(res.ReplayReceiptID), d.DecisionID)
			}
			if !res.Match {
				return cli.Exit("", exitWorkerFailed)
			}
			return nil
		},
	}
}

// printReceipt writes the human summary of r: what ran, as what, under
// which envelope. Receipts written before record digests and envelopes
// were recorded say so rather than pretend none applied.
func printReceipt(w io.Writer, r *ledger.Receipt) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "receipt\t%s (tenant %s, sequence %d)\n", safe(r.ReceiptID), safe(r.TenantID), r.Sequence)
	fmt.Fprintf(tw, "format\tversion %d\n", max(r.Version, 1))
	fmt.Fprintf(tw, "dispatched\t%s\n", r.DispatchedAt.Format(time.RFC3339Nano))
	fmt.Fprintf(tw, "worker\t%s\n", safe(r.WorkerID))
	fmt.Fprintf(tw, "capability\t%s\n", safe(r.CapabilityID))
	fmt.Fprintf(tw, "artifact hash\t%s\n", safe(r.ArtifactHash))
	fmt.Fprintf(tw, "record digest\t%s\n", safe(orNotRecorded(r.RecordDigest)))
	fmt.Fprintf(tw, "outcome\t%s in %.2f ms\n", safe(r.Outcome), r.DurationMS)
	if r.ErrorMessage != "" {
		fmt.Fprintf(tw, "error\t%s\n", safe(r.ErrorMessage))
	}
	fmt.Fprintf(tw, "correlation\t%s\n", safe(r.CorrelationID))
	fmt.Fprintf(tw, "decision\t%s\n", safe(r.DecisionID))
	if r.ReplayOf != "" {
		fmt.Fprintf(tw, "replay of\t%s\n", safe(r.ReplayOf))
	}
	tw.Flush()
	fmt.Fprintf(w, "privilege envelope: %s\n", safeLines(envelopeText(r.Envelope)))
}

// envelopeText is the envelope as indented JSON, or a phrase when there is
// nothing to show.
func envelopeText(env json.RawMessage) string {
	if len(env) == 0 {
		return "not recorded"
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(env, &m) == nil && len(m) == 0 {
		return "none declared"
	}
	var b bytes.Buffer
	if err := json.Indent(&b, env, "", "  "); err != nil {
		return string(env)
	}
	return b.String()
}

func orNotRecorded(s string) string {
	if s == "" {
		return "not recorded"
	}
	return s
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(none)"
	}
	return s
}

// printReceiptTree prints the chain of dispatches receipt id belongs to
// (host.ReceiptTree).
func printReceiptTree(c *cli.Context, rr host.ReceiptReader, id string) error {
	tree, err := host.ReceiptTree(contextOf(c), rr, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return failf("no receipt %s", safe(id))
	}
	if err != nil {
		return failf("%v", err)
	}
	if c.Bool("json") {
		return printSafeJSON(c, tree)
	}
	var b strings.Builder
	tree.WriteTree(&b)
	fmt.Fprint(c.App.Writer, safeLines(b.String()))
	return nil
}
