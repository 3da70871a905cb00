package server_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host/server"
)

// preflight sends a browser's CORS preflight for method on path.
func preflight(t *testing.T, base, path, origin, method string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, base+path, nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

func withOrigin(t *testing.T, base, path, token, origin string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Origin", origin)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// TestCORS: cross-origin calls for configured origins only (none by
// default); a preflight is answered 204 without a token; a listed origin is
// echoed with credentials, "*" never with credentials; the console is
// same-origin only.
func TestCORS(t *testing.T) {
	const dash = "https://dash.example.com"
	t.Run("none by default", func(t *testing.T) {
		base := start(t, server.Config{})
		if res := preflight(t, base, "/status", dash, "GET"); res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
		}
		if res := withOrigin(t, base, "/status", fx.acme, dash); res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("GET: %d %v", res.StatusCode, res.Header)
		}
	})
	t.Run("listed origin", func(t *testing.T) {
		base := start(t, server.Config{CORSOrigins: []string{dash}})
		res := preflight(t, base, "/decisions/ingest", dash, "POST")
		h := res.Header
		if res.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != dash || h.Get("Access-Control-Allow-Credentials") != "true" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
			!strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Errorf("preflight: %d %v", res.StatusCode, h)
		}
		if res := preflight(t, base, "/status", "https://evil.example.com", "GET"); res.StatusCode != 403 || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("another origin's preflight: %d %v", res.StatusCode, res.Header)
		}
		res = withOrigin(t, base, "/status", fx.acme, dash)
		if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != dash || !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "X-Request-ID") {
			t.Errorf("GET: %d %v", res.StatusCode, res.Header)
		}
		// The token is still required; the browser may read the refusal.
		if res := withOrigin(t, base, "/status", "", dash); res.StatusCode != 401 || res.Header.Get("Access-Control-Allow-Origin") != dash {
			t.Errorf("GET without a token: %d %v", res.StatusCode, res.Header)
		}
		if res := withOrigin(t, base, "/status", fx.acme, "https://evil.example.com"); res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("another origin's GET: %v", res.Header)
		}
		if res := preflight(t, base, "/console/signin", dash, "POST"); res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("console preflight: %d %v", res.StatusCode, res.Header)
		}
	})
	t.Run("any origin, never credentials", func(t *testing.T) {
		base := start(t, server.Config{CORSOrigins: []string{"*"}})
		res := preflight(t, base, "/workers", "https://any.example.org", "GET")
		if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
		}
		res = withOrigin(t, base, "/workers", fx.acme, "https://any.example.org")
		if res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("GET: %v", res.Header)
		}
	})
}

// TestCORSFromHallJSON: hall.json's http.cors_origins applies, and a
// reload changes it without a restart.
func TestCORSFromHallJSON(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rules.json", pyRules)
	write("hall.json", `{"http": {"cors_origins": ["http://localhost:5173"]}}`)
	h, base, _, _ := pyHall(t, dir)
	if res := preflight(t, base, "/status", "http://localhost:5173", "GET"); res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
		t.Fatalf("preflight: %d %v", res.StatusCode, res.Header)
	}
	write("hall.json", `{}`)
	if err := h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := preflight(t, base, "/status", "http://localhost:5173", "GET"); res.StatusCode != 403 {
		t.Fatalf("preflight after the origin was removed: %d %v", res.StatusCode, res.Header)
	}
}
