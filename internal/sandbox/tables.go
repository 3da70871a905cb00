package sandbox

import (
	"errors"
	"fmt"
)

// tableElementBytes is what wazero keeps per table element (a Reference,
// one uintptr).
const tableElementBytes = 8

// boundTables accounts for the module's tables against memoryBytes and
// returns the module to compile and the most host memory its tables can
// take.
//
// Why: Limits.MemoryBytes covers linear memories only, and a table is host
// memory as well. With memory_mb 16, a declared 100M-entry table filled with
// table.fill took ~790 MiB of host memory and table.grow in a loop 3.7 GiB.
// Tables get a budget of their own, equal to the memory limit: a module
// whose declared (minimum) table sizes do not fit it is refused, and a table
// whose maximum is absent or too large gets a maximum that fits. Lowering a
// maximum is invisible to a conforming guest: table.grow may fail at any
// time (it returns -1), and that is what it now does past the budget.
//
// The caller's bytes are never modified (the rewrite, like the data-segment
// merge, is internal and deterministic, so the compilation cache keeps
// hitting). A module whose sections do not parse is returned as is, for
// wazero to judge.
func boundTables(wasm []byte, memoryBytes uint64) ([]byte, uint64, error) {
	maxElems := memoryBytes / tableElementBytes
	secs, err := rawSections(wasm)
	if err != nil {
		return wasm, 0, nil
	}
	var imported uint64
	tableSec := -1
	for i, s := range secs {
		switch s.id {
		case 2:
			n, err := importedTableMins(wasm[s.start:s.end])
			if err != nil {
				return wasm, 0, nil
			}
			imported += n
		case 4:
			tableSec = i
		}
	}
	if imported > maxElems {
		return nil, 0, fmt.Errorf("imported tables of %d elements (%d bytes) exceed the worker's table budget of %d bytes (its memory limit)", imported, imported*tableElementBytes, memoryBytes)
	}
	if tableSec < 0 {
		return wasm, imported * tableElementBytes, nil
	}
	s := secs[tableSec]
	tables, err := readTables(wasm[s.start:s.end])
	if err != nil {
		if errors.Is(err, errTableEncoding) {
			return nil, 0, err
		}
		return wasm, 0, nil
	}
	sumMin := imported
	for _, t := range tables {
		sumMin += uint64(t.min)
	}
	if sumMin > maxElems {
		return nil, 0, fmt.Errorf("tables declare %d elements (%d bytes), over the worker's table budget of %d bytes (its memory limit)", sumMin, sumMin*tableElementBytes, memoryBytes)
	}
	share := (maxElems - sumMin) / uint64(max(len(tables), 1))
	changed := false
	total := imported
	for i := range tables {
		t := &tables[i]
		bound := uint64(t.min) + share
		if !t.hasMax || uint64(t.max) > bound {
			t.hasMax, t.max = true, uint32(min(bound, 1<<32-1))
			changed = true
		}
		total += uint64(t.max)
	}
	if !changed {
		return wasm, total * tableElementBytes, nil
	}
	var body []byte
	body = appendULEB(body, uint64(len(tables)))
	for _, t := range tables {
		body = append(body, t.refType, 0x01)
		body = appendULEB(body, uint64(t.min))
		body = appendULEB(body, uint64(t.max))
	}
	out := make([]byte, 0, len(wasm)+16)
	out = append(out, wasm[:s.header]...)
	out = append(out, 4)
	out = appendULEB(out, uint64(len(body)))
	out = append(out, body...)
	out = append(out, wasm[s.end:]...)
	return out, total * tableElementBytes, nil
}

var errTableEncoding = errors.New("a table uses an encoding the Hall cannot bound (64-bit or initialised tables); refused")

type rawSection struct {
	id                 byte
	header, start, end int // header: offset of the id byte; [start,end): content
}

// hasStartSection tells whether wasm has a start section (id 8), whose
// function runs at every instantiation.
func hasStartSection(wasm []byte) bool {
	secs, err := rawSections(wasm)
	if err != nil {
		return false
	}
	for _, s := range secs {
		if s.id == 8 {
			return true
		}
	}
	return false
}

func rawSections(wasm []byte) ([]rawSection, error) {
	if len(wasm) < 8 {
		return nil, errors.New("short module")
	}
	var out []rawSection
	off := 8
	for off < len(wasm) {
		id := wasm[off]
		size, n, err := readULEB(wasm[off+1:])
		if err != nil {
			return nil, err
		}
		start := off + 1 + n
		end := start + int(size)
		if size > uint64(len(wasm)) || end > len(wasm) {
			return nil, errors.New("section overruns module")
		}
		out = append(out, rawSection{id: id, header: off, start: start, end: end})
		off = end
	}
	return out, nil
}

type tableType struct {
	refType  byte
	min, max uint32
	hasMax   bool
}

func readTables(b []byte) ([]tableType, error) {
	r := byteReader{b: b}
	n := r.uleb()
	if r.err != nil || n > uint64(len(b)) {
		return nil, errors.New("bad table count")
	}
	out := make([]tableType, 0, n)
	for range n {
		rt := r.byte1()
		if rt == 0x40 {
			return nil, errTableEncoding
		}
		t, err := r.limits(rt)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// importedTableMins sums the minimum sizes of imported tables.
func importedTableMins(b []byte) (uint64, error) {
	r := byteReader{b: b}
	n := r.uleb()
	var sum uint64
	for i := uint64(0); i < n && r.err == nil; i++ {
		r.skipName()
		r.skipName()
		switch kind := r.byte1(); kind {
		case 0: // func: type index
			r.uleb()
		case 1: // table
			t, err := r.limits(r.byte1())
			if err != nil {
				return 0, err
			}
			sum += uint64(t.min)
		case 2: // memory
			flag := r.byte1()
			r.uleb()
			if flag&1 != 0 {
				r.uleb()
			}
		case 3: // global
			r.byte1()
			r.byte1()
		case 4: // tag
			r.byte1()
			r.uleb()
		default:
			return 0, fmt.Errorf("import kind %d", kind)
		}
	}
	return sum, r.err
}

type byteReader struct {
	b   []byte
	off int
	err error
}

func (r *byteReader) byte1() byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.b) {
		r.err = errors.New("unexpected end")
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *byteReader) uleb() uint64 {
	if r.err != nil {
		return 0
	}
	v, n, err := readULEB(r.b[r.off:])
	if err != nil {
		r.err = err
		return 0
	}
	r.off += n
	return v
}

func (r *byteReader) skipName() {
	n := r.uleb()
	if r.err == nil && n > uint64(len(r.b)-r.off) {
		r.err = errors.New("name overruns section")
		return
	}
	r.off += int(n)
}

func (r *byteReader) limits(refType byte) (tableType, error) {
	t := tableType{refType: refType}
	switch flag := r.byte1(); flag {
	case 0x00:
		t.min = uint32(r.uleb())
	case 0x01:
		t.min = uint32(r.uleb())
		t.max = uint32(r.uleb())
		t.hasMax = true
	default:
		if r.err != nil {
			return t, r.err
		}
		return t, errTableEncoding
	}
	return t, r.err
}

func readULEB(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1, nil
		}
	}
	return 0, 0, errors.New("bad LEB128")
}

func appendULEB(b []byte, v uint64) []byte {
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
