package server

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestPanicRecovered: a handler that panics answers a JSON 500 with the
// request id, which the log line carries with the panic.
func TestPanicRecovered(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewJSONHandler(&logs, nil)), metrics: newMetrics(func() bool { return true }, func() int { return 0 }, nil, nil)}
	r := chi.NewRouter()
	r.Use(s.observe)
	r.Get("/boom", func(http.ResponseWriter, *http.Request) { panic("kaboom") })
	ts := httptest.NewServer(r)
	defer ts.Close()

	res, err := http.Get(ts.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Error errorBody `json:"error"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	id := res.Header.Get("X-Request-ID")
	if res.StatusCode != 500 || body.Error.Code != CodeInternal || id == "" || body.Error.RequestID != id {
		t.Fatalf("%d %+v (request id %q)", res.StatusCode, body, id)
	}
	if !strings.Contains(logs.String(), "kaboom") || !strings.Contains(logs.String(), `"request_id":"`+id+`"`) {
		t.Fatalf("the panic is not logged with the request id:\n%s", logs.String())
	}
	// The server still serves.
	res2, err := http.Get(ts.URL + "/boom")
	if err != nil {
		t.Fatal(err)
	}
	res2.Body.Close()
}
