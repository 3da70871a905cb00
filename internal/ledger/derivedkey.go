package ledger

import "crypto/sha256"

// DerivedKey returns a 32-byte secret for purpose, derived from the current
// signing key: SHA-256(purpose || the Ed25519 seed). It is nil when the
// ledger has no signing key (a read-only open without a key file).
//
// # Notes
//
//   - It is as secret as the signing key (whoever holds one can compute
//     the other) and changes when the key is rotated: what was
//     authenticated under the old one no longer verifies.
//   - purpose separates uses: two purposes never share a key. The Hall
//     uses "hall compiled-form cache v1" for its compiled-form cache
//     (internal/sandbox, Config.CacheKey) and "hall token binding v1"
//     for the binding of a token's issuance to its stored hash
//     (TokenBinding).
func (s *SQLite) DerivedKey(purpose string) []byte {
	k := s.key.Load()
	if k == nil {
		return nil
	}
	h := sha256.New()
	h.Write([]byte(purpose))
	h.Write(k.priv.Seed())
	return h.Sum(nil)
}
