// Package artifact is the Hall's content-addressed store of worker modules:
// a module's bytes live under their SHA-256 digest, so what was enrolled is
// provably what runs. Reads verify the bytes against the digest.
package artifact

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/wcphall/hall/host/wcp"
)

// ErrNotFound is returned for a digest the store does not hold.
var ErrNotFound = errors.New("artifact: module not in the store")

// TamperedError is returned when stored bytes no longer hash to their
// digest.
type TamperedError struct {
	Want, Got wcp.Digest
	Path      string
}

func (e *TamperedError) Error() string {
	return fmt.Sprintf("stored module %s no longer matches its digest %s (it hashes to %s)", e.Path, e.Want, e.Got)
}

// Store is a directory of modules named by digest. It is safe for
// concurrent use by goroutines and processes (writes are atomic renames).
type Store struct{ dir string }

// Open opens (creating, mode 0700) the store directory.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o700); err != nil {
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	return &Store{dir: dir}, nil
}

// Path returns where the module with digest d is (or would be) stored.
func (s *Store) Path(d wcp.Digest) string {
	return filepath.Join(s.dir, "sha256", d.Hex()+".wasm")
}

// Put stores module bytes and returns their digest. Storing bytes already
// present is a no-op.
func (s *Store) Put(module []byte) (wcp.Digest, error) {
	d := wcp.Digest(sha256.Sum256(module))
	path := s.Path(d)
	if existing, err := os.ReadFile(path); err == nil && wcp.Digest(sha256.Sum256(existing)) == d {
		return d, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".put-*")
	if err != nil {
		return d, fmt.Errorf("artifact store: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(module); err != nil {
		tmp.Close()
		return d, fmt.Errorf("artifact store: writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return d, fmt.Errorf("artifact store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return d, fmt.Errorf("artifact store: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o400); err != nil {
		return d, fmt.Errorf("artifact store: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return d, fmt.Errorf("artifact store: %w", err)
	}
	return d, nil
}

// Get reads the module with digest d and verifies it: bytes that do not
// hash to d give a *TamperedError.
func (s *Store) Get(d wcp.Digest) ([]byte, error) {
	path := s.Path(d)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (enroll the worker again)", ErrNotFound, d)
	}
	if err != nil {
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	if got := wcp.Digest(sha256.Sum256(b)); got != d {
		return nil, &TamperedError{Want: d, Got: got, Path: path}
	}
	return b, nil
}
