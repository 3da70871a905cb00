package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 (its own CA)
// and its key, and returns the certificate.
func writeCert(t *testing.T, certPath, keyPath, name string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	// The key first: a reader seeing the new certificate with the old key
	// is refused, and retries on the next change.
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// TestServeTLS is the newcomer's report (issue 27): hall serve had no TLS
// and bound non-loopback addresses in plain HTTP without a word. A real
// TLS client reaches it with --tls-cert/--tls-key; a renewed certificate
// is served after SIGHUP without a restart; plain HTTP on an address
// other hosts can reach is refused unless --insecure-http.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "rules.json", `{"rules": []}`)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := writeCert(t, certPath, keyPath, "first")
	base, cmd, logs := startServe(t, dir, "--tls-cert", certPath, "--tls-key", keyPath)
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("startup url %q is not https", base)
	}
	client := func(ca *x509.Certificate) *http.Client {
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}, Timeout: 10 * time.Second}
	}
	resp, err := client(first).Get(base + "/health")
	if err != nil {
		t.Fatalf("a TLS client trusting the certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.PeerCertificates[0].Subject.CommonName != "first" {
		t.Fatalf("GET /health over TLS: %d %+v", resp.StatusCode, resp.TLS)
	}
	if resp, err := http.Get("http://" + strings.TrimPrefix(base, "https://") + "/health"); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP is answered on the TLS port")
	}

	// hall status reaches it by URL, trusting the certificate as any Go
	// client does (SSL_CERT_FILE).
	if r := hallIn(t, dir, "", []string{"SSL_CERT_FILE=" + certPath}, "status", "--addr", base); r.code != 0 || !strings.Contains(r.stdout, base+" answers") {
		t.Fatalf("status --addr %s: exit %d\n%s%s", base, r.code, r.stdout, r.stderr)
	}

	second := writeCert(t, certPath, keyPath, "second")
	before := len(logs.String())
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String()[before:], "hall: TLS certificate reloaded"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no TLS reload logged after SIGHUP:\n%s", logs.String())
		}
	}
	resp, err = client(second).Get(base + "/health")
	if err != nil {
		t.Fatalf("after renewal, a client trusting the new certificate: %v", err)
	}
	resp.Body.Close()
	if resp.TLS.PeerCertificates[0].Subject.CommonName != "second" {
		t.Fatalf("after renewal the old certificate is served")
	}

	r := hallIn(t, dir, "", nil, "serve", "--addr", "0.0.0.0:0")
	if r.code != exitError || !strings.Contains(r.stderr, "refusing to serve plain HTTP") || !strings.Contains(r.stderr, "--insecure-http") {
		t.Fatalf("plain HTTP on 0.0.0.0: exit %d %s", r.code, r.stderr)
	}
	if r := hallIn(t, dir, "", nil, "serve", "--addr", "127.0.0.1:0", "--tls-cert", certPath); r.code != exitError || !strings.Contains(r.stderr, "go together") {
		t.Fatalf("--tls-cert alone: exit %d %s", r.code, r.stderr)
	}
	insecure, _, logs2 := startServe(t, dir, "--addr", "0.0.0.0:0", "--insecure-http")
	if !strings.HasPrefix(insecure, "http://") || !strings.Contains(logs2.String(), "tokens cross the network in clear") {
		t.Fatalf("--insecure-http: %s\n%s", insecure, logs2.String())
	}
}
