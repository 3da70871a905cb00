package wcp

import (
	"crypto/sha256"
	"encoding/json"
)

// CanonicalJSON returns raw in the canonical form every hash of the Hall is
// computed over: RFC 8785, the JSON Canonicalization Scheme (JCS). Object
// members are sorted by the UTF-16 code units of their names, at every
// level; there is no insignificant whitespace; strings are escaped as
// ECMAScript's JSON.stringify escapes them (only '"', '\' and characters
// below U+0020; U+2028, U+2029, '<', '&', '>' and U+007F are written as
// they are); numbers are the IEEE 754 doubles they denote, written as
// ECMAScript's Number.toString writes them (1.0 is 1, 1e2 is 100).
//
// It is the form of a record's seal (RecordDigest), a request's
// request_hash, and every receipt, decision and change the evidence ledger
// signs. docs/EVIDENCE.md states the rules for outside verifiers.
//
// # Notes
//
//   - A number outside the double range (1e400) has no RFC 8785 form; it
//     is kept as written, so that a request carrying one still has a
//     request_hash (the one deviation; RFC 8785 libraries refuse such
//     input). An integer beyond ±2^53 is written as the nearest double, so
//     two such integers share a canonical form, as in every JCS
//     implementation.
//   - Invalid UTF-8 in a string becomes U+FFFD, as encoding/json decodes it.
//   - A later member with the name of an earlier one replaces it (RFC 8785
//     asks to refuse duplicates; the value hashed is the one encoding/json
//     reads).
//   - raw must be one JSON value, white space around it allowed, exactly
//     as encoding/json's Decoder reads one (nesting deeper than 10000
//     arrays and objects is refused); the error is the Decoder's. Empty
//     raw is null.
//
// For a RouteDecision, RouteDecision.AppendCanonicalJSON writes the same
// bytes from the struct, without the wire form.
func CanonicalJSON(raw json.RawMessage) ([]byte, error) {
	return appendCanonical(make([]byte, 0, len(raw)+16), raw)
}

// CanonicalVersion is the version of the canonical form CanonicalJSON
// writes: 2 is RFC 8785. Version 1, used before, sorted keys by bytes,
// kept numbers as written and escaped strings as encoding/json does; seals
// and evidence made with it stay verifiable through the evidence ledger,
// which records the version of each entry (docs/EVIDENCE.md).
const CanonicalVersion = 2

// AppendJSONString appends s as a JSON string in the canonical form
// (RFC 8785: ECMAScript's JSON.stringify escaping; invalid UTF-8 becomes
// U+FFFD). Writers that build canonical JSON by hand use it, so that the
// Hall has one string encoder.
func AppendJSONString(b []byte, s string) []byte { return appendString(b, s) }

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
