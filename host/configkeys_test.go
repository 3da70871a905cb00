package host

import (
	"strings"
	"testing"
)

func TestUnknownConfigKey(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"known keys", `{"limits": {"memory_mb": 8}, "workers": {"org.a.b": {"pool": 1, "config": {"k": "v"}}}, "egress_allowlist": {"prod": ["a.example"]}}`, ""},
		{"case as encoding/json", `{"Limits": {"Memory_MB": 8}}`, ""},
		{"top level", `{"enforce_corelation_id": true}`, `enforce_corelation_id: unknown key; did you mean "enforce_correlation_id"?`},
		{"in limits", `{"limits": {"memroy_mb": 8}}`, `limits.memroy_mb: unknown key; did you mean "limits.memory_mb"? (keys of limits: `},
		{"in a worker", `{"workers": {"org.a.b": {"reuse_instance": true}}}`, `workers["org.a.b"].reuse_instance: unknown key; did you mean "workers[\"org.a.b\"].reuse_instances"?`},
		{"not JSON is the decoder's", `{`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := unknownConfigKey([]byte(tc.doc))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}
