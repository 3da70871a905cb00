package host

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/trace"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/approval"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/policy"
	"github.com/wcphall/hall/internal/tracing"
)

// Ledger change kinds of human approvals (WCP §5.8); see
// ledger.ChangeApprovalRequested. Each state of an approval is the body of
// one such signed change, written with the approvals row in one
// transaction of the evidence ledger.
const (
	ChangeApprovalRequested = ledger.ChangeApprovalRequested
	ChangeApprovalApproved  = ledger.ChangeApprovalApproved
	ChangeApprovalDenied    = ledger.ChangeApprovalDenied
	ChangeApprovalExpired   = ledger.ChangeApprovalExpired
	ChangeApprovalUsed      = ledger.ChangeApprovalUsed
)

// ErrApprovalNotFound matches, with errors.Is, every *ApprovalError of
// code APPROVAL_NOT_FOUND (an approval id that is malformed or that no
// signed change records). It is a constant: nothing a program does can
// change what it matches.
const ErrApprovalNotFound = approvalCode(wcp.CodeApprovalNotFound)

// approvalCode is the constant sentinel of the refusals of one code: it
// matches each *ApprovalError of that code (ApprovalError.Is).
type approvalCode wcp.Code

func (c approvalCode) Error() string {
	if info, ok := wcp.Code(c).Info(); ok {
		return string(c) + ": " + info.Meaning
	}
	return string(c)
}

// Code returns the sentinel's code.
func (c approvalCode) Code() wcp.Code { return wcp.Code(c) }

// ApprovalError is a refused approval action.
type ApprovalError struct {
	Code wcp.Code
	Msg  string
	// Approval is the approval as it stands (nil when not found).
	Approval *approval.Approval
}

func (e *ApprovalError) Error() string { return string(e.Code) + ": " + e.Msg }

// Is matches another *ApprovalError of the same code, and the constant
// sentinel of its code (ErrApprovalNotFound).
func (e *ApprovalError) Is(target error) bool {
	switch t := target.(type) {
	case *ApprovalError:
		return t.Code == e.Code
	case approvalCode:
		return wcp.Code(t) == e.Code
	}
	return false
}

// runCall is what a dispatch carries into its decision: the approval it
// presents and, once decided, the hold a pending approval is made of, or
// the approval its allowed decision will use up when it is recorded.
type runCall struct {
	approvalID  string
	payloadHash string
	// payload is the dispatch payload, of which a held request's approval
	// keeps what the approver is shown.
	payload []byte
	hold    *held
	// use is the approval the decision was allowed by, checked but not
	// yet used: Run uses it up in the transaction that records the
	// decision, after admission (useApproval).
	use *approval.Approval
	// refuse turns the decision into the denial of a request that needs a
	// human, saying why (applyPolicies' denyHuman).
	refuse func(dec *wcp.RouteDecision, problem string)
}

type held struct {
	w          *boundWorker
	in         *wcp.RouteInput
	set        *policy.Set
	snap       *snapshot
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
	return context.WithValue(ctx, runCallKey{}, &runCall{approvalID: req.ApprovalID, payloadHash: wcp.Digest(sum).String(), payload: req.Payload})
}

// checkRunRequest refuses the caller strings of a RunRequest that the
// decision does not check itself: approval_id is bounded and of one form
// before it reaches a decision, a message or the ledger.
func checkRunRequest(req *RunRequest) error {
	if req.ApprovalID == "" {
		return nil
	}
	if err := approval.CheckID(req.ApprovalID); err != nil {
		return &RequestError{Field: "approval_id", Msg: err.Error()}
	}
	return nil
}

// approvalLedger is what the Hall keeps approvals in: the evidence
// ledger (ledger.SQLite), so that every approval state is a signed change
// committed with its row, and a use commits with the decision that uses
// it.
type approvalLedger interface {
	CreateApproval(ctx context.Context, a *approval.Approval, actor string) error
	UpdateApproval(ctx context.Context, u ledger.ApprovalUpdate) (*approval.Approval, error)
	RecordDecisionUsing(ctx context.Context, d ledger.DecisionRecord, u ledger.ApprovalUpdate) error
	Approval(ctx context.Context, id string) (*approval.Approval, error)
	Approvals(ctx context.Context, f approval.Filter) ([]approval.Approval, error)
	ExpireApprovals(ctx context.Context, now time.Time) ([]approval.Approval, error)
	PendingApprovals(ctx context.Context) (int, time.Time, error)
}

// approvals is the approval store: the evidence ledger the Hall opened
// (once, at Open; closed by Close).
func (h *Hall) approvals() (approvalLedger, error) {
	store, err := h.evidenceStore()
	if err != nil {
		return nil, err
	}
	st, ok := store.(approvalLedger)
	if !ok {
		return nil, fmt.Errorf("approvals: the evidence store (%T) keeps no approvals; human approvals need the SQLite ledger", store)
	}
	return st, nil
}

// holdForApproval creates the pending approval of a dispatch its decision
// held for a human (approvals on, REQUIRE_HUMAN), with its signed
// approval_requested change in the evidence ledger, and puts its id and
// expiry in the decision (WCP §5.8 pending_approval_id,
// approval_expires_at). Nothing to do for any other decision.
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
		SnapshotDigest: hd.snap.digest(),
		CreatedAt:      now, ExpiresAt: now.Add(hd.set.ApprovalTTL()),
	}
	if w.rec.BlastRadius != nil {
		a.BlastRadius, _ = json.Marshal(w.rec.BlastRadius)
	}
	var secrets []string
	if env := w.rec.PrivilegeEnvelope; env != nil {
		secrets = env.SecretsAccess
	}
	a.Payload = approvalPayload(hd.snap.cfg.ApprovalPayload, call.payload, hd.in.DataLabel, secrets)
	st, err := h.approvals()
	if err == nil {
		ectx, cancel := evidenceContext(ctx)
		if b, ok := st.(boundedApprovals); ok {
			err = b.CreateApprovalBounded(ectx, a, "tenant:"+a.TenantID, hd.snap.cfg.Quotas.pendingBound())
		} else {
			err = st.CreateApproval(ectx, a, "tenant:"+a.TenantID)
		}
		cancel()
	}
	if qerr := approvalQuota(dec, err); qerr != nil {
		return qerr
	}
	if err != nil {
		return fmt.Errorf("holding the request for a human approval: %w", err)
	}
	id, exp := a.ID, a.ExpiresAt.Format(time.RFC3339)
	if span := trace.SpanFromContext(ctx); h.tracer != nil && span.IsRecording() {
		// The call resumed with this approval links back to this one.
		span.SetAttributes(tracing.ApprovalID.String(id))
		h.held.put(id, span.SpanContext())
	}
	dec.DenyReason.PendingApprovalID = &id
	dec.DenyReason.ApprovalExpiresAt = &exp
	dec.DenyReason.Message = "The policy gate requires a human approval before this worker can be dispatched. Pending approval " + id + " (expires " + exp + "): once an approver approves it, submit the same request again with approval_id " + id + " (the correlation id may be left out: the held request's, " + hd.in.CorrelationID + ", is used)."
	dec.TelemetryEnvelopes[0].DenyMessage = dec.DenyReason.Message
	return nil
}

// checkApproval checks the approval a dispatch presents, as its signed
// change chain records it, against the request, the plan its decision
// bound and the snapshot it is decided under. It returns "" when the
// dispatch may run (and keeps the approval in call.use, to be used up
// when the decision is recorded), else why not. Nothing is written.
func (h *Hall) checkApproval(ctx context.Context, call *runCall, s *snapshot, w *boundWorker, dec *wcp.RouteDecision) string {
	id := call.approvalID
	st, err := h.approvals()
	var a *approval.Approval
	if err == nil {
		a, err = st.Approval(ctx, id)
	}
	switch {
	case errors.Is(err, approval.ErrNotFound):
		return "approval " + id + " does not exist"
	case errors.Is(err, ledger.ErrApprovalTampered):
		h.log.Error("hall: an approval does not verify against its signed changes", "approval_id", id, "error", err)
		return "approval " + id + " does not verify against its signed changes in the evidence ledger (see the Hall's log); nothing ran"
	case err != nil:
		h.log.Error("hall: reading an approval failed", "approval_id", id, "error", err)
		return "approval " + id + " could not be read (see the Hall's log); nothing ran"
	}
	problem := ""
	switch {
	case a.State != approval.Approved:
		problem = fmt.Sprintf("approval %s is %s, not approved", id, a.State)
	case !strings.HasPrefix(a.DecidedBy, "token:"):
		problem = fmt.Sprintf("approval %s was not approved by an approver token (decided_by %q)", id, a.DecidedBy)
	case !time.Now().Before(a.ExpiresAt):
		problem = fmt.Sprintf("approval %s expired at %s", id, a.ExpiresAt.Format(time.RFC3339))
	case a.TenantID != dec.TenantID:
		problem = "approval " + id + " is another tenant's"
	case a.RequestHash != dec.RequestHash.String() && a.CapabilityID == dec.CapabilityID && a.CorrelationID != dec.CorrelationID:
		// The usual slip (issue 27): the approved request resent under a
		// new correlation id, which the request hash covers.
		problem = fmt.Sprintf("approval %s was given for another request (request_hash %s): the approved request had correlation_id %q, this one has %q, and the hash covers it; "+
			"to resume the approved request, send it again with correlation_id %q (hall run --correlation-id %q --approval %s; over HTTP the correlation_id member, over MCP _meta.correlation_id)",
			id, a.RequestHash, a.CorrelationID, dec.CorrelationID, a.CorrelationID, a.CorrelationID, id)
	case a.RequestHash != dec.RequestHash.String():
		problem = "approval " + id + " was given for another request (request_hash " + a.RequestHash + "); submit exactly the request that was approved"
	case a.PayloadHash != call.payloadHash:
		problem = "approval " + id + " was given for another payload (" + a.PayloadHash + ")"
	case a.WorkerID != w.rec.WorkerID:
		problem = "approval " + id + " was given for worker " + a.WorkerID + ", and the request now binds " + w.rec.WorkerID + "; request a new approval"
	case a.ModuleDigest != w.moduleRef || a.RecordDigest != w.recordDigest.String():
		problem = "approval " + id + " was given for module " + a.ModuleDigest + " (record " + a.RecordDigest + "); " + a.WorkerID + " was enrolled again since, so the approval no longer holds: request a new approval"
	default:
		if cur := s.digest(); a.SnapshotDigest != cur {
			problem = staleApproval(a, cur)
		}
	}
	if problem == "" {
		call.use = a
	}
	return problem
}

// staleApproval says why an approval requested under another snapshot is
// void (APPROVAL_STALE).
func staleApproval(a *approval.Approval, cur string) string {
	was := a.SnapshotDigest
	if was == "" {
		was = "none recorded"
	}
	return fmt.Sprintf("approval %s is void (%s): it was requested under snapshot %s and the rules, policies, configuration or enrolled workers changed since (now %s); request a new approval",
		a.ID, wcp.CodeApprovalStale, was, cur)
}

// recordDecisionUsing records an allowed decision and, in the same
// transaction, uses up the approval it was allowed by (call.use): after
// admission, so that a dispatch refused before it leaves the approval
// approved. When the approval can no longer be used (answered meanwhile,
// used by a concurrent run, expired), the decision becomes the denial of
// a request that needs a human, is recorded as such, and ran reports
// false.
func (h *Hall) recordDecisionUsing(ctx context.Context, s *snapshot, dec *wcp.RouteDecision, call *runCall) (ran bool, err error) {
	snap, err := h.snapshotDigestOf(s)
	if err != nil {
		return false, err
	}
	st, err := h.approvals()
	if err != nil {
		return false, err
	}
	d, err := decisionRecord(dec)
	if err != nil {
		return false, err
	}
	d.Snapshot = snap
	id := call.use.ID
	decisionID := dec.DecisionID.String()
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	ectx, span := h.startSpan(ectx, "hall.evidence.commit")
	defer func() { endCommit(span, "", err) }()
	err = st.RecordDecisionUsing(ectx, d, ledger.ApprovalUpdate{
		ID: id, From: approval.Approved, To: approval.Used, Kind: ChangeApprovalUsed, Actor: "tenant:" + call.use.TenantID, Now: time.Now(),
		Apply: func(a *approval.Approval) {
			a.UsedBy, a.UsedAt = decisionID, time.Now().UTC().Truncate(time.Microsecond)
		},
	})
	var ce *approval.ConflictError
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &ce):
		call.refuse(dec, fmt.Sprintf("approval %s is %s, not approved", id, ce.State))
	case errors.Is(err, ledger.ErrApprovalTampered):
		h.log.Error("hall: an approval does not verify against its signed changes", "approval_id", id, "error", err)
		call.refuse(dec, "approval "+id+" does not verify against its signed changes in the evidence ledger (see the Hall's log); nothing ran")
	default:
		return false, fmt.Errorf("recording decision %s with the use of approval %s: %w; the worker was not run", decisionID, id, err)
	}
	return false, h.recordDecision(ctx, s, dec)
}

// expireApprovals expires approvals past their expiry, each with its
// signed change.
func (h *Hall) expireApprovals(ctx context.Context) {
	st, err := h.approvals()
	if err == nil {
		_, err = st.ExpireApprovals(ctx, time.Now())
	}
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
// Each is as its newest signed change in the evidence ledger records it.
func (h *Hall) Approvals(ctx context.Context, f ApprovalFilter) ([]approval.Approval, error) {
	if h.isClosed() {
		return nil, ErrClosed
	}
	h.expireApprovals(ctx)
	st, err := h.approvals()
	if err != nil {
		return nil, err
	}
	return st.Approvals(ctx, f)
}

// Approval returns one approval as its newest signed change in the
// evidence ledger records it (ErrApprovalNotFound).
func (h *Hall) Approval(ctx context.Context, id string) (*approval.Approval, error) {
	if err := approval.CheckID(id); err != nil {
		return nil, &ApprovalError{Code: wcp.CodeApprovalNotFound, Msg: "approval_id: " + err.Error()}
	}
	if h.isClosed() {
		return nil, ErrClosed
	}
	h.expireApprovals(ctx)
	st, err := h.approvals()
	if err != nil {
		return nil, err
	}
	a, err := st.Approval(ctx, id)
	if errors.Is(err, approval.ErrNotFound) {
		return nil, &ApprovalError{Code: wcp.CodeApprovalNotFound, Msg: "no approval " + id}
	}
	return a, err
}

// PendingApprovals returns how many approvals wait for a human and the
// age of the oldest (metrics): one read of the ledger, no write.
func (h *Hall) PendingApprovals(ctx context.Context) (n int, oldest time.Duration, err error) {
	st, err := h.approvals()
	if err != nil {
		return 0, 0, err
	}
	n, at, err := st.PendingApprovals(ctx)
	if !at.IsZero() {
		oldest = time.Since(at)
	}
	return n, oldest, err
}

// DecideApproval approves (approve) or denies a pending approval as who,
// with an optional comment: the approval's new state and its signed
// change commit in one transaction of the evidence ledger. The requesting
// tenant never answers its own request, and the approver's token answers
// only when the evidence ledger records its issuance with a scope that may
// answer the tenant and no revocation (APPROVAL_FORBIDDEN otherwise; see
// IssueToken). An approval requested under
// another snapshot than the one in force cannot be approved
// (APPROVAL_STALE). Concurrent answers: exactly one succeeds, the others
// get APPROVAL_CONFLICT.
func (h *Hall) DecideApproval(ctx context.Context, id string, approve bool, who Approver, comment string) (*approval.Approval, error) {
	a, err := h.Approval(ctx, id)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(who.Actor, "token:") || len(who.Actor) > 200 || strings.ContainsFunc(who.Actor, unicode.IsControl) {
		// What hall audit verify accepts as an approver (approvals_verify.go).
		return nil, &ApprovalError{Code: wcp.CodeApprovalForbidden, Msg: "an approval is answered by an approver token: Approver.Actor is token:<id>", Approval: a}
	}
	if who.Tenant != "" && who.Tenant == a.TenantID || who.Actor == "tenant:"+a.TenantID {
		return nil, &ApprovalError{Code: wcp.CodeApprovalForbidden, Msg: "approval " + id + " is a request of tenant " + a.TenantID + ", which this approver also acts as: another approver must answer it", Approval: a}
	}
	if len(comment) > 2000 {
		return nil, &ApprovalError{Code: wcp.CodeInvalidRequest, Msg: "comment: at most 2000 bytes"}
	}
	// The token's scope is what the signed change chain issued it with,
	// not what the token database says now (issue 21: an approver token
	// minted in auth.db alone approved a held request).
	if problem, err := h.checkApprover(ctx, who.Actor, a.TenantID); err != nil {
		return nil, err
	} else if problem != "" {
		return nil, &ApprovalError{Code: wcp.CodeApprovalForbidden, Msg: problem, Approval: a}
	}
	to, kind := approval.Denied, ChangeApprovalDenied
	if approve {
		to, kind = approval.Approved, ChangeApprovalApproved
	}
	st, err := h.approvals()
	if err != nil {
		return nil, err
	}
	cur := h.snap.Load().digest()
	now := time.Now().UTC().Truncate(time.Microsecond)
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	out, err := st.UpdateApproval(ectx, ledger.ApprovalUpdate{
		ID: id, From: approval.Pending, To: to, Kind: kind, Actor: who.Actor, Now: now,
		Check: func(a *approval.Approval) error {
			if !approve && strings.TrimSpace(comment) == "" {
				// A denial tells the requester why (issue 25); checked
				// after the state, so that a denial of an answered
				// approval is still a conflict.
				return &ApprovalError{Code: wcp.CodeInvalidRequest, Msg: "comment: a denial needs a comment saying why (the requester reads it)", Approval: a}
			}
			if approve && a.SnapshotDigest != cur {
				return &ApprovalError{Code: wcp.CodeApprovalStale, Msg: staleApproval(a, cur), Approval: a}
			}
			return nil
		},
		Apply: func(a *approval.Approval) { a.DecidedBy, a.DecidedAt, a.Comment = who.Actor, now, comment },
	})
	var ce *approval.ConflictError
	if errors.As(err, &ce) {
		return nil, &ApprovalError{Code: wcp.CodeApprovalConflict, Msg: fmt.Sprintf("approval %s is %s: only a pending approval can be answered", id, ce.State), Approval: out}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
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
