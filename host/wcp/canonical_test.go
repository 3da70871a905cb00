package wcp

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestCanonicalRFC8785Numbers is RFC 8785 Appendix B: IEEE 754 bit
// patterns and the text ECMAScript (and so JCS) writes for each.
func TestCanonicalRFC8785Numbers(t *testing.T) {
	for _, tc := range []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	} {
		f := math.Float64frombits(tc.bits)
		got, err := appendFloat(nil, f)
		if err != nil || string(got) != tc.want {
			t.Errorf("%016x: got %s (%v), want %s", tc.bits, got, err, tc.want)
		}
		// The same double written any other way canonicalizes alike.
		raw, _ := json.Marshal(f)
		if c, err := CanonicalJSON(raw); err != nil || string(c) != tc.want {
			t.Errorf("CanonicalJSON(%s) = %s, %v; want %s", raw, c, err, tc.want)
		}
	}
	if _, err := appendFloat(nil, math.Inf(1)); err == nil {
		t.Error("infinity has no JSON form but was written")
	}
}

// TestCanonicalRFC8785Examples are the examples of RFC 8785 §3.2.2 and
// §3.2.3, and the escapes where RFC 8785 departs from encoding/json.
func TestCanonicalRFC8785Examples(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"§3.2.2 sample",
			`{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		{"§3.2.3 sorting by UTF-16 code units",
			`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew Letter Dalet With Dagesh","1":"One","\ud83d\ude00":"Emoji: Grinning Face","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis"}`,
			"{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{"line and paragraph separators, html, DEL unescaped",
			`{"s":"\u2028\u2029<&>\u007f"}`, "{\"s\":\"\u2028\u2029<&>\x7f\"}"},
		{"short escapes", `["\b\f\n\r\t\u0001\u001f"]`, `["\b\f\n\r\t\u0001\u001f"]`},
		{"numbers written otherwise", `[1.0,1e2,-0,0.0,100E-2,-1.50,12345678901234567890]`, `[1,100,0,0,1,-1.5,12345678901234567000]`},
		{"plain integers kept", `[0,-1,7,123456789012345]`, `[0,-1,7,123456789012345]`},
		{"nested, whitespace", " { \"b\" : [ { \"d\":1, \"c\":2 } ], \"a\" : {} } ", `{"a":{},"b":[{"c":2,"d":1}]}`},
		{"beyond the double range kept as written", `[1e400]`, `[1e400]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalJSON(json.RawMessage(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{`{"a":`, `{} x`, `[1] [2]`} {
		if _, err := CanonicalJSON(json.RawMessage(bad)); err == nil {
			t.Errorf("CanonicalJSON(%s) accepted malformed JSON", bad)
		}
	}
}

func TestLessUTF16(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		less bool
	}{
		{"a", "b", true}, {"b", "a", false}, {"a", "ab", true}, {"", "a", true}, {"a", "a", false},
		{"\U0001F600", "\uFB33", true}, // surrogate D83D < FB33, though U+1F600 > U+FB33
		{"\uFB33", "\U0001F600", false},
		{"\U0001F600", "\U0001F601", true},
		{"\u00f6", "\u20ac", true},
	} {
		if got := lessUTF16(tc.a, tc.b); got != tc.less {
			t.Errorf("lessUTF16(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

// FuzzCanonicalJSON checks CanonicalJSON against a second implementation
// built on encoding/json's decoder and encoder with RFC 8785's rules applied
// on top (sorting by UTF-16, ECMAScript numbers, JSON.stringify escapes),
// and that canonical output is valid JSON and a fixed point.
// testdata/verifier-node cross-checks it against the npm canonicalize
// package as well (TestBundleNodeVerifier, cmd/hall).
func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[1.5e300,-0.0,"\u2028"]`, `{"\ud83d\ude00":1,"\ufb33":2}`, `{"a":[{"b":"<&>\u0008\u000c"}]}`,
		`"x\u0000y"`, `[true,false,null,1e-7,123456789012345678]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var v any
		dec := json.NewDecoder(strings.NewReader(in))
		dec.UseNumber()
		if dec.Decode(&v) != nil || len(bytes.Trim([]byte(in[dec.InputOffset():]), " \t\r\n")) > 0 {
			return
		}
		got, err := CanonicalJSON(json.RawMessage(in))
		if err != nil {
			t.Fatalf("CanonicalJSON(%q): %v", in, err)
		}
		want, ok := referenceJCS(v)
		if !ok {
			return // a number beyond the double range: no RFC 8785 form
		}
		if string(got) != want {
			t.Fatalf("CanonicalJSON(%q)\n got %q\nwant %q", in, got, want)
		}
		if !json.Valid(got) || !utf8.Valid(got) {
			t.Fatalf("not valid JSON/UTF-8: %q", got)
		}
		again, err := CanonicalJSON(got)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("not a fixed point: %q -> %q (%v)", got, again, err)
		}
	})
}

// referenceJCS is the second implementation: per value, encoding/json's
// own encoder (SetEscapeHTML off, then its three JSON.stringify
// differences undone) and float formatting (encoding/json formats float64
// as ECMAScript does), with keys sorted through UTF-16 strings.
func referenceJCS(v any) (string, bool) {
	switch x := v.(type) {
	case json.Number:
		fl, err := x.Float64()
		if err != nil {
			return "", false
		}
		if fl == 0 {
			return "0", true
		}
		b, _ := json.Marshal(fl)
		return string(b), true
	case string:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.Encode(x)
		s := strings.TrimSuffix(buf.String(), "\n")
		s = strings.NewReplacer(`\u2028`, "\u2028", `\u2029`, "\u2029").Replace(s)
		// encoding/json writes U+0008 and U+000C as \u0008 and \u000c
		// (also after an escaped backslash, which is why this replaces
		// only the exact escapes it produced: "\\u0008" cannot occur,
		// because a backslash is always written as \\ and then "u0008"
		// follows a completed escape).
		s = fixShortEscapes(s)
		return s, true
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			p, ok := referenceJCS(e)
			if !ok {
				return "", false
			}
			parts[i] = p
		}
		return "[" + strings.Join(parts, ",") + "]", true
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		// Sort by UTF-16 code units via utf16 encoding comparison.
		for i := 1; i < len(keys); i++ {
			for j := i; j > 0 && utf16Less(keys[j], keys[j-1]); j-- {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
		parts := make([]string, len(keys))
		for i, k := range keys {
			ks, _ := referenceJCS(k)
			vs, ok := referenceJCS(x[k])
			if !ok {
				return "", false
			}
			parts[i] = ks + ":" + vs
		}
		return "{" + strings.Join(parts, ",") + "}", true
	default:
		b, _ := json.Marshal(x)
		return string(b), true
	}
}

// fixShortEscapes rewrites encoding/json's \u0008 and \u000c as \b and
// \f, walking escapes so that an escaped backslash is never misread.
func fixShortEscapes(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			if strings.HasPrefix(s[i:], `\u0008`) {
				b.WriteString(`\b`)
				i += 5
				continue
			}
			if strings.HasPrefix(s[i:], `\u000c`) {
				b.WriteString(`\f`)
				i += 5
				continue
			}
			b.WriteString(s[i : i+2])
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func utf16Less(a, b string) bool {
	ua, ub := toUTF16(a), toUTF16(b)
	for i := 0; i < len(ua) && i < len(ub); i++ {
		if ua[i] != ub[i] {
			return ua[i] < ub[i]
		}
	}
	return len(ua) < len(ub)
}

func toUTF16(s string) []uint16 {
	var out []uint16
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
		} else {
			out = append(out, uint16(r))
		}
	}
	return out
}
