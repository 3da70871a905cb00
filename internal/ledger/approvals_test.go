package ledger

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/approval"
)

// Issue 21: the change chain held approval_requested -> approval_used with
// no approval_approved (an approvals row flipped with SQL) and verify
// passed.
func TestVerifyReportsApprovalUsedWithoutApproved(t *testing.T) {
	ctx := context.Background()
	const id = "apr_0123456789abcdef0123456789abcdef"
	digest := "sha256:" + strings.Repeat("ab", 32)
	body := func(state, decidedBy string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"approval_id": id, "state": state, "tenant_id": "org.acme", "request_hash": digest,
			"decided_by": decidedBy, "used_by_decision_id": "0190a5d2-0000-7000-8000-000000000000"})
		return b
	}
	for _, tc := range []struct {
		name  string
		kinds []string
		actor string
	}{
		{"used without approved", []string{"approval_requested", "approval_used"}, "token:tok_forged"},
		{"used twice", []string{"approval_requested", "approval_approved", "approval_used", "approval_used"}, "token:tok_a"},
		{"approved by the requesting tenant", []string{"approval_requested", "approval_approved"}, "tenant:org.acme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			for _, k := range tc.kinds {
				actor := "tenant:org.acme"
				if k == "approval_approved" {
					actor = tc.actor
				}
				state := strings.TrimPrefix(k, "approval_")
				if state == "requested" {
					state = "pending"
				}
				if err := s.RecordChange(ctx, &Change{Kind: k, Subject: id, Digest: digest, Body: body(state, tc.actor), Actor: actor}); err != nil {
					t.Fatal(err)
				}
			}
			rep, err := s.Verify(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatalf("verify passed a change chain with %v", tc.kinds)
			}
			t.Log(rep.Breaks)
		})
	}
}

// A ledger of schema step 5 whose change chain holds approvals (their rows
// were in approvals.db) gets their rows at step 6, from the chain.
func TestApprovalsRowsFromAnEarlierChain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A Hall of schema step 5: this package's migrations without step 6
	// (setting user_version back in a newer ledger is refused: its change
	// chain records the version).
	all := migrations
	migrations, schemaVersion = all[:5], 5
	t.Cleanup(func() { migrations, schemaVersion = all, len(all) })
	s := openT(t, dir)
	const id = "apr_0123456789abcdef0123456789abcdef"
	digest := "sha256:" + strings.Repeat("ab", 32)
	for _, k := range []string{"approval_requested", "approval_approved"} {
		state := map[string]string{"approval_requested": "pending", "approval_approved": "approved"}[k]
		body, _ := json.Marshal(map[string]any{"approval_id": id, "state": state, "tenant_id": "org.acme", "request_hash": digest,
			"decided_by": "token:tok_a", "created_at": "2026-01-02T03:04:05.123456Z", "expires_at": "2999-01-02T03:04:05Z"})
		actor := map[string]string{"approval_requested": "tenant:org.acme", "approval_approved": "token:tok_a"}[k]
		if err := s.RecordChange(ctx, &Change{Kind: k, Subject: id, Digest: digest, Body: body, Actor: actor}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	migrations, schemaVersion = all, len(all)
	s = openT(t, dir)
	list, err := s.Approvals(ctx, approval.Filter{})
	if err != nil || len(list) != 1 || list[0].State != "approved" || list[0].ID != id {
		t.Fatalf("approvals after the upgrade: %+v %v", list, err)
	}
	if n, _, err := s.PendingApprovals(ctx); err != nil || n != 0 {
		t.Fatalf("pending %d %v", n, err)
	}
	rep, err := s.Verify(ctx, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}
