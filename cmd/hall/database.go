package main

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/ledger"
)

// databaseFlag is the shared state of several Halls: with it, rules,
// policy set, configuration, enrollments, modules, tokens, approvals and
// the evidence ledger are in that PostgreSQL database, and --home keeps
// only node-local things (compiled code, the signing key unless --key
// names it). Without it, the files and SQLite databases of --home.
func databaseFlag() cli.Flag {
	return &cli.StringFlag{Name: "database-url", EnvVars: []string{"HALL_DATABASE_URL"},
		Usage: "PostgreSQL `URL` (postgres://… or a keyword/value DSN such as \"host=/run/postgresql dbname=hall\") holding the shared state (docs/DEPLOY.md)"}
}

// databaseURL is the --database-url of c ("" for the local files).
func databaseURL(c *cli.Context) string {
	for _, cc := range c.Lineage() {
		if cc.IsSet("database-url") || cc.String("database-url") != "" {
			return cc.String("database-url")
		}
	}
	return ""
}

// postgresStores opens, once per process, every store of --database-url
// (the evidence signed with --key, or the node key in --home); later
// calls return the same stores. A command may close the part it asked
// for when it is done with it (each part's Close may be called again);
// closeDatabase closes them all.
func postgresStores(c *cli.Context, o host.LocalStoreOptions) (*host.Stores, error) {
	if st, ok := c.App.Metadata["pgstores"].(*host.Stores); ok {
		return st, nil
	}
	dsn := databaseURL(c)
	// Opened once for the process, read-write: the database is shared,
	// and reading commands only read.
	o.ReadOnly = false
	o.NoMigrate = c.Bool("no-migrate")
	st, err := host.OpenPostgresStores(dsn, c.String("home"), o)
	if err != nil {
		return nil, failf("--database-url: %s", safeMsg(err.Error()))
	}
	src, err := host.OpenPostgresSource(dsn)
	if err != nil {
		st.Close()
		return nil, failf("--database-url: %s", safeMsg(err.Error()))
	}
	st.Source = src
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata["pgstores"] = st
	return st, nil
}

// closeDatabase closes the stores postgresStores opened, if any.
func closeDatabase(c *cli.Context) {
	if st, ok := c.App.Metadata["pgstores"].(*host.Stores); ok {
		st.Close()
		delete(c.App.Metadata, "pgstores")
	}
}

// openTokenListEvidence opens the evidence hall tokens list reads
// (read-only for the local files; host.ErrNoEvidence when nothing was
// recorded there yet).
func openTokenListEvidence(c *cli.Context) (host.EvidenceStore, error) {
	if databaseURL(c) != "" {
		return openLedgerWith(c, keyOptions(c))
	}
	return host.OpenLocalEvidence(c.String("home"), host.LocalStoreOptions{ReadOnly: true})
}

func init() { extraCommands = append(extraCommands, dbCommand()) }

func dbCommand() *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "manage the shared PostgreSQL database of --database-url",
		Subcommands: []*cli.Command{{
			Name:  "migrate",
			Usage: "bring the database's schema to this Hall's version (each ledger schema step is recorded in the change chain)",
			Description: "Creates the tables on an empty database. hall serve does the same at start unless --no-migrate.\n" +
				"The evidence ledger's schema is versioned; the step applied is a signed \"schema\" change of the change chain.\n" +
				"--from-home DIR first copies the Hall of this folder (its state directory DIR: the evidence ledger byte for byte,\n" +
				"the tokens, the modules; and its rules, policy set, hall.json and enrolled records) into the database, which must\n" +
				"hold no ledger yet; the nodes then sign with DIR's key (give them --key DIR/keys/ed25519.key).",
			ArgsUsage: " ",
			Flags: []cli.Flag{databaseFlag(), homeFlag(), keyFlag(),
				&cli.StringFlag{Name: "from-home", Usage: "copy the local Hall whose state directory is `DIR` (and whose files are this folder's) into the empty database"},
				&cli.StringFlag{Name: "rules", Value: "rules.json", Usage: "with --from-home: the routing rules `FILE`"},
				&cli.StringFlag{Name: "registry-dir", Value: "enrolled", Usage: "with --from-home: the enrolled records `DIR`"},
				&cli.StringFlag{Name: "config", Usage: "with --from-home: the Hall configuration `FILE` (default: hall.json if present)"},
			},
			Action: func(c *cli.Context) error {
				if databaseURL(c) == "" {
					return failf("hall db migrate: --database-url (or HALL_DATABASE_URL) names the database")
				}
				opts := keyOptions(c)
				if from := c.String("from-home"); from != "" {
					sum, err := host.ImportLocal(contextOf(c), databaseURL(c), host.Options{Home: from,
						Rules: c.String("rules"), RegistryDir: c.String("registry-dir"), ConfigFile: c.String("config")})
					if err != nil {
						return failf("--from-home %s: %s", from, safeMsg(err.Error()))
					}
					rows := 0
					for _, n := range sum.LedgerRows {
						rows += n
					}
					fmt.Fprintf(c.App.Writer, "copied %s: %d ledger rows (%d receipts, %d decision entries, %d changes), %d tokens, %d modules, %d records, documents %v\n",
						from, rows, sum.LedgerRows["receipts"], sum.LedgerRows["entries"], sum.LedgerRows["changes"], sum.Tokens, sum.Modules, sum.Records, sum.Documents)
					if opts.KeyFile == "" && opts.KeyFD == nil {
						opts.KeyFile = filepath.Join(from, "keys", "ed25519.key")
					}
				}
				st, err := postgresStores(c, opts)
				if err != nil {
					return err
				}
				defer closeDatabase(c)
				chs, err := st.Evidence.Changes(contextOf(c), ledger.ChangeSchema)
				if err != nil {
					return failf("%s", safeMsg(err.Error()))
				}
				if len(chs) == 0 {
					return failf("the database's change chain records no schema version")
				}
				last := chs[len(chs)-1]
				fmt.Fprintf(c.App.Writer, "schema at this Hall's version, recorded in change %s (%s)\n", last.ChangeID, last.At.Format(time.RFC3339))
				return nil
			},
		}},
	}
}
