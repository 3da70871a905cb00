package host

import (
	"maps"
	"slices"
)

// What the Hall's accessors hand out is the caller's: a Hall decides with
// values no caller holds, so changing anything an accessor returned
// changes no later decision or dispatch (TestPublicValuesCannotChangeTheHall).
// Values are deep copies (clone below) or views with no exported way to
// change what they show (Catalog, Evidence, policy.Set).

// clone returns a copy of c that shares no map, slice or pointer with it.
func (c Config) clone() Config {
	out := c
	out.AllowedTenants = slices.Clone(c.AllowedTenants)
	out.HTTP.CORSOrigins = slices.Clone(c.HTTP.CORSOrigins)
	out.EnforceCorrelationID = cloneBool(c.EnforceCorrelationID)
	out.EnforceRequiredControls = cloneBool(c.EnforceRequiredControls)
	out.EnforceBlastScoringInProd = cloneBool(c.EnforceBlastScoringInProd)
	if c.EgressAllowlist != nil {
		out.EgressAllowlist = make(map[string][]string, len(c.EgressAllowlist))
		for env, hosts := range c.EgressAllowlist {
			out.EgressAllowlist[env] = slices.Clone(hosts)
		}
	}
	if c.Workers != nil {
		out.Workers = make(map[string]WorkerSettings, len(c.Workers))
		for id, ws := range c.Workers {
			ws.Config = maps.Clone(ws.Config)
			out.Workers[id] = ws
		}
	}
	if c.Chain.BlastThresholds != nil {
		out.Chain.BlastThresholds = make(map[string]map[string]int, len(c.Chain.BlastThresholds))
		for env, row := range c.Chain.BlastThresholds {
			out.Chain.BlastThresholds[env] = maps.Clone(row)
		}
	}
	out.Tenants = maps.Clone(c.Tenants)
	return out
}

func cloneBool(b *bool) *bool {
	if b == nil {
		return nil
	}
	v := *b
	return &v
}
