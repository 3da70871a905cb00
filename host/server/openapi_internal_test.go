package server

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestOpenAPIMatchesRoutes: every route of the JSON API is in the OpenAPI
// document and the document names no route the server does not serve.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	s := New(nil, Config{}).(*Server)
	served := map[string]bool{}
	err := chi.Walk(s.mux.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, consolePath) || (route == "/metrics" && method != "GET") {
			return nil // the console's HTML pages; promhttp answers any method
		}
		served[method+" "+route] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("the document is not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
			if len(op["responses"].(map[string]any)) == 0 {
				t.Errorf("%s %s documents no response", method, path)
			}
		}
	}
	var missing, extra []string
	for k := range served {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !served[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, k := range missing {
		t.Errorf("route %s is served but not in the OpenAPI document: add it to apiOperations (host/server/openapi.go)", k)
	}
	for _, k := range extra {
		t.Errorf("the OpenAPI document names %s, which the server does not serve", k)
	}
}
