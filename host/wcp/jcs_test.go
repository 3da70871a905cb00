package wcp

import (
	"bytes"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// canonicalSeeds are inputs for the differential tests of CanonicalJSON:
// every escape class, the UTF-16 sorting corner, duplicate names, numbers
// of every form, and malformed documents of every kind.
var canonicalSeeds = []string{
	``, `{}`, `null`, ` null `, `[]`, `{ }`, `[ ]`, `0`, `-0`, `"x"`, `true`, `false`,
	`[1.5e300,-0.0,"\u2028"]`, `{"\ud83d\ude00":1,"\ufb33":2}`, `{"a":[{"b":"<&>\u0008\u000c"}]}`,
	`"x\u0000y"`, `[true,false,null,1e-7,123456789012345678]`,
	`{"b":1,"a":2,"b":3}`, `{"a":1,"a":2}`, `{"\u0061":1,"a":2}`, `{"a":2,"\u0061":1}`,
	"{\"\xff\":1,\"\xfe\":2}", "{\"\xff\":1,\"\\ufffd\":2}", "\"\xed\xa0\x80\"", "\"\xf0\x9f\x98\"",
	`"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, `"\ud800\ud800\udc00"`, `"\udc00\ud800"`, `"\uD83D\uDE00"`, `"\ud83d\\ude00"`,
	`{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew","1":"One","\ud83d\ude00":"Emoji","\u0080":"Control","\u00f6":"o"}`,
	`[1.0,1e2,-0,0.0,100E-2,-1.50,12345678901234567890,1e400,-1e400,1e-400,0.1e1,5e-324,2.5E+3]`,
	`[0,-1,7,123456789012345,1234567890123456,-123456789012345,9007199254740993]`,
	" { \"b\" : [ { \"d\":1, \"c\":2 } ], \"a\" : {} } \r\n\t",
	`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"}`,
	"\"\x7f\u2028\u2029<>&\"", `"\/\b\f\n\r\t\"\\"`,
	// Malformed.
	`{"a":`, `{} x`, `[1] [2]`, ` `, `{"a" 1}`, `{"a":1,}`, `[1,]`, `[,1]`, `{,}`, `{"a":1 "b":2}`, `{1:2}`,
	`[01]`, `01`, `-`, `[-]`, `1.`, `[1.]`, `1e`, `1e+`, `.5`, `+1`, `[1.5e]`, `0x1`, `NaN`, `Infinity`,
	`tru`, `truex`, `[truex]`, `nul`, `[nulll]`, `"abc`, "\"a\x01\"", "\"\t\"", `"\x"`, `"\u12"`, `"\u12G4"`, `"\'"`,
	"\xef\xbb\xbf{}", "{}\x00", `]`, `}`, `[}`, `{]`, `"\`, `{"a":1}}`, `[[]]]`, `{"a"}`, `{"a":}`,
}

// TestCanonicalMatchesOracle: CanonicalJSON and the tokenizer agree with
// the decoder-based implementation on every seed, errors included.
func TestCanonicalMatchesOracle(t *testing.T) {
	for _, s := range canonicalSeeds {
		checkCanonical(t, []byte(s))
	}
}

// TestCanonicalNestingLimit: 10000 nested arrays or objects are accepted,
// 10001 refused, as encoding/json does; and the depth an embedded raw
// value starts at counts.
func TestCanonicalNestingLimit(t *testing.T) {
	nest := func(open, close string, n int) []byte {
		return []byte(strings.Repeat(open, n) + "1" + strings.Repeat(close, n))
	}
	for _, n := range []int{maxNestingDepth - 1, maxNestingDepth, maxNestingDepth + 1} {
		checkCanonical(t, nest("[", "]", n))
		checkCanonical(t, nest(`{"a":`, "}", n))
		checkCanonical(t, nest(`{"b":0,"a":[`, "]}", n/2))
	}
	raw := nest("[", "]", 9998)
	if _, ok := appendCanonicalAt(nil, raw, 2); !ok {
		t.Error("depth 2 + 9998 refused")
	}
	if _, ok := appendCanonicalAt(nil, raw, 3); ok {
		t.Error("depth 3 + 9998 accepted")
	}
}

// TestCanonicalManyMembers sorts objects too large for the insertion sort,
// with duplicates.
func TestCanonicalManyMembers(t *testing.T) {
	var sb strings.Builder
	sb.WriteByte('{')
	for i := range 500 {
		if i > 0 {
			sb.WriteByte(',')
		}
		// Names that repeat, non-ASCII ones, escaped ones.
		switch i % 4 {
		case 0:
			sb.WriteString(`"k` + string(rune('a'+i*7%26)) + string(rune('a'+i%26)) + `":`)
		case 1:
			sb.WriteString(`"\u00e9` + string(rune('a'+i%26)) + `":`)
		case 2:
			sb.WriteString(`"\ud83d\ude0` + string(rune('0'+i%10)) + `":`)
		default:
			sb.WriteString("\"\uff00" + string(rune(0xff10+i%10)) + "\":")
		}
		sb.WriteString(`[` + strings.Repeat("1,", i%3) + `{"z":1,"y":2}]`)
	}
	sb.WriteByte('}')
	checkCanonical(t, []byte(sb.String()))
}

func checkCanonical(t *testing.T, in []byte) {
	t.Helper()
	want, werr := oracleCanonicalJSON(in)
	got, gerr := CanonicalJSON(in)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("CanonicalJSON(%q): error %v, oracle %v", clip(in), gerr, werr)
	}
	if werr != nil {
		if gerr.Error() != werr.Error() {
			t.Fatalf("CanonicalJSON(%q): error %q, oracle %q", clip(in), gerr, werr)
		}
	} else if !bytes.Equal(got, want) {
		t.Fatalf("CanonicalJSON(%q)\n got %q\nwant %q", clip(in), clip(got), clip(want))
	}
	if len(in) == 0 {
		return
	}
	// The tokenizer alone (CanonicalJSON would hide a wrong refusal by
	// falling back to decoding).
	prefix := []byte("prefix")
	out, ok := appendCanonicalAt(prefix, in, 0)
	if ok != (werr == nil) {
		t.Fatalf("tokenizer on %q: ok %v, oracle error %v", clip(in), ok, werr)
	}
	if ok && string(out) != "prefix"+string(want) {
		t.Fatalf("tokenizer on %q: %q", clip(in), clip(out))
	}
	if !ok && string(out) != "prefix" {
		t.Fatalf("tokenizer on %q wrote %q on failure", clip(in), clip(out))
	}
}

func clip(b []byte) []byte {
	if len(b) > 200 {
		return append(b[:100:100], "..."...)
	}
	return b
}

// FuzzCanonicalOracle compares CanonicalJSON (the tokenizer) with the
// decoder-based implementation on arbitrary bytes: same output, same
// refusals, same errors.
func FuzzCanonicalOracle(f *testing.F) {
	for _, s := range canonicalSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkCanonical(t, in)
	})
}

// TestCompareUTF16 checks compareUTF16 and sortUTF16 (both sorts) against
// the reference order on random strings of the characters where UTF-16
// and UTF-8 orders part.
func TestCompareUTF16(t *testing.T) {
	chars := []rune{'a', 'b', 0x7f, 0xe9, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfb33, 0xfffd, 0xffff, 0x10000, 0x1f600, 0x10ffff}
	rng := rand.New(rand.NewPCG(3, 4))
	word := func() string {
		r := make([]rune, rng.IntN(4))
		for i := range r {
			r[i] = chars[rng.IntN(len(chars))]
		}
		return string(r)
	}
	for range 20000 {
		a, b := word(), word()
		want := 0
		if oracleLessUTF16(a, b) {
			want = -1
		} else if oracleLessUTF16(b, a) {
			want = 1
		}
		got := compareUTF16(a, b)
		if got < 0 && want != -1 || got > 0 && want != 1 || got == 0 && want != 0 {
			t.Fatalf("compareUTF16(%q, %q) = %d, want sign %d", a, b, got, want)
		}
		if c := compareUTF16([]byte(a), []byte(b)); c != got {
			t.Fatalf("compareUTF16 on bytes differs: %d, %d", c, got)
		}
	}
	for _, n := range []int{0, 1, 5, 12, 13, 200} {
		set := map[string]bool{}
		for len(set) < n {
			set[word()+word()] = true
		}
		keys := slices.Collect(maps.Keys(set))
		sortUTF16(keys)
		if !slices.IsSortedFunc(keys, func(a, b string) int {
			if oracleLessUTF16(a, b) {
				return -1
			}
			if oracleLessUTF16(b, a) {
				return 1
			}
			return 0
		}) {
			t.Fatalf("sortUTF16 of %d keys: %q", n, keys)
		}
	}
}
