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

// openTokens opens the token store of the state directory.
func openTokens(c *cli.Context) (host.TokenStore, error) {
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
			"(route and run as that tenant, read its receipts). Only SHA-256 hashes of tokens are stored.",
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
					homeFlag(),
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
					secret, tok, err := st.Create(contextOf(c), scope, c.String("name"))
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
				Usage:     "list tokens: ids, scopes, creation and revocation times (never the tokens)",
				ArgsUsage: " ",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print as JSON"}, homeFlag()},
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
					if c.Bool("json") {
						out := make([]map[string]any, len(toks))
						for i, t := range toks {
							m := map[string]any{"id": t.ID, "scope": t.Scope.String(), "name": t.Name, "created_at": t.CreatedAt, "revoked": t.Revoked()}
							if t.Revoked() {
								m["revoked_at"] = t.RevokedAt
							}
							out[i] = m
						}
						return printJSON(c, out)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tSCOPE\tCREATED\tREVOKED\tNAME")
					for _, t := range toks {
						revoked := "-"
						if t.Revoked() {
							revoked = t.RevokedAt.Format(time.RFC3339)
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Scope, t.CreatedAt.Format(time.RFC3339), revoked, t.Name)
					}
					return tw.Flush()
				},
			},
			{
				Name:      "revoke",
				Usage:     "revoke a token by id (a running server refuses it from its next request)",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{homeFlag()},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return failf("tokens revoke needs exactly one token ID (see hall tokens list)")
					}
					st, err := openTokens(c)
					if err != nil {
						return err
					}
					defer st.Close()
					t, err := st.Revoke(contextOf(c), c.Args().First())
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
