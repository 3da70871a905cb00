package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/auth"
)

// openTokenEvidence opens the evidence ledger of the state directory
// (creating it and its signing key when missing), where token issuance
// and revocation are recorded.
func openTokenEvidence(c *cli.Context) (auditLedger, error) {
	return openLedgerWith(c, keyOptions(c))
}

// openTokens opens the token store of the state directory.
func openTokens(c *cli.Context) (host.TokenStore, error) {
	if databaseURL(c) != "" {
		st, err := postgresStores(c, keyOptions(c))
		if err != nil {
			return nil, err
		}
		return st.Tokens, nil
	}
	st, err := host.OpenLocalTokens(c.String("home"))
	if err != nil {
		return nil, failf("%v", err)
	}
	return st, nil
}

func tokensCommand() *cli.Command {
	return &cli.Command{
		Name:  "tokens",
		Usage: "manage the bearer tokens of the Hall API (hall serve)",
		Description: "A token is admin (enroll, upload modules, go online/offline) or belongs to one tenant\n" +
			"(route and run as that tenant, read its receipts), or is an approver of human approvals. Only SHA-256 hashes of tokens\n" +
			"are stored. Creating and revoking a token is recorded in the evidence ledger (a signed \"token\" change); a token\n" +
			"the ledger does not record (created before tokens were recorded, or written into auth.db by hand) answers no\n" +
			"approval: create a new one and revoke it.",
		Subcommands: []*cli.Command{
			{
				Name:      "create",
				Usage:     "create a token and print it (it is shown this once)",
				ArgsUsage: " ",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "tenant", Usage: "tenant `ID` the token acts as, e.g. org.acme"},
					&cli.BoolFlag{Name: "admin", Usage: "an administrator token"},
					&cli.BoolFlag{Name: "approver", Usage: "an approver of human approvals (acts as no tenant)"},
					&cli.StringFlag{Name: "approver-tenant", Usage: "the tenant `ID` an approver belongs to: it cannot answer that tenant's requests"},
					&cli.StringFlag{Name: "name", Usage: "a note on what the token is for"},
					&cli.BoolFlag{Name: "json", Usage: "print {id, scope, token, created_at} as JSON"},
					homeFlag(), keyFlag(), databaseFlag(),
				},
				Action: func(c *cli.Context) error {
					var scope auth.Scope
					switch {
					case c.Bool("approver") && (c.Bool("admin") || c.IsSet("tenant")):
						return failf("give one of --admin, --tenant ID and --approver")
					case c.Bool("approver"):
						scope = auth.ApproverScope(c.String("approver-tenant"))
					case c.IsSet("approver-tenant"):
						return failf("--approver-tenant goes with --approver")
					case c.Bool("admin") && c.IsSet("tenant"):
						return failf("give --admin or --tenant ID, not both")
					case c.Bool("admin"):
						scope = auth.AdminScope()
					case c.IsSet("tenant"):
						scope = auth.TenantScope(c.String("tenant"))
					default:
						return failf("tokens create needs --admin, --tenant ID or --approver")
					}
					st, err := openTokens(c)
					if err != nil {
						return err
					}
					defer st.Close()
					ev, err := openTokenEvidence(c)
					if err != nil {
						return err
					}
					defer ev.Close()
					secret, tok, err := host.IssueToken(contextOf(c), st, ev, scope, c.String("name"), localActor())
					if err != nil {
						return failf("%v", err)
					}
					if c.Bool("json") {
						return printJSON(c, map[string]any{"id": tok.ID, "scope": tok.Scope.String(), "name": tok.Name, "token": secret, "created_at": tok.CreatedAt})
					}
					fmt.Fprintln(c.App.Writer, secret)
					fmt.Fprintf(c.App.ErrWriter, "hall: created token %s (%s); it is shown only now, store it safely\n", tok.ID, tok.Scope)
					return nil
				},
			},
			{
				Name:      "list",
				Usage:     "list tokens: ids, scopes, creation and revocation times, whether the evidence ledger records them (never the tokens)",
				ArgsUsage: " ",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print as JSON"}, homeFlag(), databaseFlag()},
				Action: func(c *cli.Context) error {
					st, err := openTokens(c)
					if err != nil {
						return err
					}
					defer st.Close()
					toks, err := st.List(contextOf(c))
					if err != nil {
						return failf("%v", err)
					}
					recorded := map[string]bool{}
					if ev, err := openTokenListEvidence(c); err == nil {
						recorded, err = host.RecordedTokens(contextOf(c), ev)
						ev.Close()
						if err != nil {
							return failf("%s", safeMsg(err.Error()))
						}
					} else if !errors.Is(err, host.ErrNoEvidence) {
						return failf("%s", safeMsg(err.Error()))
					}
					if c.Bool("json") {
						out := make([]map[string]any, len(toks))
						for i, t := range toks {
							m := map[string]any{"id": t.ID, "scope": t.Scope.String(), "name": t.Name, "created_at": t.CreatedAt, "revoked": t.Revoked(), "recorded": recorded[t.ID]}
							if t.Revoked() {
								m["revoked_at"] = t.RevokedAt
							}
							out[i] = m
						}
						return printJSON(c, out)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tSCOPE\tCREATED\tREVOKED\tRECORDED\tNAME")
					unrecorded := 0
					for _, t := range toks {
						revoked := "-"
						if t.Revoked() {
							revoked = t.RevokedAt.Format(time.RFC3339)
						}
						rec := "yes"
						if !recorded[t.ID] {
							rec = "no"
							if !t.Revoked() {
								unrecorded++
							}
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Scope, t.CreatedAt.Format(time.RFC3339), revoked, rec, t.Name)
					}
					if err := tw.Flush(); err != nil {
						return err
					}
					if unrecorded > 0 {
						fmt.Fprintf(c.App.ErrWriter, "hall: %d token(s) have no issuance in the evidence ledger (RECORDED no): they answer no approval; create new ones with hall tokens create and revoke them\n", unrecorded)
					}
					return nil
				},
			},
			{
				Name:      "revoke",
				Usage:     "revoke a token by id (a running server refuses it from its next request)",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{homeFlag(), keyFlag(), databaseFlag()},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return failf("tokens revoke needs exactly one token ID (see hall tokens list)")
					}
					st, err := openTokens(c)
					if err != nil {
						return err
					}
					defer st.Close()
					ev, err := openTokenEvidence(c)
					if err != nil {
						return err
					}
					defer ev.Close()
					t, err := host.RevokeToken(contextOf(c), st, ev, c.Args().First(), localActor())
					if errors.Is(err, host.ErrTokenNotFound) {
						return failf("no token %s (see hall tokens list)", c.Args().First())
					}
					if err != nil {
						return failf("%v", err)
					}
					fmt.Fprintf(c.App.Writer, "revoked %s (%s)\n", t.ID, t.Scope)
					return nil
				},
			},
		},
	}
}
