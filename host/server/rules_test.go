package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/host/wcp"
)

// The rules tests change the shared Hall's rules; each restores the
// document it found.

// rulesInForce reads the rules document through the API and restores it
// when the test ends.
func rulesInForce(t *testing.T, base string) (doc []byte, etag string) {
	t.Helper()
	r := get(t, base, "/admin/rules", fx.admin)
	if r.status != 200 {
		t.Fatalf("GET /admin/rules: %v", r)
	}
	t.Cleanup(func() {
		if _, _, err := fx.hall.ReplaceRules(context.Background(), r.raw, "", "test"); err != nil {
			t.Errorf("restoring the rules: %v", err)
		}
	})
	return r.raw, r.header.Get("ETag")
}

// editRules returns doc with edit applied to its rules.
func editRules(t *testing.T, doc []byte, edit func([]json.RawMessage) []json.RawMessage) []byte {
	t.Helper()
	var f struct {
		Rules []json.RawMessage `json:"rules"`
	}
	if err := json.Unmarshal(doc, &f); err != nil {
		t.Fatal(err)
	}
	f.Rules = edit(f.Rules)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withoutRule drops the rule with id.
func withoutRule(id string) func([]json.RawMessage) []json.RawMessage {
	return func(rules []json.RawMessage) []json.RawMessage {
		var out []json.RawMessage
		for _, r := range rules {
			var head struct {
				RuleID string `json:"rule_id"`
			}
			json.Unmarshal(r, &head)
			if head.RuleID != id {
				out = append(out, r)
			}
		}
		return out
	}
}

func putRules(t *testing.T, base, token string, doc []byte, ifMatch string) *response {
	t.Helper()
	rq := req{method: "PUT", path: "/admin/rules", token: token, ctype: "application/json", body: bytes.NewReader(doc)}
	if ifMatch != "" {
		rq.header = map[string]string{"If-Match": ifMatch}
	}
	return call(t, base, rq)
}

func TestRulesGetPutRoundTrip(t *testing.T) {
	base := start(t, server.Config{})
	doc, etag := rulesInForce(t, base)
	onDisk, err := os.ReadFile(fx.hall.Options().Rules)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc, onDisk) {
		t.Fatalf("GET /admin/rules is not the rules file as loaded:\n%s\nfile:\n%s", doc, onDisk)
	}
	if want := `"` + digest(onDisk) + `"`; etag != want {
		t.Fatalf("ETag %s, want %s", etag, want)
	}

	edited := editRules(t, doc, withoutRule("rr_test_slow_dev"))
	r := putRules(t, base, fx.admin, edited, etag)
	if r.status != 200 || r.body["rules_digest"] != digest(edited) || r.header.Get("ETag") != `"`+digest(edited)+`"` {
		t.Fatalf("PUT /admin/rules: %v (ETag %s), want 200 with digest %s", r, r.header.Get("ETag"), digest(edited))
	}
	if w, ok := r.body["warnings"].([]any); !ok || len(w) != 0 {
		t.Errorf("warnings: %v, want []", r.body["warnings"])
	}
	r = get(t, base, "/admin/rules", fx.admin)
	if r.status != 200 || !bytes.Equal(r.raw, edited) || r.header.Get("ETag") != `"`+digest(edited)+`"` {
		t.Fatalf("GET after PUT: %v (ETag %s)", r, r.header.Get("ETag"))
	}
	if b, _ := os.ReadFile(fx.hall.Options().Rules); !bytes.Equal(b, edited) {
		t.Errorf("the rules file was not written:\n%s", b)
	}
}

func TestRulesInvalidRefusedRulesUnchanged(t *testing.T) {
	base := start(t, server.Config{})
	doc, etag := rulesInForce(t, base)
	shadowed := editRules(t, doc, func(rules []json.RawMessage) []json.RawMessage {
		var first map[string]any
		json.Unmarshal(rules[0], &first)
		first["rule_id"] = "rr_shadowed_copy"
		b, _ := json.Marshal(first)
		return append(rules, b)
	})
	for _, tc := range []struct {
		name   string
		doc    []byte
		status int
		code   string
	}{
		{"shadowed rule", shadowed, 422, "RULES_INVALID"},
		{"does not compile", []byte(`{"rules": [{"rule_id": "r", "match": {"env": {"in": "dev"}}, "decision": {}}]}`), 422, "RULES_INVALID"},
		{"not a rules document", []byte(`["rules"]`), 422, "RULES_INVALID"},
		{"malformed JSON", []byte(`{"rules": [`), 400, server.CodeInvalidJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := putRules(t, base, fx.admin, tc.doc, "")
			if r.status != tc.status || r.errCode() != tc.code {
				t.Fatalf("got %v, want %d %s", r, tc.status, tc.code)
			}
			after := get(t, base, "/admin/rules", fx.admin)
			if !bytes.Equal(after.raw, doc) || after.header.Get("ETag") != etag {
				t.Fatalf("the rules changed after a refused PUT: ETag %s, was %s", after.header.Get("ETag"), etag)
			}
		})
	}
	t.Run("the message says which rule", func(t *testing.T) {
		r := putRules(t, base, fx.admin, shadowed, "")
		msg, _ := r.body["error"].(map[string]any)["message"].(string)
		if !bytes.Contains([]byte(msg), []byte("rr_shadowed_copy")) {
			t.Fatalf("message %q does not name the shadowed rule", msg)
		}
	})
}

func TestRulesNeedAnAdminToken(t *testing.T) {
	base := start(t, server.Config{})
	doc, etag := rulesInForce(t, base)
	for _, tc := range []struct {
		name, token string
		status      int
		code        string
	}{
		{"tenant token", fx.acme, 403, server.CodeForbidden},
		{"no token", "", 401, server.CodeUnauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := get(t, base, "/admin/rules", tc.token); r.status != tc.status || r.errCode() != tc.code {
				t.Errorf("GET: %v, want %d %s", r, tc.status, tc.code)
			}
			if r := putRules(t, base, tc.token, editRules(t, doc, withoutRule("rr_test_slow_dev")), etag); r.status != tc.status || r.errCode() != tc.code {
				t.Errorf("PUT: %v, want %d %s", r, tc.status, tc.code)
			}
		})
	}
	if r := get(t, base, "/admin/rules", fx.admin); r.header.Get("ETag") != etag {
		t.Fatalf("the rules changed: ETag %s, was %s", r.header.Get("ETag"), etag)
	}
}

func TestRulesIfMatchPreconditionFailed(t *testing.T) {
	base := start(t, server.Config{})
	doc, etag := rulesInForce(t, base)
	edited := editRules(t, doc, withoutRule("rr_test_slow_dev"))
	stale := `"` + digest([]byte("another document")) + `"`
	for _, tc := range []struct {
		name, ifMatch string
		doc           []byte
	}{
		{"another digest", stale, edited},
		{"weak tag", "W/" + etag, edited},
		{"another digest and invalid rules", stale, []byte(`["rules"]`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := putRules(t, base, fx.admin, tc.doc, tc.ifMatch)
			if r.status != 412 || r.errCode() != server.CodePreconditionFailed || r.header.Get("ETag") != etag {
				t.Fatalf("got %v (ETag %s), want 412 %s with ETag %s", r, r.header.Get("ETag"), server.CodePreconditionFailed, etag)
			}
		})
	}
	if r := get(t, base, "/admin/rules", fx.admin); r.header.Get("ETag") != etag {
		t.Fatalf("the rules changed after a failed precondition: ETag %s, was %s", r.header.Get("ETag"), etag)
	}
	// Two admins read the same ETag: the first PUT wins, the second is
	// refused.
	if r := putRules(t, base, fx.admin, edited, etag); r.status != 200 {
		t.Fatalf("first PUT: %v", r)
	}
	if r := putRules(t, base, fx.admin, doc, etag); r.status != 412 || r.header.Get("ETag") != `"`+digest(edited)+`"` {
		t.Fatalf("second PUT with the same ETag: %v, want 412", r)
	}
}

func TestRulesPutChangesRouteDecision(t *testing.T) {
	base := start(t, server.Config{})
	doc, etag := rulesInForce(t, base)
	route := func() *response { return post(t, base, "/wcp/route", fx.acme, input("cap.doc.summarize", "rules-put")) }
	if r := route(); r.status != 200 || r.body["denied"] != false {
		t.Fatalf("before the PUT: %v", r)
	}
	r := putRules(t, base, fx.admin, editRules(t, doc, withoutRule("rr_doc_summarize_dev")), etag)
	if r.status != 200 {
		t.Fatalf("PUT: %v", r)
	}
	r = route()
	dr, _ := r.body["deny_reason_if_denied"].(map[string]any)
	if r.status != 200 || r.body["denied"] != true || dr["code"] != string(wcp.DenyNoMatchingRule) {
		t.Fatalf("after removing the rule: %v, want denied %s", r, wcp.DenyNoMatchingRule)
	}
	if r := putRules(t, base, fx.admin, doc, ""); r.status != 200 {
		t.Fatalf("PUT back: %v", r)
	}
	if r := route(); r.status != 200 || r.body["denied"] != false {
		t.Fatalf("after restoring the rule: %v", r)
	}
}

// withSection appends a custom section to a module.
func withSection(module []byte, name string, payload []byte) []byte {
	uleb := func(b []byte, v int) []byte {
		for {
			c := byte(v & 0x7f)
			if v >>= 7; v == 0 {
				return append(b, c)
			}
			b = append(b, c|0x80)
		}
	}
	body := append(uleb(nil, len(name)), name...)
	body = append(body, payload...)
	out := append(bytes.Clone(module), 0)
	out = uleb(out, len(body))
	return append(out, body...)
}

// TestEnrollRecordMismatch: a record part that differs from the module's
// embedded wcp.record is refused with 422 RECORD_MISMATCH, naming the field.
func TestEnrollRecordMismatch(t *testing.T) {
	base := start(t, server.Config{})
	embedded := `{"worker_id": "org.test.mismatch", "worker_species_id": "wrk.test.mismatch", "capabilities": ["cap.test.mismatch"], "risk_tier": "low"}`
	module := withSection(watSource(t, `(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))`), "wcp.record", []byte(embedded))
	supplied := []byte(`{"worker_id": "org.test.mismatch", "worker_species_id": "wrk.test.mismatch", "capabilities": ["cap.test.mismatch"], "risk_tier": "high"}`)
	ctype, body := multipartBody(t, map[string][]byte{"record": supplied, "module": module})
	r := call(t, base, req{method: "POST", path: "/enroll", token: fx.admin, ctype: ctype, body: body})
	if r.status != 422 || r.errCode() != "RECORD_MISMATCH" || r.errField() != "risk_tier" {
		t.Fatalf("got %v, want 422 RECORD_MISMATCH on risk_tier", r)
	}
	if r := get(t, base, "/wcp/workers/org.test.mismatch", fx.admin); r.status != 404 {
		t.Fatalf("the worker was enrolled: %v", r)
	}
}
