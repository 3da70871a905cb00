package server_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/auth"
	"github.com/wcphall/hall/internal/oci"
	"github.com/wcphall/hall/internal/ocitest"
)

// TestAdminTrustAndEnrollReference: PUT /admin/trust sets a recorded
// trust policy; POST /enroll {"reference": "oci://…"} enrolls a
// cosign-signed artifact from a real registry under it and refuses an
// unsigned one with TRUST_REFUSED (403); GET /admin/trust reads it back.
func TestAdminTrustAndEnrollReference(t *testing.T) {
	reg := ocitest.SharedRegistry(t)
	ctx := context.Background()
	dir := t.TempDir()
	rules, _ := os.ReadFile("../../examples/quickstart/rules.json")
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := host.Open(ctx, host.Options{Dir: dir, Home: filepath.Join(dir, ".hall")})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	tokens, err := auth.Open(filepath.Join(dir, ".hall", auth.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	defer tokens.Close()
	admin, _, err := h.IssueToken(ctx, tokens, auth.AdminScope(), "test", "local:test")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(h, server.Config{Tokens: tokens}))
	defer ts.Close()
	base := ts.URL

	keys := t.TempDir()
	if out, err := ocitest.RunCosign(t, keys, "generate-key-pair"); err != nil {
		t.Fatal(err, out)
	}
	pub, _ := os.ReadFile(filepath.Join(keys, "cosign.pub"))
	doc, _ := json.Marshal(map[string]any{"namespaces": map[string]any{"org.acme.*": map[string]any{"level": "enforce", "keys": []string{string(pub)}}}})
	if r := get(t, base, "/admin/trust", admin); r.status != 404 || strings.Trim(r.header.Get("ETag"), `"`) != "none" {
		t.Fatalf("GET /admin/trust with none: %s", r)
	}
	r := call(t, base, req{method: "PUT", path: "/admin/trust", token: admin, ctype: "application/json", body: strings.NewReader(string(doc)), header: map[string]string{"If-Match": `"none"`}})
	if r.status != 200 {
		t.Fatalf("PUT /admin/trust: %s", r)
	}
	if g := get(t, base, "/admin/trust", admin); g.status != 200 || !strings.Contains(string(g.raw), "BEGIN PUBLIC KEY") || g.header.Get("ETag") != r.header.Get("ETag") {
		t.Fatalf("GET /admin/trust: %s", g)
	}
	bad := call(t, base, req{method: "PUT", path: "/admin/trust", token: admin, ctype: "application/json", body: strings.NewReader(`{"namespaces": {"org.acme.*": {"level": "strict"}}}`)})
	if bad.status != 422 || bad.errCode() != "TRUST_INVALID" {
		t.Fatalf("an invalid policy: %s", bad)
	}

	repo := ocitest.RepoName(t)
	push := func(tag string, record []byte) string {
		ref, _ := oci.ParseReference("oci://" + reg.Host + "/" + repo + ":" + tag)
		d, err := oci.Push(ctx, ref, fx.summarizer, record, oci.Options{PlainHTTP: true, DockerConfig: os.DevNull})
		if err != nil {
			t.Fatal(err)
		}
		return d.Digest.String()
	}
	signed := push("signed", fx.summarizerRecord)
	if out, err := ocitest.RunCosign(t, keys, "sign", "--key", "cosign.key", "--use-signing-config=false", "--tlog-upload=false",
		"--allow-http-registry", "--allow-insecure-registry", reg.Host+"/"+repo+"@"+signed); err != nil {
		t.Fatal(err, out)
	}
	push("unsigned", append(append([]byte(nil), fx.summarizerRecord...), ' '))

	un := post(t, base, "/enroll", admin, map[string]any{"reference": "oci://" + reg.Host + "/" + repo + ":unsigned", "plain_http": true})
	if un.status != 403 || un.errCode() != "TRUST_REFUSED" {
		t.Fatalf("unsigned: %s", un)
	}
	ok := post(t, base, "/enroll", admin, map[string]any{"reference": "oci://" + reg.Host + "/" + repo + ":signed", "plain_http": true})
	if ok.status != 201 {
		t.Fatalf("signed: %s", ok)
	}
	prov, _ := ok.body["provenance"].(map[string]any)
	tr, _ := prov["trust"].(map[string]any)
	if tr["verified"] != true || prov["source"] != "oci://"+reg.Host+"/"+repo+":signed@"+signed {
		t.Fatalf("provenance: %s", ok.raw)
	}
	far := post(t, base, "/enroll", admin, map[string]any{"reference": "oci://registry.example/acme/x:1", "plain_http": true})
	if far.status != 422 || far.errCode() != "OCI_REFERENCE_INVALID" {
		t.Fatalf("plain HTTP to a remote registry: %s", far)
	}
}
