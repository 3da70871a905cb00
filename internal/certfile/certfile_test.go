package certfile

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writePair(t *testing.T, certPath, keyPath, name string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

func served(t *testing.T, r *Reloader) string {
	t.Helper()
	c, err := r.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.Subject.CommonName
}

// A renewed pair is served after Reload; a broken one is reported once and
// the last good pair keeps serving; missing files are named at New.
func TestReload(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if _, err := New(cert, key, nil); err == nil {
		t.Fatal("New with no files: no error")
	}
	writePair(t, cert, key, "one")
	var reports []error
	r, err := New(cert, key, func(err error) { reports = append(reports, err) })
	if err != nil {
		t.Fatal(err)
	}
	if got := served(t, r); got != "one" {
		t.Fatalf("served %q", got)
	}
	writePair(t, cert, key, "two")
	if err := r.Reload(); err != nil || served(t, r) != "two" {
		t.Fatalf("after renewal: %v, served %q", err, served(t, r))
	}
	if err := os.WriteFile(cert, []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil || served(t, r) != "two" {
		t.Fatalf("a broken pair: %v, served %q", err, served(t, r))
	}
	if err := r.Reload(); err != nil {
		t.Fatalf("the same broken pair reported again: %v", err)
	}
	if len(reports) != 2 || reports[0] != nil || reports[1] == nil {
		t.Fatalf("reports: %v", reports)
	}
}
