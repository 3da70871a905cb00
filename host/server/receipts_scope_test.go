package server_test

import (
	"context"
	"testing"

	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/auth"
)

// TestReceiptsScope: as docs/HTTP.md says, receipts are read by admin and
// tenant tokens (a tenant its own); an approver token, which acts as no
// tenant, is refused 403 FORBIDDEN on the list and on one receipt.
func TestReceiptsScope(t *testing.T) {
	base := start(t, server.Config{})
	approver, _, err := fx.tokens.Create(context.Background(), auth.ApproverScope(""), "receipts-scope")
	if err != nil {
		t.Fatal(err)
	}
	run := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "scope-1"), article))
	id, _ := run.body["receipt_id"].(string)
	if id == "" {
		t.Fatalf("no receipt: %v", run)
	}
	for _, path := range []string{"/wcp/receipts", "/wcp/receipts/" + id} {
		if r := get(t, base, path, approver); r.status != 403 || r.errCode() != server.CodeForbidden {
			t.Errorf("approver %s: %v, want 403 FORBIDDEN", path, r)
		}
		if r := get(t, base, path, fx.admin); r.status != 200 {
			t.Errorf("admin %s: %v", path, r)
		}
		if r := get(t, base, path, fx.acme); r.status != 200 {
			t.Errorf("tenant %s: %v", path, r)
		}
	}
	if r := get(t, base, "/wcp/receipts/"+id, fx.other); r.status != 404 {
		t.Errorf("another tenant reads the receipt: %v", r)
	}
}
