package trust

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"
)

// TestSignAndVerifyBothKeyTypes: hall sign's bundles (a message signature
// over a file, a DSSE statement over a manifest digest) verify under a
// policy trusting the key, for ECDSA P-256 and Ed25519 — and not over
// other bytes, and not with another key.
func TestSignAndVerifyBothKeyTypes(t *testing.T) {
	ecPriv, ecPub, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(edKey)
	edPriv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	pubDER, _ := x509.MarshalPKIXPublicKey(edKey.Public())
	edPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	module := []byte("\x00asm\x01\x00\x00\x00 a module")
	sum := sha256.Sum256(module)
	subject := hex.EncodeToString(sum[:])
	other := sha256.Sum256([]byte("other"))
	for _, tc := range []struct {
		name      string
		priv, pub []byte
	}{{"ecdsa-p256", ecPriv, ecPub}, {"ed25519", edPriv, edPub}} {
		t.Run(tc.name, func(t *testing.T) {
			key, err := LoadSigningKey(tc.priv)
			if err != nil {
				t.Fatal(err)
			}
			q, _ := json.Marshal(string(tc.pub))
			p, err := Parse("trust.json", []byte(`{"namespaces": {"org.acme.*": {"level": "enforce", "keys": [`+string(q)+`]}}}`))
			if err != nil {
				t.Fatal(err)
			}
			a := p.For("org.acme.w")
			blob, err := key.SignBlob(module)
			if err != nil {
				t.Fatal(err)
			}
			man, err := key.SignManifest("registry/acme/w", subject)
			if err != nil {
				t.Fatal(err)
			}
			for what, sig := range map[string][]byte{"blob": blob, "manifest": man} {
				s := []Signature{{Format: FormatBundle, Bundle: sig}}
				if r := a.Check(subject, module, s); !r.Verified || r.Signer.PublicKey == "" {
					t.Errorf("%s: %+v", what, r)
				}
				if r := a.Check(hex.EncodeToString(other[:]), []byte("other"), s); r.Verified {
					t.Errorf("%s verified over other bytes", what)
				}
				if r := p.For("org.other.w").Check(subject, module, s); r.Verified {
					t.Errorf("%s verified outside its namespace", what)
				}
			}
			// The DSSE signature is verified again from the digest alone.
			r := a.Check(subject, nil, []Signature{{Format: FormatBundle, Bundle: man}})
			if err := Reverify(subject, nil, *r.Signature, *r.Signer, nil); err != nil {
				t.Errorf("reverify: %v", err)
			}
		})
	}
	if _, err := LoadSigningKey([]byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAA==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n")); err == nil {
		t.Error("an encrypted cosign key was accepted")
	}
}
