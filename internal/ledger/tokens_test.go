package ledger

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyReportsApprovalByUnrecordedToken: an approval answered by a
// token whose issuance no earlier change records (minted in auth.db), by
// one revoked before, or by one whose recorded scope may not answer the
// tenant, is reported by Verify and by the Node verifier over an exported
// bundle; an approval by a recorded approver, and approvals in a chain
// that records no token at all (answered before the Hall recorded
// tokens), verify.
func TestVerifyReportsApprovalByUnrecordedToken(t *testing.T) {
	ctx := context.Background()
	const id = "apr_0123456789abcdef0123456789abcdef"
	digest := "sha256:" + strings.Repeat("ab", 32)
	approvalBody := func(state, decidedBy string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"approval_id": id, "state": state, "tenant_id": "org.acme", "request_hash": digest, "decided_by": decidedBy})
		return b
	}
	type tok struct{ id, event, scope string }
	for _, tc := range []struct {
		name   string
		tokens []tok // recorded before the answer
		actor  string
		want   string // "" verifies
	}{
		{"recorded approver", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "approver"}}, "token:tok_aaaaaaaaaaaa", ""},
		{"recorded admin", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "admin"}}, "token:tok_aaaaaaaaaaaa", ""},
		{"approver of another tenant", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "approver:org.other"}}, "token:tok_aaaaaaaaaaaa", ""},
		{"no token recorded at all (before the upgrade)", nil, "token:tok_bbbbbbbbbbbb", ""},
		{"minted: no issuance recorded", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "approver"}}, "token:tok_bbbbbbbbbbbb", "whose issuance no earlier change records"},
		{"revoked before", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "approver"}, {"tok_aaaaaaaaaaaa", TokenRevoked, "approver"}}, "token:tok_aaaaaaaaaaaa", "revoked in change"},
		{"revoked, never issued", []tok{{"tok_aaaaaaaaaaaa", TokenRevoked, "approver"}}, "token:tok_aaaaaaaaaaaa", "whose issuance no earlier change records"},
		{"a tenant token", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "tenant:org.acme"}}, "token:tok_aaaaaaaaaaaa", "may not answer"},
		{"an approver of the requesting tenant", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "approver:org.acme"}}, "token:tok_aaaaaaaaaaaa", "may not answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			record := func(c *Change) {
				t.Helper()
				if err := s.RecordChange(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			record(&Change{Kind: ChangeApprovalRequested, Subject: id, Digest: digest, Body: approvalBody("pending", ""), Actor: "tenant:org.acme"})
			for _, tk := range tc.tokens {
				c, err := TokenChange(TokenEvent{TokenID: tk.id, Event: tk.event, Scope: tk.scope, Label: "l"}, "local:alice")
				if err != nil {
					t.Fatal(err)
				}
				record(c)
			}
			record(&Change{Kind: ChangeApprovalApproved, Subject: id, Digest: digest, Body: approvalBody("approved", tc.actor), Actor: tc.actor})
			rep, err := s.Verify(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The approvals rows are not written by RecordChange: only
			// the chain's breaks matter here.
			var reasons []string
			for _, b := range rep.Breaks {
				if !strings.Contains(b.Reason, "approvals row") {
					reasons = append(reasons, b.Reason)
				}
			}
			got := strings.Join(reasons, "; ")
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("verify: %q, want %q", got, tc.want)
			}
			script := nodeScript(t)
			if script == "" {
				return
			}
			bundle := filepath.Join(t.TempDir(), "bundle")
			if _, err := s.ExportBundle(ctx, bundle); err != nil {
				t.Fatal(err)
			}
			out, code := runNode(t, script, nil, bundle)
			if tc.want == "" && code != 0 || tc.want != "" && (code != 1 || !strings.Contains(out, tc.want)) {
				t.Fatalf("node verifier: exit %d, want %q:\n%s", code, tc.want, out)
			}
		})
	}
}

// TestTokenStanding: what TokenStanding reads of the signed changes, and
// that a change whose signed body names another token is refused.
func TestTokenStanding(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	st, err := s.TokenStanding(ctx, "tok_aaaaaaaaaaaa")
	if err != nil || st.Issued != nil || st.Revoked != nil {
		t.Fatalf("nothing recorded: %+v %v", st, err)
	}
	for _, ev := range []string{TokenIssued, TokenRevoked} {
		c, err := TokenChange(TokenEvent{TokenID: "tok_aaaaaaaaaaaa", Event: ev, Scope: "approver:org.x"}, "local:alice")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.RecordChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	st, err = s.TokenStanding(ctx, "tok_aaaaaaaaaaaa")
	if err != nil || st.Issued == nil || st.Issued.Scope != "approver:org.x" || st.Revoked == nil {
		t.Fatalf("issued and revoked: %+v %v", st, err)
	}
	// The subject column moved to another token: its body still names
	// the first one.
	if _, err := s.w.Exec(`DROP TRIGGER changes_no_update; UPDATE changes SET subject = 'tok_bbbbbbbbbbbb' WHERE kind = 'token'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TokenStanding(ctx, "tok_bbbbbbbbbbbb"); err == nil {
		t.Fatal("a token change moved to another token by its subject column was read as that token's")
	}
	if _, err := TokenChange(TokenEvent{TokenID: "bad", Event: TokenIssued}, "x"); err == nil {
		t.Fatal("TokenChange accepted a token id without tok_")
	}
}

// nodeScript is the Node verifier's path, or "" when Node or its packages
// are missing (and HALL_REQUIRE_NODE_VERIFIER is not set).
func nodeScript(t *testing.T) string {
	t.Helper()
	dir, _ := filepath.Abs("../../testdata/verifier-node")
	_, nodeErr := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(dir, "node_modules", "canonicalize"))
	if nodeErr != nil || modErr != nil {
		if os.Getenv("HALL_REQUIRE_NODE_VERIFIER") != "" {
			t.Fatalf("the Node verifier needs node and `npm ci` in %s", dir)
		}
		return ""
	}
	return filepath.Join(dir, "verify.mjs")
}
