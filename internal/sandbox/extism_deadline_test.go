package sandbox

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Issue 25, item 7: an Extism http_request still waiting for its answer
// when the call's time limit ends is the limit (LIMIT_TIMEOUT), not a trap
// of the guest (WORKER_TRAP, with HTTP_FAILED in the message), which is what
// it was recorded as before.
func TestExtismHTTPRequestDeadlineIsLimitTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		// Never answers before the caller gives up (or the test ends).
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	e := newEngine(t, Config{})
	w := load(t, e, extismPlugin(t, "http_headers"), Spec{Name: "slow-egress", Pool: -1,
		Policy: Policy{Egress: []string{strings.TrimPrefix(srv.URL, "http://")}}})
	in, _ := json.Marshal(map[string]string{"url": srv.URL + "/slow"})
	res, err := w.Call(context.Background(), Request{Export: "http_get", Input: in, Timeout: 300 * time.Millisecond})
	se := wantCode(t, err, CodeLimitTimeout)
	if !strings.Contains(se.Message, "stopped after 300ms") {
		t.Errorf("message %q, want the time limit named", se.Message)
	}
	if ev := egressEvents(t, res); len(ev) != 1 {
		t.Errorf("telemetry %v, want the one request that was cut", ev)
	}
}
