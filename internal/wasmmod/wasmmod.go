package wasmmod

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrMalformed is wrapped by every error about the bytes of a module, so a
// caller can map it to the MODULE_INVALID outcome with errors.Is.
var ErrMalformed = errors.New("malformed wasm module")

// FormatError describes where a module's bytes stop making sense.
type FormatError struct {
	Offset int    // byte offset in the module where the problem was found
	Msg    string // what is wrong there
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("wasm: offset %d: %s", e.Offset, e.Msg)
}

// Unwrap makes errors.Is(err, ErrMalformed) true.
func (e *FormatError) Unwrap() error { return ErrMalformed }

// Kind is the kind of an imported or exported entity.
type Kind string

// The external kinds of the core WebAssembly binary format (§5.5.10).
const (
	KindFunc   Kind = "func"
	KindTable  Kind = "table"
	KindMemory Kind = "memory"
	KindGlobal Kind = "global"
	KindTag    Kind = "tag" // exception-handling proposal
)

// Import is one entry of the module's import section.
type Import struct {
	Module string // e.g. "extism:host/env"
	Name   string // e.g. "input_length"
	Kind   Kind
}

// Export is one entry of the module's export section.
type Export struct {
	Name string
	Kind Kind
}

// Info is the outward-facing shape of a module: what it needs from its host
// and what it offers. Entries are in module order.
type Info struct {
	Imports        []Import
	Exports        []Export
	CustomSections []string // names of custom sections, duplicates included
}

// Functions returns the names of the exported functions meant to be
// called, in module order: those not starting with "_" (the runtime's
// _start and _initialize, and internal exports).
func (i Info) Functions() []string {
	var names []string
	for _, e := range i.Exports {
		if e.Kind == KindFunc && !strings.HasPrefix(e.Name, "_") {
			names = append(names, e.Name)
		}
	}
	return names
}

// HasImport reports whether the module imports module.name (any kind).
func (i Info) HasImport(module, name string) bool {
	for _, im := range i.Imports {
		if im.Module == module && im.Name == name {
			return true
		}
	}
	return false
}

// HasExport reports whether the module exports name as kind.
func (i Info) HasExport(name string, kind Kind) bool {
	for _, ex := range i.Exports {
		if ex.Name == name && ex.Kind == kind {
			return true
		}
	}
	return false
}

// Section ids of the core binary format (§5.5.2) plus the tag section of the
// exception-handling proposal.
const (
	sectionCustom = 0
	sectionImport = 2
	sectionExport = 7
	sectionMaxID  = 13
)

var (
	magic      = []byte{0x00, 'a', 's', 'm'}
	version1   = []byte{0x01, 0x00, 0x00, 0x00}
	headerSize = len(magic) + len(version1)
)

// section is the framing of one section: id, where its payload lies, and
// where the whole section (id byte included) lies.
type section struct {
	id         byte
	start, end int // payload
	begin      int // offset of the id byte
	name       string
	dataStart  int // custom sections: payload after the name
}

// sections validates the header and the framing of every section.
func sections(wasm []byte) ([]section, error) {
	if len(wasm) < headerSize {
		return nil, &FormatError{0, fmt.Sprintf("module is %d bytes, shorter than the 8-byte header", len(wasm))}
	}
	if !bytes.Equal(wasm[:4], magic) {
		return nil, &FormatError{0, "missing \\0asm magic number"}
	}
	if !bytes.Equal(wasm[4:8], version1) {
		if wasm[6] != 0 || wasm[7] != 0 {
			return nil, &FormatError{4, "component model binary, not a core module"}
		}
		return nil, &FormatError{4, fmt.Sprintf("unsupported binary format version %x", wasm[4:8])}
	}
	var out []section
	r := reader{buf: wasm, off: headerSize}
	for r.off < len(wasm) {
		begin := r.off
		id := r.byte1()
		size := r.u32()
		if r.err != nil {
			return nil, r.err
		}
		if id > sectionMaxID {
			return nil, &FormatError{begin, fmt.Sprintf("unknown section id %d", id)}
		}
		if int64(size) > int64(len(wasm)-r.off) {
			return nil, &FormatError{begin, fmt.Sprintf("section %d declares %d bytes but only %d remain", id, size, len(wasm)-r.off)}
		}
		s := section{id: id, begin: begin, start: r.off, end: r.off + int(size)}
		if id == sectionCustom {
			sr := reader{buf: wasm[:s.end], off: s.start}
			s.name = sr.name()
			if sr.err != nil {
				return nil, sr.err
			}
			s.dataStart = sr.off
		}
		out = append(out, s)
		r.off = s.end
	}
	return out, nil
}

// Inspect lists the imports, exports and custom section names of a module.
//
// # Notes
//
//   - Module-level validation stops at section framing and the import and
//     export entries; function bodies are not decoded.
func Inspect(wasm []byte) (Info, error) {
	secs, err := sections(wasm)
	if err != nil {
		return Info{}, err
	}
	var info Info
	seen := map[byte]bool{}
	for _, s := range secs {
		if s.id != sectionCustom {
			if seen[s.id] {
				return Info{}, &FormatError{s.begin, fmt.Sprintf("duplicate section id %d", s.id)}
			}
			seen[s.id] = true
		}
		r := reader{buf: wasm[:s.end], off: s.start}
		switch s.id {
		case sectionCustom:
			info.CustomSections = append(info.CustomSections, s.name)
			continue
		case sectionImport:
			info.Imports, err = readImports(&r)
		case sectionExport:
			info.Exports, err = readExports(&r)
		default:
			continue
		}
		if err != nil {
			return Info{}, err
		}
		if r.off != s.end {
			return Info{}, &FormatError{r.off, fmt.Sprintf("section %d has %d trailing bytes", s.id, s.end-r.off)}
		}
	}
	return info, nil
}

// capFor bounds preallocation from a declared vector length so that a
// tiny hostile module cannot make us allocate gigabytes: every entry needs
// at least three bytes, so a count larger than the section is a lie anyway.
func capFor(count uint32, remaining int) int {
	if int64(count) > int64(remaining) {
		return remaining
	}
	return int(count)
}

func readImports(r *reader) ([]Import, error) {
	start := r.off
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if int64(n) > int64(len(r.buf)-r.off) {
		return nil, &FormatError{start, fmt.Sprintf("import count %d exceeds section size", n)}
	}
	out := make([]Import, 0, capFor(n, len(r.buf)-r.off))
	for i := uint32(0); i < n; i++ {
		var im Import
		im.Module = r.name()
		im.Name = r.name()
		at := r.off
		switch k := r.byte1(); k {
		case 0x00:
			im.Kind = KindFunc
			r.u32() // type index
		case 0x01:
			im.Kind = KindTable
			r.refType()
			r.limits()
		case 0x02:
			im.Kind = KindMemory
			r.limits()
		case 0x03:
			im.Kind = KindGlobal
			r.valType()
			if m := r.byte1(); r.err == nil && m > 1 {
				r.fail(r.off-1, fmt.Sprintf("invalid global mutability %#x", m))
			}
		case 0x04:
			im.Kind = KindTag
			if a := r.byte1(); r.err == nil && a != 0 {
				r.fail(r.off-1, fmt.Sprintf("invalid tag attribute %#x", a))
			}
			r.u32()
		default:
			if r.err == nil {
				r.fail(at, fmt.Sprintf("invalid import kind %#x", k))
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		out = append(out, im)
	}
	return out, nil
}

func readExports(r *reader) ([]Export, error) {
	start := r.off
	n := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if int64(n) > int64(len(r.buf)-r.off) {
		return nil, &FormatError{start, fmt.Sprintf("export count %d exceeds section size", n)}
	}
	out := make([]Export, 0, capFor(n, len(r.buf)-r.off))
	names := make(map[string]bool, n)
	for i := uint32(0); i < n; i++ {
		at := r.off
		var ex Export
		ex.Name = r.name()
		kindAt := r.off
		k := r.byte1()
		r.u32() // index
		if r.err != nil {
			return nil, r.err
		}
		switch k {
		case 0x00:
			ex.Kind = KindFunc
		case 0x01:
			ex.Kind = KindTable
		case 0x02:
			ex.Kind = KindMemory
		case 0x03:
			ex.Kind = KindGlobal
		case 0x04:
			ex.Kind = KindTag
		default:
			return nil, &FormatError{kindAt, fmt.Sprintf("invalid export kind %#x", k)}
		}
		if names[ex.Name] {
			return nil, &FormatError{at, fmt.Sprintf("duplicate export name %q", ex.Name)}
		}
		names[ex.Name] = true
		out = append(out, ex)
	}
	return out, nil
}

// CustomSection returns a copy of the payload of the first custom section
// called name, and whether there is one.
func CustomSection(wasm []byte, name string) ([]byte, bool, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, false, err
	}
	for _, s := range secs {
		if s.id == sectionCustom && s.name == name {
			return bytes.Clone(wasm[s.dataStart:s.end]), true, nil
		}
	}
	return nil, false, nil
}

// CustomSections returns the payload of every custom section called name,
// in module order (nil when there is none). A name the binary format allows
// to repeat can still mean one thing only to its reader: a caller that
// expects one section should refuse more.
func CustomSections(wasm []byte, name string) ([][]byte, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, s := range secs {
		if s.id == sectionCustom && s.name == name {
			out = append(out, bytes.Clone(wasm[s.dataStart:s.end]))
		}
	}
	return out, nil
}

// SetCustomSection returns a copy of wasm in which the custom section called
// name holds data: the first section of that name is replaced in place and
// any later ones are dropped; without one, the section is appended at the
// end of the module.
//
// # Notes
//
//   - Custom sections do not change a module's semantics (§5.5.3), so the
//     result runs exactly like the input.
//   - The name must be valid UTF-8, as the binary format requires.
func SetCustomSection(wasm []byte, name string, data []byte) ([]byte, error) {
	if !utf8.ValidString(name) {
		return nil, fmt.Errorf("wasmmod: custom section name %q is not valid UTF-8", name)
	}
	secs, err := sections(wasm)
	if err != nil {
		return nil, err
	}
	payload := appendU32(nil, uint32(len(name)))
	payload = append(payload, name...)
	if uint64(len(payload))+uint64(len(data)) > 1<<32-1 {
		return nil, fmt.Errorf("wasmmod: custom section %q of %d bytes exceeds the 4 GiB section limit", name, len(data))
	}
	encoded := []byte{sectionCustom}
	encoded = appendU32(encoded, uint32(len(payload)+len(data)))
	encoded = append(encoded, payload...)
	encoded = append(encoded, data...)

	out := make([]byte, 0, len(wasm)+len(encoded))
	out = append(out, wasm[:headerSize]...)
	placed := false
	for _, s := range secs {
		if s.id == sectionCustom && s.name == name {
			if !placed {
				out = append(out, encoded...)
				placed = true
			}
			continue
		}
		out = append(out, wasm[s.begin:s.end]...)
	}
	if !placed {
		out = append(out, encoded...)
	}
	return out, nil
}

func appendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

// reader decodes the primitive encodings of §5.1–5.3 with a sticky error:
// after the first failure every method returns zero values.
type reader struct {
	buf []byte
	off int
	err error
}

func (r *reader) fail(at int, msg string) {
	if r.err == nil {
		r.err = &FormatError{at, msg}
	}
}

func (r *reader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.buf) {
		r.fail(r.off, "unexpected end of data")
		return 0
	}
	b := r.buf[r.off]
	r.off++
	return b
}

// uleb decodes an unsigned LEB128 of at most bits bits.
func (r *reader) uleb(bits uint) uint64 {
	start := r.off
	var v uint64
	maxBytes := int((bits + 6) / 7)
	for i := 0; ; i++ {
		b := r.byte1()
		if r.err != nil {
			return 0
		}
		if i == maxBytes-1 {
			// The last permitted byte may only carry the remaining bits.
			rest := bits - uint(7*i)
			if b&0x80 != 0 || (rest < 7 && b>>rest != 0) {
				r.fail(start, fmt.Sprintf("integer too large for %d bits", bits))
				return 0
			}
		}
		v |= uint64(b&0x7f) << (7 * uint(i))
		if b&0x80 == 0 {
			return v
		}
	}
}

func (r *reader) u32() uint32 { return uint32(r.uleb(32)) }

// s33 skips a signed LEB128 of at most 33 bits (heap type indices).
func (r *reader) s33() {
	start := r.off
	for i := 0; ; i++ {
		b := r.byte1()
		if r.err != nil {
			return
		}
		if b&0x80 == 0 {
			return
		}
		if i == 4 {
			r.fail(start, "integer too large for 33 bits")
			return
		}
	}
}

func (r *reader) name() string {
	at := r.off
	n := r.u32()
	if r.err != nil {
		return ""
	}
	if int64(n) > int64(len(r.buf)-r.off) {
		r.fail(at, fmt.Sprintf("name of %d bytes runs past the end of its section", n))
		return ""
	}
	b := r.buf[r.off : r.off+int(n)]
	if !utf8.Valid(b) {
		r.fail(at, "name is not valid UTF-8")
		return ""
	}
	r.off += int(n)
	return string(b)
}

// valType skips a value type, including the reference types of the
// function-references and GC proposals.
func (r *reader) valType() {
	at := r.off
	switch b := r.byte1(); b {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b: // i32 i64 f32 f64 v128
	default:
		if r.err == nil {
			r.off = at
			r.refType()
		}
	}
}

func (r *reader) refType() {
	at := r.off
	switch b := r.byte1(); {
	case r.err != nil:
	case b == 0x63 || b == 0x64: // (ref null ht), (ref ht)
		r.s33()
	case b >= 0x69 && b <= 0x74: // abstract heap type shorthands
	default:
		r.fail(at, fmt.Sprintf("invalid reference type %#x", b))
	}
}

func (r *reader) limits() {
	at := r.off
	flags := r.byte1()
	if r.err != nil {
		return
	}
	if flags > 0x07 {
		r.fail(at, fmt.Sprintf("invalid limits flags %#x", flags))
		return
	}
	bits := uint(32)
	if flags&0x04 != 0 { // memory64
		bits = 64
	}
	r.uleb(bits)
	if flags&0x01 != 0 {
		r.uleb(bits)
	}
}
