package router

import "slices"

// Routes reports whether some rule matches capability (in any env, data
// label, tenant risk and QoS class) and lists species among its candidates:
// whether a worker of the species can ever be routed the capability.
func (rs *RuleSet) Routes(capability, species string) bool {
	found := false
	rs.capabilityRules(capability, func(r *Rule) bool {
		found = slices.ContainsFunc(r.cands, func(c candidate) bool { return c.species == species })
		return !found
	})
	return found
}
