package server_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/wasmmod"
)

// TestHTTPDefaultsLikeCLI is the newcomer's report (issue 27): POST
// /wcp/route with only capability_id was a 422 listing five fields the
// CLI defaults, and a denial over HTTP had no "did you mean". Now the
// defaults are the CLI's (env dev, data_label INTERNAL, tenant_risk low,
// qos_class P2, a new correlation id), named in Hall-Defaulted, and a
// capability nothing serves gets the CLI's suggestion in Hall-Hint.
func TestHTTPDefaultsLikeCLI(t *testing.T) {
	base := start(t, server.Config{})
	r := post(t, base, "/wcp/route", fx.acme, map[string]any{"capability_id": "cap.doc.summarize"})
	if r.status != 200 || r.body["denied"] != false || r.body["env"] != "dev" || r.body["correlation_id"] == "" {
		t.Fatalf("route with only capability_id: %v", r)
	}
	if got := r.header.Get("Hall-Defaulted"); got != "env=dev, data_label=INTERNAL, tenant_risk=low, qos_class=P2, correlation_id" {
		t.Errorf("Hall-Defaulted: %q", got)
	}
	r = post(t, base, "/wcp/run", fx.acme, map[string]any{"input": map[string]any{"capability_id": "cap.doc.summarize"}, "payload": article})
	if r.status != 200 || r.body["outcome"] != "ok" {
		t.Fatalf("run with only capability_id: %v", r)
	}
	r = post(t, base, "/wcp/route", fx.acme, map[string]any{"capability_id": "cap.doc.summarise"})
	if r.status != 200 || r.body["denied"] != true || !strings.Contains(r.header.Get("Hall-Hint"), "did you mean cap.doc.summarize?") {
		t.Fatalf("route of a misspelt capability: %v, Hall-Hint %q", r, r.header.Get("Hall-Hint"))
	}
	r = post(t, base, "/wcp/run", fx.acme, map[string]any{"input": map[string]any{"capability_id": "cap.doc.summarise"}, "payload": article})
	if hint, _ := r.body["hint"].(string); !strings.Contains(hint, "did you mean cap.doc.summarize?") {
		t.Fatalf("run of a misspelt capability: %v", r)
	}
}

// TestHTTPResumeByApprovalID: over HTTP, as with hall run --approval, the
// approval id alone resumes the held request; the caller need not know
// the correlation id the held request was decided under.
func TestHTTPResumeByApprovalID(t *testing.T) {
	h, base := approvalsHall(t)
	id := holdRun(t, base, "hold-resume-http")
	if r := post(t, base, "/wcp/approvals/"+id+"/approve", approverToken(t, h, ""), map[string]any{}); r.status != 200 {
		t.Fatalf("approve: %v", r)
	}
	in := input("cap.test.noop", "")
	delete(in, "correlation_id")
	body := runBody(in, "x")
	body["approval_id"] = id
	r := post(t, base, "/wcp/run", fx.acme, body)
	if d, _ := r.body["decision"].(map[string]any); r.status != 200 || r.body["ran"] != true || d["correlation_id"] != "hold-resume-http" {
		t.Fatalf("resume by approval id: %v", r)
	}
}

// TestRootLinksConsole: / on hall serve was a 404 (issue 27); a browser
// now gets links to the console and the API description, a program JSON.
func TestRootLinksConsole(t *testing.T) {
	base := start(t, server.Config{})
	r := call(t, base, req{method: "GET", path: "/", header: map[string]string{"Accept": "text/html,application/xhtml+xml"}})
	if r.status != 200 || !strings.Contains(string(r.raw), `href="/console"`) || !strings.Contains(string(r.raw), `href="/openapi.json"`) {
		t.Fatalf("GET / from a browser: %v", r)
	}
	if r := get(t, base, "/", ""); r.status != 200 || r.body["console"] != "/console" {
		t.Fatalf("GET / as JSON: %v", r)
	}
}

// TestReenrollMultipartEmbeddedRecord is the newcomer's report (issue 27):
// re-enrolling a changed module by multipart, its record in its wcp.record
// section, answered 201 without "updated", although docs/HTTP.md promises
// 200 and "updated": true for a worker id enrolled before.
func TestReenrollMultipartEmbeddedRecord(t *testing.T) {
	base := start(t, server.Config{MaxUpload: 1 << 20})
	rec, err := json.Marshal(record(t, "org.test.reembed", ""))
	if err != nil {
		t.Fatal(err)
	}
	module := func(rc int) []byte {
		m := watSource(t, fmt.Sprintf(`(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const %d)))`, rc))
		m, err := wasmmod.SetCustomSection(m, host.RecordSection, rec)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	send := func(mod []byte) *response {
		ct, body := multipartBody(t, map[string][]byte{"module": mod})
		return call(t, base, req{method: "POST", path: "/enroll", token: fx.admin, ctype: ct, body: body})
	}
	if r := send(module(0)); r.status != 201 || r.body["updated"] != nil {
		t.Fatalf("first enrollment: %v", r)
	}
	if r := send(module(1)); r.status != 200 || r.body["updated"] != true {
		t.Fatalf("re-enrollment of a changed module: %v", r)
	}
}
