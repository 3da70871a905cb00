package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestApprovalPayloadShown: issue 25 — the console and the API showed the
// payload's hash, never the payload: an approver approved blind. The
// approval keeps the payload's first bytes (capped), as text or hex, shown
// escaped — never markup — and withholds a secret-bearing one; a denial
// needs a comment.
func TestApprovalPayloadShown(t *testing.T) {
	h, base := approvalsHallConfig(t, `{"approval_payload": {"max_bytes": 64}}`)
	approver := approverToken(t, h, "")
	hold := func(correlation string, payload any, extra ...any) string {
		t.Helper()
		r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.test.noop", correlation, extra...), payload))
		if r.status != 202 {
			t.Fatalf("held run: %v", r)
		}
		return r.body["approval_id"].(string)
	}
	html := hold("hold-pl-html", `<script>alert("approve me")</script><img src=x onerror=alert(1)> and more`)
	long := hold("hold-pl-long", strings.Repeat("é", 40)) // 80 bytes: cut at 64, on a rune boundary
	secret := hold("hold-pl-secret", "password=hunter2", "data_label", "RESTRICTED")

	payload := func(id string) map[string]any {
		t.Helper()
		r := get(t, base, "/wcp/approvals/"+id, approver)
		p, _ := r.body["payload"].(map[string]any)
		if r.status != 200 || p == nil {
			t.Fatalf("GET approval %s: %v", id, r)
		}
		return p
	}
	if p := payload(html); p["encoding"] != "text" || p["shown"] != `<script>alert("approve me")</script><img src=x onerror=alert(1)>`[:64] || p["truncated"] != true {
		t.Errorf("markup payload over the API: %v", p)
	}
	if p := payload(long); p["encoding"] != "text" || p["shown"] != strings.Repeat("é", 32) || p["size"] != 80.0 || p["truncated"] != true {
		t.Errorf("long payload: %v", p)
	}
	if p := payload(secret); p["shown"] != nil || !strings.Contains(p["withheld"].(string), "RESTRICTED") || p["size"] != 16.0 {
		t.Errorf("secret-bearing payload: %v", p)
	}

	c := consoleClient(t, base, nil)
	_, csrf := signIn(t, c, base, approver)
	_, page := fetch(t, c, "GET", base+"/console/approvals", nil)
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<img src=x") || strings.Contains(page, "hunter2") {
		t.Fatalf("the page carries the payload as markup, or a secret-bearing one")
	}
	for _, want := range []string{`id="payload-` + html + `">&lt;script&gt;alert(&#34;approve me&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)`,
		`id="payload-withheld-` + secret + `">Not shown: secret-bearing`, strings.Repeat("é", 32) + "</pre>"} {
		if !strings.Contains(page, want) {
			t.Errorf("the console page lacks %q", want)
		}
	}

	// A denial needs a comment, over the API and in the console.
	if r := post(t, base, "/wcp/approvals/"+html+"/deny", approver, map[string]any{}); r.status != 422 || r.errCode() != "INVALID_REQUEST" || !strings.Contains(r.errMessage(), "comment") {
		t.Fatalf("a denial without a comment: %v", r)
	}
	res, _ := fetch(t, c, "POST", base+"/console/approvals/"+html+"/deny", url.Values{"csrf": {csrf}, "comment": {"  "}})
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "error=comment_required") {
		t.Fatalf("a console denial without a comment: %d %s", res.StatusCode, loc)
	}
	_, page = fetch(t, c, "GET", base+res.Header.Get("Location"), nil)
	if !strings.Contains(page, "a denial needs a comment") {
		t.Fatalf("no banner for the missing comment")
	}
	if a, err := h.Approval(t.Context(), html); err != nil || a.State != "pending" {
		t.Fatalf("after denials without a comment: %+v %v", a, err)
	}
	if r := post(t, base, "/wcp/approvals/"+html+"/deny", approver, map[string]any{"comment": "markup in a payload"}); r.status != 200 {
		t.Fatalf("a denial with a comment: %v", r)
	}
}
