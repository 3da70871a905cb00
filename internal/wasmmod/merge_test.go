package wasmmod_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wcphall/hall/internal/wasmmod"
)

// initialMemory instantiates wasm with wazero, every imported function
// stubbed by a no-op of the right signature, and returns a copy of its
// memory 0 right after instantiation: no function of the module runs (a
// start function would, but none of the modules used here has one).
func initialMemory(t testing.TB, wasm []byte) ([]byte, error) {
	return initialMemoryLimit(t, wasm, 65536)
}

// initialMemoryLimit is initialMemory refusing (with an error) modules whose
// memory declares more than maxPages.
func initialMemoryLimit(t testing.TB, wasm []byte, maxPages uint32) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithMemoryLimitPages(maxPages))
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, err
	}
	builders := map[string]wazero.HostModuleBuilder{}
	var order []string
	for _, def := range cm.ImportedFunctions() {
		mod, name, _ := def.Import()
		b, ok := builders[mod]
		if !ok {
			b = rt.NewHostModuleBuilder(mod)
			builders[mod] = b
			order = append(order, mod)
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}), def.ParamTypes(), def.ResultTypes()).
			Export(name)
	}
	for _, mod := range order {
		if _, err := builders[mod].Instantiate(ctx); err != nil {
			t.Fatalf("stub %s: %v", mod, err)
		}
	}
	m, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithStartFunctions())
	if err != nil {
		return nil, err
	}
	mem := m.Memory()
	if mem == nil {
		return nil, nil
	}
	b, ok := mem.Read(0, mem.Size())
	if !ok {
		t.Fatal("memory unreadable")
	}
	return bytes.Clone(b), nil
}

// dataSegments returns the segment count of the data section (test-side
// decoding, independent of the package's own parser), or -1 without one.
func dataSegments(t testing.TB, wasm []byte) int {
	t.Helper()
	uleb := func(b []byte, off int) (uint64, int) {
		var v uint64
		for i := 0; ; i++ {
			v |= uint64(b[off]&0x7f) << (7 * i)
			off++
			if b[off-1]&0x80 == 0 {
				return v, off
			}
		}
	}
	off := 8
	for off < len(wasm) {
		id := wasm[off]
		size, p := uleb(wasm, off+1)
		if id == 11 {
			n, _ := uleb(wasm, p)
			return int(n)
		}
		off = p + int(size)
	}
	return -1
}

func checkSameMemory(t *testing.T, orig, merged []byte) {
	t.Helper()
	want, err := initialMemory(t, orig)
	if err != nil {
		t.Fatalf("original: %v", err)
	}
	got, err := initialMemory(t, merged)
	if err != nil {
		t.Fatalf("merged: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("memory size %d, want %d", len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("memories differ first at byte %d: got %#x, want %#x", i, got[i], want[i])
	}
}

func TestMergeDataSegmentsGoGuest(t *testing.T) {
	orig := bytes.Clone(guestWasm)
	merged, ok, err := wasmmod.MergeDataSegments(guestWasm)
	if err != nil || !ok {
		t.Fatalf("MergeDataSegments: ok=%v err=%v", ok, err)
	}
	if !bytes.Equal(guestWasm, orig) {
		t.Fatal("input modified")
	}
	before, after := dataSegments(t, guestWasm), dataSegments(t, merged)
	t.Logf("data segments: %d -> %d; module %d -> %d bytes", before, after, len(guestWasm), len(merged))
	if after <= 0 || after*10 > before {
		t.Fatalf("data segments %d -> %d: want at least a tenfold drop", before, after)
	}
	checkSameMemory(t, guestWasm, merged)

	// Imports, exports and custom sections are untouched.
	a, err := wasmmod.Inspect(guestWasm)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wasmmod.Inspect(merged)
	if err != nil {
		t.Fatal(err)
	}
	if !equalInfo(a, b) {
		t.Fatalf("Inspect differs:\n%+v\n%+v", a, b)
	}

	// Deterministic, and a fixed point.
	again, _, _ := wasmmod.MergeDataSegments(guestWasm)
	if !bytes.Equal(again, merged) {
		t.Fatal("not deterministic")
	}
	if _, ok, err := wasmmod.MergeDataSegments(merged); ok || err != nil {
		t.Fatalf("merging a merged module: ok=%v err=%v, want nothing left to merge", ok, err)
	}
}

func equalInfo(a, b wasmmod.Info) bool {
	if len(a.Imports) != len(b.Imports) || len(a.Exports) != len(b.Exports) || len(a.CustomSections) != len(b.CustomSections) {
		return false
	}
	for i := range a.Imports {
		if a.Imports[i] != b.Imports[i] {
			return false
		}
	}
	for i := range a.Exports {
		if a.Exports[i] != b.Exports[i] {
			return false
		}
	}
	for i := range a.CustomSections {
		if a.CustomSections[i] != b.CustomSections[i] {
			return false
		}
	}
	return true
}

func TestMergeDataSegmentsCountVowels(t *testing.T) {
	wasm := countVowels(t)
	merged, ok, err := wasmmod.MergeDataSegments(wasm)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ok=%v segments %d -> %d", ok, dataSegments(t, wasm), dataSegments(t, merged))
	if !ok && !bytes.Equal(merged, wasm) {
		t.Fatal("untouched module is not a copy of the input")
	}
	if ok {
		checkSameMemory(t, wasm, merged)
	}
}

// Hand-assembled modules.

func leb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sleb(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func sec(id byte, payload ...[]byte) []byte {
	p := bytes.Join(payload, nil)
	return append(append([]byte{id}, leb(uint64(len(p)))...), p...)
}

type seg struct {
	flag   byte   // 0 active, 1 passive, 2 active with memory index
	mem    uint64 // flag 2
	expr   []byte // offset expression, "end" included; nil: i32.const off
	off    int64
	init   string
	zeroes int // bytes of zeros appended to init
}

func dataSec(segs ...seg) []byte {
	p := leb(uint64(len(segs)))
	for _, s := range segs {
		p = append(p, leb(uint64(s.flag))...)
		if s.flag == 2 {
			p = append(p, leb(s.mem)...)
		}
		if s.flag != 1 {
			if s.expr != nil {
				p = append(p, s.expr...)
			} else {
				p = append(p, 0x41)
				p = append(p, sleb(s.off)...)
				p = append(p, 0x0b)
			}
		}
		init := append([]byte(s.init), make([]byte, s.zeroes)...)
		p = append(p, leb(uint64(len(init)))...)
		p = append(p, init...)
	}
	return sec(11, p)
}

var header = []byte{0, 'a', 's', 'm', 1, 0, 0, 0}

// module is a module with one memory of pages pages and the given sections
// after it.
func module(pages uint64, rest ...[]byte) []byte {
	m := append([]byte(nil), header...)
	m = append(m, sec(5, []byte{1, 0}, leb(pages))...)
	return append(m, bytes.Join(rest, nil)...)
}

func TestMergeDataSegmentsSynthetic(t *testing.T) {
	merges := []struct {
		name   string
		wasm   []byte
		after  int
		change bool
	}{
		{"small gaps", module(1, dataSec(seg{off: 0, init: "ab"}, seg{off: 10, init: "cd"}, seg{off: 12 + 64, init: "ef"})), 1, true},
		{"gap too big", module(1, dataSec(seg{off: 0, init: "ab"}, seg{off: 2 + 65, init: "cd"}, seg{off: 70, init: "x"})), 2, true},
		{"out of order", module(1, dataSec(seg{off: 100, init: "late"}, seg{off: 90, init: "early"}, seg{off: 3, init: "x"})), 2, true},
		{"adjacent", module(1, dataSec(seg{off: 5, init: "ab"}, seg{off: 7, init: "cd"})), 1, true},
		{"empty segments dropped", module(1, dataSec(seg{off: 5}, seg{off: 65536}, seg{off: 7, init: "cd"})), 1, true},
		{"explicit memory 0", module(1, dataSec(seg{flag: 2, off: 1, init: "ab"}, seg{off: 3, init: "cd"})), 1, true},
		{"zeros kept", module(1, dataSec(seg{off: 1, init: "a", zeroes: 10}, seg{off: 20, init: "b"})), 1, true},
		{"negative offset as u32", module(65536, dataSec(seg{off: -4, init: "tail"}, seg{off: -10, init: "x"})), 1, true},
		{"single segment", module(1, dataSec(seg{off: 1, init: "a"})), 1, false},
		{"no data section", module(1), -1, false},
	}
	for _, tc := range merges {
		t.Run(tc.name, func(t *testing.T) {
			merged, ok, err := wasmmod.MergeDataSegments(tc.wasm)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tc.change {
				t.Fatalf("ok = %v, want %v", ok, tc.change)
			}
			if got := dataSegments(t, merged); got != tc.after {
				t.Fatalf("segments %d, want %d", got, tc.after)
			}
			if !ok && !bytes.Equal(merged, tc.wasm) {
				t.Fatal("untouched module is not a copy of the input")
			}
			if tc.name != "negative offset as u32" { // 4 GiB memory: too big to compare cheaply
				checkSameMemory(t, tc.wasm, merged)
			}
		})
	}

	memImport := append(append([]byte(nil), header...), sec(2, leb(1), leb(1), []byte("m"), leb(1), []byte("m"), []byte{2, 0, 1})...)
	untouched := []struct {
		name string
		wasm []byte
	}{
		{"passive segment", module(1, dataSec(seg{off: 0, init: "ab"}, seg{flag: 1, init: "p"}, seg{off: 4, init: "cd"}))},
		{"data count section", module(1, sec(12, leb(2)), dataSec(seg{off: 0, init: "ab"}, seg{off: 4, init: "cd"}))},
		{"global.get offset", module(1, dataSec(seg{off: 0, init: "ab"}, seg{expr: []byte{0x23, 0, 0x0b}, init: "cd"}))},
		{"extended const", module(1, dataSec(seg{off: 0, init: "ab"}, seg{expr: []byte{0x41, 4, 0x41, 1, 0x6a, 0x0b}, init: "cd"}))},
		{"overlap", module(1, dataSec(seg{off: 0, init: "abcd"}, seg{off: 2, init: "XY"}))},
		{"other memory", module(1, dataSec(seg{off: 0, init: "ab"}, seg{flag: 2, mem: 1, off: 4, init: "cd"}))},
		{"past initial memory", module(1, dataSec(seg{off: 0, init: "ab"}, seg{off: 65535, init: "cd"}))},
		{"empty past memory", module(1, dataSec(seg{off: 0, init: "ab"}, seg{off: 65537}))},
		{"imported memory", append(memImport, dataSec(seg{off: 0, init: "ab"}, seg{off: 4, init: "cd"})...)},
		{"memory64", append(append([]byte(nil), header...), append(sec(5, []byte{1, 4}, leb(1)), dataSec(seg{off: 0, init: "ab"}, seg{off: 4, init: "cd"})...)...)},
		{"shared memory", append(append([]byte(nil), header...), append(sec(5, []byte{1, 3}, leb(1), leb(1)), dataSec(seg{off: 0, init: "ab"}, seg{off: 4, init: "cd"})...)...)},
		{"no memory", append(append([]byte(nil), header...), dataSec(seg{off: 0, init: "ab"}, seg{off: 4, init: "cd"})...)},
	}
	for _, tc := range untouched {
		t.Run(tc.name, func(t *testing.T) {
			merged, ok, err := wasmmod.MergeDataSegments(tc.wasm)
			if err != nil || ok {
				t.Fatalf("ok=%v err=%v, want untouched", ok, err)
			}
			if !bytes.Equal(merged, tc.wasm) {
				t.Fatal("untouched module is not a copy of the input")
			}
		})
	}
}

func TestMergeDataSegmentsMalformed(t *testing.T) {
	good := module(1, dataSec(seg{off: 0, init: "ab"}, seg{off: 4, init: "cd"}))
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"truncated section", good[:len(good)-1]},
		{"count lies", module(1, sec(11, leb(3), []byte{0, 0x41, 0, 0x0b, 0}))},
		{"segment overruns", module(1, sec(11, leb(1), []byte{0, 0x41, 0, 0x0b, 9, 'a'}))},
		{"trailing bytes", module(1, sec(11, leb(1), []byte{0, 0x41, 0, 0x0b, 1, 'a', 'z'}))},
		{"bad flags", module(1, sec(11, leb(1), []byte{7, 0x41, 0, 0x0b, 1, 'a'}))},
		{"offset too long", module(1, sec(11, leb(1), []byte{0, 0x41, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x0b, 1, 'a'}))},
		{"duplicate data section", module(1, dataSec(seg{off: 0, init: "a"}), dataSec(seg{off: 4, init: "b"}))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok, err := wasmmod.MergeDataSegments(tc.wasm)
			if ok || !errors.Is(err, wasmmod.ErrMalformed) {
				t.Fatalf("ok=%v err=%v, want ErrMalformed", ok, err)
			}
		})
	}
}

func FuzzMergeDataSegments(f *testing.F) {
	f.Add(module(1, dataSec(seg{off: 0, init: "ab"}, seg{off: 10, init: "cd"}, seg{off: 200, init: "ef"})))
	f.Add(module(1, dataSec(seg{off: 30, init: "ab"}, seg{off: 3, init: "cd", zeroes: 3}, seg{off: -1})))
	f.Add(module(2, dataSec(seg{off: 65530, init: "abcdefgh"}, seg{flag: 2, off: 65540, init: "cd"})))
	f.Add(module(1, dataSec(seg{off: 0, init: "ab"}, seg{flag: 1, init: "p"})))
	f.Fuzz(func(t *testing.T, wasm []byte) {
		in := bytes.Clone(wasm)
		merged, ok, err := wasmmod.MergeDataSegments(wasm)
		if !bytes.Equal(in, wasm) {
			t.Fatal("input modified")
		}
		if err != nil {
			if ok || !errors.Is(err, wasmmod.ErrMalformed) {
				t.Fatalf("ok=%v err=%v", ok, err)
			}
			return
		}
		if !ok {
			if !bytes.Equal(merged, wasm) {
				t.Fatal("untouched module is not a copy of the input")
			}
			return
		}
		if dataSegments(t, merged) >= dataSegments(t, wasm) {
			t.Fatal("merged without dropping a segment")
		}
		// Only small memories are instantiated (a fuzzer loves 4 GiB).
		if want, err := initialMemoryLimit(t, wasm, 16); err == nil {
			got, err := initialMemoryLimit(t, merged, 16)
			if err != nil {
				t.Fatalf("merged module fails where the original instantiates: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatal("initial memory differs")
			}
		}
	})
}
