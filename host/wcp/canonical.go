package wcp

import (
	"crypto/sha256"
	"encoding/json"
)

// CanonicalJSON returns raw in the canonical form the Hall hashes: object
// keys sorted at every level, no insignificant whitespace, numbers as
// written. It is the form a record's seal and a request's request_hash are
// computed over.
func CanonicalJSON(raw json.RawMessage) ([]byte, error) { return appendCanonical(nil, raw) }

// RecordDigest is the seal of a registry record: the SHA-256 of the
// canonical JSON of the record as the Hall writes it (artifact_hash
// included, so a seal binds the record to its module).
func RecordDigest(rec *Record) (Digest, error) {
	raw, err := json.Marshal(rec)
	if err != nil {
		return Digest{}, err
	}
	c, err := CanonicalJSON(raw)
	if err != nil {
		return Digest{}, err
	}
	return Digest(sha256.Sum256(c)), nil
}
