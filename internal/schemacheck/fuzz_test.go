package schemacheck

import (
	"encoding/json"
	"testing"
)

// FuzzMeta: any JSON value, checked as a schema against the meta-schema
// and compiled, never panics, and Check reports problems exactly when the
// library refuses the value.
func FuzzMeta(f *testing.F) {
	for _, s := range []string{
		`{"type":"object","properties":{"a":{"type":"string","pattern":"^x"}},"required":["a"]}`,
		`{"type":5}`, `true`, `"object"`, `{"$defs":{"a":{}},"$ref":"#/$defs/a"}`,
		`{"anyOf":[{"type":"string"},{"minItems":-1}],"not":{"const":1}}`,
		`{"$ref":"https://json-schema.org/draft/2020-12/schema"}`,
		`{"$dynamicRef":"#meta","items":[{}]}`,
	} {
		f.Add([]byte(s))
	}
	m, err := Meta()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v any
		if json.Unmarshal(data, &v) != nil {
			return
		}
		probs := m.Check(v)
		valid := m.rs.Validate(v) == nil
		if valid != (len(probs) == 0) {
			t.Fatalf("library says valid=%v, Check says %q", valid, probs)
		}
		_, _ = Compile(data)
	})
}
