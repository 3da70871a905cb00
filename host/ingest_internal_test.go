package host

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzCheckExternal: any submitted decision is accepted or refused naming
// a field, never a panic; what is accepted has a decision_id within its
// bound, valid UTF-8 and free of control characters, and names no other
// tenant.
func FuzzCheckExternal(f *testing.F) {
	f.Add("org.test", `{"decision_id":"d-1","capability_id":"cap.doc.summarize","tenant_id":"org.test","denied":true,"deny_reason":"blast:78"}`)
	f.Add("", `{"decision_id":null,"denied":0}`)
	f.Add("org.a", `{"decision_id":"a\u0000b","tenant_id":"org.b"}`)
	f.Add("org.a", `[1]`)
	f.Add("org.a", `{"decision_id":7}`)
	f.Fuzz(func(t *testing.T, tenant, body string) {
		doc, id, err := checkExternal(IngestRequest{TenantID: tenant, Decision: json.RawMessage(body)})
		if err != nil {
			ie, ok := err.(*IngestError)
			if !ok || ie.Field == "" || ie.Message == "" {
				t.Fatalf("refusal without a field: %v", err)
			}
			return
		}
		if id == "" || len(id) > MaxExternalID || !utf8.ValidString(id) || strings.ContainsAny(id, "\x00\n\r") {
			t.Fatalf("accepted decision_id %q", id)
		}
		if tn := doc.str("tenant_id"); tn != "" && tn != tenant {
			t.Fatalf("accepted tenant_id %q for %q", tn, tenant)
		}
		_ = doc.truthy("denied")
		_ = doc.denyCode()
	})
}
