package schemacheck

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
)

func mustChecker(t *testing.T, doc string) *Checker {
	t.Helper()
	var s jsonschema.Schema
	if err := json.Unmarshal([]byte(doc), &s); err != nil {
		t.Fatal(err)
	}
	c, err := New(&s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func decode(t *testing.T, doc string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

type want struct{ loc, msg string } // loc joined with "/", msg a fragment

func checkProblems(t *testing.T, got []Problem, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("problems = %q, want %d: %q", got, len(wants), wants)
	}
	for i, w := range wants {
		if loc := strings.Join(got[i].Loc, "/"); loc != w.loc || !strings.Contains(got[i].Message, w.msg) {
			t.Errorf("problem[%d] = %s: %q, want %s: …%s…", i, loc, got[i].Message, w.loc, w.msg)
		}
	}
}

// TestCheck: every failure is reported at its instance location, and
// nothing is reported for a valid instance.
func TestCheck(t *testing.T) {
	c := mustChecker(t, `{
		"$id": "https://example.test/s.json",
		"type": "object",
		"required": ["id", "n"],
		"properties": {
			"id": {"type": "string", "minLength": 2, "pattern": "^[a-z]+$"},
			"n": {"type": "integer", "minimum": 1, "maximum": 5},
			"tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": true, "maxItems": 3},
			"pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]},
			"mode": {"oneOf": [{"enum": ["none"]}, {"type": "array", "items": {"$ref": "#/$defs/host"}}]},
			"any": {"anyOf": [{"type": "string"}, {"type": "boolean"}]},
			"not": {"not": {"const": "x"}},
			"map": {"type": "object", "maxProperties": 2, "propertyNames": {"maxLength": 3},
				"patternProperties": {"^wcp\\.": false}, "additionalProperties": {"type": "string"}}
		},
		"$defs": {"host": {"type": "string", "pattern": "^[a-z.]+$"}}
	}`)
	if got := c.Unsupported(); len(got) != 0 {
		t.Fatalf("unsupported: %q", got)
	}
	for _, tc := range []struct {
		name, doc string
		want      []want
	}{
		{"valid", `{"id":"ab","n":3,"tags":["a"],"pair":["x",1],"mode":["a.b"],"any":true,"not":"y","map":{"k":"v"}}`, nil},
		{"not an object", `[1]`, []want{{"", "got array, want object"}}},
		{"required", `{}`, []want{{"id", "is required"}, {"n", "is required"}}},
		{"several rules of one member", `{"id":"A","n":1}`, []want{{"id", "minLength: got 1, want 2"}, {"id", "'A' does not match pattern '^[a-z]+$'"}}},
		{"numbers", `{"id":"ab","n":7.5}`, []want{{"n", "got number, want integer"}, {"n", "maximum: got 7.5, want 5"}}},
		{"items", `{"id":"ab","n":1,"tags":["a","c","a","b"]}`, []want{{"tags", "maxItems: got 4, want 3"}, {"tags", "unique"}, {"tags/1", "value must be one of 'a', 'b'"}}},
		{"prefixItems", `{"id":"ab","n":1,"pair":[1,"x"]}`, []want{{"pair/0", "got number, want string"}, {"pair/1", "got string, want number"}}},
		{"oneOf: every alternative's reasons", `{"id":"ab","n":1,"mode":"some"}`, []want{{"mode", "value must be 'none'"}, {"mode", "got string, want array"}}},
		{"oneOf through $ref", `{"id":"ab","n":1,"mode":["a.b","A"]}`, []want{{"mode", "value must be 'none'"}, {"mode/1", "does not match pattern"}}},
		{"anyOf", `{"id":"ab","n":1,"any":3}`, []want{{"any", "want string"}, {"any", "want boolean"}}},
		{"not", `{"id":"ab","n":1,"not":"x"}`, []want{{"not", "must not match"}}},
		{"object keywords", `{"id":"ab","n":1,"map":{"wcp.x":"v","long-name":"v","k":5}}`, []want{
			{"map", "maxProperties: got 3, want 2"}, {"map/k", "got number, want string"}, {"map/long-name", "member name: maxLength: got 9, want 3"},
			{"map/wcp.x", "is not allowed"}, {"map/wcp.x", "member name: maxLength"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, c.Check(decode(t, tc.doc)), tc.want)
		})
	}
}

// TestMeta: the 2020-12 meta-schema names the place in a schema that is
// not JSON Schema.
func TestMeta(t *testing.T) {
	m, err := Meta()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Unsupported(); len(got) != 0 {
		t.Fatalf("the walk does not cover the 2020-12 meta-schemas: %q", got)
	}
	for _, tc := range []struct {
		name, doc string
		want      []want
	}{
		{"object schema", `{"type":"object","properties":{"text":{"type":"string","minLength":1}},"required":["text"],"additionalProperties":false}`, nil},
		{"boolean schema", `true`, nil},
		{"defs and refs", `{"$defs":{"a":{"type":"array","items":{"$ref":"#/$defs/b"}},"b":{"enum":[1,"x"]}},"$ref":"#/$defs/a"}`, nil},
		{"not a schema", `"object"`, []want{{"", "got string, want object or boolean"}}},
		{"nested type", `{"type":"object","properties":{"text":{"type":5}}}`, []want{
			{"properties/text/type", "value must be one of 'array', 'boolean'"}, {"properties/text/type", "got number, want array"}}},
		{"required not an array", `{"type":"object","required":"text"}`, []want{{"required", "got string, want array"}}},
		{"negative minLength", `{"items":{"minLength":-1}}`, []want{{"items/minLength", "minimum: got -1, want 0"}}},
		{"duplicate required", `{"required":["a","a"]}`, []want{{"required", "unique"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, m.Check(decode(t, tc.doc)), tc.want)
		})
	}
}

// TestCompile: a record's schema compiles when it is 2020-12 (or draft-07)
// and refers only to itself and the meta-schemas.
func TestCompile(t *testing.T) {
	for _, tc := range []struct{ name, doc, err string }{
		{"plain", `{"type":"object","properties":{"a":{"type":"string"}}}`, ""},
		{"local ref", `{"$defs":{"s":{"type":"string"}},"type":"object","properties":{"a":{"$ref":"#/$defs/s"}}}`, ""},
		{"meta-schema ref", `{"type":"object","properties":{"schema":{"$ref":"https://json-schema.org/draft/2020-12/schema"}}}`, ""},
		{"draft-07", `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object"}`, ""},
		{"remote ref", `{"$ref":"https://example.test/other.json"}`, "may not reference https://example.test/other.json"},
		{"file ref", `{"$ref":"file:///etc/passwd"}`, "may not reference file:///etc/passwd"},
		{"other draft", `{"$schema":"http://json-schema.org/draft-04/schema#"}`, "only JSON Schema 2020-12"},
		{"bad pattern", `{"pattern":"("}`, "missing closing )"},
		{"missing def", `{"$ref":"#/$defs/x"}`, `"x"`},
		{"not JSON Schema", `{"type":5}`, "not a JSON Schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Compile([]byte(tc.doc))
			if tc.err == "" {
				if err != nil || rs == nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want one containing %q", err, tc.err)
			}
		})
	}
	rs, err := Compile([]byte(`{"type":"object","properties":{"schema":{"$ref":"https://json-schema.org/draft/2020-12/schema"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.Validate(decode(t, `{"schema":{"type":"object"}}`)); err != nil {
		t.Errorf("a schema member that is a schema: %v", err)
	}
	if err := rs.Validate(decode(t, `{"schema":{"type":5}}`)); err == nil {
		t.Error("a schema member that is not a schema was accepted")
	}
}

// TestCheckConcurrent: one Checker serves many goroutines (go test -race).
func TestCheckConcurrent(t *testing.T) {
	m, err := Meta()
	if err != nil {
		t.Fatal(err)
	}
	v := decode(t, `{"type":"object","properties":{"text":{"type":5}}}`)
	done := make(chan []Problem)
	for range 4 {
		go func() { done <- m.Check(v) }()
	}
	first := <-done
	for range 3 {
		if got := <-done; !slices.EqualFunc(got, first, func(a, b Problem) bool {
			return a.Message == b.Message && slices.Equal(a.Loc, b.Loc)
		}) {
			t.Errorf("%q != %q", got, first)
		}
	}
}
