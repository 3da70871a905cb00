package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/artifact"
	"github.com/wcphall/hall/internal/auth"
	"github.com/wcphall/hall/internal/ledger"
)

// Stores is the storage seam: everything a Hall, its CLI and its HTTP API
// keep between requests. The SQLite-and-files default (OpenLocalStores)
// implements it, and so does PostgreSQL, shared by several Halls
// (OpenPostgresStores and OpenPostgresSource, docs/DEPLOY.md); both pass
// the same contract tests (internal/storetest).
//
//	st, err := host.OpenLocalStores(".hall", host.LocalStoreOptions{})
//	if err != nil { ... }
//	defer st.Close()
//	h, err := host.Open(ctx, host.Options{Stores: st})
//
// # Notes
//
//   - Source is the snapshot inputs (rules, policies, configuration,
//     enrollments); nil reads the files of Options.
//   - Evidence is the signed ledger: decisions, receipts, the change chain
//     and approvals. An approval's step commits in the same transaction as
//     its change entry, and the approval a decision uses is consumed in the
//     transaction that records the decision. Besides EvidenceStore's
//     methods, an evidence store has the approvals and one-commit
//     dispatch abilities the contract tests require (the Hall asserts
//     them).
//   - Tokens are the HTTP API's bearer tokens: a token created or revoked
//     through one open store is seen by every other open of the same store
//     from its next Authenticate.
//   - Artifacts are worker modules by content digest: what Get returns
//     hashes to the digest asked for, or the error says it does not.
//   - A nil part of Options.Stores takes the local default in Home. Parts an
//     embedder supplies are the embedder's: Hall.Close does not close them.
type Stores struct {
	Source    SnapshotSource
	Evidence  EvidenceStore
	Tokens    TokenStore
	Artifacts ArtifactStore
}

// Close closes every part that was opened (each part that is an
// io.Closer), and returns their errors joined.
func (s *Stores) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, p := range []any{s.Source, s.Evidence, s.Tokens, s.Artifacts} {
		if c, ok := p.(io.Closer); ok && c != nil {
			errs = append(errs, c.Close())
		}
	}
	return errors.Join(errs...)
}

// TokenStore holds the HTTP API's bearer tokens (host/server's
// Config.Tokens). Only a hash of each token is stored. Its methods are
// safe for concurrent use.
type TokenStore interface {
	// Create makes a token of scope and returns it, in the clear, with its
	// public part; the clear token is not kept and cannot be shown again.
	Create(ctx context.Context, scope TokenScope, name string) (secret string, tok Token, err error)
	// Authenticate returns the token whose secret is given, or an error
	// wrapping ErrInvalidToken for one malformed, unknown or revoked. A
	// revocation through any open of the same store is seen from the next
	// call.
	Authenticate(ctx context.Context, secret string) (Token, error)
	// List returns every token, revoked ones included, oldest first.
	List(ctx context.Context) ([]Token, error)
	// Revoke revokes the token with id and returns it; an unknown id is an
	// error wrapping ErrTokenNotFound.
	Revoke(ctx context.Context, id string) (Token, error)
	// Close releases the store.
	Close() error
}

// Token errors a caller can act on.
var (
	// ErrInvalidToken: a presented token is malformed, unknown or revoked
	// (deliberately not distinguished).
	ErrInvalidToken = auth.ErrInvalidToken
	// ErrTokenNotFound: no token has the given id.
	ErrTokenNotFound = auth.ErrNotFound
)

// ArtifactStore holds worker modules by the SHA-256 digest of their bytes.
// Its methods are safe for concurrent use.
type ArtifactStore interface {
	// Put stores module and returns its digest; storing bytes already
	// held is a no-op.
	Put(ctx context.Context, module []byte) (wcp.Digest, error)
	// Get returns the module with digest d. Bytes that no longer hash to
	// d give an *ArtifactTamperedError; an unknown digest an error
	// wrapping ErrArtifactNotFound.
	Get(ctx context.Context, d wcp.Digest) ([]byte, error)
	// Verify returns the digest the stored module now hashes to: d, or
	// another one for tampered bytes; an unknown digest is an error
	// wrapping ErrArtifactNotFound.
	Verify(ctx context.Context, d wcp.Digest) (wcp.Digest, error)
}

// ErrArtifactNotFound is returned for a digest the artifact store does not
// hold.
var ErrArtifactNotFound = artifact.ErrNotFound

// ErrNoEvidence is returned by OpenLocalEvidence, read-only, when nothing
// has been recorded in the state directory yet.
var ErrNoEvidence = errors.New("no evidence ledger")

// LocalStoreOptions say how the SQLite-and-files default opens its
// evidence ledger.
type LocalStoreOptions struct {
	// KeyFile is the signing key's path (default Home/keys/ed25519.key).
	KeyFile string
	// KeyFD, when set, is read once for the signing key instead of KeyFile.
	KeyFD *os.File
	// Checkpoints says when the ledger signs checkpoints and where it
	// writes them.
	Checkpoints CheckpointPolicy
	// StorePayloads keeps dispatch inputs and outputs in the receipts.
	StorePayloads bool
	// ReadOnly opens an existing ledger for reading only: nothing is
	// created, migrated or written (an error wrapping ErrNoEvidence when
	// there is no ledger).
	ReadOnly bool
	// NoMigrate (PostgreSQL only) refuses a database whose ledger schema
	// is not at this Hall's version instead of migrating it.
	NoMigrate bool
}

// OpenLocalStores opens the SQLite-and-files default of every part but
// Source (nil: the files of Options) in the state directory home: the
// evidence ledger (home/hall.db and the signing key), the token database
// (home/auth.db, mode 0600) and the artifact directory (home/artifacts).
// ReadOnly is refused: the token database and artifact directory are
// created when missing; open the evidence alone with OpenLocalEvidence.
func OpenLocalStores(home string, o LocalStoreOptions) (*Stores, error) {
	if o.ReadOnly {
		return nil, errors.New("LocalStoreOptions.ReadOnly: OpenLocalStores creates the token and artifact stores; open the evidence alone read-only with OpenLocalEvidence")
	}
	ev, err := OpenLocalEvidence(home, o)
	if err != nil {
		return nil, err
	}
	toks, err := OpenLocalTokens(home)
	if err != nil {
		ev.Close()
		return nil, err
	}
	arts, err := OpenLocalArtifacts(home)
	if err != nil {
		ev.Close()
		toks.Close()
		return nil, err
	}
	return &Stores{Evidence: ev, Tokens: toks, Artifacts: arts}, nil
}

// OpenLocalEvidence opens (creating it, its state directory and its
// signing key when missing, unless o.ReadOnly) the SQLite evidence ledger
// of the state directory home. Besides EvidenceStore, the store has the
// local ledger's audit abilities the hall CLI uses (verification against
// given keys and checkpoints, bundles, checkpoints, key rotation).
func OpenLocalEvidence(home string, o LocalStoreOptions) (EvidenceStore, error) {
	opts := ledgerOptions(o)
	if o.ReadOnly {
		path := filepath.Join(home, ledger.DBFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w at %s: nothing has been recorded yet", ErrNoEvidence, path)
		}
	}
	s, err := ledger.Open(home, opts...)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ledgerOptions are the ledger options o asks for.
func ledgerOptions(o LocalStoreOptions) []ledger.Option {
	var opts []ledger.Option
	if o.StorePayloads {
		opts = append(opts, ledger.WithPayloads())
	}
	switch {
	case o.KeyFD != nil:
		opts = append(opts, ledger.WithKeyReader(o.KeyFD))
	case o.KeyFile != "":
		opts = append(opts, ledger.WithKeyFile(o.KeyFile))
	}
	if p := o.Checkpoints; p != (ledger.CheckpointPolicy{}) {
		opts = append(opts, ledger.WithCheckpoints(p))
	}
	if o.ReadOnly {
		opts = append(opts, ledger.ReadOnly())
	}
	if o.NoMigrate {
		opts = append(opts, ledger.NoMigrate())
	}
	return opts
}

// OpenLocalTokens opens the token database of the state directory home
// (home/auth.db, created with mode 0600 when missing).
func OpenLocalTokens(home string) (TokenStore, error) {
	s, err := auth.Open(filepath.Join(home, auth.DBFile))
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenLocalArtifacts opens (creating it, mode 0700) the artifact directory
// of the state directory home (home/artifacts).
func OpenLocalArtifacts(home string) (ArtifactStore, error) {
	s, err := artifact.Open(filepath.Join(home, "artifacts"))
	if err != nil {
		return nil, err
	}
	return localArtifacts{s}, nil
}

// localArtifacts is the artifact directory behind ArtifactStore.
type localArtifacts struct{ s *artifact.Store }

func (a localArtifacts) Put(_ context.Context, module []byte) (wcp.Digest, error) {
	return a.s.Put(module)
}

func (a localArtifacts) Get(_ context.Context, d wcp.Digest) ([]byte, error) { return a.s.Get(d) }

func (a localArtifacts) Verify(_ context.Context, d wcp.Digest) (wcp.Digest, error) {
	return a.s.Verify(d)
}

// Path is where the module with digest d is stored (ModulePath).
func (a localArtifacts) Path(d wcp.Digest) string { return a.s.Path(d) }

// ArtifactPath returns the file holding the module with digest d in a
// store that keeps modules as files, or "" for one that does not.
func ArtifactPath(s ArtifactStore, d wcp.Digest) string {
	if p, ok := s.(interface{ Path(wcp.Digest) string }); ok {
		return p.Path(d)
	}
	return ""
}
