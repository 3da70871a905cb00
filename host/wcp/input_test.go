package wcp

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

const validInput = `{"capability_id":"cap.hello.greet","env":"dev","data_label":"PUBLIC","tenant_risk":"low","qos_class":"P2","tenant_id":"t","correlation_id":"c-1"}`

// withField returns validInput with key set to the raw JSON value (or
// removed when raw is "").
func withField(t *testing.T, key, raw string) []byte {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(validInput), &m); err != nil {
		t.Fatal(err)
	}
	if raw == "" {
		delete(m, key)
	} else {
		m[key] = json.RawMessage(raw)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseRouteInputErrors(t *testing.T) {
	cases := []struct {
		name   string
		doc    []byte
		fields []string
	}{
		{"not JSON", []byte(`{"env":`), []string{"(document)"}},
		{"not an object", []byte(`["dev"]`), []string{"(document)"}},
		{"null document", []byte(`null`), []string{"(document)"}},
		{"everything missing", []byte(`{}`), []string{"capability_id", "correlation_id", "data_label", "env", "qos_class", "tenant_id", "tenant_risk"}},
		{"missing env", withField(t, "env", ""), []string{"env"}},
		{"missing correlation id", withField(t, "correlation_id", ""), []string{"correlation_id"}},
		{"uppercase env", withField(t, "env", `"DEV"`), []string{"env"}},
		{"env with trailing space", withField(t, "env", `"dev "`), []string{"env"}},
		{"critical tenant risk", withField(t, "tenant_risk", `"critical"`), []string{"tenant_risk"}},
		{"lowercase data label", withField(t, "data_label", `"public"`), []string{"data_label"}},
		{"qos P4", withField(t, "qos_class", `"P4"`), []string{"qos_class"}},
		{"capability a number", withField(t, "capability_id", `123`), []string{"capability_id"}},
		{"tenant a number", withField(t, "tenant_id", `123`), []string{"tenant_id"}},
		{"empty tenant", withField(t, "tenant_id", `""`), []string{"tenant_id"}},
		{"whitespace tenant", withField(t, "tenant_id", `"  \t"`), []string{"tenant_id"}},
		{"file separator tenant", withField(t, "tenant_id", `"\u001c"`), []string{"tenant_id"}},
		{"nbsp tenant", withField(t, "tenant_id", `"\u00a0"`), []string{"tenant_id"}},
		{"request null", withField(t, "request", `null`), []string{"request"}},
		{"request array", withField(t, "request", `[1]`), []string{"request"}},
		{"blast_radius string", withField(t, "blast_radius", `"big"`), []string{"blast_radius"}},
		{"privilege_context array", withField(t, "privilege_context", `[]`), []string{"privilege_context"}},
		{"blast_score true", withField(t, "blast_score", `true`), []string{"blast_score"}},
		{"blast_score false", withField(t, "blast_score", `false`), []string{"blast_score"}},
		{"blast_score fraction", withField(t, "blast_score", `5.5`), []string{"blast_score"}},
		{"blast_score empty string", withField(t, "blast_score", `""`), []string{"blast_score"}},
		{"blast_score exponent string", withField(t, "blast_score", `"1e2"`), []string{"blast_score"}},
		{"blast_score hex string", withField(t, "blast_score", `"0x10"`), []string{"blast_score"}},
		{"blast_score object", withField(t, "blast_score", `{}`), []string{"blast_score"}},
		{"dry_run null", withField(t, "dry_run", `null`), []string{"dry_run"}},
		{"dry_run 2", withField(t, "dry_run", `2`), []string{"dry_run"}},
		{"dry_run padded string", withField(t, "dry_run", `"false "`), []string{"dry_run"}},
		{"dry_run maybe", withField(t, "dry_run", `"maybe"`), []string{"dry_run"}},
		{"tenant_credential number", withField(t, "tenant_credential", `5`), []string{"tenant_credential"}},
		{"several at once", []byte(`{"capability_id":1,"env":"DEV","data_label":"PUBLIC","tenant_risk":"low","qos_class":"P9","tenant_id":" ","correlation_id":"c","blast_score":true,"dry_run":"nah","request":null}`),
			[]string{"blast_score", "capability_id", "dry_run", "env", "qos_class", "request", "tenant_id"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := ParseRouteInput(tc.doc)
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v (%T), want *InputError; parsed %+v", err, err, in)
			}
			if got := ie.Fields(); !slices.Equal(got, tc.fields) {
				t.Errorf("fields = %q, want %q (%v)", got, tc.fields, err)
			}
			for _, f := range tc.fields {
				if !strings.Contains(err.Error(), f+": ") {
					t.Errorf("error %q does not name %s", err, f)
				}
			}
			if !strings.HasPrefix(err.Error(), "invalid route input: ") {
				t.Errorf("error text %q", err)
			}
		})
	}
}

func TestParseRouteInputCoercions(t *testing.T) {
	cases := []struct {
		key, raw string
		check    func(in RouteInput) bool
	}{
		{"blast_score", `" 5 "`, func(in RouteInput) bool { return in.BlastScore.String() == "5" }},
		{"blast_score", `"+5"`, func(in RouteInput) bool { return in.BlastScore.String() == "5" }},
		{"blast_score", `"5.0"`, func(in RouteInput) bool { return in.BlastScore.String() == "5" }},
		{"blast_score", `"5_0"`, func(in RouteInput) bool { return in.BlastScore.String() == "50" }},
		{"blast_score", `"-7"`, func(in RouteInput) bool { return in.BlastScore.String() == "-7" }},
		{"blast_score", `5.0`, func(in RouteInput) bool { return in.BlastScore.String() == "5" }},
		{"blast_score", `-0.0`, func(in RouteInput) bool { return in.BlastScore.String() == "0" }},
		{"blast_score", `1e2`, func(in RouteInput) bool { return in.BlastScore.String() == "100" }},
		{"blast_score", `123456789012345678901234567890`, func(in RouteInput) bool { return in.BlastScore.String() == "123456789012345678901234567890" }},
		{"blast_score", `null`, func(in RouteInput) bool { return in.BlastScore == nil }},
		{"dry_run", `true`, func(in RouteInput) bool { return in.DryRun }},
		{"dry_run", `1`, func(in RouteInput) bool { return in.DryRun }},
		{"dry_run", `1.0`, func(in RouteInput) bool { return in.DryRun }},
		{"dry_run", `0`, func(in RouteInput) bool { return !in.DryRun }},
		{"dry_run", `"YES"`, func(in RouteInput) bool { return in.DryRun }},
		{"dry_run", `"On"`, func(in RouteInput) bool { return in.DryRun }},
		{"dry_run", `"t"`, func(in RouteInput) bool { return in.DryRun }},
		{"dry_run", `"off"`, func(in RouteInput) bool { return !in.DryRun }},
		{"dry_run", `"N"`, func(in RouteInput) bool { return !in.DryRun }},
		{"tenant_credential", `"tok"`, func(in RouteInput) bool { return in.TenantCredential != nil && *in.TenantCredential == "tok" }},
		{"tenant_credential", `null`, func(in RouteInput) bool { return in.TenantCredential == nil }},
		{"correlation_id", `""`, func(in RouteInput) bool { return in.CorrelationID == "" }},
		{"capability_id", `"anything  goes é"`, func(in RouteInput) bool { return in.CapabilityID == "anything  goes é" }},
		{"policy_version", `"policy.v9"`, func(in RouteInput) bool { return in.CapabilityID == "cap.hello.greet" }},
		{"blast_radius", `null`, func(in RouteInput) bool { return in.BlastRadius == nil }},
		{"request", `{"b":{"y":1,"x":[true,null]},"a":"é"}`, func(in RouteInput) bool { return string(in.Request) == `{"a":"é","b":{"x":[true,null],"y":1}}` }},
	}
	for _, tc := range cases {
		in, err := ParseRouteInput(withField(t, tc.key, tc.raw))
		if err != nil {
			t.Errorf("%s=%s: %v", tc.key, tc.raw, err)
			continue
		}
		if !tc.check(in) {
			t.Errorf("%s=%s: parsed %+v", tc.key, tc.raw, in)
		}
		if err := in.Validate(); err != nil {
			t.Errorf("%s=%s: parsed input fails Validate: %v", tc.key, tc.raw, err)
		}
	}
}

func TestValidate(t *testing.T) {
	in := RouteInput{CapabilityID: "cap.x", Env: "prod", DataLabel: "RESTRICTED", TenantRisk: "high", QoSClass: "P0", TenantID: "t"}
	if err := in.Validate(); err != nil {
		t.Fatalf("valid input: %v", err)
	}
	bad := RouteInput{Env: "Prod", DataLabel: "SECRET", TenantRisk: "critical", QoSClass: "p0", TenantID: "\u3000", Request: json.RawMessage(`[]`)}
	err := bad.Validate()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("err = %v", err)
	}
	if got, want := ie.Fields(), []string{"data_label", "env", "qos_class", "request", "tenant_id", "tenant_risk"}; !slices.Equal(got, want) {
		t.Errorf("fields = %q, want %q", got, want)
	}
}

func TestRouteInputJSON(t *testing.T) {
	in, err := ParseRouteInput([]byte(validInput))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"capability_id":"cap.hello.greet","env":"dev","data_label":"PUBLIC","tenant_risk":"low","qos_class":"P2","tenant_id":"t","correlation_id":"c-1","request":{},"blast_radius":null,"blast_score":null,"privilege_context":null,"dry_run":false,"tenant_credential":null}`
	if string(b) != want {
		t.Errorf("JSON =\n%s\nwant\n%s", b, want)
	}

	full := `{"capability_id":"cap.doc.summarize","env":"prod","data_label":"INTERNAL","tenant_risk":"medium","qos_class":"P1","tenant_id":"acme","correlation_id":"550e8400-e29b-41d4-a716-446655440000",` +
		`"request":{"text":"h\u00e9llo <&>","n":1.5,"big":100000000000000000000},"blast_radius":{"data":1},"blast_score":7,"privilege_context":{},"dry_run":true,"tenant_credential":"tok"}`
	in, err = ParseRouteInput([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	b, err = json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseRouteInput(b)
	if err != nil {
		t.Fatalf("re-parse of %s: %v", b, err)
	}
	c1, _ := in.Canonical(nil)
	c2, _ := back.Canonical(nil)
	if !bytes.Equal(c1, c2) {
		t.Errorf("round trip changed the input:\n%s\n%s", c1, c2)
	}
	var viaStd RouteInput
	if err := json.Unmarshal(b, &viaStd); err != nil {
		t.Fatal(err)
	}
	c3, _ := viaStd.Canonical(nil)
	if !bytes.Equal(c1, c3) {
		t.Errorf("encoding/json round trip changed the input:\n%s\n%s", c1, c3)
	}
}

func TestCanonicalAndRequestHash(t *testing.T) {
	in, err := ParseRouteInput([]byte(validInput))
	if err != nil {
		t.Fatal(err)
	}
	c, err := in.Canonical(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"blast_radius":null,"blast_score":null,"capability_id":"cap.hello.greet","correlation_id":"c-1","data_label":"PUBLIC","dry_run":false,"env":"dev","privilege_context":null,"qos_class":"P2","request":{},"tenant_credential":null,"tenant_id":"t","tenant_risk":"low"}`
	if string(c) != want {
		t.Errorf("canonical =\n%s\nwant\n%s", c, want)
	}
	h, err := in.RequestHash()
	if err != nil || h != Digest(sha256.Sum256([]byte(want))) {
		t.Errorf("RequestHash = %s, %v", h, err)
	}
	if h.String() != "sha256:"+h.Hex() || len(h.Hex()) != 64 || h.IsZero() {
		t.Errorf("digest forms %s / %s", h, h.Hex())
	}

	// Member order, whitespace and unknown members do not change the hash;
	// every known field does.
	a := `{"request":{"b":1,"a":{"y":[1,{"q":2,"p":1}],"x":"\u00e9"}},"tenant_id":"t","correlation_id":"c","qos_class":"P2","tenant_risk":"low","data_label":"PUBLIC","env":"dev","capability_id":"cap.x","blast_radius":{"z":1,"a":2}}`
	b := "{ \"capability_id\" : \"cap.x\", \"env\":\"dev\",\"data_label\":\"PUBLIC\",\"tenant_risk\":\"low\",\"qos_class\":\"P2\",\"tenant_id\":\"t\",\"correlation_id\":\"c\",\n" +
		`"blast_radius":{"a":2,"z":1},"unknown":[1,2],"request":{"a":{"x":"é","y":[1,{"p":1,"q":2}]},"b":1}}`
	ha := mustHash(t, a)
	if hb := mustHash(t, b); ha != hb {
		t.Errorf("hash depends on member order: %s vs %s", ha, hb)
	}
	for _, variant := range []string{
		strings.Replace(a, `"b":1`, `"b":2`, 1), // RFC 8785: 1.0 and 1 are one number
		strings.Replace(a, `"tenant_id":"t"`, `"tenant_id":"T"`, 1),
		strings.Replace(a, `{"request"`, `{"dry_run":true,"request"`, 1),
		strings.Replace(a, `{"request"`, `{"tenant_credential":"","request"`, 1),
		strings.Replace(a, `{"request"`, `{"blast_score":0,"request"`, 1),
		strings.Replace(a, `{"request"`, `{"privilege_context":{},"request"`, 1),
	} {
		if mustHash(t, variant) == ha {
			t.Errorf("variant hashes like the original: %s", variant)
		}
	}

	// Repeated hashing is stable.
	in2, _ := ParseRouteInput([]byte(a))
	for range 3 {
		if h, _ := in2.RequestHash(); h != ha {
			t.Fatal("RequestHash is not stable")
		}
	}
}

func mustHash(t *testing.T, doc string) Digest {
	t.Helper()
	in, err := ParseRouteInput([]byte(doc))
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	h, err := in.RequestHash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCanonicalEscaping(t *testing.T) {
	in := RouteInput{
		CapabilityID:  "cap.\"q\"\\/<&>",
		CorrelationID: "a\nb\tc\x01\x7f\u2028\U0001F600",
		TenantID:      "bad\xffutf8",
		Request:       json.RawMessage(`{"k":"\u0000"}`),
	}
	c, err := in.Canonical(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, frag := range []string{
		`"capability_id":"cap.\"q\"\\/<&>"`,
		`"correlation_id":"a\nb\tc\u0001` + "\x7f\u2028\U0001F600" + `"`,
		`"tenant_id":"bad` + "\ufffd" + `utf8"`, // RFC 8785 writes U+FFFD itself
		`"request":{"k":"\u0000"}`,
	} {
		if !strings.Contains(string(c), frag) {
			t.Errorf("canonical %s lacks %s", c, frag)
		}
	}
	if !json.Valid(c) {
		t.Errorf("canonical is not valid JSON: %s", c)
	}
	if _, err := (&RouteInput{Request: json.RawMessage(`{"a":`)}).Canonical(nil); err == nil || !strings.HasPrefix(err.Error(), "request: ") {
		t.Errorf("broken raw request: %v", err)
	}
}

func TestDigestText(t *testing.T) {
	h := Digest(sha256.Sum256([]byte("x")))
	d, err := ParseDigest(h.String())
	if err != nil || d != h {
		t.Errorf("ParseDigest(%s) = %s, %v", h, d, err)
	}
	for _, bad := range []string{h.Hex(), "sha256:" + strings.ToUpper(h.Hex()), h.String() + "\n", "sha256:", "md5:" + h.Hex()} {
		if _, err := ParseDigest(bad); err == nil {
			t.Errorf("ParseDigest(%q) accepted", bad)
		}
	}
	b, _ := json.Marshal(struct{ H Digest }{h})
	if string(b) != `{"H":"`+h.String()+`"}` {
		t.Errorf("JSON %s", b)
	}
}

// TestCallerStringBounds: ids and other caller strings have maximum lengths
// and no control characters (issue 10 item 8, issue 15 item 6; a deviation
// from PyHall). Each refusal names the field and the bound.
func TestCallerStringBounds(t *testing.T) {
	long := strings.Repeat("a", MaxIDBytes+1)
	cases := []struct {
		name, key, raw, want string
	}{
		{"long correlation id", "correlation_id", `"` + long + `"`, "at most 256 bytes"},
		{"long tenant id", "tenant_id", `"` + long + `"`, "at most 256 bytes"},
		{"long capability id", "capability_id", `"` + long + `"`, "at most 256 bytes"},
		{"long credential", "tenant_credential", `"` + strings.Repeat("c", MaxCredentialBytes+1) + `"`, "at most 4096 bytes"},
		{"newline in capability id", "capability_id", `"cap.a\nb"`, "U+000A"},
		{"escape in tenant id", "tenant_id", `"org.\u001b[2J"`, "U+001B"},
		{"DEL in correlation id", "correlation_id", `"c\u007f"`, "U+007F"},
		{"C1 in correlation id", "correlation_id", `"c\u0085"`, "U+0085"},
		{"NUL in credential", "tenant_credential", `"t\u0000"`, "U+0000"},
		{"huge request", "request", `{"k":"` + strings.Repeat("x", MaxObjectBytes) + `"}`, "at most 65536 bytes"},
		{"bad env names the bound", "env", `"` + long + `"`, "at most 256 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRouteInput(withField(t, tc.key, tc.raw))
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, want an *InputError", err)
			}
			if f := ie.Fields(); len(f) != 1 || f[0] != tc.key || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want field %s with %q", err, tc.key, tc.want)
			}
		})
	}
	t.Run("at the bound is accepted", func(t *testing.T) {
		if _, err := ParseRouteInput(withField(t, "correlation_id", `"`+strings.Repeat("a", MaxIDBytes)+`"`)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Validate checks Go-built inputs", func(t *testing.T) {
		in := RouteInput{CapabilityID: "cap.x", Env: "dev", DataLabel: "PUBLIC", TenantRisk: "low", QoSClass: "P2", TenantID: "t", CorrelationID: "a\x1b]0;pwned\x07"}
		err := in.Validate()
		var ie *InputError
		if !errors.As(err, &ie) || ie.Fields()[0] != "correlation_id" {
			t.Fatalf("Validate: %v", err)
		}
	})
}

// RFC 8785 writes a number beyond ±2^53 as the double it denotes, in
// blast_score as anywhere else in the request.
func TestCanonicalLargeBlastScore(t *testing.T) {
	in, err := ParseRouteInput([]byte(`{"capability_id":"cap.x","env":"dev","data_label":"PUBLIC","tenant_risk":"low","qos_class":"P2","tenant_id":"t","correlation_id":"c","blast_score":123456789012345678901}`))
	if err != nil {
		t.Fatal(err)
	}
	c, err := in.Canonical(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(c), `"blast_score":123456789012345680000,`) {
		t.Fatalf("canonical %s: blast_score not written as a double", c)
	}
	want, err := CanonicalJSON(c)
	if err != nil || string(want) != string(c) {
		t.Fatalf("the request's canonical form is not its own RFC 8785 form:\n%s\n%s (%v)", c, want, err)
	}
}
