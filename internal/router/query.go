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

// CapabilityRuleIDs returns the ids of the rules whose capability
// condition can hold for capability, in file order: the rules that could
// route it, whatever the rest of the request.
func (rs *RuleSet) CapabilityRuleIDs(capability string) []string {
	var ids []string
	for _, r := range rs.Rules {
		if r.conds[0].matches(capability) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}
