package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/ledger"
)

// externalCommand is `hall receipts external`: the decisions ingested
// from elsewhere (POST /decisions/ingest), which have no receipt because
// nothing ran here.
func externalCommand() *cli.Command {
	return &cli.Command{
		Name:  "external",
		Usage: "list decisions ingested from elsewhere (POST /decisions/ingest; not decided by this Hall, nothing ran), newest first",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tenant", Usage: "only this tenant (default: every tenant)"},
			&cli.IntFlag{Name: "limit", Value: 50, Usage: "at most `N` decisions"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
			homeFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.Int("limit") < 1 {
				return failf("--limit must be positive")
			}
			s, err := openLedger(c, true)
			if err != nil {
				return err
			}
			defer s.Close()
			lister, ok := s.(interface {
				Decisions(ctx context.Context, f ledger.DecisionFilter) ([]ledger.DecisionRecord, error)
			})
			if !ok {
				return failf("the evidence store of %s cannot list decisions", c.String("home"))
			}
			f := ledger.DecisionFilter{TenantID: c.String("tenant"), AllTenants: !c.IsSet("tenant"), Limit: c.Int("limit"), External: true}
			ds, err := lister.Decisions(contextOf(c), f)
			if err != nil {
				return failf("%v", err)
			}
			if c.Bool("json") {
				type row struct {
					DecisionID        string `json:"decision_id"`
					EntryID           string `json:"entry_id"`
					TenantID          string `json:"tenant_id"`
					CapabilityID      string `json:"capability_id"`
					Denied            bool   `json:"denied"`
					DenyReason        string `json:"deny_reason,omitempty"`
					RecordedAt        string `json:"recorded_at"`
					DecidedByThisHall bool   `json:"decided_by_this_hall"`
					Snapshot          string `json:"snapshot,omitempty"`
					HallAgrees        *bool  `json:"hall_agrees"`
				}
				out := make([]row, 0, len(ds))
				for _, d := range ds {
					x := host.SummarizeDecision(d)
					out = append(out, row{x.DecisionID, x.EntryID, x.TenantID, x.CapabilityID, x.Denied, x.DenyReason,
						x.RecordedAt.UTC().Format(time.RFC3339Nano), false, x.Snapshot, x.HallAgrees})
				}
				return printSafeJSON(c, out)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DECISION\tRECORDED\tTENANT\tCAPABILITY\tDENIED\tHALL\tENTRY")
			for _, d := range ds {
				x := host.SummarizeDecision(d)
				denied := "no"
				if x.Denied {
					denied = "yes " + x.DenyReason
				}
				hall := "-" // not re-decided: no complete routing input
				if x.HallAgrees != nil {
					hall = map[bool]string{true: "agrees", false: "DIFFERS"}[*x.HallAgrees]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safe(x.DecisionID), x.RecordedAt.Format(time.RFC3339), safe(x.TenantID),
					safe(x.CapabilityID), safe(denied), hall, safe(x.EntryID))
			}
			tw.Flush()
			fmt.Fprintf(c.App.ErrWriter, "%d ingested decision(s), not decided by this Hall (nothing ran: no receipt)\n", len(ds))
			return nil
		},
	}
}
