package server_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/host/wcp"
)

// TestOpenAPIMatchesServer fetches GET /openapi.json from a real server and
// sends every operation it lists requests that fail safely (no token, a
// token of the wrong scope, a wrong media type, an unknown id) and the
// reads an admin may make: every status answered is one the document
// lists for the operation, and every error code is in its ErrorCode enum,
// answered with the status wcp.Codes gives it.
func TestOpenAPIMatchesServer(t *testing.T) {
	base := start(t, server.Config{})
	r := get(t, base, "/openapi.json", "")
	if r.status != 200 {
		t.Fatalf("GET /openapi.json: %s", r)
	}
	var doc struct {
		Paths      map[string]map[string]struct{ Responses map[string]any }
		Components struct {
			Schemas struct {
				ErrorCode struct{ Enum []string }
			}
		}
	}
	if err := json.Unmarshal(r.raw, &doc); err != nil {
		t.Fatal(err)
	}
	enum := map[string]bool{}
	for _, c := range doc.Components.Schemas.ErrorCode.Enum {
		enum[c] = true
	}
	for _, info := range wcp.Codes() {
		if (info.Kind == wcp.KindHTTP || info.Kind == wcp.KindDeny) && !enum[string(info.Code)] {
			t.Errorf("ErrorCode lacks %s", info.Code)
		}
	}
	param := regexp.MustCompile(`\{[^}]+\}`)
	checked := 0
	check := func(method, path string, rq req) {
		t.Helper()
		op := doc.Paths[path][strings.ToLower(method)]
		rq.method, rq.path = method, param.ReplaceAllString(path, "no-such-id")
		if path == "/artifacts/{digest}" {
			rq.path = "/artifacts/sha256:nothex"
		}
		res := call(t, base, rq)
		checked++
		if _, ok := op.Responses[strconv.Itoa(res.status)]; !ok {
			t.Errorf("%s %s (token %t): %d is not a documented response (%v)", method, path, rq.token != "", res.status, keys(op.Responses))
		}
		if res.status >= 400 {
			code := res.errCode()
			if !enum[code] {
				t.Errorf("%s %s: code %s is not in ErrorCode", method, path, code)
			}
			// INVALID_REQUEST is 422 for a body, 400 for a path or query
			// parameter (its row in wcp.Codes says so).
			paramError := code == string(wcp.CodeInvalidRequest) && res.status == 400
			if info, ok := wcp.Code(code).Info(); ok && info.Kind == wcp.KindHTTP && info.HTTPStatus != res.status && !paramError {
				t.Errorf("%s %s: %s answered %d, wcp.Codes says %d", method, path, code, res.status, info.HTTPStatus)
			}
		}
	}
	for path, ops := range doc.Paths {
		for m := range ops {
			method := strings.ToUpper(m)
			check(method, path, req{})
			if path == "/mcp" || path == "/metrics" {
				continue // a stream; not JSON
			}
			if strings.HasPrefix(path, "/api/server/") || strings.Contains(path, "/approve") || strings.HasSuffix(path, "/deny") {
				check(method, path, req{token: fx.acme}) // wrong scope: refused, nothing changes
				continue
			}
			switch method {
			case "GET":
				check(method, path, req{token: fx.admin})
			default:
				check(method, path, req{token: fx.admin, ctype: "text/plain", body: strings.NewReader("x")})
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d requests checked", checked)
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
