package host_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/auth"
	"github.com/wcphall/hall/internal/ledger"
)

// TestDecideApprovalActsOnTokenEvidence: DecideApproval lets a token
// answer only when the evidence ledger records its issuance with a scope
// that may answer the tenant and no revocation — whatever the token
// database says (issue 21: an approver token minted in auth.db alone
// approved a held request). A token issued with IssueToken approves and
// the approved request runs.
func TestDecideApprovalActsOnTokenEvidence(t *testing.T) {
	ctx := context.Background()
	m := integModules(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.json"), []byte(policyRules), 0o644)
	os.WriteFile(filepath.Join(dir, "policy.json"), []byte(strings.ReplaceAll(prodWrites, "%TTL%", "1h")), 0o644)
	stores, err := host.OpenLocalStores(filepath.Join(dir, ".hall"), host.LocalStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer stores.Close()
	h, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1, Stores: stores})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: m.pa, Record: []byte(pickRecord)}); err != nil {
		t.Fatal(err)
	}
	id, in := pend(t, h)
	issue := func(scope auth.Scope) host.Token {
		t.Helper()
		_, tok, err := host.IssueToken(ctx, stores.Tokens, stores.Evidence, scope, "test", "local:test")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// The token database says "approver" for each: only the evidence
	// tells them apart.
	_, minted, err := stores.Tokens.Create(ctx, auth.ApproverScope(""), "minted")
	if err != nil {
		t.Fatal(err)
	}
	revoked := issue(auth.ApproverScope(""))
	if _, err := host.RevokeToken(ctx, stores.Tokens, stores.Evidence, revoked.ID, "local:test"); err != nil {
		t.Fatal(err)
	}
	// Recorded before issuances carried a binding: refused until re-issued.
	_, unbound, err := stores.Tokens.Create(ctx, auth.ApproverScope(""), "unbound")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ledger.TokenChange(ledger.TokenEvent{TokenID: unbound.ID, Event: ledger.TokenIssued, Scope: "approver"}, "local:test")
	if err == nil {
		err = stores.Evidence.RecordChange(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id, want string
	}{
		{"minted in the token database", minted.ID, "no signed issuance"},
		{"issued without a binding", unbound.ID, "binds no token database row"},
		{"revoked", revoked.ID, "was revoked"},
		{"a tenant token", issue(auth.TenantScope("org.other")).ID, "may not answer"},
		{"an approver of the requesting tenant", issue(auth.ApproverScope("org.acme")).ID, "may not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.DecideApproval(ctx, id, true, host.Approver{Actor: "token:" + tc.id}, "")
			var ae *host.ApprovalError
			if !errors.As(err, &ae) || ae.Code != wcp.CodeApprovalForbidden || !strings.Contains(ae.Msg, tc.want) {
				t.Fatalf("DecideApproval: %v, want APPROVAL_FORBIDDEN %q", err, tc.want)
			}
		})
	}
	ok := issue(auth.ApproverScope("org.other"))
	if _, err := h.DecideApproval(ctx, id, true, host.Approver{Actor: "token:" + ok.ID, Tenant: "org.other"}, ""); err != nil {
		t.Fatal(err)
	}
	res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
	if err != nil || !res.Ran {
		t.Fatalf("the approved request: ran %v, %v %+v", res.Ran, err, res.Decision.DenyReason)
	}
	// Bindings are keyless now (every node checks them, whatever key it
	// signs with); one recorded by an earlier Hall, an HMAC under the
	// signing key, is still honoured where that key signs.
	te := stores.Evidence.(interface {
		TokenStanding(ctx context.Context, id string) (ledger.TokenStanding, error)
		LegacyTokenBinding(id string, storedHash []byte) string
	})
	if st, err := te.TokenStanding(ctx, ok.ID); err != nil || !strings.HasPrefix(st.Issued.Binding, "sha256:") {
		t.Fatalf("the binding of a token issued now: %+v %v", st.Issued, err)
	}
	_, legacy, err := stores.Tokens.Create(ctx, auth.ApproverScope("org.other"), "legacy")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := stores.Tokens.(interface {
		StoredHash(ctx context.Context, id string) ([]byte, error)
	}).StoredHash(ctx, legacy.ID)
	if err != nil {
		t.Fatal(err)
	}
	c, err = ledger.TokenChange(ledger.TokenEvent{TokenID: legacy.ID, Event: ledger.TokenIssued, Scope: "approver:org.other",
		Binding: te.LegacyTokenBinding(legacy.ID, stored)}, "local:test")
	if err == nil {
		err = stores.Evidence.RecordChange(ctx, c)
	}
	if err != nil {
		t.Fatal(err)
	}
	id2, _ := pend(t, h)
	if _, err := h.DecideApproval(ctx, id2, true, host.Approver{Actor: "token:" + legacy.ID, Tenant: "org.other"}, ""); err != nil {
		t.Fatalf("a token whose issuance carries an earlier Hall's binding: %v", err)
	}
	rec, err := host.RecordedTokens(ctx, stores.Evidence)
	if err != nil || !rec[ok.ID] || rec[minted.ID] {
		t.Fatalf("RecordedTokens: %v %v", rec, err)
	}
}
