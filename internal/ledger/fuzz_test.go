package ledger

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"
)

// FuzzParsePublicKey: `hall audit verify --public-key FILE` feeds any file
// here; it must fail cleanly or return a usable key.
func FuzzParsePublicKey(f *testing.F) {
	pub := make(ed25519.PublicKey, ed25519.PublicKeySize)
	f.Add(EncodePublicKey(pub))
	f.Add([]byte("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePublicKey(data)
		if err == nil && len(k) != ed25519.PublicKeySize {
			t.Fatalf("accepted a %d-byte key", len(k))
		}
	})
}

// FuzzCanonical: canonical form is a fixed point and keeps the value, so a
// stored body verifies the same way however often it is re-canonicalized.
func FuzzCanonical(f *testing.F) {
	f.Add([]byte(`{"b":1,"a":[true,null,"<&>\u2028"],"c":{"z":1.50,"y":-0}}`))
	f.Add([]byte(`"\b\f\u0001\ud800"`))
	f.Add([]byte(` [ 1e400 , 0.1 ] `))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := canonical(data)
		if err != nil {
			return
		}
		c2, err := canonical(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not a fixed point: %s -> %s (%v)", c, c2, err)
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form is not JSON: %s", c)
		}
	})
}
