package ledger

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyReportsAdminChangeByUnrecordedToken: a rules change recorded
// with actor token:<id> passed verify whatever the token database held
// (issue 21: an admin token written into auth.db alone replaced the
// rules). Once the chain holds a token change, such a change must follow
// an admin issuance of that token and no revocation of it.
func TestVerifyReportsAdminChangeByUnrecordedToken(t *testing.T) {
	ctx := context.Background()
	digest := "sha256:" + strings.Repeat("ab", 32)
	type tok struct{ id, event, scope string }
	for _, tc := range []struct {
		name   string
		tokens []tok // recorded before the rules change
		actor  string
		want   string // "" verifies
	}{
		{"recorded admin", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "admin"}}, "token:tok_aaaaaaaaaaaa", ""},
		{"not a token", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "approver"}}, "local:alice", ""},
		{"no token recorded at all (before the upgrade)", nil, "token:tok_bbbbbbbbbbbb", ""},
		{"minted: no issuance recorded", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "approver"}}, "token:tok_bbbbbbbbbbbb", "whose admin issuance no earlier change records"},
		{"revoked before", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "admin"}, {"tok_aaaaaaaaaaaa", TokenRevoked, "admin"}}, "token:tok_aaaaaaaaaaaa", "revoked in change"},
		{"revoked, never issued", []tok{{"tok_aaaaaaaaaaaa", TokenRevoked, "admin"}}, "token:tok_aaaaaaaaaaaa", "whose admin issuance no earlier change records"},
		{"an approver token", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "approver"}}, "token:tok_aaaaaaaaaaaa", "not admin"},
		{"a tenant token", []tok{{"tok_aaaaaaaaaaaa", TokenIssued, "tenant:org.acme"}}, "token:tok_aaaaaaaaaaaa", "not admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			for _, tk := range tc.tokens {
				c, err := TokenChange(TokenEvent{TokenID: tk.id, Event: tk.event, Scope: tk.scope, Label: "l"}, "local:alice")
				if err != nil {
					t.Fatal(err)
				}
				if err := s.RecordChange(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.RecordChange(ctx, &Change{Kind: ChangeRules, Subject: "rules.json", Digest: digest, Body: []byte(`{"rules":[]}`), Actor: tc.actor}); err != nil {
				t.Fatal(err)
			}
			rep, err := s.Verify(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			var reasons []string
			for _, b := range rep.Breaks {
				reasons = append(reasons, b.Reason)
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
