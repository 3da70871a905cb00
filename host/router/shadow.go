package router

import (
	"encoding/json"
	"fmt"

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
func DetectShadows(rules []*Rule) []Shadow {
	var out []Shadow
	for i, early := range rules {
		for _, late := range rules[i+1:] {
			e, l := early.match, late.match
			if pyval.Equal(e, l) {
				if early.ID != late.ID {
					out = append(out, Shadow{early.ID, late.ID, fmt.Sprintf("identical match conditions: rule %q can never be reached", late.ID)})
				}
				continue
			}
			if subsumes(e, l) {
				eb, _ := json.Marshal(e)
				lb, _ := json.Marshal(l)
				out = append(out, Shadow{early.ID, late.ID, fmt.Sprintf("rule %q (match %s) matches every input rule %q (match %s) does, and comes first: %q is unreachable", early.ID, eb, late.ID, lb, late.ID)})
			}
		}
	}
	return out
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
