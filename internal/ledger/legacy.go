package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/wcphall/hall/host/wcp"
)

// Format versions of signed entries (docs/EVIDENCE.md, "Versions").
//
// Version 1 entries (receipts and changes written before RFC 8785) carry
// no "version" member; their hash covers canonicalV1 of their body.
// Version 2 entries carry "version": 2; their hash covers RFC 8785
// (wcp.CanonicalJSON). Verify picks the rule by the member, so a database
// holds both and every entry keeps verifying under the rule it was
// written with.
const (
	formatV1 = 1
	formatV2 = 2
)

// canonicalV1 is the canonical form of version 1 entries: encoding/json's
// encoding of the value decoded with UseNumber (numbers as written, map
// keys sorted by bytes, HTML escaping off, U+2028/U+2029 escaped as
// \u2028/\u2029, U+0008 and U+000C as \u0008 and \u000c). Kept only to
// verify entries written before version 2.
func canonicalV1(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// canonical is the current canonical form (RFC 8785).
func canonical(raw []byte) ([]byte, error) { return wcp.CanonicalJSON(raw) }

// canonicalFor returns the canonical form of raw under format version v.
func canonicalFor(v int, raw []byte) ([]byte, error) {
	if v >= formatV2 {
		return canonical(raw)
	}
	return canonicalV1(raw)
}

// canonicalMarshal encodes v and canonicalizes the result (RFC 8785).
func canonicalMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return canonical(b)
}

// sealV1 is the canonical form record seals were computed over before
// RFC 8785 (host/wcp's encoder of the time): keys sorted by bytes, numbers
// as written, strings escaped like encoding/json without HTML escaping and
// with U+2028/U+2029 raw. Used only to recognize version 1 seals.
func sealV1(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return appendSealV1(nil, v), nil
}

func appendSealV1(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		if x {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case json.Number:
		return append(b, x...)
	case string:
		return appendStringV1(b, x)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSealV1(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendStringV1(b, k)
			b = append(b, ':')
			b = appendSealV1(b, x[k])
		}
		return append(b, '}')
	}
	return append(b, "null"...)
}

func appendStringV1(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// digestOf returns "sha256:<hex>" of b.
func digestOf(b []byte) string { return wcp.Digest(sha256.Sum256(b)).String() }

// currentSeal re-expresses a version 1 enrollment seal under the current
// canonical form. A version 1 change's Digest is the record's seal under
// sealV1; when its signed Body is that record (sealV1(Body) hashes to
// Digest), the record's current seal is the RFC 8785 digest of the same
// Body, which is what wcp.RecordDigest computes for the unchanged record
// file. It returns "" when the body does not prove the seal.
func currentSeal(digest string, body []byte) string {
	if len(body) == 0 {
		return ""
	}
	old, err := sealV1(body)
	if err != nil || digestOf(old) != digest {
		return ""
	}
	c, err := canonical(body)
	if err != nil {
		return ""
	}
	return digestOf(c)
}
