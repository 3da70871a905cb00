package server

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// Issue 10: /wcp/route was not covered by any concurrency bound; once its
// slots are taken, a decision is refused with 503 HALL_SATURATED.
func TestAdmitRouteRefusesWhenFull(t *testing.T) {
	s := New(nil, Config{MaxConcurrentRoutes: 2}).(*Server)
	var releases []func()
	for range 2 {
		release, ok := s.admitRoute(httptest.NewRecorder(), httptest.NewRequest("POST", "/wcp/route", nil))
		if !ok {
			t.Fatal("refused below the bound")
		}
		releases = append(releases, release)
	}
	w := httptest.NewRecorder()
	if _, ok := s.admitRoute(w, httptest.NewRequest("POST", "/wcp/route", nil)); ok {
		t.Fatal("admitted past the bound")
	}
	if w.Code != 503 || !strings.Contains(w.Body.String(), CodeSaturated) || w.Header().Get("Retry-After") == "" {
		t.Fatalf("refusal: %d %s", w.Code, w.Body)
	}
	releases[0]()
	if _, ok := s.admitRoute(httptest.NewRecorder(), httptest.NewRequest("POST", "/wcp/route", nil)); !ok {
		t.Fatal("a released slot was not reused")
	}
}
