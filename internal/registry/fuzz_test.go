package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func FuzzValidateRecord(f *testing.F) {
	for _, s := range []string{
		goodRecord("org.acme.w", "wrk.a", ""),
		goodRecord("x.me.w", "wrk.a", `,"privilege_envelope":{"network_egress":["a.example:443"],"egress":{"allowlist":["a"],"v":1},"z":{}},"attestation":{"code_hash":"`+hexA+`","k":2},"limits":{"timeout_ms":1,"q":[]},"blast_radius":{"data":5,"reversibility":"reversible","n":null},"entrypoints":{"cap.doc.summarize":"run"},"x_vendor":{"a":[1,2.5e3]}`),
		`{}`,
		`{"worker_id":5}`,
		`[]`,
		`{"worker_id":"org.a.b","worker_species_id":"wrk.a","capabilities":["cap.a"],"risk_tier":"low","privilege_envelope":{"network_egress":"none"},"currently_implements":["ctrl.a\n"]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := Validate(data)
		if err != nil {
			var re *RecordError
			if rec != nil || !errors.As(err, &re) || len(re.Problems) == 0 {
				t.Fatalf("rejection %v (%T) without problems", err, err)
			}
			return
		}
		b, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("accepted record does not encode: %v", err)
		}
		again, err := Validate(b)
		if err != nil {
			t.Fatalf("re-encoded record %s rejected: %v", b, err)
		}
		b2, err := json.Marshal(again)
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("round trip unstable:\n%s\n%s", b, b2)
		}
		New().Enroll(again)
	})
}
