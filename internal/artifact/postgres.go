package artifact

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/pgsql"
)

// PGStore keeps modules by digest in a PostgreSQL table (content-addressed
// bytea), shared by every node of one database. Get and Verify hash what
// the database returns: bytes that no longer hash to their digest are
// reported, never returned.
type PGStore struct {
	db   *sql.DB
	name string
}

// pgLockKey serializes the creation of the modules table by nodes
// starting together.
const pgLockKey = 0x48616c6d // "Halm"

// OpenPostgres opens (creating its table when missing) the module store of
// the PostgreSQL database dsn.
func OpenPostgres(dsn string) (*PGStore, error) {
	cfg, err := pgsql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("artifact store: database URL: %w", err)
	}
	db := pgsql.OpenDB(cfg, pgsql.Dialect{WriteLock: pgLockKey})
	db.SetMaxOpenConns(4)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err == nil {
		if _, err = tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS modules (digest TEXT PRIMARY KEY, module BYTEA NOT NULL)`); err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("artifact store: open postgres database %s: %w", cfg.Database, err)
	}
	return &PGStore{db: db, name: cfg.Database}, nil
}

// Close releases the database.
func (s *PGStore) Close() error { return s.db.Close() }

// Put stores module under its digest (a no-op when it is held).
func (s *PGStore) Put(ctx context.Context, module []byte) (wcp.Digest, error) {
	d := wcp.Digest(sha256.Sum256(module))
	if _, err := s.db.ExecContext(ctx, `INSERT INTO modules (digest, module) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING`, d.String(), module); err != nil {
		return d, fmt.Errorf("artifact store: storing %s: %w", d, err)
	}
	return d, nil
}

func (s *PGStore) read(ctx context.Context, d wcp.Digest) ([]byte, wcp.Digest, error) {
	var b []byte
	err := s.db.QueryRowContext(ctx, `SELECT module FROM modules WHERE digest = ?`, d.String()).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, wcp.Digest{}, fmt.Errorf("%w: %s (enroll the worker again)", ErrNotFound, d)
	}
	if err != nil {
		return nil, wcp.Digest{}, fmt.Errorf("artifact store: %w", err)
	}
	return b, wcp.Digest(sha256.Sum256(b)), nil
}

// Get returns the module with digest d; bytes that no longer hash to d
// give a *TamperedError.
func (s *PGStore) Get(ctx context.Context, d wcp.Digest) ([]byte, error) {
	b, got, err := s.read(ctx, d)
	if err != nil {
		return nil, err
	}
	if got != d {
		return nil, &TamperedError{Want: d, Got: got, Path: "postgres database " + s.name + " table modules"}
	}
	return b, nil
}

// Verify returns the digest the stored module now hashes to.
func (s *PGStore) Verify(ctx context.Context, d wcp.Digest) (wcp.Digest, error) {
	_, got, err := s.read(ctx, d)
	return got, err
}
