package registry

import (
	"context"
	"net"
	"slices"

	"github.com/wcphall/hall/host/wcp"
)

// StockPrivilegePolicy is PyHall's stock privilege check
// (policy_allows_privilege, BEHAVIOUR.md §5.4), applied to the one
// envelope the sandbox grants: only for prod/edge traffic labelled
// RESTRICTED, every network destination of the envelope — the
// network_egress hosts the sandbox would let the worker reach, plus
// PyHall's legacy egress.allowlist — must be in the env's allow-list, and
// a non-empty destination list with no allow-list configured for the env
// is denied. An allow-list entry "host" allows that host on any port;
// "host:port" allows that port only. Unrestricted egress is never allowed
// there. Everything else is allowed.
type StockPrivilegePolicy struct {
	// EgressAllowlist maps an env to the destinations allowed in it.
	EgressAllowlist map[string][]string
}

// AllowsPrivilege implements router.PrivilegePolicy.
func (p StockPrivilegePolicy) AllowsPrivilege(_ context.Context, env, dataLabel string, envelope *wcp.PrivilegeEnvelope) (bool, string, error) {
	if (env != "prod" && env != "edge") || dataLabel != "RESTRICTED" || envelope == nil {
		return true, "stub_allow", nil
	}
	if envelope.NetworkEgress.Mode == "unrestricted" {
		return false, "egress_unrestricted", nil
	}
	var dests []string
	if envelope.Egress != nil {
		dests = envelope.Egress.Allowlist
	}
	dests = append(slices.Clip(dests), envelope.NetworkEgress.Hosts...)
	if len(dests) == 0 {
		return true, "stub_allow", nil
	}
	allowed := p.EgressAllowlist[env]
	if len(allowed) == 0 {
		return false, "egress_denied_no_allowlist_configured", nil
	}
	for _, d := range dests {
		if !egressAllowed(allowed, d) {
			return false, "egress_not_allowlisted:" + d, nil
		}
	}
	return true, "stub_allow", nil
}

// egressAllowed reports whether dest ("host" or "host:port") is covered by
// an allow-list entry: the same entry, or the bare host of dest.
func egressAllowed(allowed []string, dest string) bool {
	if slices.Contains(allowed, dest) {
		return true
	}
	host := dest
	if h, _, err := net.SplitHostPort(dest); err == nil {
		host = h
	}
	return host != dest && slices.Contains(allowed, host)
}
