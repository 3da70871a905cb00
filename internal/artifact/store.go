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
	"sync"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/fsutil"
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
type Store struct {
	dir      string
	mu       sync.Mutex
	verified map[wcp.Digest]fileID // files whose bytes were hashed, as they were then
	// recent holds the bytes Verify last read, for the Get that usually
	// follows it (a decision verifies, the dispatch then loads): a
	// one-shot process reads and hashes its module once (issue 12). It
	// is given up to that Get, or replaced by the next Verify.
	recent struct {
		d  wcp.Digest
		id fileID
		b  []byte
	}
}

// fileID identifies a file's content without reading it: any write,
// truncation, replacement or chmod changes the inode change time (which,
// unlike the modification time, cannot be set back by a user). Where the
// platform reports no change time (changeTime), trusted is false and the
// file is hashed on every read: a modification time alone can be set back.
type fileID struct {
	dev, ino uint64
	size     int64
	mtime    int64
	ctime    int64
	trusted  bool
}

func statID(path string) (fileID, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileID{}, err
	}
	id := fileID{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	id.dev, id.ino, id.ctime, id.trusted = changeTime(fi)
	return id, nil
}

// Open opens (creating, mode 0700) the store directory.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(dir, "sha256"), 0o700); err != nil {
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	return &Store{dir: dir, verified: map[wcp.Digest]fileID{}}, nil
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
	if err := fsutil.WriteFileAtomic(path, module, 0o400); err != nil {
		return d, fmt.Errorf("artifact store: writing %s: %w", path, err)
	}
	return d, nil
}

// Get reads the module with digest d and verifies it: bytes that do not
// hash to d give a *TamperedError. A file unchanged since it was last
// verified (see Verify) is not hashed again.
func (s *Store) Get(d wcp.Digest) ([]byte, error) {
	path := s.Path(d)
	before, statErr := statID(path)
	s.mu.Lock()
	if r := s.recent; r.b != nil && r.d == d {
		s.recent.b = nil
		if statErr == nil && r.id == before {
			s.mu.Unlock()
			return r.b, nil
		}
	}
	s.mu.Unlock()
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (enroll the worker again)", ErrNotFound, d)
	}
	if err != nil {
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	if statErr == nil {
		after, err := statID(path)
		s.mu.Lock()
		known, ok := s.verified[d]
		s.mu.Unlock()
		if ok && err == nil && known == before && after == before {
			return b, nil
		}
	}
	if got := wcp.Digest(sha256.Sum256(b)); got != d {
		return nil, &TamperedError{Want: d, Got: got, Path: path}
	}
	if after, err := statID(path); statErr == nil && err == nil && after == before && before.trusted {
		s.mu.Lock()
		s.verified[d] = before
		s.mu.Unlock()
	}
	return b, nil
}

// Verify checks that the stored module still hashes to d without reading
// it again when the file is unchanged since it was last hashed (same
// inode, size, modification and change times). It returns the digest the
// file hashes to: d, or another one for a tampered file.
func (s *Store) Verify(d wcp.Digest) (wcp.Digest, error) {
	path := s.Path(d)
	before, err := statID(path)
	if errors.Is(err, fs.ErrNotExist) {
		return wcp.Digest{}, fmt.Errorf("%w: %s (enroll the worker again)", ErrNotFound, d)
	}
	if err != nil {
		return wcp.Digest{}, fmt.Errorf("artifact store: %w", err)
	}
	s.mu.Lock()
	known, ok := s.verified[d]
	s.mu.Unlock()
	if ok && known == before {
		return d, nil
	}
	b, err := s.Get(d)
	var te *TamperedError
	if errors.As(err, &te) {
		return te.Got, nil
	}
	if err != nil {
		return wcp.Digest{}, err
	}
	s.mu.Lock()
	if id, ok := s.verified[d]; ok && id == before {
		s.recent.d, s.recent.id, s.recent.b = d, before, b
	}
	s.mu.Unlock()
	return d, nil
}
