package router

import "slices"

// Routes reports whether some rule matches capability (in any env, data
// label, tenant risk and QoS class) and lists species among its candidates:
// whether a worker of the species can ever be routed the capability.
func (rs *RuleSet) Routes(capability, species string) bool {
	for _, r := range rs.Rules {
		if r.conds[0].matches(capability) && slices.Contains(r.Species(), species) {
			return true
		}
	}
	return false
}
