package server_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/host/wcp"
)

// A closed (or closing) Hall answers every dispatch and every recorded
// decision with 503 HALL_CLOSED, not a server failure.
func TestClosedHallAnswersHallClosed(t *testing.T) {
	h, err := host.Open(context.Background(), host.Options{Dir: t.TempDir(), MissingRulesOK: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(h, server.Config{Tokens: fx.tokens}))
	t.Cleanup(ts.Close)
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		body any
	}{
		{"/wcp/run", runBody(input("cap.doc.summarize", "closed-run"), article)},
		{"/wcp/route", input("cap.doc.summarize", "closed-route")},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := post(t, ts.URL, tc.path, fx.acme, tc.body)
			if r.status != 503 || r.errCode() != string(wcp.CodeHallClosed) {
				t.Fatalf("%s on a closed Hall: %v, want 503 HALL_CLOSED", tc.path, r)
			}
		})
	}
}
