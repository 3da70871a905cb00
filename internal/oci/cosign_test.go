package oci_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/oci"
	"github.com/wcphall/hall/internal/ocitest"
	"github.com/wcphall/hall/internal/trust"
)

// cosignKey makes a cosign key pair in dir (ECDSA P-256, empty password)
// and returns the trust policy that trusts it for org.acme.*.
func cosignKey(t *testing.T, dir string) *trust.Policy {
	t.Helper()
	if out, err := ocitest.RunCosign(t, dir, "generate-key-pair"); err != nil {
		t.Fatal(err, out)
	}
	pub, err := os.ReadFile(filepath.Join(dir, "cosign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	doc := `{"namespaces": {"org.acme.*": {"level": "enforce", "keys": [` + jsonString(string(pub)) + `]}}}`
	p, err := trust.Parse("trust.json", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func jsonString(s string) string {
	return `"` + strings.NewReplacer("\n", `\n`, `"`, `\"`).Replace(s) + `"`
}

// TestCosignSignaturesVerify: what the real cosign writes to a registry
// without the referrers API — the bundle under the sha256-<hex> tag index
// (v3 default) and the older sha256-<hex>.sig layout — is found and
// verifies against the key, and not for another namespace or digest.
func TestCosignSignaturesVerify(t *testing.T) {
	reg := ocitest.SharedRegistry(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		flags  []string
		format string
	}{
		{"bundle", nil, trust.FormatBundle},
		{"legacy-sig", []string{"--new-bundle-format=false"}, trust.FormatSimpleSigning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pol := cosignKey(t, dir)
			ref, _ := oci.ParseReference("oci://" + reg.Host + "/" + ocitest.RepoName(t) + ":1.0")
			desc, err := oci.Push(ctx, ref, module, nil, plain())
			if err != nil {
				t.Fatal(err)
			}
			target := reg.Host + "/" + ocitest.RepoName(t) + "@" + desc.Digest.String()
			args := append([]string{"sign", "--key", "cosign.key", "--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry", "--allow-insecure-registry"}, tc.flags...)
			if out, err := ocitest.RunCosign(t, dir, append(args, target)...); err != nil {
				t.Fatal(err, out)
			}
			d, repo, err := oci.Resolve(ctx, ref, plain())
			if err != nil {
				t.Fatal(err)
			}
			sigs, problems, err := oci.Signatures(ctx, repo, d, plain())
			if err != nil || len(sigs) == 0 {
				t.Fatalf("signatures: %v %v %v", sigs, problems, err)
			}
			if sigs[0].Format != tc.format {
				t.Fatalf("format %s, want %s", sigs[0].Format, tc.format)
			}
			subject := desc.Digest.Encoded()
			if r := pol.For("org.acme.summarizer").Check(subject, nil, sigs); !r.Verified || r.Signer == nil {
				t.Fatalf("not verified: %+v", r)
			}
			if r := pol.For("org.other.summarizer").Check(subject, nil, sigs); r.Verified || r.Level != trust.Off {
				t.Fatalf("org.other.* has no policy: %+v", r)
			}
			other := sha256.Sum256([]byte("other bytes"))
			if r := pol.For("org.acme.summarizer").Check(hex.EncodeToString(other[:]), nil, sigs); r.Verified || !r.Refused() {
				t.Fatalf("a signature over another digest verified: %+v", r)
			}
		})
	}
}
