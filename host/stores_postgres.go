package host

import (
	"errors"

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
