package server

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/wcphall/hall/host/wcp"
)

// TestDocsMatchCode keeps docs/HTTP.md in step with the code: every route
// the server registers is documented, and the deny-code table is
// wcp.DenyCodes.
func TestDocsMatchCode(t *testing.T) {
	b, err := os.ReadFile("../../docs/HTTP.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	s := New(nil, Config{}).(*Server)
	routes := 0
	err = chi.Walk(s.mux.(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes++
		want := fmt.Sprintf("`%s %s", method, route)
		if route == "/artifacts/{digest}" {
			want = "`" + method + " /artifacts/sha256:<hex>"
		}
		if route == "/metrics" && method != "GET" {
			return nil // promhttp answers any method; GET is the documented one
		}
		if !strings.Contains(doc, want) {
			t.Errorf("docs/HTTP.md does not document %s %s", method, route)
		}
		return nil
	})
	if err != nil || routes < 14 {
		t.Fatalf("walked %d routes: %v", routes, err)
	}
	for _, info := range wcp.DenyCodes {
		row := fmt.Sprintf("| `%s` | %d |", info.Code, info.Status)
		if !strings.Contains(doc, row) {
			t.Errorf("docs/HTTP.md lacks the row %s", row)
		}
	}
}
