package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wcphall/hall/internal/approval"
)

// usedApproval is an approval of s requested, approved and used, with its
// id.
func usedApproval(t testing.TB, s *SQLite, n int) string {
	t.Helper()
	ctx := context.Background()
	id := fmt.Sprintf("apr_%032x", n)
	now := time.Now().UTC()
	a := &approval.Approval{ID: id, TenantID: "org.acme", CapabilityID: "cap.test.x", CorrelationID: "c-" + id,
		RequestHash: "sha256:" + strings.Repeat("ab", 32), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateApproval(ctx, a, "tenant:org.acme"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []ApprovalUpdate{
		{ID: id, From: approval.Pending, To: approval.Approved, Kind: ChangeApprovalApproved, Actor: "token:tok_a"},
		{ID: id, From: approval.Approved, To: approval.Used, Kind: ChangeApprovalUsed, Actor: "tenant:org.acme"},
	} {
		if _, err := s.UpdateApproval(ctx, u); err != nil {
			t.Fatalf("%s: %v", u.Kind, err)
		}
	}
	return id
}

// Issue 21 (red team): the Hall found an approval's newest change by the
// subject and kind columns of the changes table. With the subject (or the
// kind) column of the approval_used change edited and the approvals row
// set back to approved, the approval_approved change was taken for the
// newest, and the used approval ran a second time. The Hall now refuses
// an approval any later change of the signed chain names, whatever its
// columns say, and an approval whose newest change the chain's links and
// head signature do not hold.
func TestApprovalUsedChangeHiddenByItsColumns(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		edit string
	}{
		{"subject edited", `UPDATE changes SET subject = 'apr_ffffffffffffffffffffffffffffffff' WHERE kind = 'approval_used'`},
		{"kind edited", `UPDATE changes SET kind = 'enroll' WHERE kind = 'approval_used'`},
		{"used change deleted", `DELETE FROM changes WHERE kind = 'approval_used'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			id := usedApproval(t, s, 1)
			// A later, honest change: the edited one is not the head.
			usedApproval(t, s, 2)
			db, err := sql.Open("sqlite", s.Path()+"?_busy_timeout=5000")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			for _, q := range []string{"DROP TRIGGER IF EXISTS changes_no_update", "DROP TRIGGER IF EXISTS changes_no_delete", tc.edit,
				`UPDATE approvals SET state = 'approved' WHERE id = '` + id + `'`} {
				if _, err := db.Exec(q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			_, err = s.UpdateApproval(ctx, ApprovalUpdate{ID: id, From: approval.Approved, To: approval.Used, Kind: ChangeApprovalUsed, Actor: "tenant:org.acme"})
			if !errors.Is(err, ErrApprovalTampered) {
				t.Fatalf("using the used approval again: %v, want %v", err, ErrApprovalTampered)
			}
			if a, err := s.Approval(ctx, id); !errors.Is(err, ErrApprovalTampered) {
				t.Fatalf("Approval: %+v, %v; want %v", a, err, ErrApprovalTampered)
			}
		})
	}
}

// The cost of reading an approval as the Hall acts on it (signedApproval,
// which UpdateApproval and RecordDecisionUsing run in the committer's
// transaction) with n changes recorded after the approval's newest one:
// each is hashed and decoded, the head's signature verified once.
func BenchmarkUseApprovalAfterChanges(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{0, 100, 1000} {
		b.Run(fmt.Sprintf("after=%d", n), func(b *testing.B) {
			s := openT(b, b.TempDir())
			id := fmt.Sprintf("apr_%032x", 0)
			now := time.Now().UTC()
			a := &approval.Approval{ID: id, TenantID: "org.acme", CapabilityID: "cap.test.x", CorrelationID: "c-" + id,
				RequestHash: "sha256:" + strings.Repeat("ab", 32), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := s.CreateApproval(ctx, a, "tenant:org.acme"); err != nil {
				b.Fatal(err)
			}
			for i := 1; i <= n; i++ {
				o := *a
				o.ID = fmt.Sprintf("apr_%032x", i)
				if err := s.CreateApproval(ctx, &o, "tenant:org.acme"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := s.signedApproval(ctx, s.r, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
