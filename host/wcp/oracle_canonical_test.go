package wcp

// The reference implementation CanonicalJSON is checked against: the
// decoder-based CanonicalJSON, frozen here as it was before the tokenizer
// replaced it. It shares no code with the package, so a change to the
// package's helpers cannot change it.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// oracleCanonicalJSON is CanonicalJSON as it was: encoding/json's decoder
// (UseNumber) into a map tree, then RFC 8785 written from the tree.
func oracleCanonicalJSON(raw []byte) ([]byte, error) {
	var b []byte
	if len(raw) == 0 {
		return append(b, "null"...), nil
	}
	if string(raw) == "{}" || string(raw) == "null" {
		return append(b, raw...), nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return b, err
	}
	if len(bytes.TrimLeft(raw[dec.InputOffset():], " \t\r\n")) > 0 {
		return b, fmt.Errorf("trailing data after the JSON value")
	}
	return oracleJCS(b, v)
}

func oracleJCS(b []byte, v any) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case json.Number:
		return oracleNumber(b, string(x))
	case string:
		return oracleString(b, x), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = oracleJCS(b, e); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		for i := 1; i < len(keys); i++ {
			for j := i; j > 0 && oracleLessUTF16(keys[j], keys[j-1]); j-- {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = oracleString(b, k)
			b = append(b, ':')
			if b, err = oracleJCS(b, x[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	}
	return b, fmt.Errorf("canonical JSON: unsupported value of type %T", v)
}

func oracleString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\t':
				b = append(b, '\\', 't')
			case '\n':
				b = append(b, '\\', 'n')
			case '\f':
				b = append(b, '\\', 'f')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
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

func oracleNumber(b []byte, s string) ([]byte, error) {
	if n := len(s); n > 0 && n <= 15 {
		plain := true
		for i := 0; i < n; i++ {
			c := s[i]
			if (c < '0' || c > '9') && !(i == 0 && c == '-' && n > 1) {
				plain = false
				break
			}
		}
		if plain && (s[0] != '0' || n == 1) && !(s[0] == '-' && (s[1] == '0')) {
			return append(b, s...), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return append(b, s...), nil
	}
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
		if m := len(b); m-n >= 4 && b[m-4] == 'e' && b[m-2] == '0' {
			b[m-2] = b[m-1]
			b = b[:m-1]
		}
	}
	return b, nil
}

func oracleLessUTF16(a, b string) bool {
	units := func(r rune) [2]rune {
		if r >= 0x10000 {
			r -= 0x10000
			return [2]rune{0xD800 + (r >> 10), 0xDC00 + (r & 0x3FF)}
		}
		return [2]rune{r, 0}
	}
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra != rb {
			ua, ub := units(ra), units(rb)
			if ua[0] != ub[0] {
				return ua[0] < ub[0]
			}
			return ua[1] < ub[1]
		}
		a, b = a[na:], b[nb:]
	}
	return a == "" && b != ""
}
