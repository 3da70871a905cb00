package server

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/approval"
)

// The console's pending approvals, listed fairly between tenants (issue
// 25: 110 held requests of one tenant pushed another tenant's pending
// approval out of a list of the newest 100). The page shows every tenant
// that has pending approvals, with its count and the oldest's age, and
// the newest few of each; ?tenant= pages through one tenant's, all of
// them, pendingPageSize at a time.
const (
	pendingPerTenant = 5
	pendingPageSize  = 20
	// maxTenantsShown bounds the tenants listed with their approvals on
	// one page; the counts of all are shown.
	maxTenantsShown = 50
)

// tenantGroup is one tenant's pending approvals on the page.
type tenantGroup struct {
	TenantID string
	Pending  int
	Oldest   time.Time
	Items    []approvalView
	// More is how many of its pending approvals are not on the page.
	More int
	// Link pages through all of them.
	Link string
}

// pendingData is what approvals.html shows.
type pendingData struct {
	// Total is the number of approvals pending, all tenants.
	Total   int
	Tenants []tenantGroup
	// Tenant, Page, Pages, Prev and Next: the one tenant being paged
	// through ("" when none).
	Tenant      string
	Page, Pages int
	Prev, Next  string
	Recent      []approval.Approval
}

func (c *console) pending(ctx context.Context, q url.Values) (pendingData, error) {
	var d pendingData
	counts, err := c.s.h.PendingByTenant(ctx)
	if err != nil {
		return d, err
	}
	for _, n := range counts {
		d.Total += n.Pending
	}
	// Only a tenant that has pending approvals is paged through: the
	// page never echoes a tenant id the URL made up.
	t := q.Get("tenant")
	known := false
	for _, n := range counts {
		known = known || n.TenantID == t
	}
	if known {
		d.Tenant = t
		d.Page = 1
		if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 1 {
			d.Page = n
		}
		g := tenantGroup{TenantID: t}
		for _, n := range counts {
			if n.TenantID == t {
				g.Pending, g.Oldest = n.Pending, n.Oldest
			}
		}
		d.Pages = max(1, (g.Pending+pendingPageSize-1)/pendingPageSize)
		if d.Page > d.Pages {
			d.Page = d.Pages
		}
		list, err := c.s.h.Approvals(ctx, host.ApprovalFilter{State: approval.Pending, TenantID: t, Limit: pendingPageSize, Offset: (d.Page - 1) * pendingPageSize})
		if err != nil {
			return d, err
		}
		g.Items = c.views(list)
		if d.Page > 1 {
			d.Prev = pageLink(t, d.Page-1)
		}
		if d.Page < d.Pages {
			d.Next = pageLink(t, d.Page+1)
		}
		d.Tenants = []tenantGroup{g}
		return d, nil
	}
	for i, n := range counts {
		g := tenantGroup{TenantID: n.TenantID, Pending: n.Pending, Oldest: n.Oldest, Link: pageLink(n.TenantID, 1)}
		if i < maxTenantsShown {
			list, err := c.s.h.Approvals(ctx, host.ApprovalFilter{State: approval.Pending, TenantID: n.TenantID, Limit: pendingPerTenant})
			if err != nil {
				return d, err
			}
			g.Items = c.views(list)
		}
		g.More = max(0, g.Pending-len(g.Items))
		d.Tenants = append(d.Tenants, g)
	}
	return d, nil
}

func (c *console) views(list []approval.Approval) []approvalView {
	out := make([]approvalView, 0, len(list))
	for _, a := range list {
		v := approvalView{Approval: a}
		if rec, ok := c.s.h.Registry().Record(a.WorkerID); ok {
			v.Record = rec
		}
		out = append(out, v)
	}
	return out
}

func pageLink(tenant string, page int) string {
	return consolePath + "/approvals?" + url.Values{"tenant": {tenant}, "page": {strconv.Itoa(page)}}.Encode()
}
