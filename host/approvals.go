package host

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/wcphall/hall/host/approval"
	"github.com/wcphall/hall/host/ledger"
	"github.com/wcphall/hall/host/policy"
	"github.com/wcphall/hall/host/wcp"
)

// Ledger change kinds of human approvals (WCP §5.8). Subject is the
// approval id, Digest the request hash, ArtifactHash the module the
// approval is bound to, Body the approval; Actor the approver's token
// ("token:<id>"), the requesting tenant ("tenant:<id>") or "hall" (expiry).
const (
	ChangeApprovalRequested = "approval_requested"
	ChangeApprovalApproved  = "approval_approved"
	ChangeApprovalDenied    = "approval_denied"
	ChangeApprovalExpired   = "approval_expired"
	ChangeApprovalUsed      = "approval_used"
)

// Errors of approval actions; each has a code of wcp.Codes.
var (
	ErrApprovalNotFound = &ApprovalError{Code: wcp.CodeApprovalNotFound, Msg: "no such approval"}
)

// ApprovalError is a refused approval action.
type ApprovalError struct {
	Code wcp.Code
	Msg  string
	// Approval is the approval as it stands (nil when not found).
	Approval *approval.Approval
}

func (e *ApprovalError) Error() string { return string(e.Code) + ": " + e.Msg }

// Is matches another *ApprovalError of the same code.
func (e *ApprovalError) Is(target error) bool {
	t, ok := target.(*ApprovalError)
	return ok && t.Code == e.Code
}

// runCall is what a dispatch carries into its decision: the approval it
// presents and, once decided, the hold a pending approval is made of.
type runCall struct {
	approvalID  string
	payloadHash string
	hold        *held
	used        *approval.Approval
}

type held struct {
	w          *boundWorker
	in         *wcp.RouteInput
	set        *policy.Set
	result     policy.Result
	blastScore int64
}

type runCallKey struct{}

func runCallFrom(ctx context.Context) *runCall {
	c, _ := ctx.Value(runCallKey{}).(*runCall)
	return c
}

// runContext marks ctx as a dispatch of req (see Run).
func runContext(ctx context.Context, req *RunRequest) context.Context {
	sum := sha256.Sum256(req.Payload)
	return context.WithValue(ctx, runCallKey{}, &runCall{approvalID: req.ApprovalID, payloadHash: wcp.Digest(sum).String()})
}

// approvals runs f with the approval store: Options.Approvals, else the
// SQLite file in Home, opened for the call (approvals are rare; a Hall
// keeps no handle to close).
func (h *Hall) approvals(f func(approval.Store) error) error {
	if h.isClosed() {
		return ErrClosed
	}
	if h.opts.Approvals != nil {
		return f(h.opts.Approvals)
	}
	s, err := approval.OpenSQLite(filepath.Join(h.opts.Home, approval.DBFile))
	if err != nil {
		return err
	}
	defer s.Close()
	return f(s)
}

// holdForApproval creates the pending approval of a dispatch its decision
// held for a human (approvals on, REQUIRE_HUMAN), records the request in
// the evidence ledger and puts its id and expiry in the decision (WCP
// §5.8 pending_approval_id, approval_expires_at). Nothing to do for any
// other decision.
func (h *Hall) holdForApproval(ctx context.Context, dec *wcp.RouteDecision) error {
	call := runCallFrom(ctx)
	if call == nil || call.hold == nil || !dec.Denied {
		return nil
	}
	hd := call.hold
	w := hd.w
	input, err := json.Marshal(hd.in)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	a := &approval.Approval{
		ID: approval.NewID(), TenantID: hd.in.TenantID, CapabilityID: hd.in.CapabilityID, CorrelationID: hd.in.CorrelationID,
		Input: input, RequestHash: dec.RequestHash.String(), PayloadHash: call.payloadHash, DecisionID: dec.DecisionID.String(),
		WorkerID: w.rec.WorkerID, Species: w.rec.WorkerSpeciesID, ModuleDigest: w.moduleRef, RecordDigest: w.recordDigest.String(),
		Envelope: w.envelope, RiskTier: w.rec.RiskTier, BlastScore: hd.blastScore,
		RuleID: dec.MatchedRuleID, PolicyID: hd.result.Policy, Reason: hd.result.Reason, PolicySetDigest: hd.set.Digest(),
		CreatedAt: now, ExpiresAt: now.Add(hd.set.ApprovalTTL()),
	}
	if w.rec.BlastRadius != nil {
		a.BlastRadius, _ = json.Marshal(w.rec.BlastRadius)
	}
	err = h.approvals(func(st approval.Store) error {
		if err := st.Create(ctx, a); err != nil {
			return err
		}
		return h.recordApproval(ctx, ChangeApprovalRequested, a, "tenant:"+a.TenantID)
	})
	if err != nil {
		return fmt.Errorf("holding the request for a human approval: %w", err)
	}
	id, exp := a.ID, a.ExpiresAt.Format(time.RFC3339)
	dec.DenyReason.PendingApprovalID = &id
	dec.DenyReason.ApprovalExpiresAt = &exp
	dec.DenyReason.Message = "The policy gate requires a human approval before this worker can be dispatched. Pending approval " + id + " (expires " + exp + "): once an approver approves it, submit the same request again with approval_id " + id + "."
	dec.TelemetryEnvelopes[0].DenyMessage = dec.DenyReason.Message
	return nil
}

// recordApproval writes one approval change into the change chain.
func (h *Hall) recordApproval(ctx context.Context, kind string, a *approval.Approval, actor string) error {
	store, err := h.evidenceStore()
	if err != nil {
		return err
	}
	body, err := json.Marshal(a)
	if err != nil {
		return err
	}
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	c := &ledger.Change{Kind: kind, Subject: a.ID, Digest: a.RequestHash, Body: body, Actor: actor, At: time.Now().UTC()}
	if wcp.ValidArtifactHash(a.ModuleDigest) {
		c.ArtifactHash = a.ModuleDigest
	}
	if err := store.RecordChange(ectx, c); err != nil {
		return fmt.Errorf("recording %s of %s in the evidence ledger: %w", kind, a.ID, err)
	}
	return nil
}

// useApproval checks the approval a dispatch presents against the request
// and the plan its decision bound, and uses it up. It returns "" when the
// dispatch may run, else why not.
func (h *Hall) useApproval(ctx context.Context, call *runCall, w *boundWorker, dec *wcp.RouteDecision) string {
	id := call.approvalID
	h.expireApprovals(ctx)
	problem := ""
	err := h.approvals(func(st approval.Store) error {
		a, err := st.Get(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case a.TenantID != dec.TenantID:
			problem = "approval " + id + " is another tenant's"
		case a.RequestHash != dec.RequestHash.String():
			problem = "approval " + id + " was given for another request (request_hash " + a.RequestHash + "); submit exactly the request that was approved"
		case a.PayloadHash != call.payloadHash:
			problem = "approval " + id + " was given for another payload (" + a.PayloadHash + ")"
		case a.WorkerID != w.rec.WorkerID:
			problem = "approval " + id + " was given for worker " + a.WorkerID + ", and the request now binds " + w.rec.WorkerID + "; request a new approval"
		case a.ModuleDigest != w.moduleRef || a.RecordDigest != w.recordDigest.String():
			problem = "approval " + id + " was given for module " + a.ModuleDigest + " (record " + a.RecordDigest + "); " + a.WorkerID + " was enrolled again since, so the approval no longer holds: request a new approval"
		}
		if problem != "" {
			return nil
		}
		used, err := st.Use(ctx, id, dec.DecisionID.String(), time.Now())
		var ce *approval.ConflictError
		if errors.As(err, &ce) {
			problem = fmt.Sprintf("approval %s is %s, not approved", id, ce.State)
			return nil
		}
		if err != nil {
			return err
		}
		if err := h.recordApproval(ctx, ChangeApprovalUsed, used, "tenant:"+used.TenantID); err != nil {
			if rerr := st.Revert(ctx, id, approval.Used, approval.Approved); rerr != nil {
				h.log.Error("hall: reverting an approval whose use was not recorded", "approval_id", id, "error", rerr)
			}
			return err
		}
		call.used = used
		return nil
	})
	switch {
	case errors.Is(err, approval.ErrNotFound):
		return "approval " + id + " does not exist"
	case err != nil:
		h.log.Error("hall: using an approval failed", "approval_id", id, "error", err)
		return "approval " + id + " could not be used (see the Hall's log); nothing ran"
	}
	return problem
}

// expireApprovals expires approvals past their expiry and records each.
func (h *Hall) expireApprovals(ctx context.Context) {
	err := h.approvals(func(st approval.Store) error {
		gone, err := st.Expire(ctx, time.Now())
		for i := range gone {
			if rerr := h.recordApproval(ctx, ChangeApprovalExpired, &gone[i], "hall"); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return err
	})
	if err != nil {
		h.log.Error("hall: expiring approvals", "error", err)
	}
}

// Approver is who answers an approval.
type Approver struct {
	// Actor is "token:<id>" (an approver token) as recorded in the ledger.
	Actor string
	// Tenant is the tenant the approver's token also acts as ("" when
	// none): it cannot approve that tenant's requests.
	Tenant string
}

// ApprovalFilter selects approvals.
type ApprovalFilter = approval.Filter

// Approvals lists approvals, newest first, after expiring the overdue.
func (h *Hall) Approvals(ctx context.Context, f ApprovalFilter) ([]approval.Approval, error) {
	h.expireApprovals(ctx)
	var out []approval.Approval
	err := h.approvals(func(st approval.Store) error {
		var err error
		out, err = st.List(ctx, f)
		return err
	})
	return out, err
}

// Approval returns one approval (ErrApprovalNotFound).
func (h *Hall) Approval(ctx context.Context, id string) (*approval.Approval, error) {
	if !approval.ValidID(id) {
		return nil, &ApprovalError{Code: wcp.CodeApprovalNotFound, Msg: fmt.Sprintf("%q is not an approval id (apr_ and 32 hex digits)", id)}
	}
	h.expireApprovals(ctx)
	var out *approval.Approval
	err := h.approvals(func(st approval.Store) error {
		var err error
		out, err = st.Get(ctx, id)
		return err
	})
	if errors.Is(err, approval.ErrNotFound) {
		return nil, &ApprovalError{Code: wcp.CodeApprovalNotFound, Msg: "no approval " + id}
	}
	return out, err
}

// PendingApprovals returns how many approvals wait for a human and the
// age of the oldest (metrics).
func (h *Hall) PendingApprovals(ctx context.Context) (n int, oldest time.Duration, err error) {
	err = h.approvals(func(st approval.Store) error {
		var at time.Time
		n, at, err = st.Pending(ctx)
		if !at.IsZero() {
			oldest = time.Since(at)
		}
		return err
	})
	return n, oldest, err
}

// DecideApproval approves (approve) or denies a pending approval as who,
// with an optional comment, and records it in the evidence ledger. The
// requesting tenant never answers its own request. Concurrent answers:
// exactly one succeeds, the others get APPROVAL_CONFLICT.
func (h *Hall) DecideApproval(ctx context.Context, id string, approve bool, who Approver, comment string) (*approval.Approval, error) {
	a, err := h.Approval(ctx, id)
	if err != nil {
		return nil, err
	}
	if who.Actor == "" {
		return nil, &ApprovalError{Code: wcp.CodeApprovalForbidden, Msg: "an approval is answered by an approver token", Approval: a}
	}
	if who.Tenant != "" && who.Tenant == a.TenantID || who.Actor == "tenant:"+a.TenantID {
		return nil, &ApprovalError{Code: wcp.CodeApprovalForbidden, Msg: "approval " + id + " is a request of tenant " + a.TenantID + ", which this approver also acts as: another approver must answer it", Approval: a}
	}
	if len(comment) > 2000 {
		return nil, &ApprovalError{Code: wcp.CodeInvalidRequest, Msg: "comment: at most 2000 bytes"}
	}
	to, kind := approval.Denied, ChangeApprovalDenied
	if approve {
		to, kind = approval.Approved, ChangeApprovalApproved
	}
	var out *approval.Approval
	err = h.approvals(func(st approval.Store) error {
		got, err := st.Decide(ctx, id, to, who.Actor, comment, time.Now())
		if err != nil {
			return err
		}
		if err := h.recordApproval(ctx, kind, got, who.Actor); err != nil {
			if rerr := st.Revert(ctx, id, to, approval.Pending); rerr != nil {
				h.log.Error("hall: reverting an approval whose answer was not recorded", "approval_id", id, "error", rerr)
			}
			return err
		}
		out = got
		return nil
	})
	var ce *approval.ConflictError
	if errors.As(err, &ce) {
		cur, _ := h.Approval(ctx, id)
		return nil, &ApprovalError{Code: wcp.CodeApprovalConflict, Msg: fmt.Sprintf("approval %s is %s: only a pending approval can be answered", id, ce.State), Approval: cur}
	}
	return out, err
}

// PendingApproval returns the pending approval id of a decision held for
// a human ("" for any other decision).
func PendingApproval(dec *wcp.RouteDecision) string {
	if dec.DenyReason == nil || dec.DenyReason.PendingApprovalID == nil {
		return ""
	}
	return *dec.DenyReason.PendingApprovalID
}

// ApprovedInput returns the RouteInput an approval was requested with, to
// submit it again with the approval id.
func ApprovedInput(a *approval.Approval) (*wcp.RouteInput, error) {
	in, err := wcp.ParseRouteInput(a.Input)
	if err != nil {
		return nil, fmt.Errorf("approval %s: its stored request: %w", a.ID, err)
	}
	return &in, nil
}

// RequestError refuses a field of a RunRequest before anything is
// decided or recorded. Its code is INVALID_REQUEST.
type RequestError struct {
	// Field is the request's field ("approval_id").
	Field string
	Msg   string
}

func (e *RequestError) Error() string { return e.Field + ": " + e.Msg }

// Code returns INVALID_REQUEST.
func (e *RequestError) Code() wcp.Code { return wcp.CodeInvalidRequest }
