package wcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func FuzzParseRouteInput(f *testing.F) {
	for _, s := range []string{
		validInput,
		`{}`,
		`null`,
		`{"capability_id":"cap.doc.summarize","env":"prod","data_label":"INTERNAL","tenant_risk":"medium","qos_class":"P1","tenant_id":"acme","correlation_id":"550e8400-e29b-41d4-a716-446655440000","request":{"text":"h\u00e9llo \u2028 \ud83d\ude00 \"q\" \\ / <&>","n":1.5,"e":1e16,"small":1e-5,"big":100000000000000000000,"list":[1,2.0,null,true],"nested":{"b":1,"a":"x"}},"blast_score":"+5_0","blast_radius":{"data":1},"privilege_context":{},"dry_run":"Yes","tenant_credential":"tok"}`,
		`{"capability_id":1,"env":"DEV","data_label":"PUBLIC","tenant_risk":"low","qos_class":"P9","tenant_id":" ","correlation_id":"c","blast_score":true,"dry_run":"nah","request":null}`,
		`{"capability_id":"c","env":"dev","data_label":"PUBLIC","tenant_risk":"low","qos_class":"P2","tenant_id":"t","correlation_id":"","request":{"a":{"a":{"a":[[[]]]}}},"blast_score":-0.0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseRouteInput(data)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || len(ie.Problems) == 0 || len(ie.Fields()) == 0 {
				t.Fatalf("error %v (%T) lists no field", err, err)
			}
			return
		}
		if err := in.Validate(); err != nil {
			t.Fatalf("accepted input fails Validate: %v", err)
		}
		c1, err := in.Canonical(nil)
		if err != nil {
			t.Fatalf("Canonical: %v", err)
		}
		c2, _ := in.Canonical(nil)
		if !bytes.Equal(c1, c2) || !json.Valid(c1) {
			t.Fatalf("canonical unstable or invalid:\n%s\n%s", c1, c2)
		}
		back, err := ParseRouteInput(c1)
		if err != nil {
			t.Fatalf("canonical %s does not re-parse: %v", c1, err)
		}
		c3, _ := back.Canonical(nil)
		if !bytes.Equal(c1, c3) {
			t.Fatalf("canonical changed on re-parse:\n%s\n%s", c1, c3)
		}
		// The hand-written canonical appender agrees with the engine
		// (RATIONALE.md, "One canonical JSON engine").
		if dump, err := json.Marshal(in); err == nil {
			if viaEngine, err := CanonicalJSON(dump); err != nil || !bytes.Equal(c1, viaEngine) {
				t.Fatalf("Canonical and CanonicalJSON(MarshalJSON) disagree (%v):\n%s\n%s", err, c1, viaEngine)
			}
		}
		h1, _ := in.RequestHash()
		h2, _ := back.RequestHash()
		if h1 != h2 {
			t.Fatal("request hash changed on re-parse")
		}
		// The model dump re-parses to the same input too.
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatalf("MarshalJSON: %v", err)
		}
		again, err := ParseRouteInput(b)
		if err != nil {
			t.Fatalf("dump %s does not re-parse: %v", b, err)
		}
		if c4, _ := again.Canonical(nil); !bytes.Equal(c1, c4) {
			t.Fatalf("dump round trip changed the canonical form:\n%s\n%s", c1, c4)
		}
	})
}
