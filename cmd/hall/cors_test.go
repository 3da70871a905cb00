package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeCORSOrigin: hall serve --cors-origin lets that origin's pages
// call the API (preflight 204 without a token) and refuses a malformed
// origin at start, naming the flag.
func TestServeCORSOrigin(t *testing.T) {
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(quickstart, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "rules.json", string(rules))
	r := hallIn(t, dir, "", nil, "serve", "--addr", "127.0.0.1:0", "--cors-origin", "https://dash.example.com/")
	if r.code != exitError || !strings.Contains(r.stderr, "--cors-origin") || !strings.Contains(r.stderr, "trailing slash") {
		t.Fatalf("malformed origin: exit %d %s", r.code, r.stderr)
	}
	base, _, _ := startServe(t, dir, "--cors-origin", "https://dash.example.com")
	req, _ := http.NewRequest(http.MethodOptions, base+"/status", nil)
	req.Header.Set("Origin", "https://dash.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://dash.example.com" {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
}
