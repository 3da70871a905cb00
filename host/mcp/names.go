package mcp

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
)

// toolNaming is the name each capability is served under, decided over the
// whole set of capabilities served at once (assignNames).
type toolNaming struct {
	// name is the tool name ("" when the capability is refused).
	name string
	// renamedFrom is ToolName's name when the capability was renamed
	// because another capability shares it; collidesWith names those.
	renamedFrom  string
	collidesWith []string
}

// longToolName is the name of a capability whose ToolName another served
// capability shares: ToolName's base shortened to 47 characters, "_" and
// the first 16 hex digits, upper-case, of the SHA-256 of the id (64 bits
// instead of 32).
func longToolName(capability string) string {
	s := strings.ReplaceAll(strings.TrimPrefix(capability, "cap."), ".", "_")
	sum := sha256.Sum256([]byte(capability))
	suffix := "_" + strings.ToUpper(hex.EncodeToString(sum[:8]))
	if len(s) > maxToolName-len(suffix) {
		s = s[:maxToolName-len(suffix)]
	}
	return s + suffix
}

// assignNames names the tools of caps so that no two share a name, whatever
// the ids (issue 25: two ids over 55 characters that share a 32-bit suffix
// were one tool, the first in sort order silently taking it):
//
//   - a capability whose base name (ToolName) no other capability of caps
//     has keeps it;
//   - capabilities that share a base name are each renamed to their long
//     name (longToolName), and the naming says from what and because of
//     which capabilities;
//   - capabilities whose final names still coincide (a 64-bit collision,
//     or a long name equal to another's base name) are all refused (name
//     ""): none silently takes another's name.
//
// The result depends on the set caps alone, never on an order: a name
// changes only when a capability that collides with it is served or
// withdrawn, and connected clients are told (tools/list_changed).
func assignNames(caps []string, base, long func(string) string) map[string]toolNaming {
	caps = slices.Clone(caps)
	slices.Sort(caps)
	caps = slices.Compact(caps)
	byBase := map[string][]string{}
	for _, c := range caps {
		n := base(c)
		byBase[n] = append(byBase[n], c)
	}
	out := make(map[string]toolNaming, len(caps))
	for n, group := range byBase {
		if len(group) == 1 {
			out[group[0]] = toolNaming{name: n}
			continue
		}
		for _, c := range group {
			others := slices.DeleteFunc(slices.Clone(group), func(o string) bool { return o == c })
			out[c] = toolNaming{name: long(c), renamedFrom: n, collidesWith: others}
		}
	}
	byName := map[string][]string{}
	for c, tn := range out {
		byName[tn.name] = append(byName[tn.name], c)
	}
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		group := byName[n]
		if len(group) < 2 {
			continue
		}
		slices.Sort(group)
		for _, c := range group {
			tn := out[c]
			tn.collidesWith = slices.Compact(slices.Sorted(slices.Values(append(tn.collidesWith, slices.DeleteFunc(slices.Clone(group), func(o string) bool { return o == c })...))))
			if tn.renamedFrom == "" {
				tn.renamedFrom = tn.name
			}
			tn.name = ""
			out[c] = tn
		}
	}
	return out
}
