package wcp

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string without HTML escaping. Invalid
// UTF-8 becomes U+FFFD, as encoding/json does.
func appendString(b []byte, s string) []byte {
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
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
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
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendCanonical appends raw JSON in canonical form: object keys sorted at
// every level, no insignificant whitespace, numbers as written.
func appendCanonical(b []byte, raw json.RawMessage) ([]byte, error) {
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
	return appendValue(b, v), nil
}

func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, x)
	case json.Number:
		return append(b, x...)
	case string:
		return appendString(b, x)
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
		sortStrings(keys)
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
	}
	return append(b, "null"...)
}

// sortStrings is an insertion sort: canonical objects are small and this
// keeps the sort package's interface allocations off the hot path.
func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// TimeLayout is how the Hall writes timestamps: RFC 3339, UTC, microseconds.
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"')
}

// PyFloat is a number written as Python writes a float: integral values
// keep a ".0" (PyHall dumps score_hint 1 as 1.0).
type PyFloat float64

// MarshalJSON writes f with a fractional part when it is integral.
func (f PyFloat) MarshalJSON() ([]byte, error) {
	b := strconv.AppendFloat(nil, float64(f), 'g', -1, 64)
	if bytes.IndexAny(b, ".eEnN") < 0 {
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
