package registry

import (
	"strings"
	"testing"
)

// TestValidateToolSchemas checks the Hall's MCP extensions of a record at
// enrollment: description, input_schema (an object JSON Schema) and
// output_schema (any JSON Schema), each checked against the JSON Schema
// 2020-12 metaschema.
func TestValidateToolSchemas(t *testing.T) {
	base := `"worker_id":"org.acme.tool","worker_species_id":"wrk.acme.tool","capabilities":["cap.acme.tool"],"risk_tier":"low"`
	for _, tc := range []struct {
		name, members, field string
	}{
		{"valid", `"description":"Summarizes text.","input_schema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]},"output_schema":{"type":"object"}`, ""},
		{"input not an object schema", `"input_schema":{"type":"string"}`, "input_schema.type"},
		{"input without type", `"input_schema":{"properties":{}}`, "input_schema.type"},
		{"input not a schema", `"input_schema":{"type":"object","properties":{"text":{"type":5}}}`, "input_schema.properties.text.type"},
		{"output not a schema", `"output_schema":{"type":"object","required":"text"}`, "output_schema.required"},
		{"output not an object", `"output_schema":"object"`, "output_schema"},
		{"description not a string", `"description":7`, "description"},
		{"input pattern not a Go regexp", `"input_schema":{"type":"object","properties":{"a":{"type":"string","pattern":"(?<=x)a"}}}`, "input_schema"},
		{"output refers elsewhere", `"output_schema":{"$ref":"https://example.test/other.json"}`, "output_schema"},
		{"output of another draft", `"output_schema":{"$schema":"http://json-schema.org/draft-04/schema#","type":"object"}`, "output_schema"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := Validate([]byte("{" + base + "," + tc.members + "}"))
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if rec.Description != "Summarizes text." || len(rec.InputSchema) == 0 || len(rec.OutputSchema) == 0 {
					t.Fatalf("members not kept: %+v", rec)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			re, ok := err.(*RecordError)
			if !ok {
				t.Fatalf("error %T %v", err, err)
			}
			found := false
			for _, p := range re.Problems {
				found = found || p.Field == tc.field
			}
			if !found {
				t.Fatalf("no problem names %s: %v", tc.field, err)
			}
			if strings.Contains(err.Error(), "panic") {
				t.Fatal(err)
			}
		})
	}
}

// TestRecordSchemaCovered: the walk that locates problems follows every
// keyword of the record schema, and the members that are JSON Schemas are
// the ones checked against the meta-schema.
func TestRecordSchemaCovered(t *testing.T) {
	rs, err := recordSchema()
	if err != nil {
		t.Fatal(err)
	}
	if u := rs.check.Unsupported(); len(u) != 0 {
		t.Errorf("keywords the walk does not follow: %q", u)
	}
	if got := strings.Join(rs.schemaMembers, ","); got != "input_schema,output_schema" {
		t.Errorf("schema members = %s", got)
	}
}
