package wasmmod

import "fmt"

const (
	sectionType     = 1
	sectionFunction = 3
)

// FuncType is a function signature: value types as their binary encoding
// (0x7f i32, 0x7e i64, 0x7d f32, 0x7c f64, 0x7b v128, reference types).
type FuncType struct {
	Params, Results []byte
}

// I32 is the binary encoding of the i32 value type.
const I32 = 0x7f

// ExportedFuncTypes returns the signature of every exported function, by
// export name. It decodes the type, import, function and export sections
// only. ok is false (with a nil error) when the module uses type encodings
// beyond the core MVP function type (e.g. GC proposal recursive types):
// callers then need a full compiler to learn signatures.
func ExportedFuncTypes(wasm []byte) (sigs map[string]FuncType, ok bool, err error) {
	secs, err := sections(wasm)
	if err != nil {
		return nil, false, err
	}
	var (
		types     []FuncType
		funcTypes []uint32 // type index of every function, imports first
		exports   []struct {
			name string
			idx  uint32
		}
	)
	for _, s := range secs {
		r := reader{buf: wasm[:s.end], off: s.start}
		switch s.id {
		case sectionType:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				if form := r.byte1(); r.err == nil && form != 0x60 {
					return nil, false, nil // not an MVP function type
				}
				var ft FuncType
				ft.Params = r.valTypes()
				ft.Results = r.valTypes()
				types = append(types, ft)
			}
		case sectionImport:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				r.name()
				r.name()
				switch k := r.byte1(); k {
				case 0x00:
					funcTypes = append(funcTypes, r.u32())
				case 0x01:
					r.refType()
					r.limits()
				case 0x02:
					r.limits()
				case 0x03:
					r.valType()
					r.byte1()
				case 0x04:
					r.byte1()
					r.u32()
				default:
					return nil, false, &FormatError{r.off - 1, fmt.Sprintf("invalid import kind %#x", k)}
				}
			}
		case sectionFunction:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				funcTypes = append(funcTypes, r.u32())
			}
		case sectionExport:
			n := r.u32()
			for i := uint32(0); i < n && r.err == nil; i++ {
				name := r.name()
				k := r.byte1()
				idx := r.u32()
				if k == 0x00 {
					exports = append(exports, struct {
						name string
						idx  uint32
					}{name, idx})
				}
			}
		default:
			continue
		}
		if r.err != nil {
			return nil, false, r.err
		}
	}
	sigs = make(map[string]FuncType, len(exports))
	for _, e := range exports {
		if int64(e.idx) >= int64(len(funcTypes)) {
			return nil, false, &FormatError{0, fmt.Sprintf("export %q names function %d of %d", e.name, e.idx, len(funcTypes))}
		}
		t := funcTypes[e.idx]
		if int64(t) >= int64(len(types)) {
			return nil, false, &FormatError{0, fmt.Sprintf("function %d has type %d of %d", e.idx, t, len(types))}
		}
		sigs[e.name] = types[t]
	}
	return sigs, true, nil
}

// valTypes reads a vector of value types.
func (r *reader) valTypes() []byte {
	n := r.u32()
	if r.err != nil || int64(n) > int64(len(r.buf)-r.off) {
		if r.err == nil {
			r.fail(r.off, fmt.Sprintf("value type count %d exceeds section size", n))
		}
		return nil
	}
	out := make([]byte, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		at := r.off
		r.valType()
		if r.err == nil {
			out = append(out, r.buf[at])
		}
	}
	return out
}
