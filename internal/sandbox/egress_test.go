package sandbox

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func httpCall(t *testing.T, w *Worker, req httpRequest) []byte {
	t.Helper()
	in, _ := json.Marshal(req)
	return call(t, w, Request{Export: "http", Input: in}).Output
}

func TestHallHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hello":
			rw.Header().Set("X-Hall", "yes")
			rw.Write([]byte("hi " + r.Method + " " + r.Header.Get("X-Req")))
		case "/redirect-out":
			http.Redirect(rw, r, "http://127.0.0.2:1/elsewhere", http.StatusFound)
		case "/redirect-in":
			http.Redirect(rw, r, "/hello", http.StatusFound)
		case "/huge":
			rw.Write(make([]byte, maxHTTPResponse+1))
		}
	}))
	defer srv.Close()
	hostPort := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(hostPort)

	e := newEngine(t, Config{})
	noEgress := load(t, e, fixtures.goguest, Spec{Name: "no-egress"})
	noPort := load(t, e, fixtures.goguest, Spec{Name: "no-port", Policy: Policy{Egress: []string{"127.0.0.1"}}})
	listed := load(t, e, fixtures.goguest, Spec{Name: "listed", Policy: Policy{Egress: []string{hostPort}}})
	byName := load(t, e, fixtures.goguest, Spec{Name: "by-name", Policy: Policy{Egress: []string{"localhost:" + port}}})

	cases := []struct {
		name string
		w    *Worker
		req  httpRequest
		code string // "" = success
	}{
		{"no egress at all", noEgress, httpRequest{URL: srv.URL + "/hello"}, GuestEgressDenied},
		{"host listed without its port", noPort, httpRequest{URL: srv.URL + "/hello"}, GuestEgressDenied},
		{"listed with port", listed, httpRequest{Method: "post", URL: srv.URL + "/hello", Headers: map[string]string{"X-Req": "r1"}}, ""},
		{"other port on a listed host", listed, httpRequest{URL: "http://127.0.0.1:1/hello"}, GuestEgressDenied},
		{"https to an http-listed port", listed, httpRequest{URL: "https://" + hostPort + "/hello"}, ""},
		{"redirect to unlisted host", listed, httpRequest{URL: srv.URL + "/redirect-out"}, GuestEgressDenied},
		{"redirect to listed host", listed, httpRequest{URL: srv.URL + "/redirect-in"}, ""},
		{"name resolving to loopback", byName, httpRequest{URL: "http://localhost:" + port + "/hello"}, GuestEgressDenied},
		{"response too large", listed, httpRequest{URL: srv.URL + "/huge"}, GuestResponseTooLarge},
		{"file scheme", listed, httpRequest{URL: "file:///etc/passwd"}, GuestEgressDenied},
		{"not json", listed, httpRequest{}, GuestBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out []byte
			if tc.name == "not json" {
				out = call(t, tc.w, Request{Export: "http", Input: []byte("{")}).Output
			} else {
				out = httpCall(t, tc.w, tc.req)
			}
			if tc.name == "https to an http-listed port" {
				// Allowed by policy (same host and port); the TLS handshake
				// with a plain HTTP server then fails.
				if got := guestErrorCode(t, out); got != GuestHTTPFailed {
					t.Fatalf("got %s: %s", got, out)
				}
				return
			}
			if tc.code != "" {
				if got := guestErrorCode(t, out); got != tc.code {
					t.Fatalf("got %s, want %s: %s", got, tc.code, out)
				}
				return
			}
			var resp httpResponse
			if err := json.Unmarshal(out, &resp); err != nil || resp.Status != 200 {
				t.Fatalf("response %s (%v)", out, err)
			}
			if tc.req.Method == "post" && (string(resp.Body) != "hi POST r1" || resp.Headers["x-hall"] != "yes") {
				t.Fatalf("body %q headers %v", resp.Body, resp.Headers)
			}
		})
	}
}

func TestEgressRules(t *testing.T) {
	e := newEgress([]string{"api.example.com", "Data.Example.com:8443", "[::1]:9000", "10.0.0.5"}, nil)
	cases := []struct {
		url string
		ok  bool
	}{
		{"https://api.example.com/x", true},
		{"http://api.example.com/x", true},
		{"https://api.example.com:8443/x", false},
		{"https://API.EXAMPLE.COM/x", true},
		{"https://evil.api.example.com/x", false},
		{"https://api.example.com.evil.net/x", false},
		{"https://data.example.com:8443/", true},
		{"https://data.example.com/", false},
		{"http://[::1]:9000/", true},
		{"http://[::1]:9001/", false},
		{"http://10.0.0.5/", true},
		{"ftp://api.example.com/", false},
	}
	for _, tc := range cases {
		u, _ := url.Parse(tc.url)
		if err := e.check(u); (err == nil) != tc.ok {
			t.Errorf("%s: allowed=%v, want %v (%v)", tc.url, err == nil, tc.ok, err)
		}
	}
	for _, a := range []string{"127.0.0.1", "::1", "169.254.169.254", "fd00:ec2::254", "0.0.0.0", "::ffff:127.0.0.1", "fe80::1", "224.0.0.1",
		"10.0.0.5", "172.16.0.1", "192.168.1.1", "100.64.0.1", "100.127.255.254", "fc00::1", "fd12:3456::1"} {
		if !blocked(netip.MustParseAddr(a)) {
			t.Errorf("%s not blocked", a)
		}
	}
	for _, a := range []string{"93.184.216.34", "100.128.0.1", "172.32.0.1", "2606:4700::1"} {
		if blocked(netip.MustParseAddr(a)) {
			t.Errorf("%s blocked", a)
		}
	}
}
