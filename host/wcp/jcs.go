package wcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is CanonicalJSON's engine: a single-pass tokenizer that checks
// its input exactly as encoding/json's scanner does and records it as a
// flat tape of nodes, then writes the tape out in RFC 8785 form, sorting
// each object's members by their decoded names. It decodes nothing into
// Go values (no map, no interface, no string per member): names are
// compared where they lie in the input, or, when they hold escapes or
// bytes above U+007F, in one shared buffer of decoded names.
//
// The input it accepts is exactly the input encoding/json's Decoder
// accepts as one JSON value followed by white space only: same grammar,
// same nesting limit, any bytes above 0x7F in strings. Whenever it refuses
// an input, the error comes from decoding that input the way CanonicalJSON
// always did (canonicalByDecoding), so errors are worded as before.

// maxNestingDepth is encoding/json's limit on nested arrays and objects.
const maxNestingDepth = 10000

// Node kinds on the tape.
const (
	jNull byte = iota
	jTrue
	jFalse
	jNumber
	jString
	jArray
	jObject
)

// jNode is one value (or one member name) of the tape. A container's
// children follow it on the tape, an object's as name, value, name, value;
// next is the index of the first node after its subtree.
type jNode struct {
	// start and end delimit a number, or a string's contents between its
	// quotes, in the input; for a decoded member name (decoded set), its
	// bytes in jcs.names.
	start, end int32
	next       int32
	kind       byte
	// plain: the string's bytes are printable ASCII without backslash, so
	// they are also its canonical form.
	plain   bool
	decoded bool
}

// jcs is the reusable state of one canonicalization.
type jcs struct {
	src   []byte
	pos   int
	nodes []jNode
	names []byte  // decoded member names
	order []int32 // member name indices of the objects being written
	tmp   []byte  // a decoded string value
}

var jcsPool = sync.Pool{New: func() any { return new(jcs) }}

// appendCanonical appends raw JSON in RFC 8785 canonical form (see
// CanonicalJSON). Empty raw is written as null.
func appendCanonical(b []byte, raw []byte) ([]byte, error) {
	if len(raw) == 0 {
		return append(b, "null"...), nil
	}
	if out, ok := appendCanonicalAt(b, raw, 0); ok {
		return out, nil
	}
	return canonicalByDecoding(b, raw)
}

// appendCanonicalAt appends raw in canonical form as appendCanonical does,
// raw being nested depth arrays or objects deep in an enclosing document
// (which counts towards the nesting limit). It reports false, with b
// unchanged, when raw is not a JSON value that encoding/json's Decoder
// would read at that depth.
func appendCanonicalAt(b, raw []byte, depth int) ([]byte, bool) {
	if len(raw) > math.MaxInt32 {
		return b, false
	}
	p := jcsPool.Get().(*jcs)
	p.src, p.pos = raw, 0
	ok := p.value(depth) && p.end()
	if ok {
		b = p.write(b, 0)
	}
	p.release()
	return b, ok
}

func (p *jcs) release() {
	p.src = nil
	// Keep the buffers of ordinary documents for the next caller, not
	// those a huge one grew.
	if cap(p.nodes) > 1<<14 || cap(p.names) > 1<<16 || cap(p.tmp) > 1<<16 || cap(p.order) > 1<<14 {
		*p = jcs{}
	}
	p.nodes, p.names, p.order, p.tmp = p.nodes[:0], p.names[:0], p.order[:0], p.tmp[:0]
	jcsPool.Put(p)
}

// canonicalByDecoding runs only for input the tokenizer refuses, for the
// error encoding/json's Decoder gives it (the tokenizer accepts exactly
// what the Decoder reads: FuzzCanonicalOracle). It writes nothing: there
// is one canonical writer, the tokenizer's (RATIONALE.md).
func canonicalByDecoding(b, raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return b, err
	}
	if len(bytes.TrimLeft(raw[dec.InputOffset():], " \t\r\n")) > 0 {
		return b, fmt.Errorf("trailing data after the JSON value")
	}
	if len(raw) > math.MaxInt32 {
		return b, fmt.Errorf("canonical JSON: a document of %d bytes is more than the %d this canonicalizer reads", len(raw), math.MaxInt32)
	}
	return b, fmt.Errorf("canonical JSON: the tokenizer refused a document encoding/json reads (a bug: report it with the input)")
}

func (p *jcs) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// end reports whether only white space follows the value.
func (p *jcs) end() bool {
	p.skipSpace()
	return p.pos == len(p.src)
}

// value reads one value (after optional white space) at nesting depth
// depth (the number of arrays and objects around it).
func (p *jcs) value(depth int) bool {
	p.skipSpace()
	if p.pos >= len(p.src) {
		return false
	}
	switch c := p.src[p.pos]; c {
	case '{':
		return p.object(depth + 1)
	case '[':
		return p.array(depth + 1)
	case '"':
		return p.str(false)
	case 't':
		return p.literal("true", jTrue)
	case 'f':
		return p.literal("false", jFalse)
	case 'n':
		return p.literal("null", jNull)
	default:
		if c == '-' || c >= '0' && c <= '9' {
			return p.number()
		}
		return false
	}
}

func (p *jcs) literal(word string, kind byte) bool {
	if len(p.src)-p.pos < len(word) || string(p.src[p.pos:p.pos+len(word)]) != word {
		return false
	}
	p.pos += len(word)
	p.nodes = append(p.nodes, jNode{kind: kind, next: int32(len(p.nodes) + 1)})
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (p *jcs) number() bool {
	s, i := p.src, p.pos
	start := i
	if s[i] == '-' {
		i++
	}
	digits := func() bool {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i > j
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case !digits():
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return false
		}
	}
	p.pos = i
	p.nodes = append(p.nodes, jNode{kind: jNumber, start: int32(start), end: int32(i), next: int32(len(p.nodes) + 1)})
	return true
}

// str reads a string at p.pos (its opening quote). A member name that is
// not plain is decoded into p.names, so that it can be compared.
func (p *jcs) str(name bool) bool {
	s := p.src
	i := p.pos + 1
	start := i
	plain := true
	for {
		// The common case: a run of printable ASCII.
		for i < len(s) && plainByte[s[i]] {
			i++
		}
		if i >= len(s) {
			return false
		}
		c := s[i]
		if c == '"' {
			break
		}
		if c < 0x20 {
			return false
		}
		plain = false
		if c != '\\' {
			i++ // any byte above 0x7F: encoding/json reads it, replacing invalid UTF-8
			continue
		}
		if i+1 >= len(s) {
			return false
		}
		switch s[i+1] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			i += 2
		case 'u':
			if i+6 > len(s) || !isHex(s[i+2]) || !isHex(s[i+3]) || !isHex(s[i+4]) || !isHex(s[i+5]) {
				return false
			}
			i += 6
		default:
			return false
		}
	}
	n := jNode{kind: jString, start: int32(start), end: int32(i), plain: plain, next: int32(len(p.nodes) + 1)}
	if name && !plain {
		off := len(p.names)
		p.names = appendUnquoted(p.names, s[start:i])
		if len(p.names) > math.MaxInt32 {
			return false
		}
		n.start, n.end, n.decoded = int32(off), int32(len(p.names)), true
	}
	p.nodes = append(p.nodes, n)
	p.pos = i + 1
	return true
}

// plainByte marks the bytes a string holds as they are in canonical form:
// printable ASCII but '"' and '\\'.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (p *jcs) array(depth int) bool {
	if depth > maxNestingDepth {
		return false
	}
	at := len(p.nodes)
	p.nodes = append(p.nodes, jNode{kind: jArray})
	p.pos++ // [
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		p.nodes[at].next = int32(len(p.nodes))
		return true
	}
	for {
		if !p.value(depth) {
			return false
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return false
		}
		c := p.src[p.pos]
		p.pos++
		if c == ']' {
			break
		}
		if c != ',' {
			return false
		}
	}
	p.nodes[at].next = int32(len(p.nodes))
	return true
}

func (p *jcs) object(depth int) bool {
	if depth > maxNestingDepth {
		return false
	}
	at := len(p.nodes)
	p.nodes = append(p.nodes, jNode{kind: jObject})
	p.pos++ // {
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		p.nodes[at].next = int32(len(p.nodes))
		return true
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' || !p.str(true) {
			return false
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return false
		}
		p.pos++
		if !p.value(depth) {
			return false
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return false
		}
		c := p.src[p.pos]
		p.pos++
		if c == '}' {
			break
		}
		if c != ',' {
			return false
		}
	}
	p.nodes[at].next = int32(len(p.nodes))
	return true
}

// appendUnquoted appends the contents of a JSON string (between its
// quotes, already checked) decoded exactly as encoding/json decodes it:
// invalid UTF-8 and unpaired surrogate escapes become U+FFFD.
func appendUnquoted(b, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(s[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if d := utf16.DecodeRune(r, hex4(s[i+2:i+6])); d != utf8.RuneError {
							b = utf8.AppendRune(b, d)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
				continue
			default: // '"', '\\', '/'
				b = append(b, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = append(b, "\uFFFD"...)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return b
}

// hex4 reads four hex digits (already checked).
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// name returns the decoded bytes of the member name at tape index i.
func (p *jcs) name(i int32) []byte {
	n := &p.nodes[i]
	if n.decoded {
		return p.names[n.start:n.end]
	}
	return p.src[n.start:n.end]
}

// write appends the value at tape index i in canonical form.
func (p *jcs) write(b []byte, i int32) []byte {
	n := &p.nodes[i]
	switch n.kind {
	case jNull:
		return append(b, "null"...)
	case jTrue:
		return append(b, "true"...)
	case jFalse:
		return append(b, "false"...)
	case jNumber:
		return appendNumberBytes(b, p.src[n.start:n.end])
	case jString:
		if n.plain {
			return append(b, p.src[n.start-1:n.end+1]...) // with its quotes
		}
		p.tmp = appendUnquoted(p.tmp[:0], p.src[n.start:n.end])
		return appendString(b, p.tmp)
	case jArray:
		b = append(b, '[')
		for c := i + 1; c < n.next; c = p.nodes[c].next {
			if c > i+1 {
				b = append(b, ',')
			}
			b = p.write(b, c)
		}
		return append(b, ']')
	}
	return p.writeObject(b, i)
}

// writeObject appends the object at tape index i with its members sorted
// by the UTF-16 code units of their names; of members with the same name,
// the last one is kept (as encoding/json's decoder keeps it).
func (p *jcs) writeObject(b []byte, i int32) []byte {
	end := p.nodes[i].next
	base := len(p.order)
	sorted := true
	for k := i + 1; k < end; k = p.nodes[k+1].next {
		if sorted && len(p.order) > base && compareUTF16(p.name(p.order[len(p.order)-1]), p.name(k)) >= 0 {
			sorted = false
		}
		p.order = append(p.order, k)
	}
	if !sorted {
		// By name, then by position, so that the last of equal names is
		// the last of its run.
		byName := func(x, y int32) int {
			if c := compareUTF16(p.name(x), p.name(y)); c != 0 {
				return c
			}
			return int(x - y)
		}
		if m := p.order[base:]; len(m) <= 12 {
			for a := 1; a < len(m); a++ {
				for z := a; z > 0 && byName(m[z], m[z-1]) < 0; z-- {
					m[z], m[z-1] = m[z-1], m[z]
				}
			}
		} else {
			slices.SortFunc(m, byName)
		}
	}
	b = append(b, '{')
	first := true
	for j := base; j < len(p.order); j++ {
		k := p.order[j]
		if !sorted && j+1 < len(p.order) && bytes.Equal(p.name(k), p.name(p.order[j+1])) {
			continue // a later member of the same name replaces it
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		if n := &p.nodes[k]; n.decoded {
			b = appendString(b, p.names[n.start:n.end])
		} else {
			b = append(b, p.src[n.start-1:n.end+1]...) // with its quotes
		}
		b = append(b, ':')
		b = p.write(b, k+1)
	}
	p.order = p.order[:base]
	return append(b, '}')
}

// compareUTF16 compares two valid UTF-8 strings by their UTF-16 code units
// (RFC 8785 §3.2.3). That order is UTF-8's byte order except where one
// string has a character above U+FFFF (a surrogate pair, D800-DFFF) and the
// other one in U+E000..U+FFFF at the same place.
func compareUTF16[T string | []byte](a, b T) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return len(a) - len(b)
	}
	ca, cb := a[i], b[i]
	// A differing lead byte of four (F0-F4) against one of three starting
	// EE or EF: the four-byte character sorts first. (A differing
	// continuation byte means both characters have the same length.)
	if ca >= 0xF0 && (cb == 0xEE || cb == 0xEF) {
		return -1
	}
	if cb >= 0xF0 && (ca == 0xEE || ca == 0xEF) {
		return 1
	}
	return int(ca) - int(cb)
}

// appendNumberBytes is appendNumber for a number in the input.
func appendNumberBytes(b, s []byte) []byte {
	if plainInteger(s) {
		return append(b, s...)
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil {
		return append(b, s...) // beyond the double range: kept as written
	}
	b, _ = appendFloat(b, f) // a parsed number is finite
	return b
}

// plainInteger reports whether s is an integer of at most 15 digits
// written without a leading zero or "-0": its own canonical form.
func plainInteger[T string | []byte](s T) bool {
	n := len(s)
	if n == 0 || n > 15 {
		return false
	}
	i := 0
	if s[0] == '-' {
		if n == 1 {
			return false
		}
		i = 1
	}
	if s[i] == '0' && n > 1 {
		return false // 0123 or -0
	}
	for ; i < n; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
