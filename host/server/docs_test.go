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
// the server registers is documented, the deny-code table is
// wcp.DenyCodes, and every HTTP and outcome code of wcp.Codes is mentioned.
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
	for _, info := range wcp.DenyCodes() {
		row := fmt.Sprintf("| `%s` | %d |", info.Code, info.Status)
		if !strings.Contains(doc, row) {
			t.Errorf("docs/HTTP.md lacks the row %s", row)
		}
	}
	// Every code a caller of the API can receive is documented.
	for _, info := range wcp.Codes() {
		if info.Kind != wcp.KindHTTP && info.Kind != wcp.KindOutcome {
			continue
		}
		if !strings.Contains(doc, "`"+string(info.Code)+"`") {
			t.Errorf("docs/HTTP.md does not mention %s", info.Code)
		}
	}
}

// TestCodesFromTable checks that the server's codes are rows of wcp.Codes
// and that the statuses the server answers with for worker outcomes are the
// table's.
func TestCodesFromTable(t *testing.T) {
	for _, c := range []string{CodeUnauthenticated, CodeForbidden, CodeTenantMismatch, CodeInvalidJSON, CodeInvalidInput,
		CodeInvalidRequest, CodeBodyTooLarge, CodeUnsupportedMedia, CodeNotFound, CodeMethodNotAllowed, CodeWorkerNotFound,
		CodeReceiptNotFound, CodeInvalidDigest, CodeArtifactUnknown, CodeModuleInvalid, CodeRecordInvalid, CodeHallOffline,
		CodeSaturated, CodeEvidence, CodeInternal} {
		if _, ok := wcp.Code(c).Info(); !ok {
			t.Errorf("%s is not in wcp.Codes", c)
		}
	}
	for _, info := range wcp.Codes() {
		if info.Kind == wcp.KindOutcome && info.Code != wcp.CodeCancelled {
			if got := outcomeStatus(string(info.Code)); got != info.HTTPStatus {
				t.Errorf("outcome %s answers %d, wcp.Codes says %d", info.Code, got, info.HTTPStatus)
			}
		}
	}
}
