package router

import "github.com/wcphall/hall/host/wcp"

// capIndex finds the first matching rule without testing every rule: a
// rule whose capability_id condition is an exact string or an "in" list
// can only match requests for those capabilities, so it is listed under
// each of them; every other rule that can match at all (no capability
// condition, null, {"any": true}) is a wildcard. Rules whose capability
// condition never holds ({"eq": ...}, a number, {"any": false}, an "in"
// list without strings) are in no list, since the linear scan never picks
// them either.
//
// Both lists hold positions in RuleSet.Rules in ascending order, so
// walking them merged by position tests exactly the rules the linear scan
// could pick, in file order (WCP §5.1, PyHall's first match), and returns
// the same rule. A request costs one map lookup plus the rules listed
// under its capability and the wildcards, whatever the size of the file.
type capIndex struct {
	byCap map[string][]int32
	wild  []int32
	n     int // len(RuleSet.Rules) when built; see (*RuleSet).firstMatch
}

func newCapIndex(rules []*Rule) *capIndex {
	ix := &capIndex{byCap: map[string][]int32{}, n: len(rules)}
	for i, r := range rules {
		pos := int32(i)
		c := &r.conds[0]
		switch c.kind {
		case condAny:
			ix.wild = append(ix.wild, pos)
		case condEq:
			ix.byCap[c.eq] = append(ix.byCap[c.eq], pos)
		case condIn:
			for _, s := range c.set {
				list := ix.byCap[s]
				if len(list) > 0 && list[len(list)-1] == pos {
					continue // a value listed twice in the same "in"
				}
				ix.byCap[s] = append(list, pos)
			}
		}
	}
	return ix
}

// firstMatch returns the first rule, in file order, that matches in, or
// nil when none does: PyHall's route_first_match.
func (rs *RuleSet) firstMatch(in *wcp.RouteInput) *Rule {
	ix := rs.index
	if ix == nil || ix.n != len(rs.Rules) {
		// Not built by Compile, or Rules changed since: the index no longer
		// describes the rules, and the scan is always right.
		return rs.firstMatchLinear(in)
	}
	exact, wild := ix.byCap[in.CapabilityID], ix.wild
	for len(exact) > 0 || len(wild) > 0 {
		var pos int32
		if len(wild) == 0 || (len(exact) > 0 && exact[0] < wild[0]) {
			pos, exact = exact[0], exact[1:]
		} else {
			pos, wild = wild[0], wild[1:]
		}
		if r := rs.Rules[pos]; r.Matches(in) {
			return r
		}
	}
	return nil
}

// firstMatchLinear is the reference the index must agree with: every rule,
// in order.
func (rs *RuleSet) firstMatchLinear(in *wcp.RouteInput) *Rule {
	for _, r := range rs.Rules {
		if r.Matches(in) {
			return r
		}
	}
	return nil
}

// capabilityRules calls f with every rule whose capability condition can
// hold for capability, in no particular order, until f returns false.
func (rs *RuleSet) capabilityRules(capability string, f func(*Rule) bool) {
	ix := rs.index
	if ix == nil || ix.n != len(rs.Rules) {
		for _, r := range rs.Rules {
			if r.conds[0].matches(capability) && !f(r) {
				return
			}
		}
		return
	}
	for _, list := range [2][]int32{ix.byCap[capability], ix.wild} {
		for _, pos := range list {
			if !f(rs.Rules[pos]) {
				return
			}
		}
	}
}
