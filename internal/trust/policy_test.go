package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pubPEM(t testing.TB) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestMostSpecificPatternWins: an exact id beats a longer prefix, which
// beats a shorter one, which beats "*"; an id under no pattern is off.
func TestMostSpecificPatternWins(t *testing.T) {
	doc := `{"namespaces": {"*": {"level": "off"}, "org.*": {"level": "audit"}, "org.acme.*": {"level": "enforce"},
	  "org.acme.legacy": {"level": "audit"}, "x.*": {"level": "off"}}}`
	p, err := Parse("trust.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		"org.acme.summarizer": "org.acme.*", "org.acme.legacy": "org.acme.legacy", "org.other.w": "org.*",
		"x.lab.w": "x.*", "wrk.anything": "*", "org.acmex.w": "org.*",
	} {
		if got := p.For(id).Pattern; got != want {
			t.Errorf("%s: pattern %q, want %q", id, got, want)
		}
	}
	q, _ := Parse("trust.json", []byte(`{"namespaces": {"org.acme.*": {"level": "enforce"}}}`))
	if a := q.For("org.other.w"); a.Pattern != "" || a.Level != Off {
		t.Errorf("unmatched id: %+v", a)
	}
}

func TestParseRefusesWithTheField(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{`{"namespaces": {"org.acme.*": {"level": "strict"}}}`, `namespaces["org.acme.*"].level`},
		{`{"namespaces": {"org.*.acme": {"level": "off"}}}`, `not a namespace pattern`},
		{`{"namespaces": {"org.acme.*": {"level": "enforce", "keys": ["keys/acme.pub"]}}}`, `keys[0]`},
		{`{"namespaces": {"org.acme.*": {"level": "enforce", "identities": [{"issuer": "https://i", "subject": ".*"}]}}}`, `trusted_root`},
		{`{"namespaces": {"org.acme.*": {"level": "enforce", "identities": [{"issuer": "https://i", "subject": "("}]}}}`, `identities[0].subject`},
		{`{"namespace": {}}`, `unknown field`},
		{`{}`, `namespaces: is required`},
		{strings.Repeat("[", 100) + strings.Repeat("]", 100), `nested deeper`},
	} {
		_, err := Parse("trust.json", []byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "TRUST_INVALID") {
			t.Errorf("%s: err = %v, want %q", tc.doc, err, tc.want)
		}
	}
}

// TestResolveInlinesFilesAndKeepsInlineDocuments: paths become content;
// a self-contained document comes back byte for byte.
func TestResolveInlinesFilesAndKeepsInlineDocuments(t *testing.T) {
	dir := t.TempDir()
	pub := pubPEM(t)
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "keys", "acme.pub"), []byte(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Resolve([]byte(`{"namespaces": {"org.acme.*": {"level": "enforce", "keys": ["keys/acme.pub"]}}}`), dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse("trust.json", out)
	if err != nil || len(p.For("org.acme.w").Keys) != 1 {
		t.Fatalf("resolved policy: %v %s", err, out)
	}
	inline, _ := json.Marshal(map[string]any{"namespaces": map[string]any{"org.acme.*": map[string]any{"level": "enforce", "keys": []string{pub}}}})
	again, err := Resolve(inline, dir)
	if err != nil || string(again) != string(inline) {
		t.Fatalf("an inline document changed: %v", err)
	}
	if _, err := Resolve([]byte(`{"namespaces": {"org.acme.*": {"level": "enforce", "keys": ["missing.pub"]}}}`), dir); err == nil || !strings.Contains(err.Error(), "keys[0]") {
		t.Fatalf("missing key file: %v", err)
	}
}

func TestEnforceWithoutSignerSaysTheFix(t *testing.T) {
	p, _ := Parse("trust.json", []byte(`{"namespaces": {"org.*": {"level": "enforce"}}}`))
	r := p.For("org.acme.w").Check(strings.Repeat("ab", 32), nil, nil)
	if !r.Refused() || !strings.Contains(r.Problem, `add the organisation's public key`) || !strings.Contains(r.Problem, `namespaces["org.*"]`) {
		t.Fatalf("%+v", r)
	}
}

// FuzzParse: no trust document panics the parser; what parses answers For.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"namespaces": {"org.acme.*": {"level": "enforce", "keys": []}, "*": {"level": "off"}}}`))
	f.Add([]byte(`{"namespaces": {"x.*": {"level": "audit", "identities": [{"issuer": "a", "subject": "b"}]}}, "trusted_root": {}}`))
	f.Add([]byte(`[[[[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz", data)
		if err == nil {
			p.For("org.acme.w")
		}
	})
}

// FuzzCheckBundle: no bundle bytes panic verification.
func FuzzCheckBundle(f *testing.F) {
	f.Add([]byte(`{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}`))
	f.Add([]byte(`{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": {"publicKey": {"hint": "x"}}, "messageSignature": {"messageDigest": {"algorithm": "SHA2_256", "digest": "AA=="}, "signature": "AA=="}}`))
	pub := pubPEM(f)
	p, err := Parse("trust.json", []byte(`{"namespaces": {"*": {"level": "enforce", "keys": [`+jsonQuote(pub)+`]}}}`))
	if err != nil {
		f.Fatal(err)
	}
	a := p.For("org.acme.w")
	f.Fuzz(func(t *testing.T, data []byte) {
		r := a.Check(strings.Repeat("ab", 32), nil, []Signature{{Format: FormatBundle, Bundle: data}, {Format: FormatSimpleSigning, Payload: data, Sig: data}})
		if r.Verified {
			t.Fatalf("random bytes verified: %q", data)
		}
	})
}

func jsonQuote(s string) string { b, _ := json.Marshal(s); return string(b) }
