package main

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

// keyFlag points the ledger at a signing key kept outside the state
// directory (docs/EVIDENCE.md, "Key custody").
func keyFlag() cli.Flag {
	return &cli.StringFlag{Name: "key", EnvVars: []string{"HALL_KEY_FILE"},
		Usage: "the evidence signing key `FILE` (default: keys/ed25519.key in the state directory); \"fd:N\" reads it from file descriptor N"}
}

// keyOptions turns --key into the local evidence store's key options.
func keyOptions(c *cli.Context) host.LocalStoreOptions {
	k := c.String("key")
	if k == "" {
		return host.LocalStoreOptions{}
	}
	if n, ok := strings.CutPrefix(k, "fd:"); ok {
		if fd, err := strconv.Atoi(n); err == nil && fd >= 0 {
			return host.LocalStoreOptions{KeyFD: os.NewFile(uintptr(fd), "key fd "+n)}
		}
	}
	return host.LocalStoreOptions{KeyFile: k}
}

func auditVerifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "walk every chain (receipts and decisions per tenant, the change chain): hashes, links, sequence, signatures across key rotations; with --checkpoints, truncation and rollback (exit 0 only if all verify)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "public-key", Usage: "trust this `FILE` instead of the Hall's own key: a PEM or hex public key, or a key set from `hall keys show --all --json`"},
			&cli.StringFlag{Name: "checkpoints", EnvVars: []string{"HALL_CHECKPOINT_DIR"}, Usage: "check the signed checkpoints in `DIR` (a witness directory): every head they name must still be in the ledger"},
			&cli.BoolFlag{Name: "json", Usage: "print the verification report as JSON (exit status as without it)"},
			&cli.BoolFlag{Name: "allow-empty", Usage: "exit 0 for a ledger with nothing in it yet (no receipt, decision or change beyond its schema)"},
			homeFlag(), keyFlag(), databaseFlag(),
		},
		Action: func(c *cli.Context) error {
			var o ledger.VerifyOptions
			if p := c.String("public-key"); p != "" {
				k, err := ledger.ReadKeySet(p)
				if err != nil {
					return failf("--public-key: %v", err)
				}
				o.Keys = k
			}
			if d := c.String("checkpoints"); d != "" {
				cps, err := ledger.ReadCheckpoints(d)
				if err != nil {
					return failf("--checkpoints: %s", safeMsg(err.Error()))
				}
				if len(cps) == 0 {
					return failf("--checkpoints: %s holds no checkpoint-*.json file (write one with hall audit checkpoint --dir %s)", safe(d), safe(d))
				}
				o.Checkpoints = cps
			}
			s, err := openLedger(c, true)
			if err != nil {
				return err
			}
			defer s.Close()
			rep, err := s.VerifyWith(contextOf(c), o)
			if err != nil {
				return failf("%s", safeMsg(err.Error()))
			}
			provs, err := s.Changes(contextOf(c), host.ChangeProvenance)
			if err != nil {
				return failf("%s", safeMsg(err.Error()))
			}
			modules, closeModules := auditModules(c)
			defer closeModules()
			pc := host.VerifyProvenance(provs, modules)
			for _, b := range pc.Breaks {
				rep.Breaks = append(rep.Breaks, ledger.Break{Chain: ledger.ChainChanges, Tenant: ledger.ChangeChain, ReceiptID: b.ChangeID, Reason: b.Reason})
			}
			if rep.OK() && !c.Bool("allow-empty") {
				if empty, err := ledgerEmpty(c, s, rep); err != nil {
					return failf("%s", safeMsg(err.Error()))
				} else if empty {
					// Nothing verified is no evidence: a ledger created in
					// the wrong folder passed as "verified" (issue 27).
					return failf("nothing to verify: the evidence ledger in %s holds no receipt, decision or change beyond its schema (is this the Hall you meant? set HALL_HOME or --home); --allow-empty accepts an empty ledger", safe(c.String("home")))
				}
			}
			if c.Bool("json") {
				breaks := make([]string, len(rep.Breaks))
				for i, b := range rep.Breaks {
					breaks[i] = b.String()
				}
				if err := printSafeJSON(c, map[string]any{"ok": rep.OK(), "receipts": rep.Receipts, "streams": rep.Streams, "changes": rep.Changes,
					"decisions": rep.Decisions, "decision_streams": rep.DecisionStreams, "snapshots": rep.Snapshots, "checkpoints": rep.Checkpoints, "unchained": rep.Unchained, "breaks": breaks, "signatures_verified": pc.Checked, "signatures_keyless": pc.Keyless, "signers": rep.Signers}); err != nil {
					return err
				}
				if !rep.OK() {
					return cli.Exit("", exitError)
				}
				return nil
			}
			for _, b := range rep.Breaks {
				fmt.Fprintf(c.App.Writer, "BROKEN %s\n", safeMsg(b.String()))
			}
			read := fmt.Sprintf("%d receipt(s) in %d stream(s) and %d change(s); %d decision entr(ies) in %d chain(s)",
				rep.Receipts, rep.Streams, rep.Changes, rep.Decisions, rep.DecisionStreams)
			if rep.Snapshots > 0 {
				read += fmt.Sprintf("; each under one of %d recorded snapshot(s)", rep.Snapshots)
			}
			if rep.Checkpoints > 0 {
				read += fmt.Sprintf(", against %d checkpoint(s)", rep.Checkpoints)
			}
			if pc.Checked > 0 {
				read += fmt.Sprintf("; %d recorded worker signature(s) verified again", pc.Checked)
			}
			if len(rep.Signers) > 1 {
				var who []string
				for _, sg := range rep.Signers {
					w := sg.KeyID
					if sg.Node != "" {
						w += " (node " + safe(sg.Node) + ")"
					}
					who = append(who, fmt.Sprintf("%s: %d", w, sg.Entries))
				}
				read += "; signed by " + strings.Join(who, ", ")
			}
			if !rep.OK() {
				return cli.Exit(fmt.Sprintf("hall: audit failed: %d break(s) in %s", len(rep.Breaks), read), exitError)
			}
			fmt.Fprintf(c.App.Writer, "verified %s\n", read)
			if rep.Unchained > 0 {
				fmt.Fprintf(c.App.ErrWriter, "note: %d decision(s) were recorded before decisions were chained; only the seal of the ledger's first schema change covers them\n", rep.Unchained)
			}
			return nil
		},
	}
}

func auditCheckpointCommand() *cli.Command {
	return &cli.Command{
		Name:  "checkpoint",
		Usage: "sign the heads of every chain now and write the checkpoint to a witness directory outside the state directory",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", EnvVars: []string{"HALL_CHECKPOINT_DIR"}, Usage: "witness `DIR` to write the checkpoint into (default: kept in the ledger only)"},
			&cli.BoolFlag{Name: "json", Usage: "print the checkpoint as JSON"},
			homeFlag(), keyFlag(), databaseFlag(),
		},
		Action: func(c *cli.Context) error {
			opts := keyOptions(c)
			opts.Checkpoints = host.CheckpointPolicy{Dir: c.String("dir")}
			s, err := openLedgerWith(c, opts)
			if err != nil {
				return err
			}
			defer s.Close()
			cp, err := s.Checkpoint(contextOf(c))
			if err != nil {
				return failf("%s", safeMsg(err.Error()))
			}
			if c.Bool("json") {
				return printSafeJSON(c, cp)
			}
			where := "the ledger"
			if d := c.String("dir"); d != "" {
				where = d + "/" + cp.FileName()
			}
			fmt.Fprintf(c.App.Writer, "checkpoint %s of %d chain(s), signed by %s, written to %s\n", cp.CheckpointID, len(cp.Heads), cp.SigningKeyID, safe(where))
			return nil
		},
	}
}

// exportBundle writes the evidence bundle of s into dir.
func exportBundle(c *cli.Context, s auditLedger, dir string) error {
	sum, err := s.ExportBundle(contextOf(c), dir)
	if err != nil {
		return failf("%s", safeMsg(err.Error()))
	}
	fmt.Fprintf(c.App.Writer, "bundle %s: %d receipt(s), %d decision entr(ies), %d change(s), %d checkpoint(s), %d key(s)\n",
		safe(dir), sum.Receipts, sum.Decisions, sum.Changes, sum.Checkpoints, sum.Keys)
	return nil
}

func keysShowCommand() *cli.Command {
	return &cli.Command{
		Name:  "show",
		Usage: "print the current public key (PEM) and key id, or with --all the published key set with validity periods; creates the key on first use",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Usage: "every key that signed for this ledger, oldest first, with when each was rotated in and out"},
			&cli.BoolFlag{Name: "json", Usage: "print {key_id, public_key} as JSON; with --all the key set (what hall audit verify --public-key and auditors read)"},
			homeFlag(), keyFlag(), databaseFlag(),
		},
		Action: func(c *cli.Context) error {
			s, err := openLedger(c, false)
			if err != nil {
				return err
			}
			defer s.Close()
			if !c.Bool("all") && c.Bool("json") {
				return printSafeJSON(c, map[string]any{"key_id": s.KeyID(), "public_key": string(ledger.EncodePublicKey(s.PublicKey()))})
			}
			if !c.Bool("all") {
				fmt.Fprintf(c.App.Writer, "key id: %s\n%s", s.KeyID(), ledger.EncodePublicKey(s.PublicKey()))
				if st, err := s.KeyStanding(contextOf(c)); err == nil && !st.Signs() {
					fmt.Fprintf(c.App.ErrWriter, "this key is %s: it signs nothing for this ledger until an administrator runs: %s\n", strings.ReplaceAll(st.Standing, "_", " "), admitCommand(c, s.PublicKey()))
				}
				// The nodes' keys of a shared database's keyring, one line
				// each (--all: with their public keys).
				if ks, err := s.KeySet(contextOf(c)); err == nil {
					for _, k := range ks.Keys {
						if k.Node == "" {
							continue
						}
						fmt.Fprintf(c.App.Writer, "admitted: %s node %s, valid %s .. %s\n", k.KeyID, safe(k.Node), k.ValidFrom, orDash(k.ValidUntil, "now"))
					}
				}
				return nil
			}
			ks, err := s.KeySet(contextOf(c))
			if err != nil {
				return failf("%s", safeMsg(err.Error()))
			}
			if c.Bool("json") {
				return printSafeJSON(c, ks)
			}
			for _, k := range ks.Keys {
				from, until := orDash(k.ValidFrom, "the first entry"), orDash(k.ValidUntil, "now (current)")
				if k.AdmittedIn != "" {
					until = orDash(k.ValidUntil, "now (admitted)")
				}
				fmt.Fprintf(c.App.Writer, "key id: %s\n", k.KeyID)
				if k.Node != "" {
					fmt.Fprintf(c.App.Writer, "node: %s (admitted by change %s", safe(k.Node), k.AdmittedIn)
					if k.RevokedIn != "" {
						fmt.Fprintf(c.App.Writer, ", revoked by change %s", k.RevokedIn)
					}
					fmt.Fprintln(c.App.Writer, ")")
				}
				fmt.Fprintf(c.App.Writer, "valid: %s .. %s\n", from, until)
				if pub, err := ks.Public(); err == nil {
					fmt.Fprintf(c.App.Writer, "%s\n", ledger.EncodePublicKey(ed25519.PublicKey(pub[k.KeyID])))
				}
			}
			return nil
		},
	}
}

func keysRotateCommand() *cli.Command {
	return &cli.Command{
		Name:  "rotate",
		Usage: "replace the signing key: the rotation is recorded in the change chain, signed by the old key with the new key's proof; later entries are signed by the new key",
		Flags: []cli.Flag{homeFlag(), keyFlag(), databaseFlag()},
		Action: func(c *cli.Context) error {
			s, err := openLedger(c, false)
			if err != nil {
				return err
			}
			defer s.Close()
			old := s.KeyID()
			ch, err := s.RotateKey(contextOf(c), localActor())
			if err != nil {
				return failf("%s", safeMsg(err.Error()))
			}
			fmt.Fprintf(c.App.Writer, "rotated %s -> %s (change %s)\nkey id: %s\n%s", old, s.KeyID(), ch.ChangeID, s.KeyID(), ledger.EncodePublicKey(s.PublicKey()))
			fmt.Fprintln(c.App.ErrWriter, "publish the key set (hall keys show --all --json) where auditors fetch it; processes using another key file must be restarted with this one")
			// Token issuances are bound under a key derived from the
			// signing key (docs/EVIDENCE.md, "Tokens").
			fmt.Fprintln(c.App.ErrWriter, "approver and admin tokens issued by a Hall older than keyless bindings are bound to the old key: re-issue those (hall tokens create --approver / --admin) before they approve or administer again")
			return nil
		},
	}
}

func keysAdmitCommand() *cli.Command {
	return &cli.Command{
		Name:      "admit",
		Usage:     "admit a node's signing key to the keyring of the shared database (a signed key_admit change, made with the ledger's own key: the administrator's --home or --key)",
		ArgsUsage: "PUBKEY|FILE",
		Description: "PUBKEY is the node's public key as 64 hex digits (what its log, /health and hall keys show print), or FILE a PEM\n" +
			"\"PUBLIC KEY\" file. From the node's next write on, it signs with its own key beside the others; hall audit verify\n" +
			"checks that every entry's key was admitted, and not revoked, when it signed (docs/DEPLOY.md, \"Key custody\").",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Required: true, Usage: "the `NODE` the key belongs to (a label: hall keys show --all and hall audit verify print it)"},
			homeFlag(), keyFlag(), databaseFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return failf("hall keys admit: give the node's public key (64 hex digits) or a PEM public key file, and --name NODE")
			}
			arg := c.Args().First()
			var pub ed25519.PublicKey
			var err error
			if _, serr := os.Stat(arg); serr == nil {
				pub, err = ledger.ReadPublicKey(arg)
			} else {
				pub, err = ledger.ParsePublicKey([]byte(arg))
			}
			if err != nil {
				return failf("hall keys admit %s: %s", safe(arg), safeMsg(err.Error()))
			}
			s, err := openLedger(c, false)
			if err != nil {
				return err
			}
			defer s.Close()
			ch, err := s.AdmitKey(contextOf(c), pub, c.String("name"), localActor())
			if err != nil {
				return failf("%s", safeMsg(err.Error()))
			}
			fmt.Fprintf(c.App.Writer, "admitted %s (node %s), signed by %s (change %s)\n", ch.Subject, safe(c.String("name")), ch.SigningKeyID, ch.ChangeID)
			return nil
		},
	}
}

func keysRevokeCommand() *cli.Command {
	return &cli.Command{
		Name:      "revoke",
		Usage:     "end the validity of an admitted key (a signed key_revoke change): the node signs nothing more, and hall audit verify reports an entry it signs later",
		ArgsUsage: "KEYID",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "reason", Usage: "why, recorded with the revocation"},
			homeFlag(), keyFlag(), databaseFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return failf("hall keys revoke: give the key id (ed25519:…) of an admitted key (hall keys show --all lists them)")
			}
			s, err := openLedger(c, false)
			if err != nil {
				return err
			}
			defer s.Close()
			ch, err := s.RevokeKey(contextOf(c), c.Args().First(), localActor(), c.String("reason"))
			if err != nil {
				return failf("%s", safeMsg(err.Error()))
			}
			fmt.Fprintf(c.App.Writer, "revoked %s, signed by %s (change %s)\n", ch.Subject, ch.SigningKeyID, ch.ChangeID)
			return nil
		},
	}
}

// admitCommand is the hall keys admit command for pub, with the node's
// host name.
func admitCommand(c *cli.Context, pub ed25519.PublicKey) string {
	name, err := os.Hostname()
	if err != nil || name == "" || strings.ContainsAny(name, " \t\n") {
		name = "NODE"
	}
	cmd := ledger.AdmitCommand(pub, name)
	if databaseURL(c) == "" {
		cmd = strings.TrimSuffix(cmd, " --database-url URL")
	}
	return cmd
}

func orDash(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// safe makes a tenant-supplied string harmless on a terminal and in a
// table: control characters (C0, DEL, C1: escape sequences that clear the
// screen, retitle the window or move the cursor to fake rows), line and
// paragraph separators, bidirectional overrides and invalid UTF-8 are
// written as Go escapes (\x1b, \u2028, \ufffd for a bad byte), and a
// backslash as \\, so what is shown is unambiguous.
func safe(s string) string { return escapeText(s, true) }

// safeMsg is safe for messages that quote values themselves (errors,
// break reasons): backslashes are left alone.
func safeMsg(s string) string { return escapeText(s, false) }

func escapeText(s string, backslash bool) string {
	clean := true
	for _, r := range s {
		if needsEscape(r) || (backslash && r == '\\') || r == utf8.RuneError {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\' && backslash:
			b.WriteString(`\\`)
		case needsEscape(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// safeLines is safe for text the Hall itself laid out over several lines
// (indented JSON): newlines stay, everything else is escaped.
func safeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = safeMsg(l)
	}
	return strings.Join(lines, "\n")
}

func needsEscape(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') || r == '\u200e' || r == '\u200f'
}

// printSafeJSON is printJSON for values holding tenant strings: the
// characters encoding/json leaves raw that a terminal acts on (DEL, C1
// controls such as U+009B, bidirectional overrides) are written as \u
// escapes. They can only occur inside JSON strings, so the document means
// the same.
func printSafeJSON(c *cli.Context, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return failf("encoding JSON: %v", err)
	}
	var out strings.Builder
	out.Grow(len(b) + 1)
	writeSafeJSON(&out, b)
	fmt.Fprintln(c.App.Writer, out.String())
	return nil
}

// writeSafeJSON writes JSON text with every character a terminal could
// act on (needsEscape) as a \u escape, newlines kept.
func writeSafeJSON(out interface {
	WriteString(string) (int, error)
	WriteRune(rune) (int, error)
}, b []byte) {
	for _, r := range string(b) {
		if r != '\n' && needsEscape(r) {
			out.WriteString(fmt.Sprintf(`\u%04x`, r))
			continue
		}
		out.WriteRune(r)
	}
}

// ledgerEmpty reports whether a verified ledger holds nothing but the
// changes that record its schema.
func ledgerEmpty(c *cli.Context, s auditLedger, rep *ledger.Report) (bool, error) {
	if rep.Receipts > 0 || rep.Decisions > 0 {
		return false, nil
	}
	chs, err := s.Changes(contextOf(c), "")
	if err != nil {
		return false, err
	}
	for _, ch := range chs {
		if ch.Kind != "schema" {
			return false, nil
		}
	}
	return true, nil
}

// auditModules reads worker modules by digest from the Hall's artifact
// store (the shared database's with --database-url, else the state
// directory's, used only when it exists: audit verify creates nothing), so
// that a signature over a module's own bytes is verified against them; nil
// when there is no store.
func auditModules(c *cli.Context) (func(wcp.Digest) []byte, func()) {
	var store host.ArtifactStore
	if dsn := databaseURL(c); dsn != "" {
		if s, err := host.OpenPostgresArtifacts(dsn); err == nil {
			store = s
		}
	} else if _, err := os.Stat(filepath.Join(c.String("home"), "artifacts")); err == nil {
		if s, err := host.OpenLocalArtifacts(c.String("home")); err == nil {
			store = s
		}
	}
	if store == nil {
		return nil, func() {}
	}
	closeStore := func() {
		if cl, ok := store.(io.Closer); ok {
			cl.Close()
		}
	}
	return func(d wcp.Digest) []byte { b, _ := store.Get(contextOf(c), d); return b }, closeStore
}
