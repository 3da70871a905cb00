package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/approval"
	"github.com/wcphall/hall/internal/ledger"
)

// approvalStore is the evidence store's approvals ability (what host
// uses for human approvals).
type approvalStore interface {
	CreateApproval(ctx context.Context, a *approval.Approval, actor string) error
	UpdateApproval(ctx context.Context, u ledger.ApprovalUpdate) (*approval.Approval, error)
	RecordDecisionUsing(ctx context.Context, d ledger.DecisionRecord, u ledger.ApprovalUpdate) error
	Approval(ctx context.Context, id string) (*approval.Approval, error)
}

// dispatchRecorder is the evidence store's one-commit dispatch ability.
type dispatchRecorder interface {
	RecordDispatch(ctx context.Context, d ledger.DecisionRecord, events []json.RawMessage, r *ledger.Receipt) error
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestEvidence checks an EvidenceStore: decisions and receipts are chained
// per tenant, changes in one chain, approvals step in the transaction that
// records their change entry, everything verifies, a tampered receipt is
// reported, and a reopened store holds what was recorded.
func TestEvidence(t *testing.T, b Backend) {
	ctx := context.Background()
	state := b.New(t)
	st := b.Open(t, state)
	ev := st.Evidence
	if ev == nil {
		t.Fatal("Stores.Evidence is nil")
	}

	// A snapshot, then decisions and receipts made under it.
	snap := &ledger.Change{Kind: ledger.ChangeSnapshot, Subject: "snapshot", Digest: digest("snapshot"), Body: json.RawMessage(`{}`), Actor: "file"}
	if err := ev.RecordChange(ctx, snap); err != nil {
		t.Fatalf("RecordChange(snapshot): %v", err)
	}
	if snap.ChangeID == "" || snap.Hash == "" || snap.Signature == "" {
		t.Fatalf("RecordChange did not fill the chain fields: %+v", snap)
	}
	enroll := &ledger.Change{Kind: ledger.ChangeEnroll, Subject: "wrk.contract", Digest: digest("record"), ArtifactHash: digest("module"), Body: json.RawMessage(`{}`), Actor: "local:contract"}
	if err := ev.RecordChange(ctx, enroll); err != nil {
		t.Fatalf("RecordChange(enroll): %v", err)
	}
	if enroll.PrevHash != snap.Hash || enroll.Sequence != snap.Sequence+1 {
		t.Fatalf("change chain: second change links %q (seq %d), want %q (seq %d)", enroll.PrevHash, enroll.Sequence, snap.Hash, snap.Sequence+1)
	}

	var receipts []*ledger.Receipt
	for i := range 3 {
		d := decision(i, snap.Digest)
		if err := ev.RecordDecision(ctx, d); err != nil {
			t.Fatalf("RecordDecision: %v", err)
		}
		r := receipt(i, d, snap.Digest)
		if err := ev.Append(ctx, r); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if r.ReceiptID == "" || r.ReceiptHash == "" || r.Signature == "" {
			t.Fatalf("Append did not fill the chain fields: %+v", r)
		}
		if i > 0 && (r.PrevReceiptHash != receipts[i-1].ReceiptHash || r.Sequence != receipts[i-1].Sequence+1) {
			t.Fatalf("receipt %d links %q (seq %d), want %q (seq %d)", i, r.PrevReceiptHash, r.Sequence, receipts[i-1].ReceiptHash, receipts[i-1].Sequence+1)
		}
		receipts = append(receipts, r)
	}
	if got, err := ev.Receipt(ctx, receipts[1].ReceiptID); err != nil || got.ReceiptHash != receipts[1].ReceiptHash || got.DecisionID != receipts[1].DecisionID {
		t.Fatalf("Receipt(%s) = %+v, %v", receipts[1].ReceiptID, got, err)
	}
	if _, err := ev.Receipt(ctx, "rcpt_unknown"); !errors.Is(err, host.ErrReceiptNotFound) {
		t.Fatalf("Receipt(unknown) = %v, want ErrReceiptNotFound", err)
	}
	if rs, err := ev.Receipts(ctx, ledger.Filter{TenantID: "org.acme"}); err != nil || len(rs) != 3 || rs[0].ReceiptID != receipts[2].ReceiptID {
		t.Fatalf("Receipts(org.acme) = %d receipt(s), %v; want 3, newest first", len(rs), err)
	}

	// A dispatch: its decision, its worker's events and its receipt in
	// one commit.
	if dr, ok := ev.(dispatchRecorder); ok {
		d := decision(3, snap.Digest)
		r := receipt(3, d, snap.Digest)
		if err := dr.RecordDispatch(ctx, d, []json.RawMessage{json.RawMessage(`{"event":"contract"}`)}, r); err != nil {
			t.Fatalf("RecordDispatch: %v", err)
		}
		if r.PrevReceiptHash != receipts[2].ReceiptHash {
			t.Fatalf("RecordDispatch's receipt links %q, want %q", r.PrevReceiptHash, receipts[2].ReceiptHash)
		}
		receipts = append(receipts, r)
	} else {
		t.Error("the evidence store cannot record a dispatch in one commit (RecordDispatch): the Hall would withhold every output")
	}

	// Approvals are evidence: the Hall keeps them in the evidence store.
	if as, ok := ev.(approvalStore); ok {
		testApprovals(t, ev, as, snap.Digest)
	} else {
		t.Error("the evidence store has no approvals (CreateApproval, UpdateApproval, RecordDecisionUsing, Approval)")
	}

	rep, err := ev.Verify(ctx, nil)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK() || rep.Receipts != len(receipts) {
		t.Fatalf("Verify of untouched evidence: ok=%v receipts=%d breaks=%v", rep.OK(), rep.Receipts, rep.Breaks)
	}
	changes, err := ev.Changes(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Reopened: everything is there and still verifies.
	ev2 := open(t, b, state).Evidence
	if rs, err := ev2.Receipts(ctx, ledger.Filter{}); err != nil || len(rs) != len(receipts) {
		t.Fatalf("after reopening: %d receipt(s), %v; want %d", len(rs), err, len(receipts))
	}
	if cs, err := ev2.Changes(ctx, ""); err != nil || len(cs) != len(changes) || cs[len(cs)-1].Hash != changes[len(changes)-1].Hash {
		t.Fatalf("after reopening: %d change(s), %v; want %d with the same head", len(cs), err, len(changes))
	}
	if rep, err := ev2.Verify(ctx, nil); err != nil || !rep.OK() {
		t.Fatalf("Verify after reopening: %v, %v", rep, err)
	}

	if b.TamperEvidence == nil {
		return
	}
	b.TamperEvidence(t, state, receipts[1].ReceiptID)
	rep, err = open(t, b, state).Evidence.Verify(ctx, nil)
	if err != nil {
		t.Fatalf("Verify of tampered evidence: %v", err)
	}
	if rep.OK() {
		t.Fatalf("Verify passed evidence whose receipt %s was changed behind the store", receipts[1].ReceiptID)
	}
}

// testApprovals checks that an approval's steps are signed changes
// recorded with them, that a step from the wrong state records nothing,
// and that the decision using an approval consumes it in its commit.
func testApprovals(t *testing.T, ev host.EvidenceStore, as approvalStore, snapshot string) {
	ctx := context.Background()
	countKind := func(kind string) int {
		t.Helper()
		cs, err := ev.Changes(ctx, kind)
		if err != nil {
			t.Fatal(err)
		}
		return len(cs)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	a := &approval.Approval{
		ID: approval.NewID(), State: approval.Pending, TenantID: "org.acme", CapabilityID: "cap.contract.run",
		CorrelationID: "corr-approval", Input: json.RawMessage(`{}`), RequestHash: digest("request"), PayloadHash: digest("payload"),
		DecisionID: "0190a5d2-0000-7000-8000-00000000a000", WorkerID: "wrk.contract", Species: "wrk.contract",
		ModuleDigest: digest("module"), RecordDigest: digest("record"), Envelope: json.RawMessage(`{}`),
		RuleID: "rule.contract", Reason: "contract", PolicySetDigest: digest("policy"), SnapshotDigest: snapshot,
		CreatedAt: now, ExpiresAt: now.Add(time.Hour),
	}
	if err := as.CreateApproval(ctx, a, "tenant:org.acme"); err != nil {
		t.Fatalf("CreateApproval: %v", err)
	}
	if n := countKind(ledger.ChangeApprovalRequested); n != 1 {
		t.Fatalf("after CreateApproval: %d approval_requested change(s), want 1", n)
	}
	approve := ledger.ApprovalUpdate{ID: a.ID, From: approval.Pending, To: approval.Approved, Kind: ledger.ChangeApprovalApproved, Actor: "token:tok_approver",
		Apply: func(a *approval.Approval) { a.DecidedBy, a.DecidedAt = "token:tok_approver", time.Now().UTC() }}
	got, err := as.UpdateApproval(ctx, approve)
	if err != nil || got.State != approval.Approved {
		t.Fatalf("UpdateApproval(approve) = %+v, %v", got, err)
	}
	if n := countKind(ledger.ChangeApprovalApproved); n != 1 {
		t.Fatalf("after approving: %d approval_approved change(s), want 1", n)
	}
	// From the wrong state: refused, nothing recorded.
	if _, err := as.UpdateApproval(ctx, approve); !errors.Is(err, approval.ErrConflict) {
		t.Fatalf("approving an approved approval = %v, want ErrConflict", err)
	}
	if n := countKind(ledger.ChangeApprovalApproved); n != 1 {
		t.Fatalf("a refused step recorded a change: %d approval_approved change(s), want 1", n)
	}
	// Used by the decision that records it, in one commit.
	d := decision(100, snapshot, a.ID)
	use := ledger.ApprovalUpdate{ID: a.ID, From: approval.Approved, To: approval.Used, Kind: ledger.ChangeApprovalUsed, Actor: "tenant:org.acme",
		Apply: func(a *approval.Approval) { a.UsedBy, a.UsedAt = d.DecisionID, time.Now().UTC() }}
	if err := as.RecordDecisionUsing(ctx, d, use); err != nil {
		t.Fatalf("RecordDecisionUsing: %v", err)
	}
	if got, err := as.Approval(ctx, a.ID); err != nil || got.State != approval.Used || got.UsedBy != d.DecisionID {
		t.Fatalf("after use: %+v, %v", got, err)
	}
	if n := countKind(ledger.ChangeApprovalUsed); n != 1 {
		t.Fatalf("after use: %d approval_used change(s), want 1", n)
	}
	// Used once: a second decision cannot use it, and is not recorded.
	d2 := decision(101, snapshot, a.ID)
	use.Apply = func(a *approval.Approval) { a.UsedBy = d2.DecisionID }
	if err := as.RecordDecisionUsing(ctx, d2, use); !errors.Is(err, approval.ErrConflict) {
		t.Fatalf("a second use = %v, want ErrConflict", err)
	}
	if n := countKind(ledger.ChangeApprovalUsed); n != 1 {
		t.Fatalf("a refused use recorded a change: %d approval_used change(s)", n)
	}
}

// decision is the i-th decision of the tests; approvalID, when given, is
// the approval it presents (its policy.approval_id, as host records it).
func decision(i int, snapshot string, approvalID ...string) ledger.DecisionRecord {
	id := fmt.Sprintf("0190a5d2-0000-7000-8000-%012d", i)
	m := map[string]any{"decision_id": id, "tenant_id": "org.acme", "capability_id": "cap.contract.run", "denied": false, "correlation_id": fmt.Sprint("corr-", i)}
	if len(approvalID) > 0 {
		m["policy"] = map[string]any{"approval_id": approvalID[0]}
	}
	body, _ := json.Marshal(m)
	return ledger.DecisionRecord{DecisionID: id, CorrelationID: fmt.Sprint("corr-", i), TenantID: "org.acme", CapabilityID: "cap.contract.run",
		Decision: body, Timestamp: time.Now().UTC(), Snapshot: snapshot}
}

func receipt(i int, d ledger.DecisionRecord, snapshot string) *ledger.Receipt {
	return &ledger.Receipt{
		CorrelationID: d.CorrelationID, DispatchedAt: time.Now().UTC(), WorkerID: "wrk.contract", CapabilityID: d.CapabilityID,
		PolicyDecision: "ALLOW", ArtifactHash: digest("module"), RecordDigest: digest("record"), Snapshot: snapshot,
		DecisionID: d.DecisionID, TenantID: d.TenantID, RequestHash: digest(fmt.Sprint("request", i)), InputHash: digest(fmt.Sprint("input", i)),
		OutputHash: digest(fmt.Sprint("output", i)), DurationMS: 1, Outcome: "ok",
		Limits:      ledger.Limits{TimeoutMS: 1000, MemoryMB: 16, InputBytes: 1 << 20, OutputBytes: 1 << 20},
		Determinism: "clock,random",
	}
}
