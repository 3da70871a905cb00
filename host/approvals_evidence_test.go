package host_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/approval"
)

// forgeApproved flips every approvals row of the state directory to
// approved with SQL, as an attacker with the sqlite3 CLI would, in
// whichever database holds them; it reports how many rows it changed.
func forgeApproved(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, name := range []string{"approvals.db", "hall.db"} {
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_busy_timeout=5000")
		if err != nil {
			t.Fatal(err)
		}
		var tables int
		if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'approvals'`).Scan(&tables); err != nil {
			t.Fatal(err)
		}
		if tables == 1 {
			var docs int
			if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info('approvals') WHERE name = 'doc'`).Scan(&docs); err != nil {
				t.Fatal(err)
			}
			q := `UPDATE approvals SET state = 'approved'`
			if docs == 1 {
				q += `, doc = json_set(doc, '$.state', 'approved', '$.decided_by', 'token:tok_forged', '$.decided_at', '2026-01-01T00:00:00Z')`
			}
			res, err := db.Exec(q)
			if err != nil {
				t.Fatal(err)
			}
			k, _ := res.RowsAffected()
			n += k
		}
		db.Close()
	}
	return n
}

// Issue 21: a row of the approvals database flipped to approved with SQL
// let a held request run, and the Hall signed an approval_used naming an
// approver that never acted.
func TestForgedApprovalRowDoesNotRun(t *testing.T) {
	ctx := context.Background()
	h := policyHall(t, "1h")
	id, in := pend(t, h)
	if n := forgeApproved(t, host.HomeOf(h)); n != 1 {
		t.Fatalf("forged %d approvals rows, want 1", n)
	}
	res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ran || !res.Decision.Denied {
		t.Fatalf("a forged approval ran the request: %+v", res.Decision.Policy)
	}
	store, _ := h.Evidence()
	if cs, _ := store.Changes(ctx, host.ChangeApprovalUsed); len(cs) != 0 {
		t.Fatalf("the Hall signed %d approval_used entries for a forged approval", len(cs))
	}
	// And verify reports the altered row.
	rep, err := store.Verify(ctx, nil)
	if err != nil || rep.OK() || !strings.Contains(rep.Breaks[0].Reason, "approvals row "+id) {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// Issue 21: a run refused HALL_SATURATED after planning burnt its one-shot
// approval and left an approval_used naming a decision that is in no table.
func TestSaturatedRunKeepsApproval(t *testing.T) {
	ctx := context.Background()
	m := integModules(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.json"), []byte(policyRules), 0o644)
	os.WriteFile(filepath.Join(dir, "policy.json"), []byte(strings.ReplaceAll(prodWrites, "%TTL%", "1h")), 0o644)
	h, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1, MaxConcurrent: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: m.pa, Record: []byte(pickRecord)}); err != nil {
		t.Fatal(err)
	}
	issueApprover(t, h)
	id, in := pend(t, h)
	if _, err := h.DecideApproval(ctx, id, true, approver, ""); err != nil {
		t.Fatal(err)
	}
	release, err := host.HoldDispatchSlot(h, "org.other")
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id, Timeout: 1})
	var sat *host.SaturatedError
	if !errors.As(err, &sat) || res.Ran {
		t.Fatalf("want HALL_SATURATED, got %v ran=%v", err, res != nil && res.Ran)
	}
	release()
	a, err := h.Approval(ctx, id)
	if err != nil || a.State != approval.Approved {
		t.Fatalf("after a saturated run the approval is %v (%v), want approved", a.State, err)
	}
	store, _ := h.Evidence()
	if cs, _ := store.Changes(ctx, host.ChangeApprovalUsed); len(cs) != 0 {
		t.Fatalf("a saturated run left %d approval_used entries", len(cs))
	}
	// The approval still serves its one run.
	res, err = h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
	if err != nil || !res.Ran || string(res.Output) != "from p-a" {
		t.Fatalf("%v ran=%v %+v", err, res.Ran, res.Decision.DenyReason)
	}
	cs, _ := store.Changes(ctx, host.ChangeApprovalUsed)
	if len(cs) != 1 || !strings.Contains(string(cs[0].Body), res.Decision.DecisionID.String()) {
		t.Fatalf("approval_used entries %d, want 1 naming %s", len(cs), res.Decision.DecisionID)
	}
	if rep, err := store.Verify(ctx, nil); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// Issue 21: a 4 MiB approval_id holding ESC/BEL was echoed in a 12.6 MB
// denial and grew the ledger by 11 MB per request.
func TestApprovalIDIsBounded(t *testing.T) {
	ctx := context.Background()
	h := policyHall(t, "1h")
	in := pickInput(t, "prod", "INTERNAL")
	huge := "apr_" + strings.Repeat("\x1b\x07", 2<<20)
	for _, bad := range []string{huge, "apr_0123", "apr_0123456789abcdef0123456789ABCDEF", "tok_0123456789abcdef0123456789abcdef"} {
		res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: bad})
		if err == nil {
			t.Fatalf("approval_id %.20q: no error (decision %s)", bad, res.Decision.Code())
		}
		if !strings.Contains(err.Error(), "approval_id") || len(err.Error()) > 300 {
			t.Fatalf("approval_id %.20q: error %.300q does not name the field briefly", bad, err)
		}
		var fe *host.RequestError
		if !errors.As(err, &fe) || fe.Field != "approval_id" || fe.Code() != wcp.CodeInvalidRequest {
			t.Fatalf("approval_id %.20q: %T %v", bad, err, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(host.HomeOf(h), "hall.db")); err == nil && fi.Size() > 4<<20 {
		t.Fatalf("hall.db grew to %d bytes", fi.Size())
	}
}

// Issue 21: an approval binds the snapshot it was granted under; a
// change of the policies in between voids it.
func TestApprovalVoidedBySnapshotChange(t *testing.T) {
	ctx := context.Background()
	h := policyHall(t, "1h")
	id, in := pend(t, h)
	if _, err := h.DecideApproval(ctx, id, true, approver, ""); err != nil {
		t.Fatal(err)
	}
	// Another policy, irrelevant to this request: a new policy set.
	more := strings.Replace(strings.ReplaceAll(prodWrites, "%TTL%", "1h"), `"policies": [`,
		`"policies": [{"id": "x", "when": "input.env == 'qa'", "effect": "DENY", "reason": "no qa"},`, 1)
	if err := os.WriteFile(filepath.Join(host.DirOf(h), "policy.json"), []byte(more), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
	if err != nil {
		t.Fatal(err)
	}
	if res.Ran || !strings.Contains(res.Decision.DenyReason.Message, string(wcp.CodeApprovalStale)) {
		t.Fatalf("an approval granted under another snapshot: ran=%v %+v", res.Ran, res.Decision.DenyReason)
	}
}

// Issue 21: the approvals store was opened (with DDL) on every call; it
// is opened once and kept for the Hall's life.
func TestApprovalsStoreKeptOpen(t *testing.T) {
	ctx := context.Background()
	h := policyHall(t, "1h")
	id, _ := pend(t, h)
	// Files swapped under a running Hall are not what it acts on.
	os.Remove(filepath.Join(host.HomeOf(h), "approvals.db"))
	os.Remove(filepath.Join(host.HomeOf(h), "approvals.db-wal"))
	os.Remove(filepath.Join(host.HomeOf(h), "approvals.db-shm"))
	if _, err := h.Approval(ctx, id); err != nil {
		t.Fatalf("the pending approval is gone: %v", err)
	}
	if n, _, err := h.PendingApprovals(ctx); err != nil || n != 1 {
		t.Fatalf("pending %d %v", n, err)
	}
}

// Runs racing with one approval: exactly one runs; the others are denied
// and recorded as such, and the chain holds one approval_used, naming the
// decision that ran.
func TestApprovalUsedOnceByRacingRuns(t *testing.T) {
	ctx := context.Background()
	h := policyHall(t, "1h")
	id, in := pend(t, h)
	if _, err := h.DecideApproval(ctx, id, true, approver, ""); err != nil {
		t.Fatal(err)
	}
	const n = 6
	var wg sync.WaitGroup
	results := make([]*host.RunResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
		})
	}
	wg.Wait()
	ran := ""
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("run %d: %v", i, errs[i])
		}
		if res.Ran {
			if ran != "" {
				t.Fatalf("two runs used approval %s", id)
			}
			ran = res.Decision.DecisionID.String()
		} else if res.Decision.Code() != wcp.DenyRequiresHumanApproval {
			t.Fatalf("run %d: %s", i, res.Decision.Code())
		}
	}
	if ran == "" {
		t.Fatal("no run used the approval")
	}
	store, _ := h.Evidence()
	cs, _ := store.Changes(ctx, host.ChangeApprovalUsed)
	if len(cs) != 1 || !strings.Contains(string(cs[0].Body), ran) {
		t.Fatalf("%d approval_used entries, want 1 naming %s", len(cs), ran)
	}
	if rep, err := store.Verify(ctx, nil); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}
