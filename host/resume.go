package host

import (
	"context"

	"github.com/wcphall/hall/internal/approval"
)

// ResumeCorrelation is the correlation id under which a run presenting
// approval approvalID resumes the request held for it: the held request's
// own, when that approval exists and is tenantID's; "" otherwise (the run
// is then decided as given, and its denial says why).
//
// The request hash an approval is bound to covers the correlation id, so
// a run that drew a fresh one could never use the approval (issue 27: the
// CLI's `hall run … --approval ID` did). Front ends call it when the caller
// presents an approval and names no correlation id — the CLI without
// --correlation-id, POST /wcp/run without input.correlation_id, MCP
// without _meta.correlation_id — so that the approval id alone is the
// thing to resume. Nothing else of the request is taken from the approval:
// the capability, tenant, fields and payload still have to be the
// approved ones, and the approval is checked as for any run.
func (h *Hall) ResumeCorrelation(ctx context.Context, approvalID, tenantID string) string {
	if approval.CheckID(approvalID) != nil || h.isClosed() {
		return ""
	}
	st, err := h.approvals()
	if err != nil {
		return ""
	}
	a, err := st.Approval(ctx, approvalID)
	if err != nil || a.TenantID != tenantID {
		return ""
	}
	return a.CorrelationID
}
