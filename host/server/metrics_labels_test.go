package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/wcphall/hall/host/server"
)

// TestMetricsLabelsBounded: a client's HTTP method and path never become
// label values. 40 requests with 40 invented methods (on a route and on
// no route) and 40 unknown paths add no series of their own: methods
// outside the standard set count as OTHER, unmatched paths as
// "unmatched".
func TestMetricsLabelsBounded(t *testing.T) {
	base := start(t, server.Config{})
	for i := range 40 {
		for _, path := range []string{"/health", fmt.Sprintf("/no-such-%d", i)} {
			req, err := http.NewRequest(fmt.Sprintf("X%dMETHOD", i), base+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	r := get(t, base, "/metrics", "")
	if r.status != 200 {
		t.Fatal(r)
	}
	text := string(r.raw)
	if strings.Contains(text, "METHOD") || strings.Contains(text, "no-such") {
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, "METHOD") || strings.Contains(line, "no-such") {
				t.Errorf("caller-chosen label value in /metrics: %s", line)
			}
		}
	}
	if !strings.Contains(text, `method="OTHER"`) {
		t.Error(`/metrics has no method="OTHER" series for the unknown methods`)
	}
	allowed := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true,
		"OPTIONS": true, "CONNECT": true, "TRACE": true, "OTHER": true}
	for _, line := range strings.Split(text, "\n") {
		_, rest, ok := strings.Cut(line, `method="`)
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		m, _, _ := strings.Cut(rest, `"`)
		if !allowed[m] {
			t.Errorf("method label %q outside the fixed set: %s", m, line)
		}
	}
}
