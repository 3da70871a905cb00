package router

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/wcphall/hall/internal/pyval"
)

// Shadow reports that rule Shadower matches every input rule Shadowed
// matches, and comes first, so Shadowed is never reached.
type Shadow struct {
	Shadower string `json:"shadower"`
	Shadowed string `json:"shadowed"`
	Reason   string `json:"reason"`
}

var anyTrue = map[string]any{"any": true}

// DetectShadows runs PyHall's detect_shadow_rules over every ordered pair of
// rules (early before late): identical match conditions with different
// ids, or an early match that covers the late one key by key. Keys the
// matcher ignores still count, and Python's equality applies (1 == true).
//
// # Notes
//
// A pair can only be reported when every key the early rule sets to a
// string is set to that same string in the late rule (neither identical
// nor covering otherwise), so an early rule with such a key is compared
// only with the later rules that share it. The output is the same as
// comparing every pair, in the same order; 10,000 rules with distinct
// capabilities compile in milliseconds instead of about a minute.
func DetectShadows(rules []*Rule) []Shadow {
	var out []Shadow
	post := stringPostings(rules)
	for i, early := range rules {
		lates, narrowed := post.after(early, i)
		if !narrowed {
			for _, late := range rules[i+1:] {
				out = shadowPair(out, early, late)
			}
			continue
		}
		for _, j := range lates {
			out = shadowPair(out, early, rules[j])
		}
	}
	return out
}

// shadowPair appends the warning PyHall gives for early before late, if
// any.
func shadowPair(out []Shadow, early, late *Rule) []Shadow {
	e, l := early.match, late.match
	if pyval.Equal(e, l) {
		if early.ID != late.ID {
			out = append(out, Shadow{early.ID, late.ID, fmt.Sprintf("identical match conditions: rule %q can never be reached", late.ID)})
		}
		return out
	}
	if subsumes(e, l) {
		eb, _ := json.Marshal(e)
		lb, _ := json.Marshal(l)
		out = append(out, Shadow{early.ID, late.ID, fmt.Sprintf("rule %q (match %s) matches every input rule %q (match %s) does, and comes first: %q is unreachable", early.ID, eb, late.ID, lb, late.ID)})
	}
	return out
}

// postings lists, for each match key and string value, the positions of
// the rules whose match sets that key to that string, ascending.
type postings map[string]map[string][]int32

func stringPostings(rules []*Rule) postings {
	p := postings{}
	for i, r := range rules {
		for k, v := range r.match {
			s, ok := v.(string)
			if !ok {
				continue
			}
			if p[k] == nil {
				p[k] = map[string][]int32{}
			}
			p[k][s] = append(p[k][s], int32(i))
		}
	}
	return p
}

// after returns the positions after i of the rules that share early's
// rarest string-valued key; narrowed is false when early has none (every
// later rule is a candidate).
func (p postings) after(early *Rule, i int) (lates []int32, narrowed bool) {
	for k, v := range early.match {
		s, ok := v.(string)
		if !ok {
			continue
		}
		list := p[k][s]
		if !narrowed || len(list) < len(lates) {
			lates, narrowed = list, true
		}
	}
	start, _ := slices.BinarySearch(lates, int32(i)+1)
	return lates[start:], narrowed
}

func subsumes(e, l map[string]any) bool {
	keys := make(map[string]bool, len(e)+len(l))
	for k := range e {
		keys[k] = true
	}
	for k := range l {
		keys[k] = true
	}
	for k := range keys {
		ev, lv := e[k], l[k]
		if lv == nil {
			if ev != nil && !pyval.Equal(ev, anyTrue) {
				return false
			}
			continue
		}
		if !covers(ev, lv) {
			return false
		}
	}
	return true
}

// covers reports whether early condition e accepts everything late
// condition l accepts, as PyHall judges it.
func covers(e, l any) bool {
	if e == nil {
		return true
	}
	em, isObj := e.(map[string]any)
	if isObj {
		if b, ok := em["any"].(bool); ok && b {
			return true
		}
	}
	if pyval.Equal(e, l) {
		return true
	}
	if !isObj {
		return false
	}
	in, has := em["in"]
	if !has {
		return false
	}
	set, _ := in.([]any) // non-list operands are refused at compile time
	contains := func(x any) bool {
		for _, s := range set {
			if pyval.Equal(s, x) {
				return true
			}
		}
		return false
	}
	switch lx := l.(type) {
	case string:
		return contains(lx)
	case map[string]any:
		lin, has := lx["in"]
		if !has {
			return false
		}
		llist, _ := lin.([]any)
		for _, x := range llist {
			if !contains(x) {
				return false
			}
		}
		return true
	}
	return false
}
