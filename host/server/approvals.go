package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/approval"
	"github.com/wcphall/hall/internal/auth"
)

// Human approvals (WCP §5.8, docs/POLICY.md): approvers and administrators
// list, read and answer them; a tenant token reads its own tenant's (to
// follow its pending requests) and never answers.

const maxApprovalLimit = 1000

// approvalsList answers GET /wcp/approvals[?state=&tenant=&limit=].
func (s *Server) approvalsList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := host.ApprovalFilter{State: approval.State(q.Get("state")), TenantID: q.Get("tenant")}
	switch f.State {
	case "", approval.Pending, approval.Approved, approval.Denied, approval.Expired, approval.Used:
	default:
		writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "state must be pending, approved, denied, expired or used").field("state"))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxApprovalLimit {
			writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "limit must be an integer from 1 to "+strconv.Itoa(maxApprovalLimit)).field("limit"))
			return
		}
		f.Limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1<<30 {
			writeError(w, r, errf(http.StatusBadRequest, CodeInvalidRequest, "offset must be a non-negative integer (how many of the selected approvals, newest first, to skip)").field("offset"))
			return
		}
		f.Offset = n
	}
	if tok := principal(r); tok.Scope.IsTenant() {
		if f.TenantID != "" && f.TenantID != tok.Scope.Tenant {
			writeError(w, r, errf(http.StatusForbidden, CodeTenantMismatch, "a tenant token reads its own tenant's approvals only ("+tok.Scope.Tenant+")").field("tenant"))
			return
		}
		f.TenantID = tok.Scope.Tenant
	}
	list, err := s.h.Approvals(r.Context(), f)
	if err != nil {
		s.approvalError(w, r, err)
		return
	}
	if list == nil {
		list = []approval.Approval{}
	}
	body := map[string]any{"approvals": list, "count": len(list)}
	// Pending approvals per tenant, so that a page of the newest cannot
	// hide a tenant's (issue 25): for readers of every tenant's.
	if f.State == approval.Pending && !principal(r).Scope.IsTenant() {
		counts, err := s.h.PendingByTenant(r.Context())
		if err != nil {
			s.approvalError(w, r, err)
			return
		}
		if counts == nil {
			counts = []host.TenantPending{}
		}
		body["pending_by_tenant"] = counts
	}
	writeJSON(w, http.StatusOK, body)
}

// approvalGet answers GET /wcp/approvals/{approval_id}.
func (s *Server) approvalGet(w http.ResponseWriter, r *http.Request) {
	id, _ := pathParam(r, "approval_id")
	a, err := s.h.Approval(r.Context(), id)
	// Another tenant's approval is reported as missing, as receipts are.
	if tok := principal(r); err == nil && tok.Scope.IsTenant() && a.TenantID != tok.Scope.Tenant {
		err = &host.ApprovalError{Code: wcp.CodeApprovalNotFound, Msg: "no approval " + id}
	}
	if err != nil {
		s.approvalError(w, r, err)
		return
	}
	state(r).correlationID = a.CorrelationID
	writeJSON(w, http.StatusOK, a)
}

// approvalAnswer is the optional body of POST /wcp/approvals/{id}/approve
// and /deny.
type approvalAnswer struct {
	Comment string `json:"comment"`
}

func (s *Server) approvalApprove(w http.ResponseWriter, r *http.Request) {
	s.approvalDecide(w, r, true)
}
func (s *Server) approvalDeny(w http.ResponseWriter, r *http.Request) { s.approvalDecide(w, r, false) }

func (s *Server) approvalDecide(w http.ResponseWriter, r *http.Request, approve bool) {
	id, _ := pathParam(r, "approval_id")
	var ans approvalAnswer
	if r.ContentLength != 0 {
		body, ok := s.jsonBody(w, r)
		if !ok {
			return
		}
		if e := decodeStrict(body, &ans, `{"comment"?: "<why>"}`); e != nil {
			writeError(w, r, e)
			return
		}
	}
	a, err := s.h.DecideApproval(r.Context(), id, approve, Approver(principal(r)), ans.Comment)
	if err != nil {
		s.approvalError(w, r, err)
		return
	}
	state(r).correlationID = a.CorrelationID
	s.log.Info("hall: approval answered", "request_id", requestID(r), "approval_id", a.ID, "state", a.State, "token_id", principal(r).ID)
	writeJSON(w, http.StatusOK, a)
}

// Approver is who a token answers approvals as: its id as the ledger's
// actor, and the tenant it may not answer for (an approver's own tenant).
func Approver(t *auth.Token) host.Approver {
	return host.Approver{Actor: "token:" + t.ID, Tenant: t.Scope.ApproverTenant}
}

// approvalError writes an approval action's error: its code's status, with
// the approval as it stands when there is one.
func (s *Server) approvalError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *host.ApprovalError
	if errors.As(err, &ae) {
		e := errf(ae.Code.HTTPStatus(), string(ae.Code), ae.Msg)
		if ae.Code == wcp.CodeApprovalNotFound {
			e.field("approval_id")
		}
		if ae.Code == wcp.CodeInvalidRequest {
			e.field("comment")
		}
		if ae.Approval != nil && ae.Code != wcp.CodeApprovalForbidden {
			e.Extra = map[string]any{"approval": ae.Approval}
		}
		writeError(w, r, e)
		return
	}
	s.log.Error("hall: approval store failed", "request_id", requestID(r), "error", err)
	writeError(w, r, unavailableOr(err, errf(http.StatusInternalServerError, CodeInternal, "the approvals could not be read or written (see the server log under request id "+requestID(r)+")")))
}

// pendingRun is the 202 answer of a dispatch held for a human: nothing
// ran; the caller submits the same request again with approval_id once an
// approver has approved it.
func pendingRun(w http.ResponseWriter, res *host.RunResult) bool {
	id := host.PendingApproval(&res.Decision)
	if id == "" {
		return false
	}
	w.Header().Set("Location", "/wcp/approvals/"+id)
	writeJSON(w, http.StatusAccepted, map[string]any{
		"status":              "pending_approval",
		"approval_id":         id,
		"approval_expires_at": res.Decision.DenyReason.ApprovalExpiresAt,
		"message":             res.Decision.DenyReason.Message,
		"decision":            res.Decision,
		"ran":                 false,
	})
	return true
}

// approvalCollector reports the approvals waiting for a human and the age
// of the oldest, read at scrape time from the evidence ledger the Hall
// keeps open (one query; nothing is opened or written), only when
// approvals are enabled.
type approvalCollector struct{ h *host.Hall }

var (
	pendingDesc = prometheus.NewDesc("hall_approvals_pending",
		"Human approvals waiting for an approver (WCP §5.8).", nil, nil)
	pendingAgeDesc = prometheus.NewDesc("hall_approvals_oldest_pending_age_seconds",
		"Age of the oldest approval still waiting for an approver (0 when none).", nil, nil)
)

func (c approvalCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pendingDesc
	ch <- pendingAgeDesc
}

func (c approvalCollector) Collect(ch chan<- prometheus.Metric) {
	var n int
	var oldest float64
	if c.h.Policies().Approvals().Enabled {
		count, age, err := c.h.PendingApprovals(context.Background())
		if err != nil {
			ch <- prometheus.NewInvalidMetric(pendingDesc, err)
			return
		}
		n, oldest = count, age.Seconds()
	}
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(pendingAgeDesc, prometheus.GaugeValue, oldest)
}

// decodeStrict decodes a JSON object into v, refusing unknown fields.
func decodeStrict(body []byte, v any, shape string) *apiError {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errf(http.StatusUnprocessableEntity, CodeInvalidRequest, "the body must be "+shape+": "+err.Error())
	}
	return nil
}
