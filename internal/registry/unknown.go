package registry

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// knownMembers maps the JSON path of each object of the record schema
// whose members are listed ("" for the record itself, "privilege_envelope",
// …) to those member names. It is read from the embedded schema, so the
// list cannot drift from what the schema validates.
var knownMembers = sync.OnceValue(func() map[string][]string {
	out := map[string][]string{}
	var walk func(path string, node map[string]any)
	walk = func(path string, node map[string]any) {
		props, ok := node["properties"].(map[string]any)
		if !ok {
			return
		}
		if _, open := node["additionalProperties"]; open {
			return // a map (entrypoints): any member name
		}
		if _, schema := node["$ref"]; schema {
			return // a JSON Schema of the worker's own (input_schema)
		}
		names := make([]string, 0, len(props))
		for name, sub := range props {
			names = append(names, name)
			if m, ok := sub.(map[string]any); ok {
				p := name
				if path != "" {
					p = path + "." + name
				}
				walk(p, m)
			}
		}
		slices.Sort(names)
		out[path] = names
	}
	var doc map[string]any
	if err := json.Unmarshal(recordSchemaJSON, &doc); err == nil {
		walk("", doc)
	}
	return out
})

// unknownFields reports every member of the record (and of its listed
// sub-objects) that the schema does not know, with the closest known name:
// a misspelt governance field (risk_teir) would otherwise be ignored and
// the record enrolled without it. Members named x_* or x-* are vendor
// extensions and always accepted.
func unknownFields(inst any) []Problem {
	var probs []Problem
	known := knownMembers()
	var walk func(path string, v any)
	walk = func(path string, v any) {
		obj, ok := v.(map[string]any)
		if !ok {
			return
		}
		names, listed := known[path]
		if !listed {
			return
		}
		for k, sub := range obj {
			field := k
			if path != "" {
				field = path + "." + k
			}
			if strings.HasPrefix(k, "x_") || strings.HasPrefix(k, "x-") {
				continue // a vendor extension, kept as it is
			}
			if !slices.Contains(names, k) {
				msg := "is not a registry record field"
				if s := closest(k, names); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
				if path == "" {
					msg += " (set \"allow_unknown_record_fields\": true in hall.json to ignore unknown fields, as PyHall does)"
				}
				probs = append(probs, Problem{Field: field, Message: msg})
				continue
			}
			walk(field, sub)
		}
	}
	walk("", inst)
	return probs
}

// UnknownFields returns the members of a record document the schema does
// not know, each with the closest known name (nil for a document that is
// not a JSON object). Validate reports them too, unless told to allow them.
func UnknownFields(data []byte) []Problem {
	var inst any
	if json.Unmarshal(data, &inst) != nil {
		return nil
	}
	return unknownFields(inst)
}

// closest returns the name nearest to s by edit distance (at most a third
// of its length, and at most 3), or "".
func closest(s string, names []string) string {
	best, bestD := "", min(3, max(1, len(s)/3))+1
	for _, n := range names {
		if d := editDistance(s, n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
