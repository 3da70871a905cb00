package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/wcphall/hall/internal/artifact"
	"github.com/wcphall/hall/internal/auth"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/pgsql"
)

// OpenPostgresEvidence opens (creating its tables when missing, unless
// o.ReadOnly) the evidence ledger kept in the PostgreSQL database dsn (a
// postgres:// URL or a keyword/value DSN such as "host=/run/postgresql
// dbname=hall"). home is the node-local state directory: the signing key
// is home/keys/ed25519.key unless o names another. Every node of one
// database must sign with the same key (give each the same o.KeyFile).
//
// The store has the same abilities as OpenLocalEvidence's; its chains stay
// linear however many nodes append at once (internal/ledger.OpenPostgres).
func OpenPostgresEvidence(dsn, home string, o LocalStoreOptions) (EvidenceStore, error) {
	s, err := ledger.OpenPostgres(dsn, home, ledgerOptions(o)...)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ErrStoreUnavailable is wrapped by the errors of a PostgreSQL store whose
// database cannot be reached (down, restarting, unreachable): nothing was
// run or written, or the transaction was rolled back. The HTTP API answers
// 503 STATE_UNAVAILABLE; the stores reconnect on their next call.
var ErrStoreUnavailable = pgsql.ErrUnavailable

// OpenPostgresStores opens every part but Source of the PostgreSQL
// backend in the database dsn: the evidence ledger (OpenPostgresEvidence;
// its signing key node-local in home unless o names it), the tokens
// (OpenPostgresTokens) and the modules (OpenPostgresArtifacts). Nothing
// but the key is kept in home. ReadOnly is refused, as by OpenLocalStores.
func OpenPostgresStores(dsn, home string, o LocalStoreOptions) (*Stores, error) {
	if o.ReadOnly {
		return nil, errors.New("LocalStoreOptions.ReadOnly: OpenPostgresStores creates the token and module tables; open the evidence alone read-only with OpenPostgresEvidence")
	}
	ev, err := OpenPostgresEvidence(dsn, home, o)
	if err != nil {
		return nil, err
	}
	toks, err := OpenPostgresTokens(dsn)
	if err != nil {
		ev.Close()
		return nil, err
	}
	arts, err := OpenPostgresArtifacts(dsn)
	if err != nil {
		ev.Close()
		toks.Close()
		return nil, err
	}
	return &Stores{Evidence: ev, Tokens: toks, Artifacts: arts}, nil
}

// OpenPostgresTokens opens (creating its table when missing) the token
// store of the PostgreSQL database dsn. A token revoked through any open of
// the database is refused by every other from its next Authenticate.
func OpenPostgresTokens(dsn string) (TokenStore, error) {
	s, err := auth.OpenPostgres(dsn)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenPostgresArtifacts opens (creating its table when missing) the module
// store of the PostgreSQL database dsn: modules by digest, shared by every
// node; what Get returns hashes to the digest asked for.
func OpenPostgresArtifacts(dsn string) (ArtifactStore, error) {
	return artifact.OpenPostgres(dsn)
}

// ImportSummary is what ImportLocal copied.
type ImportSummary struct {
	// LedgerRows is the number of rows copied per ledger table.
	LedgerRows map[string]int
	// Tokens, Modules and Records count what was copied of each.
	Tokens, Modules, Records int
	// Documents names the snapshot documents copied (rules, policy,
	// config), those present in the files.
	Documents []DocKind
}

// ImportLocal copies the Hall of opts — its state directory opts.Home
// (the evidence ledger, byte for byte; the tokens; the modules) and its
// files (rules, policy set, hall.json, enrolled records, as Open reads
// them) — into the PostgreSQL database dsn, which must hold no ledger
// yet. Afterwards `hall audit verify` reports the same chains and heads on
// both sides, and Halls opened with OpenPostgresStores and
// OpenPostgresSource serve what the local Hall served. The local Hall is
// not changed (its ledger is migrated to this Hall's schema first, as Open
// would). Nodes must then sign with the local Hall's key.
func ImportLocal(ctx context.Context, dsn string, opts Options) (*ImportSummary, error) {
	if opts.Home == "" {
		return nil, errors.New("ImportLocal: Options.Home names the state directory to copy")
	}
	sum := &ImportSummary{}
	var err error
	if sum.LedgerRows, err = ledger.ImportSQLite(ctx, opts.Home, dsn); err != nil {
		return nil, err
	}
	from, err := auth.Open(filepath.Join(opts.Home, auth.DBFile))
	if err != nil {
		return sum, err
	}
	defer from.Close()
	to, err := auth.OpenPostgres(dsn)
	if err != nil {
		return sum, err
	}
	defer to.Close()
	if sum.Tokens, err = to.ImportFrom(ctx, from); err != nil {
		return sum, err
	}
	arts, err := artifact.OpenPostgres(dsn)
	if err != nil {
		return sum, err
	}
	defer arts.Close()
	files, _ := filepath.Glob(filepath.Join(opts.Home, "artifacts", "sha256", "*.wasm"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return sum, err
		}
		d, err := arts.Put(ctx, b)
		if err != nil {
			return sum, err
		}
		if want := strings.TrimSuffix(filepath.Base(f), ".wasm"); d.Hex() != want {
			return sum, fmt.Errorf("module %s hashes to %s: it was altered; nothing more was copied (remove it or enroll it again)", f, d)
		}
		sum.Modules++
	}
	docs, err := newFileSource(opts).Load(ctx)
	if err != nil {
		return sum, err
	}
	src, err := OpenPostgresSource(dsn)
	if err != nil {
		return sum, err
	}
	defer src.(io.Closer).Close()
	for _, d := range []struct {
		kind DocKind
		doc  Doc
	}{{DocRules, docs.Rules}, {DocPolicy, docs.Policy}, {DocConfig, docs.Config}} {
		if !d.doc.Present {
			continue
		}
		if err := src.Put(ctx, d.kind, d.doc.Data, ""); err != nil {
			return sum, err
		}
		sum.Documents = append(sum.Documents, d.kind)
	}
	for _, r := range docs.Records {
		if r.Err != nil {
			return sum, fmt.Errorf("%s: %w", r.Name, r.Err)
		}
		id := strings.TrimSuffix(filepath.Base(r.Name), ".json")
		if _, err := src.PutRecord(ctx, id, r.Data); err != nil {
			return sum, err
		}
		sum.Records++
	}
	return sum, nil
}
