package host

import (
	"github.com/wcphall/hall/internal/ledger"
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

// OpenPostgresStores opens every part but Source of the PostgreSQL
// backend in the database dsn: the evidence ledger (OpenPostgresEvidence;
// its signing key node-local in home unless o names it).
func OpenPostgresStores(dsn, home string, o LocalStoreOptions) (*Stores, error) {
	ev, err := OpenPostgresEvidence(dsn, home, o)
	if err != nil {
		return nil, err
	}
	return &Stores{Evidence: ev}, nil
}
