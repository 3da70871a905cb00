// Package pyval reproduces the few Python value semantics that PyHall's
// decisions depend on, applied to JSON values decoded with
// json.Decoder.UseNumber: truthiness, equality (1 == 1.0 == true),
// str.strip() whitespace, lax bool coercion (pydantic lax mode) and the
// telemetry sanitizer.
//
// Values are the types encoding/json produces: nil, bool, json.Number,
// string, []any and map[string]any.
package pyval

import (
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"
	"unicode"
)

// IsSpace reports whether r is removed by Python's str.strip(): Go's
// unicode.IsSpace set plus U+001C..U+001F.
func IsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// Blank reports whether s is empty or Python-whitespace only.
func Blank(s string) bool {
	for _, r := range s {
		if !IsSpace(r) {
			return false
		}
	}
	return true
}

// Strip trims Python whitespace from both ends of s.
func Strip(s string) string { return strings.TrimFunc(s, IsSpace) }

// Sanitize deletes ASCII control characters and DEL ([\x00-\x1f\x7f]) as
// PyHall does for identifiers copied into telemetry. It does not allocate
// when s has none.
func Sanitize(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c != 0x7f {
			b = append(b, c)
		}
	}
	return string(b)
}

// Truthy applies Python truthiness to a JSON value: null, false, 0, 0.0,
// "", [] and {} are false; everything else is true.
func Truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case json.Number:
		f, ok := numberValue(x)
		return !ok || f.Sign() != 0
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	}
	return true
}

// numberValue converts a JSON number (or a bool, per Python's bool-is-int
// rule) to an exact rational.
func numberValue(n json.Number) (*big.Rat, bool) {
	r, ok := new(big.Rat).SetString(string(n))
	return r, ok
}

func numeric(v any) (*big.Rat, bool) {
	switch x := v.(type) {
	case bool:
		if x {
			return big.NewRat(1, 1), true
		}
		return new(big.Rat), true
	case json.Number:
		return numberValue(x)
	}
	return nil, false
}

// Equal is Python's == over JSON values: numbers and bools compare
// numerically (1 == 1.0 == true), strings exactly, arrays element-wise and
// objects key-wise.
func Equal(a, b any) bool {
	if ra, ok := numeric(a); ok {
		rb, ok := numeric(b)
		return ok && ra.Cmp(rb) == 0
	}
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !Equal(xv, yv) {
				return false
			}
		}
		return true
	}
	return false
}

// Hashable reports whether Python could put v in a set: scalars are
// hashable, lists and dicts are not.
func Hashable(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return false
	}
	return true
}

// LaxBool coerces v as pydantic's lax bool does: JSON bools; the numbers 0
// and 1 (int or float); the strings 0 1 true false yes no on off t f y n in
// any letter case. Anything else (including null) is not a bool.
func LaxBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case json.Number:
		r, ok := numberValue(x)
		if !ok {
			return false, false
		}
		switch {
		case r.Sign() == 0:
			return false, true
		case r.Cmp(big.NewRat(1, 1)) == 0:
			return true, true
		}
	case string:
		switch strings.ToLower(x) {
		case "1", "true", "yes", "on", "t", "y":
			return true, true
		case "0", "false", "no", "off", "f", "n":
			return false, true
		}
	}
	return false, false
}

// Decode parses JSON into the generic value model used by this package
// (numbers stay json.Number so that 1 and 1.0 keep their nature).
func Decode(data []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}
