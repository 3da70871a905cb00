package host

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/approval"
	"github.com/wcphall/hall/internal/ledger"
)

// QuotasConfig is the "quotas" block of hall.json: bounds on what callers
// create that bear on decisions, so they are part of the sealed snapshot
// (its configuration digest covers them). The server's own bounds
// (sessions, sign-in attempts) are flags of hall serve (server.Quotas).
type QuotasConfig struct {
	// PendingApprovalsPerTenant is how many approvals one tenant may have
	// waiting for a human (0: DefaultPendingApprovalsPerTenant; -1: no
	// bound). A request held beyond it is denied, no approval is created,
	// and Run returns a *QuotaError of code APPROVAL_QUOTA with the
	// recorded decision (issue 25: one tenant made 200 pending approvals
	// in 3 s, each a signed change).
	PendingApprovalsPerTenant int `json:"pending_approvals_per_tenant,omitempty"`
}

// DefaultPendingApprovalsPerTenant is QuotasConfig's default bound.
const DefaultPendingApprovalsPerTenant = 50

func (q QuotasConfig) check() error {
	if q.PendingApprovalsPerTenant < -1 {
		return fmt.Errorf("quotas.pending_approvals_per_tenant: %d is out of range; give how many approvals one tenant may have pending, at least 1 (0 or absent: %d; -1: no bound)", q.PendingApprovalsPerTenant, DefaultPendingApprovalsPerTenant)
	}
	return nil
}

// pendingBound is the bound in force (0: none).
func (q QuotasConfig) pendingBound() int {
	switch n := q.PendingApprovalsPerTenant; {
	case n == 0:
		return DefaultPendingApprovalsPerTenant
	case n < 0:
		return 0
	default:
		return n
	}
}

// QuotaError is a request refused because its caller reached a quota.
// Its Code (APPROVAL_QUOTA) says which; the message says the bound and
// how to raise it.
type QuotaError struct {
	QuotaCode wcp.Code
	Msg       string
}

func (e *QuotaError) Error() string { return string(e.QuotaCode) + ": " + e.Msg }

// Code returns the quota's code.
func (e *QuotaError) Code() wcp.Code { return e.QuotaCode }

// boundedApprovals is a store that creates an approval only under a
// tenant's bound of pending approvals, atomically (ledger.SQLite).
type boundedApprovals interface {
	CreateApprovalBounded(ctx context.Context, a *approval.Approval, actor string, maxPending int) error
}

// approvalQuota turns the ledger's refusal into the decision's denial
// message and the Run error.
func approvalQuota(dec *wcp.RouteDecision, err error) error {
	var qe *ledger.ApprovalQuotaError
	if !errors.As(err, &qe) {
		return nil
	}
	msg := "The policy gate requires a human approval, but tenant " + qe.TenantID + " already has " + strconv.Itoa(qe.Pending) +
		" approvals pending, its maximum (hall.json quotas.pending_approvals_per_tenant = " + strconv.Itoa(qe.Bound) +
		"): no approval was created and nothing ran. Wait for approvers to answer or for pending approvals to expire, then submit again."
	dec.DenyReason.Message = msg
	if len(dec.TelemetryEnvelopes) > 0 {
		dec.TelemetryEnvelopes[0].DenyMessage = msg
	}
	return &QuotaError{QuotaCode: wcp.CodeApprovalQuota, Msg: msg}
}

// TenantPending is how many approvals of one tenant wait for a human, and
// when the oldest was requested.
type TenantPending = ledger.PendingCount

// pendingCounter is a store that counts pending approvals per tenant
// (ledger.SQLite).
type pendingCounter interface {
	PendingApprovalsByTenant(ctx context.Context, now time.Time) ([]ledger.PendingCount, error)
}

// PendingByTenant returns, for each tenant with approvals waiting for a
// human, how many and the oldest's time, by tenant id: what a console
// shows so that no tenant's many requests hide another's (issue 25).
func (h *Hall) PendingByTenant(ctx context.Context) ([]TenantPending, error) {
	if h.isClosed() {
		return nil, ErrClosed
	}
	st, err := h.approvals()
	if err != nil {
		return nil, err
	}
	pc, ok := st.(pendingCounter)
	if !ok {
		return nil, fmt.Errorf("approvals: the evidence store (%T) does not count pending approvals per tenant", st)
	}
	return pc.PendingApprovalsByTenant(ctx, time.Now())
}
