package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/artifact"
	"github.com/wcphall/hall/internal/auth"
)

func TestHealthAndRequestID(t *testing.T) {
	base := start(t, server.Config{Version: "v-test"})
	r := get(t, base, "/health", "")
	if r.status != 200 || r.body["status"] != "ok" || r.body["online"] != true || r.body["version"] != "v-test" {
		t.Fatalf("/health: %v", r)
	}
	r = call(t, base, req{method: "GET", path: "/health", header: map[string]string{"X-Request-ID": "trace-42"}})
	if got := r.header.Get("X-Request-ID"); got != "trace-42" {
		t.Errorf("a sane caller request id is not echoed: %q", got)
	}
	r = call(t, base, req{method: "GET", path: "/health", header: map[string]string{"X-Request-ID": "bad id\twith spaces"}})
	if got := r.header.Get("X-Request-ID"); got == "bad id\twith spaces" || len(got) != 36 {
		t.Errorf("an unsafe request id was not replaced: %q", got)
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	base := start(t, server.Config{})
	if r := get(t, base, "/nope", ""); r.status != 404 || r.errCode() != server.CodeNotFound {
		t.Errorf("unknown path: %v", r)
	}
	if r := call(t, base, req{method: "DELETE", path: "/health"}); r.status != 405 || r.errCode() != server.CodeMethodNotAllowed {
		t.Errorf("wrong method: %v", r)
	}
}

// TestAuthentication checks every authenticated endpoint against missing,
// malformed, forged, revoked and wrong-scope tokens.
func TestAuthentication(t *testing.T) {
	base := start(t, server.Config{})
	ctx := context.Background()
	revoked, meta, err := fx.tokens.Create(ctx, auth.AdminScope(), "to revoke")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fx.tokens.Revoke(ctx, meta.ID); err != nil {
		t.Fatal(err)
	}
	// A well-formed token that was never issued, and the acme token with
	// its last character changed.
	forged := "hall_0123456789ab_" + strings.Repeat("A", 43)
	tampered := fx.acme[:len(fx.acme)-1] + map[bool]string{true: "B", false: "A"}[strings.HasSuffix(fx.acme, "A")]

	endpoints := []struct {
		method, path string
		need         string // admin, tenant, any
	}{
		{"POST", "/enroll", "admin"},
		{"PUT", "/artifacts/" + digest([]byte("x")), "admin"},
		{"POST", "/api/server/go-online", "admin"},
		{"POST", "/api/server/go-offline", "admin"},
		{"POST", "/wcp/route", "tenant"},
		{"POST", "/wcp/run", "tenant"},
		{"GET", "/wcp/health", "any"},
		{"GET", "/wcp/capabilities", "any"},
		{"GET", "/wcp/workers", "any"},
		{"GET", "/wcp/workers/org.acme.summarizer", "any"},
		{"GET", "/wcp/receipts", "any"},
		{"GET", "/wcp/receipts/" + uuid.NewString(), "any"},
	}
	for _, ep := range endpoints {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			for _, tc := range []struct {
				name, header string
				status       int
			}{
				{"no token", "", 401},
				{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:admin")), 401},
				{"forged", "Bearer " + forged, 401},
				{"tampered", "Bearer " + tampered, 401},
				{"revoked", "Bearer " + revoked, 401},
			} {
				h := map[string]string{}
				if tc.header != "" {
					h["Authorization"] = tc.header
				}
				r := call(t, base, req{method: ep.method, path: ep.path, ctype: "application/json", body: strings.NewReader("{}"), header: h})
				if r.status != tc.status || r.errCode() != server.CodeUnauthenticated {
					t.Errorf("%s: %v", tc.name, r)
				}
				if r.header.Get("WWW-Authenticate") == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", tc.name)
				}
			}
			var wrong string
			switch ep.need {
			case "admin":
				wrong = fx.acme
			case "tenant":
				wrong = fx.admin
			default:
				return
			}
			r := call(t, base, req{method: ep.method, path: ep.path, token: wrong, ctype: "application/json", body: strings.NewReader("{}")})
			if r.status != 403 || r.errCode() != server.CodeForbidden {
				t.Errorf("wrong scope: %v", r)
			}
		})
	}
	// Without a token store no token is valid.
	nostore := serveNoStore(t, server.Config{})
	if r := get(t, nostore, "/wcp/workers", fx.admin); r.status != 401 {
		t.Errorf("server without a token store: %v", r)
	}
}

// serveNoStore starts a server with no token store at all (start fills in the
// shared one).
func serveNoStore(t *testing.T, cfg server.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, ln, server.New(fx.hall, cfg), server.ServeOptions{}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func TestWCPHealth(t *testing.T) {
	base := start(t, server.Config{MaxConcurrent: 3})
	r := get(t, base, "/wcp/health", fx.other)
	if r.status != 200 {
		t.Fatal(r)
	}
	en, _ := r.body["enabled"].(map[string]any)
	// No hall.json: the Hall's strict defaults.
	cfg := fx.hall.Config()
	want := map[string]bool{"signatory": cfg.RequireSignatory, "attestation": true, "envelopes": true, "ledger": true}
	for k, v := range want {
		if en[k] != v {
			t.Errorf("enabled.%s = %v, want %v", k, en[k], v)
		}
	}
	if r.body["compliance_level"] != "WCP-Full" || r.body["online"] != true || r.body["max_concurrent"] != 3.0 {
		t.Errorf("/wcp/health: %v", r)
	}
	if r.body["workers"] != float64(len(fx.hall.Registry().Records())) {
		t.Errorf("workers = %v", r.body["workers"])
	}
}

func TestCapabilitiesAndWorkers(t *testing.T) {
	base := start(t, server.Config{})
	r := get(t, base, "/wcp/capabilities", fx.acme)
	if r.status != 200 {
		t.Fatal(r)
	}
	found := false
	for _, c := range r.body["capabilities"].([]any) {
		c := c.(map[string]any)
		if c["capability_id"] == "cap.doc.summarize" {
			found = fmt.Sprint(c["worker_species"]) == "[wrk.doc.summarizer]"
		}
	}
	if !found || !strings.Contains(string(r.raw), "ctrl.obs.audit-log-append-only") {
		t.Errorf("capabilities: %s", r.raw)
	}

	r = get(t, base, "/wcp/workers", fx.acme)
	if r.status != 200 || r.body["count"] != float64(len(fx.hall.Registry().Records())) {
		t.Fatal(r)
	}
	// A record names the secrets a worker may read; their values never
	// leave the Hall.
	if !strings.Contains(string(r.raw), "KEYHOLDER_API_KEY") {
		t.Errorf("the keyholder's record is not listed: %s", r.raw)
	}
	if strings.Contains(string(r.raw), secretValue) {
		t.Fatalf("/wcp/workers exposes a secret value")
	}
	r = get(t, base, "/wcp/workers/org.test.keyholder", fx.acme)
	if r.status != 200 || r.body["worker_id"] != "org.test.keyholder" || strings.Contains(string(r.raw), secretValue) {
		t.Fatalf("worker: %v", r)
	}
}

func TestWorkerIDValidation(t *testing.T) {
	base := start(t, server.Config{})
	for _, tc := range []struct {
		name, path string
		status     []int
		code       string
	}{
		{"enrolled", "/wcp/workers/org.acme.summarizer", []int{200}, ""},
		{"not enrolled", "/wcp/workers/org.acme.nobody", []int{404}, server.CodeWorkerNotFound},
		{"not an id", "/wcp/workers/Acme%20Worker", []int{400}, server.CodeInvalidRequest},
		{"encoded traversal", "/wcp/workers/..%2F..%2F..%2Fetc%2Fpasswd", []int{400}, server.CodeInvalidRequest},
		{"encoded dot segments", "/wcp/workers/%2E%2E", []int{400}, server.CodeInvalidRequest},
		{"raw traversal", "/wcp/workers/../../../etc/passwd", []int{400, 404}, ""},
		{"traversal into the record directory", "/wcp/workers/..%2Fenrolled%2Forg.acme.summarizer", []int{400}, server.CodeInvalidRequest},
		{"too long", "/wcp/workers/org.acme." + strings.Repeat("a", 200), []int{400}, server.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, base, tc.path, fx.acme)
			ok := false
			for _, s := range tc.status {
				ok = ok || r.status == s
			}
			if !ok || (tc.code != "" && r.errCode() != tc.code) {
				t.Fatalf("got %v, want %v %s", r, tc.status, tc.code)
			}
			if strings.Contains(string(r.raw), "root:") {
				t.Fatal("served a file outside the registry")
			}
		})
	}
}

func TestRoute(t *testing.T) {
	base := start(t, server.Config{MaxBody: 4096})
	t.Run("allowed, always a dry run", func(t *testing.T) {
		r := post(t, base, "/wcp/route", fx.acme, input("cap.doc.summarize", "route-1", "dry_run", false))
		if r.status != 200 || r.body["denied"] != false || r.body["dry_run"] != true || r.body["tenant_id"] != "org.acme" {
			t.Fatalf("%v", r)
		}
		if r.body["selected_worker_species_id"] != "wrk.doc.summarizer" || r.body["correlation_id"] != "route-1" {
			t.Fatalf("%v", r)
		}
	})
	t.Run("denied is a decision", func(t *testing.T) {
		r := post(t, base, "/wcp/route", fx.acme, input("cap.nothing.here", "route-2"))
		dr, _ := r.body["deny_reason_if_denied"].(map[string]any)
		if r.status != 200 || r.body["denied"] != true || dr["code"] != string(wcp.DenyNoMatchingRule) {
			t.Fatalf("%v", r)
		}
	})
	t.Run("tenant from the token", func(t *testing.T) {
		r := post(t, base, "/wcp/route", fx.other, input("cap.doc.summarize", "route-3", "tenant_id", "org.other"))
		if r.status != 200 || r.body["tenant_id"] != "org.other" {
			t.Fatalf("%v", r)
		}
	})
	for _, tc := range []struct {
		name   string
		ctype  string
		body   any
		status int
		code   string
		field  string
	}{
		{"another tenant", "application/json", input("cap.doc.summarize", "c", "tenant_id", "org.other"), 403, server.CodeTenantMismatch, "tenant_id"},
		{"malformed JSON", "application/json", `{"capability_id": "cap.doc.summarize",`, 400, server.CodeInvalidJSON, "input"},
		{"not an object", "application/json", `["cap.doc.summarize"]`, 422, server.CodeInvalidInput, "input"},
		{"invalid fields", "application/json", input("cap.doc.summarize", "c", "env", "production", "qos_class", "P9"), 422, server.CodeInvalidInput, "env"},
		{"correlation id not a string", "application/json", `{"capability_id":"cap.doc.summarize","env":"dev","data_label":"INTERNAL","tenant_risk":"low","qos_class":"P2","correlation_id":5}`, 422, server.CodeInvalidInput, "correlation_id"},
		{"wrong content type", "text/plain", input("cap.doc.summarize", "c"), 415, server.CodeUnsupportedMedia, ""},
		{"no content type", "", input("cap.doc.summarize", "c"), 415, server.CodeUnsupportedMedia, ""},
		{"oversized", "application/json", input("cap.doc.summarize", "c", "request", map[string]any{"x": strings.Repeat("a", 5000)}), 413, server.CodeBodyTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, base, req{method: "POST", path: "/wcp/route", token: fx.acme, ctype: tc.ctype, body: jsonBody(tc.body)})
			if r.status != tc.status || r.errCode() != tc.code || r.errField() != tc.field {
				t.Fatalf("got %v, want %d %s field %q", r, tc.status, tc.code, tc.field)
			}
		})
	}
	t.Run("invalid fields are all reported", func(t *testing.T) {
		r := post(t, base, "/wcp/route", fx.acme, input("cap.doc.summarize", "c", "env", "production", "qos_class", "P9"))
		probs, _ := r.body["error"].(map[string]any)["problems"].([]any)
		if len(probs) != 2 {
			t.Fatalf("problems: %v", r)
		}
	})
	t.Run("oversized without Content-Length", func(t *testing.T) {
		big := `{"capability_id":"` + strings.Repeat("a", 5000) + `"}`
		// An io.Reader of unknown length makes the client send chunked.
		r := call(t, base, req{method: "POST", path: "/wcp/route", token: fx.acme, ctype: "application/json", body: struct{ *strings.Reader }{strings.NewReader(big)}})
		if r.status != 413 || r.errCode() != server.CodeBodyTooLarge {
			t.Fatalf("%v", r)
		}
	})
}

func runBody(in map[string]any, payload any) map[string]any {
	return map[string]any{"input": in, "payload": payload}
}

func TestRun(t *testing.T) {
	base := start(t, server.Config{MaxBody: 64 << 10})
	t.Run("ok", func(t *testing.T) {
		r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "run-ok"), article))
		if r.status != 200 || r.body["outcome"] != "ok" || r.body["ran"] != true || r.body["output_encoding"] != "utf-8" {
			t.Fatalf("%v", r)
		}
		out, _ := r.body["output"].(string)
		if out == "" || len(out) >= len(article) || !strings.Contains(article, strings.Fields(out)[0]) {
			t.Fatalf("output %q is not a summary of the article", out)
		}
		id, _ := r.body["receipt_id"].(string)
		rc := get(t, base, "/wcp/receipts/"+id, fx.acme)
		if rc.status != 200 || rc.body["correlation_id"] != "run-ok" || rc.body["tenant_id"] != "org.acme" || rc.body["outcome"] != "ok" {
			t.Fatalf("receipt: %v", rc)
		}
		if rc.body["output_hash"] != digest([]byte(out)) || rc.body["input_hash"] != digest([]byte(article)) {
			t.Fatalf("the receipt does not hash the dispatch's input and output: %v", rc)
		}
	})
	t.Run("JSON payload", func(t *testing.T) {
		r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "run-json"), map[string]any{"text": article, "sentences": 2}))
		var resp struct {
			Sentences []string `json:"sentences"`
		}
		if r.status != 200 || json.Unmarshal([]byte(r.body["output"].(string)), &resp) != nil || len(resp.Sentences) != 2 {
			t.Fatalf("%v", r)
		}
	})
	t.Run("base64 payload", func(t *testing.T) {
		body := map[string]any{"input": input("cap.doc.summarize", "run-b64"), "payload_base64": base64.StdEncoding.EncodeToString([]byte(article))}
		r := post(t, base, "/wcp/run", fx.acme, body)
		if r.status != 200 || r.body["outcome"] != "ok" {
			t.Fatalf("%v", r)
		}
	})
	t.Run("dry run", func(t *testing.T) {
		r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "run-dry", "dry_run", true), article))
		if r.status != 200 || r.body["ran"] != false || r.body["outcome"] != "dry_run" || r.body["receipt_id"] != nil {
			t.Fatalf("%v", r)
		}
		if rs := get(t, base, "/wcp/receipts?correlation_id=run-dry", fx.acme); rs.body["count"] != 0.0 {
			t.Fatalf("a dry run left a receipt: %v", rs)
		}
	})
	// Denials answer with the deny code's status from wcp.DenyCodes and
	// carry the decision.
	for _, tc := range []struct {
		name   string
		in     map[string]any
		code   wcp.DenyCode
		status int
	}{
		{"no matching rule", input("cap.nothing.here", "d1"), wcp.DenyNoMatchingRule, 404},
		{"missing required controls", input("cap.doc.summarize", "d2", "env", "prod"), wcp.DenyMissingRequiredControls, 409},
		{"blast score out of range", input("cap.doc.summarize", "d3", "blast_score", 150), wcp.DenyInvalidInput, 422},
		{"blank correlation id", input("cap.doc.summarize", "  "), wcp.DenyMissingCorrelationID, 422},
	} {
		t.Run("denied: "+tc.name, func(t *testing.T) {
			r := post(t, base, "/wcp/run", fx.acme, runBody(tc.in, article))
			dec, _ := r.body["decision"].(map[string]any)
			if r.status != tc.status || r.status != tc.code.HTTPStatus() || r.errCode() != string(tc.code) || dec["denied"] != true {
				t.Fatalf("got %v, want %d %s", r, tc.status, tc.code)
			}
		})
	}
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		field  string
	}{
		{"malformed", `{"input":`, 400, server.CodeInvalidJSON, ""},
		{"unknown member", map[string]any{"input": input("cap.doc.summarize", "c"), "payload": "x", "paylod": "y"}, 422, server.CodeInvalidRequest, ""},
		{"no input", map[string]any{"payload": "x"}, 422, server.CodeInvalidRequest, "input"},
		{"input not an object", map[string]any{"input": "cap.doc.summarize"}, 422, server.CodeInvalidInput, "input"},
		{"both payloads", map[string]any{"input": input("cap.doc.summarize", "c"), "payload": "x", "payload_base64": "eA=="}, 422, server.CodeInvalidRequest, "payload_base64"},
		{"bad base64", map[string]any{"input": input("cap.doc.summarize", "c"), "payload_base64": "!!"}, 422, server.CodeInvalidRequest, "payload_base64"},
		{"bad timeout", map[string]any{"input": input("cap.doc.summarize", "c"), "timeout_ms": -1}, 422, server.CodeInvalidRequest, "timeout_ms"},
		{"another tenant", runBody(input("cap.doc.summarize", "c", "tenant_id", "org.other"), "x"), 403, server.CodeTenantMismatch, "tenant_id"},
		{"oversized", runBody(input("cap.doc.summarize", "c"), strings.Repeat("a", 70<<10)), 413, server.CodeBodyTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, base, "/wcp/run", fx.acme, tc.body)
			if r.status != tc.status || r.errCode() != tc.code || r.errField() != tc.field {
				t.Fatalf("got %v, want %d %s field %q", r, tc.status, tc.code, tc.field)
			}
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		r := call(t, base, req{method: "POST", path: "/wcp/run", token: fx.acme, ctype: "application/x-www-form-urlencoded", body: strings.NewReader("input=x")})
		if r.status != 415 {
			t.Fatalf("%v", r)
		}
	})
}

// TestRunTimeLimit: a worker that exceeds its time limit mid-request gets a
// clean 504 with its receipt, and the next request is served.
func TestRunTimeLimit(t *testing.T) {
	base := start(t, server.Config{})
	r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.test.loop", "loop-1"), "spin"))
	if r.status != 504 || r.errCode() != "LIMIT_TIMEOUT" || r.body["outcome"] != "LIMIT_TIMEOUT" || r.body["ran"] != true {
		t.Fatalf("%v", r)
	}
	id, _ := r.body["receipt_id"].(string)
	if rc := get(t, base, "/wcp/receipts/"+id, fx.acme); rc.status != 200 || rc.body["outcome"] != "LIMIT_TIMEOUT" {
		t.Fatalf("the failed dispatch has no receipt: %v", rc)
	}
	// A timeout_ms lowers the limit further: the worker is stopped at
	// 50 ms, not at its record's 1500 ms (the outcome names the limit).
	r = post(t, base, "/wcp/run", fx.acme, map[string]any{"input": input("cap.test.slow", "slow-lowered"), "timeout_ms": 50})
	if r.status != 504 || r.errCode() != "LIMIT_TIMEOUT" || !strings.Contains(fmt.Sprint(r.body), "stopped after 50ms") {
		t.Fatalf("timeout_ms not applied: %v", r)
	}
	r = post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "after-loop"), article))
	if r.status != 200 || r.body["outcome"] != "ok" {
		t.Fatalf("the next request was not served: %v", r)
	}
	m := get(t, base, "/metrics", "")
	if !strings.Contains(string(m.raw), `hall_sandbox_limit_hits_total{code="LIMIT_TIMEOUT"}`) {
		t.Errorf("/metrics lacks the limit hit")
	}
}

// metric reads one sample from /metrics.
func metric(t *testing.T, base, name string) string {
	t.Helper()
	r := get(t, base, "/metrics", "")
	for _, line := range strings.Split(string(r.raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSaturation: with MaxConcurrent 1, a dispatch while another runs is
// refused at once with 503 and Retry-After, and served again afterwards.
func TestSaturation(t *testing.T) {
	base := start(t, server.Config{MaxConcurrent: 1})
	var wg sync.WaitGroup
	var slow *response
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if slow, err = tryPost(base, "/wcp/run", fx.acme, runBody(input("cap.test.slow", "sat-slow"), "")); err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "the slow dispatch to be in flight", func() bool { return metric(t, base, "hall_dispatches_in_flight") == "1" })
	// Refused, not queued: a queued dispatch would have been served (200)
	// once the slow one freed the slot.
	r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "sat-refused"), article))
	if r.status != 503 || r.errCode() != server.CodeSaturated || r.header.Get("Retry-After") != "1" {
		t.Fatalf("%v", r)
	}
	// Decisions without dispatch are not bounded.
	if r := post(t, base, "/wcp/route", fx.acme, input("cap.doc.summarize", "sat-route")); r.status != 200 {
		t.Errorf("route while saturated: %v", r)
	}
	wg.Wait()
	if slow == nil || slow.status != 504 {
		t.Fatalf("slow dispatch: %v", slow)
	}
	if r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "sat-after"), article)); r.status != 200 {
		t.Fatalf("not served after the slot freed: %v", r)
	}
	if v := metric(t, base, `hall_dispatch_rejected_total{reason="saturated"}`); v != "1" {
		t.Errorf("rejected metric = %q", v)
	}
}

func TestOnlineOffline(t *testing.T) {
	base := start(t, server.Config{})
	t.Cleanup(func() { fx.hall.SetOnline(true) })
	if r := post(t, base, "/api/server/go-offline", fx.acme, ""); r.status != 403 {
		t.Fatalf("a tenant took the Hall offline: %v", r)
	}
	r := call(t, base, req{method: "POST", path: "/api/server/go-offline", token: fx.admin})
	if r.status != 200 || r.body["online"] != false {
		t.Fatal(r)
	}
	if h := get(t, base, "/health", ""); h.body["online"] != false || h.body["status"] != "offline" {
		t.Fatalf("/health does not report offline: %v", h)
	}
	if h := get(t, base, "/wcp/health", fx.acme); h.body["online"] != false {
		t.Fatalf("/wcp/health does not report offline: %v", h)
	}
	r = post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "offline-1"), article))
	if r.status != 503 || r.errCode() != server.CodeHallOffline {
		t.Fatalf("offline run: %v", r)
	}
	if rs := get(t, base, "/wcp/receipts?correlation_id=offline-1", fx.acme); rs.body["count"] != 0.0 {
		t.Fatalf("an offline run left a receipt: %v", rs)
	}
	if r := post(t, base, "/wcp/route", fx.acme, input("cap.doc.summarize", "offline-route")); r.status != 200 {
		t.Fatalf("decisions stop while offline: %v", r)
	}
	if r := call(t, base, req{method: "POST", path: "/api/server/go-online", token: fx.admin}); r.status != 200 || r.body["online"] != true {
		t.Fatal(r)
	}
	if r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "online-again"), article)); r.status != 200 {
		t.Fatalf("back online: %v", r)
	}
}

func putArtifact(t *testing.T, base, path, ctype string, body []byte) *response {
	t.Helper()
	return call(t, base, req{method: "PUT", path: path, token: fx.admin, ctype: ctype, body: bytes.NewReader(body)})
}

// uniqueModule is a small valid worker module whose bytes (and so digest)
// differ per test.
func uniqueModule(t *testing.T) []byte {
	return watSource(t, fmt.Sprintf(`(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const %d)))`, time.Now().UnixNano()%1_000_000))
}

func record(t *testing.T, workerID, hash string) map[string]any {
	t.Helper()
	var rec map[string]any
	if err := json.Unmarshal(fx.summarizerRecord, &rec); err != nil {
		t.Fatal(err)
	}
	// Its own species and capability: the summarizer's stay served by the
	// summarizer.
	rec["worker_id"] = workerID
	rec["worker_species_id"] = "wrk.test.uploaded"
	rec["capabilities"] = []string{"cap.test.uploaded"}
	rec["entrypoints"] = map[string]any{}
	if hash != "" {
		rec["artifact_hash"] = hash
	}
	return rec
}

func TestArtifactsAndEnrollJSON(t *testing.T) {
	base := start(t, server.Config{MaxUpload: 1 << 20, MaxBody: 16 << 10})
	mod := uniqueModule(t)
	d := digest(mod)

	t.Run("upload errors", func(t *testing.T) {
		other := digest([]byte("other bytes"))
		for _, tc := range []struct {
			name, path, ctype string
			body              []byte
			status            int
			code              string
		}{
			{"digest mismatch", "/artifacts/" + other, "application/wasm", mod, 409, string(wcp.DenyWorkerTampered)},
			{"not a digest", "/artifacts/sha256:xyz", "application/wasm", mod, 400, server.CodeInvalidDigest},
			{"traversal", "/artifacts/..%2F..%2Frules.json", "application/wasm", mod, 400, server.CodeInvalidDigest},
			{"wrong content type", "/artifacts/" + d, "application/json", mod, 415, server.CodeUnsupportedMedia},
			{"not wasm", "/artifacts/" + digest([]byte("not wasm")), "application/octet-stream", []byte("not wasm"), 422, server.CodeModuleInvalid},
			{"oversized", "/artifacts/" + digest(make([]byte, 2<<20)), "application/wasm", make([]byte, 2<<20), 413, server.CodeBodyTooLarge},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if r := putArtifact(t, base, tc.path, tc.ctype, tc.body); r.status != tc.status || r.errCode() != tc.code {
					t.Fatalf("got %v, want %d %s", r, tc.status, tc.code)
				}
			})
		}
		// Nothing was stored under the mismatched digest.
		r := post(t, base, "/enroll", fx.admin, record(t, "org.test.mismatch", other))
		if r.status != 422 || r.errCode() != server.CodeArtifactUnknown || r.errField() != "artifact_hash" {
			t.Fatalf("enrolling the refused upload: %v", r)
		}
	})

	if r := putArtifact(t, base, "/artifacts/"+d, "application/wasm", mod); r.status != 201 || r.body["artifact_hash"] != d {
		t.Fatalf("upload: %v", r)
	}
	r := post(t, base, "/enroll", fx.admin, record(t, "org.test.uploaded", d))
	if r.status != 201 || r.body["enrolled"] != true || r.body["artifact_hash_verified"] != true || r.body["worker_id"] != "org.test.uploaded" {
		t.Fatalf("enroll: %v", r)
	}
	if id, _ := r.body["enrollment_id"].(string); len(id) != 12 || !strings.HasPrefix(id, "enr_") {
		t.Errorf("enrollment_id %q is not enr_<8 hex>", id)
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(r.body["enrolled_at"])); err != nil {
		t.Errorf("enrolled_at: %v", err)
	}
	// What the enrollment granted and sealed is in the answer (issue 10).
	if env, ok := r.body["privilege_envelope"].(map[string]any); !ok || env == nil {
		t.Errorf("no privilege_envelope in the enroll answer: %v", r)
	}
	if rd, _ := r.body["record_digest"].(string); !strings.HasPrefix(rd, "sha256:") {
		t.Errorf("record_digest %q", rd)
	}
	if id, _ := r.body["change_id"].(string); !strings.HasPrefix(id, "chg_") {
		t.Errorf("change_id %q", id)
	}
	if w := get(t, base, "/wcp/workers/org.test.uploaded", fx.acme); w.status != 200 || w.body["artifact_hash"] != d {
		t.Fatalf("enrolled worker not served: %v", w)
	}
	if r := post(t, base, "/enroll", fx.admin, record(t, "org.test.uploaded", d)); r.status != 200 || r.body["updated"] != true {
		t.Fatalf("re-enroll: %v", r)
	}

	t.Run("enroll errors", func(t *testing.T) {
		bad := record(t, "org.test.bad", d)
		bad["risk_tier"] = "extreme"
		for _, tc := range []struct {
			name, ctype string
			body        any
			status      int
			code, field string
		}{
			{"unknown artifact", "application/json", record(t, "org.test.nothing", digest([]byte("never uploaded"))), 422, server.CodeArtifactUnknown, "artifact_hash"},
			{"no artifact_hash", "application/json", record(t, "org.test.nohash", ""), 422, server.CodeRecordInvalid, "artifact_hash"},
			{"invalid record", "application/json", bad, 422, server.CodeRecordInvalid, "risk_tier"},
			{"malformed JSON", "application/json", `{"worker_id":`, 400, server.CodeInvalidJSON, ""},
			{"wrong content type", "text/plain", record(t, "org.test.x", d), 415, server.CodeUnsupportedMedia, ""},
			{"oversized", "application/json", map[string]any{"pad": strings.Repeat("a", 20<<10)}, 413, server.CodeBodyTooLarge, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := call(t, base, req{method: "POST", path: "/enroll", token: fx.admin, ctype: tc.ctype, body: jsonBody(tc.body)})
				if r.status != tc.status || r.errCode() != tc.code || r.errField() != tc.field {
					t.Fatalf("got %v, want %d %s field %q", r, tc.status, tc.code, tc.field)
				}
			})
		}
	})

	t.Run("stored module altered on disk", func(t *testing.T) {
		mod := uniqueModule(t)
		d := digest(mod)
		if r := putArtifact(t, base, "/artifacts/"+d, "application/octet-stream", mod); r.status != 201 {
			t.Fatal(r)
		}
		store, err := artifact.Open(filepath.Join(fx.home, "artifacts"))
		if err != nil {
			t.Fatal(err)
		}
		wd, _ := wcp.ParseDigest(d)
		p := store.Path(wd)
		os.Chmod(p, 0o644)
		if err := os.WriteFile(p, append(mod, 0), 0o644); err != nil {
			t.Fatal(err)
		}
		r := post(t, base, "/enroll", fx.admin, record(t, "org.test.tampered", d))
		if r.status != 409 || r.errCode() != string(wcp.DenyWorkerTampered) {
			t.Fatalf("%v", r)
		}
		if w := get(t, base, "/wcp/workers/org.test.tampered", fx.acme); w.status != 404 {
			t.Fatalf("a tampered module was enrolled: %v", w)
		}
	})
}

func multipartBody(t *testing.T, parts map[string][]byte) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for name, b := range parts {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, name, name))
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	mw.Close()
	return mw.FormDataContentType(), &buf
}

func TestEnrollMultipart(t *testing.T) {
	base := start(t, server.Config{MaxUpload: 1 << 20})
	mod := uniqueModule(t)
	recJSON := func(id, hash string) []byte { b, _ := json.Marshal(record(t, id, hash)); return b }
	send := func(parts map[string][]byte) *response {
		ct, body := multipartBody(t, parts)
		return call(t, base, req{method: "POST", path: "/enroll", token: fx.admin, ctype: ct, body: body})
	}

	r := send(map[string][]byte{"record": recJSON("org.test.tampered2", digest([]byte("other"))), "module": mod})
	if r.status != 409 || r.errCode() != string(wcp.DenyWorkerTampered) || r.errField() != "artifact_hash" {
		t.Fatalf("record for other bytes: %v", r)
	}
	if w := get(t, base, "/wcp/workers/org.test.tampered2", fx.acme); w.status != 404 {
		t.Fatalf("a refused record was enrolled: %v", w)
	}
	r = send(map[string][]byte{"record": recJSON("org.test.multipart", ""), "module": mod})
	if r.status != 201 || r.body["artifact_hash"] != digest(mod) || r.body["artifact_hash_verified"] != true {
		t.Fatalf("multipart enroll: %v", r)
	}
	if w := get(t, base, "/wcp/workers/org.test.multipart", fx.acme); w.status != 200 {
		t.Fatalf("not enrolled: %v", w)
	}
	for _, tc := range []struct {
		name   string
		parts  map[string][]byte
		status int
		code   string
	}{
		{"no module", map[string][]byte{"record": recJSON("org.test.m2", "")}, 422, server.CodeInvalidRequest},
		{"unknown part", map[string][]byte{"module": mod, "extra": []byte("x")}, 422, server.CodeInvalidRequest},
		{"record not JSON", map[string][]byte{"record": []byte("{"), "module": mod}, 400, server.CodeInvalidJSON},
		{"module not wasm", map[string][]byte{"record": recJSON("org.test.m3", ""), "module": []byte("MZ")}, 422, server.CodeModuleInvalid},
		{"module too large", map[string][]byte{"record": recJSON("org.test.m4", ""), "module": make([]byte, 2<<20)}, 413, server.CodeBodyTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := send(tc.parts); r.status != tc.status || r.errCode() != tc.code {
				t.Fatalf("got %v, want %d %s", r, tc.status, tc.code)
			}
		})
	}
}

func TestReceipts(t *testing.T) {
	base := start(t, server.Config{})
	r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "rc-acme"), article))
	if r.status != 200 {
		t.Fatal(r)
	}
	acmeID := r.body["receipt_id"].(string)
	if r := post(t, base, "/wcp/run", fx.other, runBody(input("cap.doc.summarize", "rc-other"), article)); r.status != 200 {
		t.Fatal(r)
	}

	list := func(token, query string) *response { return get(t, base, "/wcp/receipts"+query, token) }
	if r := list(fx.acme, "?correlation_id=rc-acme"); r.status != 200 || r.body["count"] != 1.0 {
		t.Fatalf("own receipts: %v", r)
	}
	if r := list(fx.other, "?correlation_id=rc-acme"); r.status != 200 || r.body["count"] != 0.0 {
		t.Fatalf("another tenant's receipts are visible: %v", r)
	}
	r = list(fx.acme, "?limit=1000")
	for _, rc := range r.body["receipts"].([]any) {
		if rc.(map[string]any)["tenant_id"] != "org.acme" {
			t.Fatalf("a tenant listing holds another tenant's receipt: %v", rc)
		}
	}
	if r := list(fx.admin, "?tenant=org.other&correlation_id=rc-other"); r.body["count"] != 1.0 {
		t.Fatalf("admin by tenant: %v", r)
	}
	if r := list(fx.acme, "?tenant=org.other"); r.status != 403 || r.errCode() != server.CodeTenantMismatch {
		t.Fatalf("tenant param of another tenant: %v", r)
	}
	if r := list(fx.acme, "?limit=1"); r.status != 200 || r.body["count"] != 1.0 {
		t.Fatalf("limit: %v", r)
	}
	for _, q := range []string{"?limit=0", "?limit=abc", "?limit=100000", "?since=yesterday"} {
		if r := list(fx.acme, q); r.status != 400 {
			t.Errorf("%s: %v", q, r)
		}
	}
	if r := get(t, base, "/wcp/receipts/"+acmeID, fx.other); r.status != 404 || r.errCode() != server.CodeReceiptNotFound {
		t.Fatalf("another tenant's receipt by id: %v", r)
	}
	if r := get(t, base, "/wcp/receipts/"+acmeID, fx.admin); r.status != 200 || r.body["receipt_id"] != acmeID {
		t.Fatalf("admin reads any receipt: %v", r)
	}
	if r := get(t, base, "/wcp/receipts/"+uuid.NewString(), fx.acme); r.status != 404 {
		t.Fatalf("unknown receipt: %v", r)
	}
	if r := get(t, base, "/wcp/receipts/..%2F..%2Fhall.db", fx.acme); r.status != 400 {
		t.Fatalf("traversal receipt id: %v", r)
	}
}

func TestMetrics(t *testing.T) {
	base := start(t, server.Config{})
	post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "m-ok"), article))
	post(t, base, "/wcp/run", fx.acme, runBody(input("cap.nothing.here", "m-denied"), article))
	r := get(t, base, "/metrics", "")
	if r.status != 200 {
		t.Fatal(r)
	}
	for _, want := range []string{
		`hall_decisions_total{deny_code="",endpoint="run",outcome="allowed"} 1`,
		`hall_decisions_total{deny_code="DENY_NO_MATCHING_RULE",endpoint="run",outcome="denied"} 1`,
		`hall_dispatch_duration_seconds_count{outcome="ok"} 1`,
		`hall_dispatches_in_flight 0`,
		`hall_online 1`,
		`hall_http_requests_total{method="POST",route="/wcp/run",status="404"} 1`,
		// The summarizer is loaded after the dispatch: its pool is reported.
		`hall_instances_pooled{state="fresh",worker_id="org.acme.summarizer"} `,
		`hall_instances_pooled{state="idle",worker_id="org.acme.summarizer"} 0`,
	} {
		if !strings.Contains(string(r.raw), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestGracefulShutdown: cancelling Serve's context lets a dispatch in
// flight finish and commit its receipt before Serve returns.
func TestGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- server.Serve(ctx, ln, server.New(fx.hall, server.Config{Tokens: fx.tokens}), server.ServeOptions{ShutdownTimeout: 10 * time.Second})
	}()
	var wg sync.WaitGroup
	var slow *response
	wg.Add(1)
	go func() {
		defer wg.Done()
		var err error
		if slow, err = tryPost(base, "/wcp/run", fx.acme, runBody(input("cap.test.slow", "shutdown-slow"), "")); err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "the dispatch to be in flight", func() bool { return metric(t, base, "hall_dispatches_in_flight") == "1" })
	cancel()
	// A Serve that returned with the dispatch in flight would have cut its
	// connection: the client would get an error, not the worker's outcome
	// and its receipt id.
	wg.Wait()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if slow == nil || slow.status != 504 || slow.body["receipt_id"] == nil {
		t.Fatalf("the dispatch in flight was not completed: %v", slow)
	}
	store, err := fx.hall.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Receipt(context.Background(), slow.body["receipt_id"].(string)); err != nil {
		t.Fatalf("its receipt was not committed: %v", err)
	}
	if _, err := http.Get(base + "/health"); err == nil {
		t.Fatal("still accepting connections after shutdown")
	}
}
