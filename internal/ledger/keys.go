package ledger

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is the signing key's path inside the Hall state directory.
const KeyFile = "keys/ed25519.key"

// KeyID identifies an Ed25519 public key: "ed25519:" and the first 16 hex
// digits of the SHA-256 of the 32 raw key bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// WritePublicKey writes pub to path as a PEM "PUBLIC KEY" block (PKIX,
// as openssl writes it), mode 0644. It replaces an existing file.
func WritePublicKey(path string, pub ed25519.PublicKey) error {
	return os.WriteFile(path, EncodePublicKey(pub), 0o644)
}

// EncodePublicKey returns pub as a PEM "PUBLIC KEY" block.
func EncodePublicKey(pub ed25519.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		// Only reachable with a key of the wrong length: a programming error.
		panic(fmt.Sprintf("ledger: marshal ed25519 public key: %v", err))
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// ReadPublicKey reads a public key file written by [WritePublicKey], or
// one holding the key as 64 hex digits (surrounding whitespace ignored).
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	pub, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// ParsePublicKey parses the formats [ReadPublicKey] accepts.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("%w: PEM block is %q, want \"PUBLIC KEY\"", ErrKey, block.Type)
		}
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: key is %T, want ed25519", ErrKey, k)
		}
		return pub, nil
	}
	s := strings.TrimSpace(string(data))
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: want a PEM \"PUBLIC KEY\" block or %d hex digits", ErrKey, 2*ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// loadKey reads the private key at path, creating it first when create is
// true and it does not exist. Creation is race-free across processes: the
// key is written to a temporary file and hard-linked into place, so every
// process ends up with the one key that won.
func loadKey(path string, create bool) (ed25519.PrivateKey, error) {
	priv, err := readPrivateKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !create {
		return priv, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	_, newPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%w: generate: %v", ErrKey, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(newPriv)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	tmp, err := os.CreateTemp(dir, ".ed25519.key.*")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600 already; Chmod guards against an
	// unusual umask-free platform default.
	// (err, not a new variable: a failed Chmod, Encode or Sync must stop
	// the key from being linked into place.)
	if err = tmp.Chmod(0o600); err == nil {
		err = pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		if err == nil {
			err = tmp.Sync()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%w: write %s: %v", ErrKey, path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	syncDir(dir)
	return readPrivateKey(path)
}

func readPrivateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	// Like ssh: a signing key others can read is not a secret any more.
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; it must not be accessible to group or others (chmod 600)", ErrKey, path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKey, err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s: no PEM \"PRIVATE KEY\" block", ErrKey, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKey, path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s: key is %T, want ed25519", ErrKey, path, k)
	}
	return priv, nil
}

// syncDir makes a new directory entry durable; failure only weakens
// durability of the entry, which the next open notices, so it is ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// VerifySignature reports whether r's Signature is pub's signature of r's
// ReceiptHash. It does not recompute the hash: see [Receipt.ComputeHash].
func VerifySignature(pub ed25519.PublicKey, r *Receipt) bool {
	sig, err := base64.StdEncoding.DecodeString(r.Signature)
	return err == nil && len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, []byte(r.ReceiptHash), sig)
}
