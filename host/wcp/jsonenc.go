package wcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string in RFC 8785 (JCS) form, which is
// ECMAScript's JSON.stringify: '"' and '\' escaped, U+0008, U+0009, U+000A,
// U+000C and U+000D as \b \t \n \f \r, the other characters below U+0020 as
// \u00xx (lower-case hex), everything else as is — U+2028, U+2029, U+007F,
// '<', '&' and '>' included. Invalid UTF-8 becomes U+FFFD, as encoding/json
// does when it decodes (RFC 8785 would refuse it; a hash must not).
func appendString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainByte[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = appendASCIIEscape(append(b, s[start:i]...), c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendValue appends a value decoded with UseNumber as compact JSON with
// sorted keys and numbers exactly as written: it re-encodes a caller's
// value without judging it (RouteInput keeps its request this way); hashes
// go through appendCanonical. It is not a canonicalizer (1.0 stays 1.0);
// RATIONALE.md, "One canonical JSON engine".
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case json.Number:
		return append(b, x...)
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendValue(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sortUTF16(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendValue(b, x[k])
		}
		return append(b, '}')
	case string:
		return appendString(b, x)
	case bool:
		return strconv.AppendBool(b, x)
	}
	// nil, and nothing else: the decoder (UseNumber) produces no other type.
	return append(b, "null"...)
}

// appendNumber writes a JSON number as RFC 8785 §3.2.2.3 asks: the
// IEEE 754 double it denotes, serialized as ECMAScript's Number.toString
// does. Integers in ±2^53 come out as written; 1.0 becomes 1, 1e2 becomes
// 100, and an integer beyond 2^53 becomes the nearest double. A number
// outside the double range is kept as written (see CanonicalJSON).
func appendNumber(b []byte, s string) ([]byte, error) {
	// Fast path: a short plain integer is its own canonical form.
	if plainInteger(s) {
		return append(b, s...), nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// Beyond the double range (1e400): RFC 8785 has no form for it and
		// its implementations refuse it, but the Hall must still hash what
		// it was asked, so the number is kept as written: the one deviation
		// (docs/EVIDENCE.md).
		return append(b, s...), nil
	}
	return appendFloat(b, f)
}

// appendFloat writes f as ECMAScript's Number.prototype.toString: the
// shortest digits that round-trip, in plain notation for 1e-6 ≤ |f| < 1e21
// and exponent notation (1e+21, 1.5e-7) outside; -0 is 0.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return b, fmt.Errorf("canonical JSON: %v is not a JSON number", f)
	}
	if f == 0 {
		return append(b, '0'), nil
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	n := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Go writes e-07 and e+21; ECMAScript writes e-7 and e+21.
		if m := len(b); m-n >= 4 && b[m-4] == 'e' && b[m-2] == '0' {
			b[m-2] = b[m-1]
			b = b[:m-1]
		}
	}
	return b, nil
}

// sortUTF16 sorts object keys as RFC 8785 §3.2.3 asks: by their UTF-16
// code units, which differs from UTF-8 byte order only when one key has a
// character above U+FFFF where the other has one in U+E000..U+FFFF. Small
// objects get an insertion sort; large ones (a request can have thousands
// of members) slices.SortFunc, not a quadratic sort.
func sortUTF16(s []string) {
	if len(s) > 12 {
		slices.SortFunc(s, compareUTF16[string])
		return
	}
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && lessUTF16(s[j], s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// lessUTF16 reports whether a sorts before b in UTF-16 code unit order.
func lessUTF16(a, b string) bool {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := utf16Units(ra), utf16Units(rb)
			if ua[0] != ub[0] {
				return ua[0] < ub[0]
			}
			return ua[1] < ub[1]
		}
		a, b = a[na:], b[nb:]
	}
	return a == "" && b != ""
}

func utf16Units(r rune) [2]rune {
	if r >= 0x10000 {
		r -= 0x10000
		return [2]rune{0xD800 + (r >> 10), 0xDC00 + (r & 0x3FF)}
	}
	return [2]rune{r, 0}
}

// TimeLayout is how the Hall writes timestamps: RFC 3339, UTC, microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// appendTime appends t as a JSON string in TimeLayout: exactly what
// t.UTC().AppendFormat(b, TimeLayout) writes, quoted, without parsing the
// layout for every timestamp.
func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, TimeLayout)
		return append(b, '"')
	}
	hour, minute, sec := t.Clock()
	var buf [len(`"2006-01-02T15:04:05.000000Z"`)]byte
	put := func(at, v, width int) {
		for i := at + width - 1; i >= at; i-- {
			buf[i] = byte('0' + v%10)
			v /= 10
		}
	}
	copy(buf[:], `"0000-00-00T00:00:00.000000Z"`)
	put(1, year, 4)
	put(6, int(month), 2)
	put(9, day, 2)
	put(12, hour, 2)
	put(15, minute, 2)
	put(18, sec, 2)
	put(21, t.Nanosecond()/1000, 6) // truncated, as AppendFormat does
	return append(b, buf[:]...)
}

// PyFloat is a number written as Python writes a float: integral values
// keep a ".0" (PyHall dumps score_hint 1 as 1.0).
type PyFloat float64

// MarshalJSON writes f with a fractional part when it is integral.
func (f PyFloat) MarshalJSON() ([]byte, error) {
	b := strconv.AppendFloat(nil, float64(f), 'g', -1, 64)
	if !bytes.ContainsAny(b, ".eEnN") {
		b = append(b, '.', '0')
	}
	return b, nil
}

// OptString is a string that is written as JSON null when empty.
type OptString string

// MarshalJSON writes null for the empty string.
func (s OptString) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return appendString(nil, string(s)), nil
}

// UnmarshalJSON reads a string or null.
func (s *OptString) UnmarshalJSON(b []byte) error {
	var p *string
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	*s = ""
	if p != nil {
		*s = OptString(*p)
	}
	return nil
}

// JSONArray is a raw JSON array written as [] when empty.
type JSONArray json.RawMessage

// MarshalJSON writes the array, or [] when unset.
func (a JSONArray) MarshalJSON() ([]byte, error) {
	if len(a) == 0 || string(a) == "null" {
		return []byte("[]"), nil
	}
	return a, nil
}

// UnmarshalJSON keeps the raw array.
func (a *JSONArray) UnmarshalJSON(b []byte) error {
	*a = append((*a)[:0], b...)
	return nil
}

// appendASCIIEscape appends the JSON escape of an ASCII byte that must be
// escaped: '"' and '\\' and the short forms of RFC 8259, \u00XX for the
// other control characters (the form both encoding/json and RFC 8785
// use).
func appendASCIIEscape(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\b':
		return append(b, '\\', 'b')
	case '\t':
		return append(b, '\\', 't')
	case '\n':
		return append(b, '\\', 'n')
	case '\f':
		return append(b, '\\', 'f')
	case '\r':
		return append(b, '\\', 'r')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}
