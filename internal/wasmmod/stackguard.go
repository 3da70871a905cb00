package wasmmod

import (
	"bytes"
	"fmt"
	"slices"
)

// StackExhaustedName is the name a guarded module gives the function whose
// `unreachable` ends a call that ran out of its stack budget. wazero names
// it as the innermost frame of the trap's stack trace
// ("<module>.hall.stack_exhausted()"), which is how a host tells this trap
// from the guest's own.
const StackExhaustedName = "hall.stack_exhausted"

// Frame charges of GuardStack, in bytes. They over-estimate what wazero's
// optimizing compiler (v1.12) keeps per call: a frame holds a return
// address and frame pointer, the callee-saved registers it clobbers (at
// most 16 general and 16 vector registers), one spill slot (8 or 16 bytes)
// per SSA value that a spill reaches, and the stack-passed arguments and
// results of the calls it makes. Every slot is charged 16 bytes, and every
// value a function can produce is charged whether or not it is spilled:
// one per instruction, plus each result of a call or block and each
// argument of a call (RATIONALE.md of internal/sandbox, "Call stack").
const (
	frameBytes = 16 + 16*8 + 16*16
	slotBytes  = 16
)

// StackGuard says what GuardStack did.
type StackGuard struct {
	// Functions is how many defined functions are charged per call.
	Functions int
	// MaxCharge is the largest charge of one call of one function, in
	// bytes (its frame and its guard's).
	MaxCharge uint64
}

// GuardStack returns a copy of wasm in which every call of a function the
// module defines is charged against a call stack budget of budget bytes per
// instance, and a call that would exceed it traps in the function named
// StackExhaustedName instead.
//
// Why: wazero v1.12 grows a call's stack to a fixed 400 MB ceiling (more
// while it copies the stack to grow it) and offers no setting; a guest
// recursing without bound took ~190 MiB of host memory under a 16 MiB
// memory limit, and 32 of them 3.7 GiB. With the guard, the host stack of a
// call is bounded by the budget (the charges over-estimate real frames), so
// it can be accounted for before the call is admitted.
//
// How: each function body the module defines gets a prologue that checks
// and takes the function's charge from a budget held in a new mutable
// global, and an epilogue that gives it back: the original instructions
// are wrapped in a block (whose label stands in for the function's, so a
// branch to the function's label leaves through the epilogue) and every
// `return` becomes a branch to that block. Every way into a function —
// direct and indirect calls, tables, exports, the start section — runs its
// prologue; function indices do not change.
//
// # Notes
//
//   - The guest cannot reach the budget: every function body and constant
//     expression is decoded and a module that refers to a global, function
//     or type index it does not define (which is what the new ones would be)
//     is refused, as is any instruction outside the features the Hall's
//     runtime enables (WebAssembly 2.0: sign extension, saturating
//     conversions, bulk memory, reference types, multi-value and SIMD).
//   - A trap leaves the budget partly taken; a trapped instance must not be
//     reused (the sandbox closes it).
//   - Tail calls do not exist in the enabled feature set; every call nests.
//   - Stack traces keep the guest's function names. Custom sections
//     other than "name" are dropped: the result is what the host
//     compiles, never the worker's module, and DWARF sections would
//     describe code offsets the rewrite moved (decoding the debug
//     sections of a 1.8 MB Rust module was ~10% of a one-shot run).
//   - Deterministic; a module with no defined function is returned as is.
//     Errors wrap ErrMalformed.
func GuardStack(wasm []byte, budget uint64) ([]byte, StackGuard, error) {
	return guard(wasm, budget, 0)
}

// YieldName is the name a module guarded with yield points
// (GuardStackYielding) gives the function its yield points call. A host
// listens to calls of it (wazero's experimental.FunctionListener) to pause
// the guest there; GuardStackYielding drops a guest name that claims it.
const YieldName = "hall.yield"

// GuardStackYielding is GuardStack that also gives the module yield
// points: a countdown, in a new mutable global the guest cannot reach, is
// decremented at the start of every function the module defines and at the
// top of every loop, and each time it reaches zero the function named
// YieldName (new, defined, taking and returning nothing) is called, which
// resets it to every. A host that listens to calls of that function gets
// control of the guest's goroutine at least every `every` loop iterations
// or calls, without any import (function indices do not change), and may
// block there: this is how a host pre-empts a guest cooperatively.
//
// # Notes
//
//   - every 0 is GuardStack: no yield points.
//   - A single instruction that takes long (memory.fill or memory.copy of
//     a large memory, a host call) is not interrupted: yield points come
//     between iterations and calls.
//   - The countdown costs a global read, a decrement, a write and a test
//     per iteration and call (BenchmarkLoopTermination in internal/sandbox).
func GuardStackYielding(wasm []byte, budget uint64, every uint32) ([]byte, StackGuard, error) {
	return guard(wasm, budget, every)
}

func guard(wasm []byte, budget uint64, every uint32) ([]byte, StackGuard, error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, StackGuard{}, err
	}
	m := guardScan{yieldEvery: every}
	idx := map[byte]int{}
	for i, s := range secs {
		if s.id != sectionCustom {
			if _, dup := idx[s.id]; dup {
				return nil, StackGuard{}, &FormatError{s.begin, fmt.Sprintf("section %d appears twice", s.id)}
			}
			idx[s.id] = i
		}
	}
	// Sections are scanned in their binary order: types, imports,
	// functions, tables, memories, globals, exports, start, elements,
	// data count, code.
	for _, id := range []byte{sectionType, sectionImport, sectionFunction, sectionGlobal, sectionExport, sectionStart, sectionElement, sectionCode, sectionData} {
		i, ok := idx[id]
		if !ok {
			continue
		}
		s := secs[i]
		r := &reader{buf: wasm[:s.end], off: s.start}
		m.section(r, id)
		if r.err == nil && r.off != s.end {
			r.fail(r.off, fmt.Sprintf("section %d has %d bytes after its last entry", id, s.end-r.off))
		}
		if r.err != nil {
			return nil, StackGuard{}, r.err
		}
	}
	defined := len(m.bodies)
	if defined != len(m.funcTypes)-m.importedFuncs {
		return nil, StackGuard{}, &FormatError{0, fmt.Sprintf("%d function bodies for %d declared functions", defined, len(m.funcTypes)-m.importedFuncs)}
	}
	if defined == 0 {
		return slices.Clone(wasm), StackGuard{}, nil
	}
	return m.rewrite(wasm, secs, idx, budget)
}

const (
	sectionGlobal  = 6
	sectionStart   = 8
	sectionElement = 9
	sectionCode    = 10
)

type guardScan struct {
	// yieldEvery is the countdown of the yield points (0: none).
	yieldEvery    uint32
	types         []FuncType
	funcTypes     []uint32 // every function's type index, imports first
	importedFuncs int
	globals       uint32 // imported and defined
	bodies        []guardBody
}

type guardBody struct {
	locals  []byte // the body's local declarations, as encoded
	code    []byte // its instructions, `return` made a branch (instrs)
	results []byte // the function's result types
	charge  uint64
}

func (m *guardScan) section(r *reader, id byte) {
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		switch id {
		case sectionType:
			if form := r.byte1(); r.err == nil && form != 0x60 {
				r.fail(r.off-1, fmt.Sprintf("type %d: form %#x is not a function type (only WebAssembly 2.0 types are enabled)", i, form))
				return
			}
			var ft FuncType
			ft.Params = r.valTypes()
			ft.Results = r.valTypes()
			for _, v := range append(slices.Clip(ft.Params), ft.Results...) {
				if r.err == nil && !slices.Contains([]byte{0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f}, v) {
					r.fail(r.off, fmt.Sprintf("type %d: value type %#x is not enabled (only WebAssembly 2.0 types are)", i, v))
				}
			}
			m.types = append(m.types, ft)
		case sectionImport:
			r.name()
			r.name()
			switch k := r.byte1(); k {
			case 0x00:
				m.funcTypes = append(m.funcTypes, m.typeIndex(r, r.u32()))
				m.importedFuncs++
			case 0x01:
				r.refType()
				r.limits()
			case 0x02:
				r.limits()
			case 0x03:
				r.valType()
				r.byte1()
				m.globals++
			default:
				r.fail(r.off-1, fmt.Sprintf("import kind %#x is not enabled", k))
			}
		case sectionFunction:
			m.funcTypes = append(m.funcTypes, m.typeIndex(r, r.u32()))
		case sectionGlobal:
			r.valType()
			r.byte1()
			// A global's initialiser may read only the globals before it.
			m.expr(r, m.globals)
			m.globals++
		case sectionExport:
			r.name()
			k := r.byte1()
			m.funcIndex(r, k == 0x00, r.u32())
		case sectionStart:
			m.funcIndex(r, true, uint32(n))
			return // the start section is one index, not a vector
		case sectionElement:
			m.element(r)
		case sectionData:
			switch flags := r.u32(); flags {
			case 0:
				m.expr(r, m.globals)
			case 1:
			case 2:
				r.u32()
				m.expr(r, m.globals)
			default:
				r.fail(r.off-1, fmt.Sprintf("data segment %d: invalid flags %d", i, flags))
				return
			}
			size := r.u32()
			if int64(size) > int64(len(r.buf)-r.off) {
				r.fail(r.off, fmt.Sprintf("data segment %d runs past its section", i))
				return
			}
			r.off += int(size)
		case sectionCode:
			m.body(r, i)
		}
	}
}

func (m *guardScan) typeIndex(r *reader, t uint32) uint32 {
	if r.err == nil && int64(t) >= int64(len(m.types)) {
		r.fail(r.off, fmt.Sprintf("type index %d out of range (%d types)", t, len(m.types)))
	}
	return t
}

func (m *guardScan) funcIndex(r *reader, isFunc bool, f uint32) {
	if isFunc && r.err == nil && int64(f) >= int64(len(m.funcTypes)) {
		r.fail(r.off, fmt.Sprintf("function index %d out of range (%d functions)", f, len(m.funcTypes)))
	}
}

func (m *guardScan) element(r *reader) {
	flags := r.u32()
	if r.err != nil {
		return
	}
	if flags > 7 {
		r.fail(r.off-1, fmt.Sprintf("invalid element segment flags %d", flags))
		return
	}
	if flags&0x01 == 0 { // active
		if flags&0x02 != 0 {
			r.u32() // table index
		}
		m.expr(r, m.globals)
	}
	exprs := flags&0x04 != 0
	if flags&0x03 != 0 { // an element kind or reference type follows
		if exprs {
			r.refType()
		} else if k := r.byte1(); r.err == nil && k != 0x00 {
			r.fail(r.off-1, fmt.Sprintf("invalid element kind %#x", k))
			return
		}
	}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		if exprs {
			m.expr(r, m.globals)
		} else {
			m.funcIndex(r, true, r.u32())
		}
	}
}

// expr checks a constant expression up to its end.
func (m *guardScan) expr(r *reader, globals uint32) {
	m.instrs(r, globals, nil)
}

func (m *guardScan) body(r *reader, i uint32) {
	at := r.off
	size := r.u32()
	if r.err != nil {
		return
	}
	if int64(size) > int64(len(r.buf)-r.off) {
		r.fail(at, fmt.Sprintf("function body %d runs past the code section", i))
		return
	}
	end := r.off + int(size)
	br := &reader{buf: r.buf[:end], off: r.off}
	fi := m.importedFuncs + int(i)
	if fi >= len(m.funcTypes) {
		r.fail(at, fmt.Sprintf("function body %d has no declared function", i))
		return
	}
	ft := m.types[m.funcTypes[fi]]
	var locals uint64
	localsAt := br.off
	groups := br.u32()
	for g := uint32(0); g < groups && br.err == nil; g++ {
		locals += uint64(br.u32())
		br.valType()
	}
	localsEnd := br.off
	var code []byte
	values := m.instrs(br, m.globals, &code)
	if br.err == nil && br.off != end {
		br.fail(br.off, fmt.Sprintf("function body %d has %d bytes after its end", i, end-br.off))
	}
	if br.err != nil {
		r.err = br.err
		return
	}
	sig := uint64(len(ft.Params) + len(ft.Results))
	if m.yieldEvery > 0 {
		values += tickValues // the prologue's yield point
	}
	charge := frameBytes + slotBytes*(sig+locals+values)
	m.bodies = append(m.bodies, guardBody{locals: r.buf[localsAt:localsEnd], code: code, results: ft.Results, charge: charge})
	r.off = end
}

// blockValues reads a block type and returns how many values the block's
// parameters and results make.
func (m *guardScan) blockValues(r *reader) uint64 {
	if r.err != nil || r.off >= len(r.buf) {
		r.byte1()
		return 0
	}
	b := r.buf[r.off]
	if b == 0x40 {
		r.off++
		return 0
	}
	if b&0xc0 == 0x40 { // a one-byte negative s33: a value type
		r.valType()
		return 1
	}
	at := r.off
	t := r.sleb(33)
	if r.err != nil {
		return 0
	}
	if t < 0 || t >= int64(len(m.types)) {
		r.fail(at, fmt.Sprintf("block type index %d out of range (%d types)", t, len(m.types)))
		return 0
	}
	ft := m.types[t]
	return uint64(len(ft.Params) + len(ft.Results))
}

// instrs decodes instructions up to the `end` that closes the sequence,
// checks every index an instruction names against the module's own, and
// returns how many values the sequence can produce (see frameBytes). With
// out, it appends the instructions to *out, each `return` replaced by a
// branch to the label of the block GuardStack wraps the body in.
func (m *guardScan) instrs(r *reader, globals uint32, out *[]byte) uint64 {
	var values uint64
	depth := 0
	for r.err == nil {
		at := r.off
		op := r.byte1()
		if r.err != nil {
			return 0
		}
		values++
		switch {
		case op == 0x00, op == 0x01, op == 0x05, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1,
			op >= 0x45 && op <= 0xc4:
		case op == 0x02, op == 0x03, op == 0x04:
			values += m.blockValues(r)
			depth++
		case op == 0x0b:
			if depth == 0 {
				if out != nil {
					*out = append(*out, 0x0b)
				}
				return values
			}
			depth--
		case op == 0x0c, op == 0x0d, op >= 0x20 && op <= 0x22, op == 0x25, op == 0x26:
			r.u32()
		case op == 0x0e:
			n := r.u32()
			for i := uint32(0); i <= n && r.err == nil; i++ {
				r.u32()
			}
		case op == 0x10:
			f := r.u32()
			m.funcIndex(r, true, f)
			if r.err == nil {
				ft := m.types[m.funcTypes[f]]
				values += uint64(len(ft.Params) + len(ft.Results))
			}
		case op == 0x11:
			t := m.typeIndex(r, r.u32())
			r.u32()
			if r.err == nil {
				ft := m.types[t]
				values += uint64(len(ft.Params) + len(ft.Results))
			}
		case op == 0x1c:
			r.valTypes()
		case op == 0x23, op == 0x24:
			if g := r.u32(); r.err == nil && g >= globals {
				r.fail(at, fmt.Sprintf("global index %d out of range (%d globals)", g, globals))
			}
		case op >= 0x28 && op <= 0x3e:
			r.memarg()
		case op == 0x3f, op == 0x40:
			r.u32()
		case op == 0x41:
			r.sleb(32)
		case op == 0x42:
			r.sleb(64)
		case op == 0x43:
			r.skip(4)
		case op == 0x44:
			r.skip(8)
		case op == 0xd0:
			r.sleb(33)
		case op == 0xd2:
			m.funcIndex(r, true, r.u32())
		case op == 0xfc:
			m.prefixedFC(r, at)
		case op == 0xfd:
			m.prefixedFD(r, at)
		default:
			r.fail(at, fmt.Sprintf("opcode %#x is not enabled (WebAssembly 2.0 only)", op))
		}
		if out != nil && r.err == nil && op == 0x03 && m.yieldEvery > 0 {
			// loop: the yield point at the top of every iteration.
			*out = append(*out, r.buf[at:r.off]...)
			*out = m.tick(*out)
			values += tickValues
			continue
		}
		if out != nil && r.err == nil {
			if op == 0x0f {
				// return: to the wrapping block, at label depth (one
				// beyond the blocks open here), and so to the epilogue.
				*out = append(*out, 0x0c)
				*out = appendU32(*out, uint32(depth))
			} else {
				*out = append(*out, r.buf[at:r.off]...)
			}
		}
	}
	return 0
}

func (m *guardScan) prefixedFC(r *reader, at int) {
	switch sub := r.u32(); {
	case r.err != nil:
	case sub <= 7: // saturating truncations
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		r.u32()
	default:
		r.fail(at, fmt.Sprintf("opcode 0xfc %d is not enabled", sub))
	}
}

func (m *guardScan) prefixedFD(r *reader, at int) {
	switch sub := r.u32(); {
	case r.err != nil:
	case sub <= 11, sub == 92, sub == 93: // loads, store, load_zero
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.skip(16)
	case sub >= 21 && sub <= 34: // extract and replace lane
		r.skip(1)
	case sub >= 84 && sub <= 91: // load and store lane
		r.memarg()
		r.skip(1)
	case sub <= 255:
	default:
		r.fail(at, fmt.Sprintf("opcode 0xfd %d is not enabled", sub))
	}
}

func (r *reader) memarg() {
	align := r.u32()
	if align&0x40 != 0 { // multi-memory: a memory index follows
		r.u32()
	}
	r.uleb(64)
}

func (r *reader) skip(n int) {
	if r.err != nil {
		return
	}
	if n > len(r.buf)-r.off {
		r.fail(r.off, "unexpected end of data")
		return
	}
	r.off += n
}

// sleb decodes a signed LEB128 of at most bits bits.
func (r *reader) sleb(bits uint) int64 {
	start := r.off
	var v int64
	var shift uint
	maxBytes := int((bits + 6) / 7)
	for i := 0; ; i++ {
		b := r.byte1()
		if r.err != nil {
			return 0
		}
		if i == maxBytes-1 && b&0x80 != 0 {
			r.fail(start, fmt.Sprintf("integer too large for %d bits", bits))
			return 0
		}
		v |= int64(b&0x7f) << shift
		shift += 7
		if b&0x80 == 0 {
			if shift < 64 && b&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
}

func appendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// rewrite builds the guarded module (see GuardStack).
func (m *guardScan) rewrite(wasm []byte, secs []section, idx map[byte]int, budget uint64) ([]byte, StackGuard, error) {
	budget = min(budget, 1<<62)
	imported := uint32(m.importedFuncs)
	defined := uint32(len(m.bodies))
	total := imported + defined // the trap function's index
	budgetGlobal := m.globals
	g := StackGuard{Functions: int(defined)}

	payload := func(id byte) []byte {
		if i, ok := idx[id]; ok {
			s := secs[i]
			r := reader{buf: wasm[:s.end], off: s.start}
			r.u32()
			return wasm[r.off:s.end]
		}
		return nil
	}

	// Types: the module's, then () -> () for the trap, then () -> results
	// for the blocks wrapping bodies with several results (when the module
	// has no such type).
	types := slices.Clone(m.types)
	trapType := uint32(len(types))
	types = append(types, FuncType{})
	blockType := func(results []byte) []byte {
		switch len(results) {
		case 0:
			return []byte{0x40}
		case 1:
			return []byte{results[0]}
		}
		for t, ft := range types {
			if len(ft.Params) == 0 && bytes.Equal(ft.Results, results) {
				return appendS64(nil, int64(t))
			}
		}
		types = append(types, FuncType{Results: results})
		return appendS64(nil, int64(len(types)-1))
	}

	extra := uint32(1) // the trap function, then the yield function
	if m.yieldEvery > 0 {
		extra = 2
	}
	codeSec := appendU32(nil, defined+extra)
	var body []byte
	for _, b := range m.bodies {
		g.MaxCharge = max(g.MaxCharge, b.charge)
		charge := int64(min(b.charge, 1<<62))
		body = append(body[:0], b.locals...)
		// if budget < charge { stack_exhausted() }
		body = append(body, 0x23)
		body = appendU32(body, budgetGlobal)
		body = append(body, 0x42)
		body = appendS64(body, charge)
		body = append(body, 0x54, 0x04, 0x40, 0x10)
		body = appendU32(body, total)
		body = append(body, 0x0b)
		body = m.adjust(body, budgetGlobal, charge, 0x7d) // budget -= charge
		if m.yieldEvery > 0 {
			body = m.tick(body)
		}
		body = append(body, 0x02)
		body = append(body, blockType(b.results)...)
		body = append(body, b.code...)                    // ends the block
		body = m.adjust(body, budgetGlobal, charge, 0x7c) // budget += charge
		body = append(body, 0x0b)
		codeSec = appendU32(codeSec, uint32(len(body)))
		codeSec = append(codeSec, body...)
	}
	codeSec = append(codeSec, 0x03, 0x00, 0x00, 0x0b) // stack_exhausted: unreachable
	if m.yieldEvery > 0 {
		// hall.yield: ticks = every (the host's listener runs before).
		y := append([]byte{0x00, 0x41}, appendS64(nil, int64(int32(m.yieldEvery)))...)
		y = append(y, 0x24)
		y = appendU32(y, budgetGlobal+1)
		y = append(y, 0x0b)
		codeSec = appendU32(codeSec, uint32(len(y)))
		codeSec = append(codeSec, y...)
	}

	typeSec := appendU32(nil, uint32(len(types)))
	typeSec = append(typeSec, payload(sectionType)...)
	for _, ft := range types[len(m.types):] {
		typeSec = append(typeSec, 0x60)
		typeSec = appendU32(typeSec, uint32(len(ft.Params)))
		typeSec = append(typeSec, ft.Params...)
		typeSec = appendU32(typeSec, uint32(len(ft.Results)))
		typeSec = append(typeSec, ft.Results...)
	}

	funcSec := appendU32(nil, defined+extra)
	funcSec = append(funcSec, payload(sectionFunction)...)
	funcSec = appendU32(funcSec, trapType)
	if m.yieldEvery > 0 {
		funcSec = appendU32(funcSec, trapType) // hall.yield: () -> ()
	}

	definedGlobals := uint32(0)
	if i, ok := idx[sectionGlobal]; ok {
		r := reader{buf: wasm[:secs[i].end], off: secs[i].start}
		definedGlobals = r.u32()
	}
	globalSec := appendU32(nil, definedGlobals+extra)
	globalSec = append(globalSec, payload(sectionGlobal)...)
	globalSec = append(globalSec, 0x7e, 0x01, 0x42)
	globalSec = appendS64(globalSec, int64(budget))
	globalSec = append(globalSec, 0x0b)
	if m.yieldEvery > 0 {
		globalSec = append(globalSec, 0x7f, 0x01, 0x41) // ticks: mutable i32
		globalSec = appendS64(globalSec, int64(int32(m.yieldEvery)))
		globalSec = append(globalSec, 0x0b)
	}

	replaced := map[byte][]byte{
		sectionType:     typeSec,
		sectionFunction: funcSec,
		sectionGlobal:   globalSec,
		sectionCode:     codeSec,
	}
	out := make([]byte, 0, len(wasm)+len(codeSec)-len(payload(sectionCode))+64)
	out = append(out, wasm[:headerSize]...)
	emit := func(id byte, p []byte) {
		out = append(out, id)
		out = appendU32(out, uint32(len(p)))
		out = append(out, p...)
	}
	globalPlaced := false
	// The global section comes after memories (and tags) and before
	// exports, start, elements, data count, code and data.
	after := func(id byte) bool { return id >= sectionExport && id <= sectionDataCount }
	for _, s := range secs {
		if s.id == sectionCustom {
			continue // see the Notes of GuardStack; "name" is rebuilt below
		}
		if !globalPlaced && s.id != sectionCustom && (s.id == sectionGlobal || after(s.id)) {
			emit(sectionGlobal, globalSec)
			globalPlaced = true
			if s.id == sectionGlobal {
				continue
			}
		}
		if p, ok := replaced[s.id]; ok && s.id != sectionCustom {
			emit(s.id, p)
			continue
		}
		out = append(out, wasm[s.begin:s.end]...)
	}
	if !globalPlaced {
		emit(sectionGlobal, globalSec)
	}
	out = append(out, m.names(wasm, secs, total, m.yieldEvery > 0)...)
	return out, g, nil
}

// tickValues is how many values a yield point pushes (see frameBytes).
const tickValues = 5

// tick appends a yield point: ticks -= 1; if ticks == 0 { hall.yield() }.
// The countdown is the global after the stack budget's, the yield function
// the one after the trap function (rewrite).
func (m *guardScan) tick(b []byte) []byte {
	ticks := m.globals + 1
	yield := uint32(len(m.funcTypes)) + 1
	b = append(b, 0x23)
	b = appendU32(b, ticks)
	b = append(b, 0x41, 0x01, 0x6b, 0x24)
	b = appendU32(b, ticks)
	b = append(b, 0x23)
	b = appendU32(b, ticks)
	b = append(b, 0x45, 0x04, 0x40, 0x10)
	b = appendU32(b, yield)
	return append(b, 0x0b)
}

// adjust appends `budget = budget <op> charge`.
func (m *guardScan) adjust(body []byte, global uint32, charge int64, op byte) []byte {
	body = append(body, 0x23)
	body = appendU32(body, global)
	body = append(body, 0x42)
	body = appendS64(body, charge)
	body = append(body, op, 0x24)
	return appendU32(body, global)
}

// names returns the guarded module's "name" custom section: the guest's
// function names, StackExhaustedName for the trap function (index trap),
// and the guest's other subsections unchanged. A guest name that claims an
// index the guest did not define, or the reserved name, is dropped; a name
// section that does not decode is dropped whole (it is debugging
// information only).
func (m *guardScan) names(wasm []byte, secs []section, trap uint32, yield bool) []byte {
	type entry struct {
		idx  uint32
		name string
	}
	var funcs []entry
	var others []byte
	for _, s := range secs {
		if s.id != sectionCustom || s.name != "name" {
			continue
		}
		r := reader{buf: wasm[:s.end], off: s.dataStart}
		var fs []entry
		var rest []byte
		for r.off < s.end && r.err == nil {
			begin := r.off
			id := r.byte1()
			size := r.u32()
			if r.err != nil || int64(size) > int64(s.end-r.off) {
				r.fail(begin, "bad name subsection")
				break
			}
			end := r.off + int(size)
			if id != 1 {
				rest = append(rest, wasm[begin:end]...)
				r.off = end
				continue
			}
			sr := reader{buf: wasm[:end], off: r.off}
			n := sr.u32()
			for i := uint32(0); i < n && sr.err == nil; i++ {
				e := entry{idx: sr.u32(), name: sr.name()}
				if sr.err == nil && e.idx < trap && e.name != StackExhaustedName && e.name != YieldName {
					fs = append(fs, e)
				}
			}
			if sr.err != nil {
				r.err = sr.err
			}
			r.off = end
		}
		if r.err == nil {
			funcs, others = fs, rest
		}
		break
	}
	funcs = append(funcs, entry{trap, StackExhaustedName})
	if yield {
		funcs = append(funcs, entry{trap + 1, YieldName})
	}
	slices.SortStableFunc(funcs, func(a, b entry) int { return int(int64(a.idx) - int64(b.idx)) })
	sub := appendU32(nil, uint32(len(funcs)))
	for _, e := range funcs {
		sub = appendU32(sub, e.idx)
		sub = appendU32(sub, uint32(len(e.name)))
		sub = append(sub, e.name...)
	}
	var p []byte
	p = appendU32(p, 4)
	p = append(p, "name"...)
	// Subsections must come in order of their ids; the module name (0)
	// precedes the function names (1).
	var modName, later []byte
	r := reader{buf: others}
	for r.off < len(others) && r.err == nil {
		begin := r.off
		id := r.byte1()
		size := r.u32()
		end := r.off + int(size)
		if id == 0 {
			modName = append(modName, others[begin:end]...)
		} else {
			later = append(later, others[begin:end]...)
		}
		r.off = end
	}
	p = append(p, modName...)
	p = append(p, 1)
	p = appendU32(p, uint32(len(sub)))
	p = append(p, sub...)
	p = append(p, later...)
	out := []byte{sectionCustom}
	out = appendU32(out, uint32(len(p)))
	return append(out, p...)
}
