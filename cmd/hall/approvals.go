package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/approval"
)

func approvalsCommand() *cli.Command {
	answer := func(approve bool) cli.ActionFunc {
		return func(c *cli.Context) error { return answerApproval(c, approve) }
	}
	answerFlags := append([]cli.Flag{
		&cli.StringFlag{Name: "token", EnvVars: []string{"HALL_TOKEN"}, Usage: "an approver or admin `TOKEN` (hall tokens create --approver): who answers, recorded in the ledger"},
		&cli.StringFlag{Name: "comment", Usage: "why (recorded with the answer)"},
		&cli.BoolFlag{Name: "json", Usage: "print the approval as JSON"},
	}, hallFlags()...)
	return &cli.Command{
		Name:  "approvals",
		Usage: "human approvals of requests a policy holds (docs/POLICY.md)",
		Description: "A dispatch a policy requires a human for is held as a pending approval (hall run exits 4).\n" +
			"An approver approves or denies it; the caller then runs the same request with --approval ID.",
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list approvals, newest first",
				ArgsUsage: " ",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "state", Usage: "pending, approved, denied, expired or used"},
					&cli.StringFlag{Name: "tenant", Usage: "only this tenant's"},
					&cli.IntFlag{Name: "limit", Value: 100, Usage: "at most `N`"},
					&cli.BoolFlag{Name: "json", Usage: "print as JSON"},
				}, hallFlags()...),
				Action: listApprovals,
			},
			{
				Name:      "show",
				Usage:     "show one approval: the request, the bound worker, module, envelope and blast radius",
				ArgsUsage: "ID",
				Flags:     append([]cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print as JSON"}}, hallFlags()...),
				Action:    showApproval,
			},
			{Name: "approve", Usage: "approve a pending approval (the request may then run once)", ArgsUsage: "ID", Flags: answerFlags, Action: answer(true)},
			{Name: "deny", Usage: "deny a pending approval", ArgsUsage: "ID", Flags: answerFlags, Action: answer(false)},
		},
	}
}

func listApprovals(c *cli.Context) error {
	st := approval.State(c.String("state"))
	switch st {
	case "", approval.Pending, approval.Approved, approval.Denied, approval.Expired, approval.Used:
	default:
		return failf("--state: %q must be pending, approved, denied, expired or used", st)
	}
	if n := c.Int("limit"); n < 1 || n > 1000 {
		return failf("--limit: must be from 1 to 1000")
	}
	h, err := openHall(c)
	if err != nil {
		return err
	}
	defer h.Close(contextOf(c))
	list, err := h.Approvals(contextOf(c), host.ApprovalFilter{State: st, TenantID: c.String("tenant"), Limit: c.Int("limit")})
	if err != nil {
		return failf("%v", err)
	}
	if c.Bool("json") {
		if list == nil {
			list = []approval.Approval{}
		}
		return printJSON(c, map[string]any{"approvals": list, "count": len(list)})
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tTENANT\tCAPABILITY\tWORKER\tEXPIRES\tREASON")
	for _, a := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.State, a.TenantID, a.CapabilityID, a.WorkerID, a.ExpiresAt.Format(time.RFC3339), a.Reason)
	}
	return tw.Flush()
}

func showApproval(c *cli.Context) error {
	if c.NArg() != 1 {
		return failf("approvals show needs one approval ID (see hall approvals list)")
	}
	h, err := openHall(c)
	if err != nil {
		return err
	}
	defer h.Close(contextOf(c))
	a, err := h.Approval(contextOf(c), c.Args().First())
	if err != nil {
		return failf("%v", err)
	}
	return printApproval(c, a)
}

func printApproval(c *cli.Context, a *approval.Approval) error {
	if c.Bool("json") {
		return printJSON(c, a)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "%s  %s\n", a.ID, a.State)
	fmt.Fprintf(w, "  tenant:      %s\n  capability:  %s\n  correlation: %s\n", a.TenantID, a.CapabilityID, a.CorrelationID)
	fmt.Fprintf(w, "  reason:      %s (policy %s, rule %s)\n", a.Reason, a.PolicyID, a.RuleID)
	fmt.Fprintf(w, "  worker:      %s (%s), risk tier %s, blast score %d\n", a.WorkerID, a.Species, a.RiskTier, a.BlastScore)
	fmt.Fprintf(w, "  module:      %s\n  record:      %s\n", a.ModuleDigest, a.RecordDigest)
	fmt.Fprintf(w, "  envelope:    %s\n", a.Envelope)
	if len(a.BlastRadius) > 0 {
		fmt.Fprintf(w, "  blast:       %s\n", a.BlastRadius)
	}
	fmt.Fprintf(w, "  request:     %s\n  payload:     %s\n  input:       %s\n", a.RequestHash, a.PayloadHash, a.Input)
	printPayload(w, a.Payload)
	fmt.Fprintf(w, "  created:     %s\n  expires:     %s\n", a.CreatedAt.Format(time.RFC3339), a.ExpiresAt.Format(time.RFC3339))
	if a.DecidedBy != "" {
		fmt.Fprintf(w, "  decided:     %s by %s: %q\n", a.DecidedAt.Format(time.RFC3339), a.DecidedBy, a.Comment)
	}
	if a.UsedBy != "" {
		fmt.Fprintf(w, "  used:        %s by decision %s\n", a.UsedAt.Format(time.RFC3339), a.UsedBy)
	}
	return nil
}

// printPayload shows what the approval kept of the payload: text
// (printable UTF-8 by construction: no escape sequence reaches the
// terminal) indented under its header, or hex, or why it is withheld.
func printPayload(w io.Writer, p *approval.Payload) {
	switch {
	case p == nil:
		fmt.Fprintf(w, "  content:     not kept (recorded before payloads were kept); only its hash\n")
	case p.Withheld != "":
		fmt.Fprintf(w, "  content:     %d bytes, not shown: %s\n", p.Size, p.Withheld)
	case p.Size == 0:
		fmt.Fprintf(w, "  content:     empty\n")
	default:
		what := "text"
		if p.Encoding == "hex" {
			what = "hex (not printable text)"
		}
		if p.Truncated {
			what += ", the first bytes"
		}
		fmt.Fprintf(w, "  content:     %d bytes, %s:\n", p.Size, what)
		for line := range strings.Lines(p.Shown) {
			if p.Encoding == "hex" {
				for len(line) > 64 {
					fmt.Fprintf(w, "    | %s\n", line[:64])
					line = line[64:]
				}
			}
			fmt.Fprintf(w, "    | %s\n", strings.TrimRight(line, "\r\n"))
		}
	}
}

// answerApproval approves or denies as the approver whose token is given:
// the CLI answers with the same identity as the API and the console.
func answerApproval(c *cli.Context, approve bool) error {
	if c.NArg() != 1 {
		return failf("approvals %s needs one approval ID (see hall approvals list)", map[bool]string{true: "approve", false: "deny"}[approve])
	}
	secret := c.String("token")
	if secret == "" {
		return failf("--token: an approver or admin token is required (hall tokens create --approver; or set HALL_TOKEN)")
	}
	st, err := openTokens(c)
	if err != nil {
		return err
	}
	defer st.Close()
	tok, err := st.Authenticate(contextOf(c), secret)
	if errors.Is(err, host.ErrInvalidToken) {
		return failf("--token: the token is not valid (unknown, malformed or revoked)")
	}
	if err != nil {
		return failf("%v", err)
	}
	if !tok.Scope.Admin && !tok.Scope.Approver {
		return failf("--token: token %s has scope %s; an approval is answered with an approver or admin token", tok.ID, tok.Scope)
	}
	h, err := openHall(c)
	if err != nil {
		return err
	}
	defer h.Close(contextOf(c))
	a, err := h.DecideApproval(contextOf(c), c.Args().First(), approve, host.Approver{Actor: "token:" + tok.ID, Tenant: tok.Scope.ApproverTenant}, c.String("comment"))
	if err != nil {
		return failf("%v", err)
	}
	if c.Bool("json") {
		return printApproval(c, a)
	}
	fmt.Fprintf(c.App.Writer, "%s %s by token:%s\n", a.ID, a.State, tok.ID)
	if approve {
		fmt.Fprintf(c.App.ErrWriter, "hall: the tenant may now run the same request once with --approval %s (until %s)\n", a.ID, a.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// approvalFlag is `hall run --approval ID`.
func approvalFlag() cli.Flag {
	return &cli.StringFlag{Name: "approval", Usage: "re-submit a request a human approved, with its approval `ID` (apr_…)"}
}

// checkApprovalFlag refuses an --approval that is not an approval id,
// before anything is opened or decided (the message shows at most its
// first bytes, escaped).
func checkApprovalFlag(c *cli.Context) error {
	if id := c.String("approval"); id != "" {
		if err := approval.CheckID(id); err != nil {
			return failf("--approval: %v", err)
		}
	}
	return nil
}

// resumeCommand is the command line that resumes a run held for approval
// id: this process's own arguments with --approval ID after the command
// name and without --correlation-id (the held request's is used; it may
// have been drawn), and standard input redirected from the file it was
// read from when that is known, else from INPUT (the same bytes).
func resumeCommand(c *cli.Context, id string) string {
	args := os.Args[1:]
	out := []string{"hall"}
	inserted := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--correlation-id" || a == "-correlation-id" || a == "--approval" || a == "-approval":
			i++
			continue
		case strings.HasPrefix(a, "--correlation-id=") || strings.HasPrefix(a, "-correlation-id=") ||
			strings.HasPrefix(a, "--approval=") || strings.HasPrefix(a, "-approval="):
			continue
		}
		out = append(out, shellQuote(a))
		if !inserted && a == c.Command.Name {
			out = append(out, "--approval", id)
			inserted = true
		}
	}
	in := "INPUT"
	if p, err := os.Readlink("/proc/self/fd/0"); err == nil && filepath.IsAbs(p) {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			in = shellQuote(p)
		}
	}
	return strings.Join(out, " ") + " < " + in
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,@+%") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
