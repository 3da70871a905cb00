package wasmmod

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
)

const (
	sectionMemory    = 5
	sectionData      = 11
	sectionDataCount = 12

	wasmPageSize = 65536
	// maxPages32 is the most pages a 32-bit memory can declare.
	maxPages32 = 65536
)

// MergeGap is the largest run of bytes between two data segments that
// MergeDataSegments fills with zeros to join them into one segment.
const MergeGap = 64

// MergeDataSegments returns a copy of wasm whose data section holds fewer,
// larger active segments with exactly the same effect on the module's
// initial memory, and true; or a copy of wasm unchanged and false when the
// module is outside the narrow shape it rewrites.
//
// Why: the Go toolchain emits tens of thousands of small active data
// segments (it splits at runs of zeros), and a runtime evaluates the offset
// of each one and copies it separately at every instantiation.
//
// The rewrite happens only when all of these hold, so that it is provably
// semantically identical:
//
//   - the module defines exactly one memory (not imported, so it starts
//     zeroed), 32-bit and not shared;
//   - every data segment is active, targets memory 0 and has an
//     `i32.const` offset expression (no global.get, no extended constants);
//   - there is no data count section: without one, memory.init and
//     data.drop do not validate, so nothing can refer to segment indices;
//   - every segment lies within the memory's declared minimum size, so no
//     segment can trap at instantiation (where the order of writes would
//     matter);
//   - no two non-empty segments overlap, so the order of writes does not
//     matter.
//
// Segments are then sorted by offset, empty ones dropped, and neighbours
// at most MergeGap bytes apart joined, the gap filled with zeros (which the
// fresh memory holds there and which no other segment writes). Everything
// else in the module is copied byte for byte.
//
// # Notes
//
//   - A framing or data-section encoding error is returned wrapping
//     ErrMalformed; any other shape the function does not rewrite is
//     reported as (copy, false, nil). It never panics (FuzzMergeDataSegments).
//   - The result is deterministic: the same input always gives the same
//     bytes.
//   - Custom sections are copied unchanged. A "name" section subsection
//     naming data segments by index (rare; the Go toolchain emits none) would
//     then describe the old indices; names have no effect on execution.
func MergeDataSegments(wasm []byte) ([]byte, bool, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, false, err
	}
	untouched := func() ([]byte, bool, error) { return bytes.Clone(wasm), false, nil }

	var (
		dataSec  = -1
		memBytes uint64
		memories int
		seen     = map[byte]bool{}
	)
	for i, s := range secs {
		if s.id == sectionCustom {
			continue
		}
		if seen[s.id] {
			return nil, false, &FormatError{s.begin, fmt.Sprintf("duplicate section id %d", s.id)}
		}
		seen[s.id] = true
		r := reader{buf: wasm[:s.end], off: s.start}
		switch s.id {
		case sectionImport:
			imports, err := readImports(&r)
			if err != nil {
				return nil, false, err
			}
			for _, im := range imports {
				if im.Kind == KindMemory {
					return untouched() // contents unknown, not zeroed
				}
			}
		case sectionMemory:
			n := r.u32()
			if r.err != nil {
				return nil, false, r.err
			}
			if n != 1 {
				return untouched()
			}
			memories = 1
			flags := r.byte1()
			min := r.uleb(32)
			if flags&0x01 != 0 {
				r.uleb(32)
			}
			if r.err != nil {
				return nil, false, r.err
			}
			if flags > 0x01 || min > maxPages32 || r.off != s.end {
				return untouched() // shared, memory64, page sizes, or odd
			}
			memBytes = min * wasmPageSize
		case sectionDataCount:
			return untouched()
		case sectionData:
			dataSec = i
		}
	}
	if dataSec < 0 || memories != 1 {
		return untouched()
	}
	s := secs[dataSec]
	segs, ok, err := readActiveSegments(wasm[:s.end], s.start)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return untouched()
	}
	merged, ok := mergeSegments(segs, memBytes)
	if !ok || len(merged) >= len(segs) {
		return untouched()
	}

	payload := appendU32(nil, uint32(len(merged)))
	for _, m := range merged {
		payload = append(payload, 0x00, 0x41) // active, memory 0, i32.const
		payload = appendS32(payload, int32(uint32(m.offset)))
		payload = append(payload, 0x0b) // end
		payload = appendU32(payload, uint32(m.size))
		at := m.offset
		for _, p := range m.parts {
			for ; at < p.offset; at++ {
				payload = append(payload, 0)
			}
			payload = append(payload, p.init...)
			at += uint64(len(p.init))
		}
	}
	if uint64(len(payload)) > 1<<32-1 {
		return untouched()
	}

	out := make([]byte, 0, len(wasm)-(s.end-s.begin)+len(payload)+6)
	out = append(out, wasm[:s.begin]...)
	out = append(out, sectionData)
	out = appendU32(out, uint32(len(payload)))
	out = append(out, payload...)
	out = append(out, wasm[s.end:]...)
	return out, true, nil
}

// dataSegment is one active segment of memory 0 at a constant offset; init
// aliases the module bytes.
type dataSegment struct {
	offset uint64
	init   []byte
}

// readActiveSegments decodes the data section payload starting at off. It
// returns ok == false (and no error) as soon as a segment is not an active
// segment of memory 0 with an i32.const offset.
func readActiveSegments(buf []byte, off int) ([]dataSegment, bool, error) {
	r := reader{buf: buf, off: off}
	at := r.off
	n := r.u32()
	if r.err != nil {
		return nil, false, r.err
	}
	// Every segment needs at least 5 bytes (flag, i32.const, value, end,
	// length), so a larger count is a lie.
	if int64(n)*5 > int64(len(buf)-r.off) {
		return nil, false, &FormatError{at, fmt.Sprintf("data segment count %d exceeds section size", n)}
	}
	segs := make([]dataSegment, 0, n)
	for i := uint32(0); i < n; i++ {
		flagAt := r.off
		switch flag := r.u32(); {
		case r.err != nil:
			return nil, false, r.err
		case flag == 0:
		case flag == 2:
			if mem := r.u32(); r.err == nil && mem != 0 {
				return nil, false, nil
			}
		case flag == 1:
			return nil, false, nil // passive
		default:
			return nil, false, &FormatError{flagAt, fmt.Sprintf("invalid data segment flags %d", flag)}
		}
		if op := r.byte1(); r.err != nil || op != 0x41 {
			return nil, false, r.err // not i32.const: leave alone
		}
		v := r.s32()
		if end := r.byte1(); r.err != nil || end != 0x0b {
			return nil, false, r.err // extended constant expression
		}
		lenAt := r.off
		size := r.u32()
		if r.err != nil {
			return nil, false, r.err
		}
		if int64(size) > int64(len(buf)-r.off) {
			return nil, false, &FormatError{lenAt, fmt.Sprintf("data segment of %d bytes runs past the end of its section", size)}
		}
		segs = append(segs, dataSegment{offset: uint64(uint32(v)), init: buf[r.off : r.off+int(size)]})
		r.off += int(size)
	}
	if r.off != len(buf) {
		return nil, false, &FormatError{r.off, fmt.Sprintf("data section has %d trailing bytes", len(buf)-r.off)}
	}
	return segs, true, nil
}

// mergedSegment is a run of segments that becomes one, zeros between them.
type mergedSegment struct {
	offset, size uint64
	parts        []dataSegment
}

// mergeSegments checks that segs are in bounds of a memory of memBytes and
// pairwise disjoint, then joins neighbours at most MergeGap apart.
func mergeSegments(segs []dataSegment, memBytes uint64) ([]mergedSegment, bool) {
	sorted := make([]dataSegment, 0, len(segs))
	for _, sg := range segs {
		if sg.offset+uint64(len(sg.init)) > memBytes {
			return nil, false // would trap at instantiation: order matters
		}
		if len(sg.init) > 0 {
			sorted = append(sorted, sg)
		}
	}
	slices.SortStableFunc(sorted, func(a, b dataSegment) int { return cmp.Compare(a.offset, b.offset) })
	var out []mergedSegment
	for i, sg := range sorted {
		if i > 0 {
			prev := sorted[i-1]
			if prev.offset+uint64(len(prev.init)) > sg.offset {
				return nil, false // overlap: the order of writes matters
			}
		}
		if n := len(out); n > 0 {
			last := &out[n-1]
			if end := last.offset + last.size; sg.offset-end <= MergeGap {
				last.parts = append(last.parts, sg)
				last.size = sg.offset + uint64(len(sg.init)) - last.offset
				continue
			}
		}
		out = append(out, mergedSegment{offset: sg.offset, size: uint64(len(sg.init)), parts: []dataSegment{sg}})
	}
	return out, true
}

// s32 decodes a signed LEB128 of at most 32 bits.
func (r *reader) s32() int32 {
	start := r.off
	var v int64
	var shift uint
	for i := 0; ; i++ {
		b := r.byte1()
		if r.err != nil {
			return 0
		}
		v |= int64(b&0x7f) << shift
		shift += 7
		if i == 4 {
			// The fifth byte holds bits 28..31 and the sign extension: its
			// unused bits must all equal the sign bit.
			if b&0x80 != 0 || (b&0x70 != 0 && b&0x70 != 0x70) || (b&0x08 == 0) != (b&0x70 == 0) {
				r.fail(start, "integer too large for 32 bits")
				return 0
			}
		}
		if b&0x80 == 0 {
			if shift < 64 && b&0x40 != 0 {
				v |= -1 << shift
			}
			return int32(v)
		}
	}
}

// appendS32 appends v as a signed LEB128.
func appendS32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
