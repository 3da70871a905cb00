package registry

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateRefusesUnknownFieldsWithSuggestion(t *testing.T) {
	cases := []struct {
		name, doc, field, want string
	}{
		{"top-level typo", `{"worker_id":"org.a.w","worker_species_id":"wrk.a","capabilities":["cap.a"],"risk_tier":"low","risk_teir":"low"}`,
			"risk_teir", `did you mean "risk_tier"?`},
		{"envelope typo", `{"worker_id":"org.a.w","worker_species_id":"wrk.a","capabilities":["cap.a"],"risk_tier":"low","privilege_envelope":{"filesystem_write":["/tmp"]}}`,
			"privilege_envelope.filesystem_write", `did you mean "filesystem_writes"?`},
		{"unrelated name", `{"worker_id":"org.a.w","worker_species_id":"wrk.a","capabilities":["cap.a"],"risk_tier":"low","zzzzzzzz":1}`,
			"zzzzzzzz", "allow_unknown_record_fields"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate([]byte(tc.doc))
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a RecordError", err)
			}
			found := false
			for _, p := range re.Problems {
				if p.Field == tc.field && strings.Contains(p.Message, tc.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("problems %v lack %s: ...%s", re.Problems, tc.field, tc.want)
			}
			if _, err := ValidateWith([]byte(tc.doc), Options{AllowUnknownFields: true}); err != nil {
				t.Fatalf("lenient: %v", err)
			}
		})
	}
}

func TestValidateAcceptsVendorExtensions(t *testing.T) {
	doc := `{"worker_id":"org.a.w","worker_species_id":"wrk.a","capabilities":["cap.a"],"risk_tier":"low","x_team":"search",
	  "privilege_envelope":{"network_egress":"none","x_reviewed":true}}`
	if _, err := Validate([]byte(doc)); err != nil {
		t.Fatalf("x_ members refused: %v", err)
	}
}

func TestValidateAcceptsWorkerSchemasAndEntrypointMaps(t *testing.T) {
	doc := `{"worker_id":"org.a.w","worker_species_id":"wrk.a","capabilities":["cap.a"],"risk_tier":"low",
	  "entrypoints":{"cap.a":"run"},
	  "input_schema":{"type":"object","properties":{"anything":{"type":"string"}},"additionalProperties":false}}`
	if _, err := Validate([]byte(doc)); err != nil && strings.Contains(err.Error(), "not a registry record field") {
		t.Fatalf("a worker's own schema or an entrypoint map was checked for record fields: %v", err)
	}
}
