package mcp_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	hallmcp "github.com/wcphall/hall/host/mcp"
	"github.com/wcphall/hall/host/server"
)

const article = "The Hall governs workers. Every dispatch is decided before it runs. " +
	"Receipts record what ran, on which input, with which result. " +
	"Workers run in a sandbox with limits on time and memory. " +
	"Nothing runs without evidence."

func TestToolName(t *testing.T) {
	for _, tc := range []struct{ capability, want string }{
		{"cap.doc.summarize", "doc_summarize"},
		{"cap.test.noop", "test_noop"},
		{"cap.a-b.c", "a-b_c"},
	} {
		if got := hallmcp.ToolName(tc.capability); got != tc.want {
			t.Errorf("ToolName(%s) = %s, want %s", tc.capability, got, tc.want)
		}
	}
	// Distinct capabilities whose plain names would collide get distinct
	// names; every name is at most 64 characters of [A-Za-z0-9_-].
	long := "cap." + strings.Repeat("abcdefgh.", 15) + "z"
	names := map[string]string{}
	for _, c := range []string{"cap.doc.sum_x", "cap.doc_sum.x", "cap.doc.sum.x", long, long + "y"} {
		n := hallmcp.ToolName(c)
		if prev, ok := names[n]; ok {
			t.Errorf("%s and %s share the tool name %s", prev, c, n)
		}
		names[n] = c
		if len(n) > 64 || strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
			t.Errorf("ToolName(%s) = %q: not 1-64 characters of [A-Za-z0-9_-]", c, n)
		}
		if hallmcp.ToolName(c) != n {
			t.Errorf("ToolName(%s) is not stable", c)
		}
	}
	// An underscore of its own would make doc_sum_x ambiguous (cap.doc.sum_x
	// or cap.doc_sum.x): such a name is suffixed with upper-case hex.
	if n := hallmcp.ToolName("cap.doc.sum_x"); !strings.HasPrefix(n, "doc_sum_x_") || len(n) != len("doc_sum_x_")+8 || strings.ToUpper(n[len(n)-8:]) != n[len(n)-8:] {
		t.Errorf("suffixed name %q: want doc_sum_x_ and 8 upper-case hex digits", n)
	}
}

func TestListTools(t *testing.T) {
	cs := connect(t, serve(t, server.Config{}), fx.acme, nil)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]*sdk.Tool{}
	for _, tl := range res.Tools {
		tools[tl.Name] = tl
	}
	var names []string
	for n := range tools {
		if n != "test_late" { // enrolled by TestToolsListChangedAfterEnrollment
			names = append(names, n)
		}
	}
	slices.Sort(names)
	// Every capability a rule routes to an enrolled worker.
	want := []string{"doc_summarize", "test_approve", "test_noop", hallmcp.ToolName("cap.test.prod_only"), "test_slow", "test_write"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("tools = %v, want %v", names, want)
	}

	sum := tools["doc_summarize"]
	if sum.Title != "cap.doc.summarize" || !strings.HasPrefix(sum.Description, "Summarizes a text") {
		t.Errorf("title %q description %q: want the capability and the record's description", sum.Title, sum.Description)
	}
	if in := mustJSON(sum.InputSchema); !strings.Contains(in, `"required":["text"]`) {
		t.Errorf("input schema %s is not the record's", in)
	}
	if out := mustJSON(sum.OutputSchema); !strings.Contains(out, `"required":["summary"]`) {
		t.Errorf("output schema %s is not the record's", out)
	}
	if sum.Meta["capability_id"] != "cap.doc.summarize" || sum.Meta["worker_id"] != "org.acme.summarizer" {
		t.Errorf("tool _meta %v", sum.Meta)
	}

	noop := tools["test_noop"]
	if in := mustJSON(noop.InputSchema); !strings.Contains(in, `"input":{"description"`) || !strings.Contains(in, `"type":"string"`) {
		t.Errorf("default input schema %s", in)
	}
	if noop.OutputSchema != nil {
		t.Errorf("no output schema declared, got %v", noop.OutputSchema)
	}
	if !strings.Contains(noop.Description, "org.test.noop") {
		t.Errorf("generated description %q does not name the worker", noop.Description)
	}

	for _, tc := range []struct {
		tool                          string
		readOnly, openWorld, destruct bool
		idempotent                    bool
	}{
		{"test_noop", true, false, false, true},
		{"test_write", false, true, true, false},
	} {
		a := tools[tc.tool].Annotations
		if a == nil || a.ReadOnlyHint != tc.readOnly || a.OpenWorldHint == nil || *a.OpenWorldHint != tc.openWorld ||
			a.DestructiveHint == nil || *a.DestructiveHint != tc.destruct || a.IdempotentHint != tc.idempotent {
			t.Errorf("%s annotations %s, want readOnly %v openWorld %v destructive %v idempotent %v", tc.tool, mustJSON(a), tc.readOnly, tc.openWorld, tc.destruct, tc.idempotent)
		}
	}
}

func TestCallAllowedCarriesEvidence(t *testing.T) {
	cs := connect(t, serve(t, server.Config{}), fx.acme, nil)
	res := call(t, cs, "doc_summarize", map[string]any{"text": article, "sentences": 1}, sdk.Meta{"correlation_id": "mcp-allowed-1"})
	if res.IsError {
		t.Fatalf("isError: %s", text(res))
	}
	for _, k := range []string{"decision_id", "receipt_id", "correlation_id"} {
		if metaString(res, k) == "" {
			t.Errorf("_meta lacks %s: %v", k, res.Meta)
		}
	}
	if metaString(res, "correlation_id") != "mcp-allowed-1" || metaString(res, "status") != "ok" || metaString(res, "outcome") != "ok" {
		t.Errorf("_meta %v", res.Meta)
	}
	sc, ok := res.StructuredContent.(map[string]any)
	if !ok || sc["summary"] == "" || !strings.Contains(text(res), `"summary"`) {
		t.Fatalf("structuredContent %v / text %q: want the worker's JSON", res.StructuredContent, text(res))
	}
	rs := receipts(t, "mcp-allowed-1")
	if len(rs) != 1 || rs[0].ReceiptID != metaString(res, "receipt_id") || rs[0].TenantID != "org.acme" || rs[0].Outcome != "ok" {
		t.Fatalf("receipts %+v", rs)
	}

	// Without a correlation id in _meta one is generated.
	res = call(t, cs, "test_noop", map[string]any{"input": "x"}, nil)
	if res.IsError || len(metaString(res, "correlation_id")) != 36 {
		t.Fatalf("%v %s", res.Meta, text(res))
	}
}

func TestCallDeniedIsAToolError(t *testing.T) {
	cs := connect(t, serve(t, server.Config{}), fx.acme, nil)
	// Routed in prod only; calls run in the configured env, dev.
	res := call(t, cs, hallmcp.ToolName("cap.test.prod_only"), map[string]any{"input": "x"}, sdk.Meta{"correlation_id": "mcp-denied-1"})
	if !res.IsError || metaString(res, "status") != "denied" || metaString(res, "deny_code") != "DENY_NO_MATCHING_RULE" {
		t.Fatalf("want a denial result, got isError %v _meta %v", res.IsError, res.Meta)
	}
	if !strings.HasPrefix(text(res), "DENIED DENY_NO_MATCHING_RULE: ") || metaString(res, "decision_id") == "" {
		t.Fatalf("text %q _meta %v", text(res), res.Meta)
	}
	if rs := receipts(t, "mcp-denied-1"); len(rs) != 0 {
		t.Fatalf("a denied call has receipts: %+v", rs)
	}
}

func TestCallPendingApproval(t *testing.T) {
	cs := connect(t, serve(t, server.Config{}), fx.acme, nil)
	res := call(t, cs, "test_approve", map[string]any{"input": "x"}, nil)
	if !res.IsError || metaString(res, "status") != "pending_approval" || metaString(res, "deny_code") != "DENY_REQUIRES_HUMAN_APPROVAL" {
		t.Fatalf("isError %v _meta %v text %q", res.IsError, res.Meta, text(res))
	}
	if !strings.HasPrefix(text(res), "PENDING human approval") {
		t.Fatalf("text %q", text(res))
	}
}

func TestCallRefusals(t *testing.T) {
	cs := connect(t, serve(t, server.Config{}), fx.acme, nil)
	for _, tc := range []struct {
		name, tool string
		args       any
		meta       sdk.Meta
		code, want string
	}{
		{"other tenant in _meta", "test_noop", map[string]any{"input": "x"}, sdk.Meta{"tenant_id": "org.other"}, "TENANT_MISMATCH", "the tenant comes from the token"},
		{"override not allowed", "test_noop", map[string]any{"input": "x"}, sdk.Meta{"env": "prod"}, "FORBIDDEN", "allow_overrides"},
		{"arguments against the record's schema", "doc_summarize", map[string]any{"sentences": 2}, nil, "INVALID_INPUT", "text"},
		{"default schema input not a string", "test_noop", map[string]any{"input": 7}, nil, "INVALID_INPUT", "arguments.input"},
		{"default schema unknown member", "test_noop", map[string]any{"inptu": "x"}, nil, "INVALID_INPUT", `"inptu"`},
		// Issue 21: approval_id is bounded and of one form, like every caller string.
		{"approval id not an id", "test_noop", map[string]any{"input": "x"}, sdk.Meta{"approval_id": "apr_" + strings.Repeat("\x1b\x07", 64<<10)}, "INVALID_INPUT", "_meta.approval_id"},
		{"approval id not a string", "test_noop", map[string]any{"input": "x"}, sdk.Meta{"approval_id": 7}, "INVALID_INPUT", "_meta.approval_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := call(t, cs, tc.tool, tc.args, tc.meta)
			if !res.IsError || metaString(res, "code") != tc.code || metaString(res, "status") != "refused" || !strings.Contains(text(res), tc.want) || len(text(res)) > 1000 {
				t.Fatalf("isError %v _meta %v text %q; want %s mentioning %q", res.IsError, res.Meta, text(res), tc.code, tc.want)
			}
		})
	}
}

func TestHTTPAuthAndSessions(t *testing.T) {
	endpoint := serve(t, server.Config{})
	post := func(token string, header map[string]string, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for k, v := range header {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`
	if res := post("", nil, initialize); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", res.StatusCode)
	}
	if res := post("not-a-token", nil, initialize); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad token: %d, want 401", res.StatusCode)
	}
	if res := post(fx.adm, nil, initialize); res.StatusCode != http.StatusForbidden {
		t.Errorf("admin token: %d, want 403 (a call needs a tenant)", res.StatusCode)
	}
	if res := post(fx.acme, map[string]string{"Host": "evil.example:80"}, initialize); res.StatusCode != http.StatusForbidden {
		t.Errorf("DNS rebinding (Host evil.example on loopback): %d, want 403", res.StatusCode)
	}
	if res := post(fx.acme, map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, initialize); res.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin browser request: %d, want 403", res.StatusCode)
	}
	if res := post(fx.acme, nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"pad":"`+strings.Repeat("x", server.DefaultMaxBody)+`"}}`); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: %d, want 413", res.StatusCode)
	}
	res := post(fx.acme, nil, initialize)
	sid := res.Header.Get("Mcp-Session-Id")
	if res.StatusCode != http.StatusOK || sid == "" {
		t.Fatalf("initialize: %d, session %q", res.StatusCode, sid)
	}
	// The session is the tenant's: another tenant's valid token cannot use it.
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if res := post(fx.other, map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-06-18"}, list); res.StatusCode != http.StatusForbidden {
		t.Errorf("another tenant's token on the session: %d, want 403", res.StatusCode)
	}
}

func TestTenantIsTheTokens(t *testing.T) {
	endpoint := serve(t, server.Config{})
	for _, tc := range []struct{ token, tenant string }{{fx.acme, "org.acme"}, {fx.other, "org.other"}} {
		cs := connect(t, endpoint, tc.token, nil)
		corr := "mcp-tenant-" + tc.tenant
		if res := call(t, cs, "test_noop", map[string]any{"input": "x"}, sdk.Meta{"correlation_id": corr}); res.IsError {
			t.Fatal(text(res))
		}
		if rs := receipts(t, corr); len(rs) != 1 || rs[0].TenantID != tc.tenant {
			t.Fatalf("receipts %+v, want one of tenant %s", rs, tc.tenant)
		}
	}
}
