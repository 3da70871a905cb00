package registry

import (
	"context"
	"slices"

	"github.com/wcphall/hall/host/wcp"
)

// StockPrivilegePolicy is PyHall's stock privilege check
// (policy_allows_privilege, BEHAVIOUR.md §5.4): only for prod/edge traffic
// labelled RESTRICTED, every destination of the envelope's legacy
// egress.allowlist must be in the env's allow-list, and a non-empty
// destination list with no allow-list configured for the env is denied.
// Everything else is allowed.
type StockPrivilegePolicy struct {
	// EgressAllowlist maps an env to the destinations allowed in it.
	EgressAllowlist map[string][]string
}

// AllowsPrivilege implements router.PrivilegePolicy.
func (p StockPrivilegePolicy) AllowsPrivilege(_ context.Context, env, dataLabel string, envelope *wcp.PrivilegeEnvelope) (bool, string, error) {
	if (env != "prod" && env != "edge") || dataLabel != "RESTRICTED" {
		return true, "stub_allow", nil
	}
	var dests []string
	if envelope != nil && envelope.Egress != nil {
		dests = envelope.Egress.Allowlist
	}
	if len(dests) == 0 {
		return true, "stub_allow", nil
	}
	allowed := p.EgressAllowlist[env]
	if len(allowed) == 0 {
		return false, "egress_denied_no_allowlist_configured", nil
	}
	for _, d := range dests {
		if !slices.Contains(allowed, d) {
			return false, "egress_not_allowlisted:" + d, nil
		}
	}
	return true, "stub_allow", nil
}
