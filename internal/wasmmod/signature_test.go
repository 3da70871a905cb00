package wasmmod

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestExportedFuncTypesCountVowels(t *testing.T) {
	wasm, err := os.ReadFile("testdata/count_vowels.wasm")
	if err != nil {
		t.Fatal(err)
	}
	sigs, ok, err := ExportedFuncTypes(wasm)
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	s, found := sigs["count_vowels"]
	if !found || len(s.Params) != 0 || len(s.Results) != 1 || s.Results[0] != I32 {
		t.Fatalf("count_vowels: %+v (found %v)", s, found)
	}
}

func TestExportedFuncTypesWAT(t *testing.T) {
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Fatal("wat2wasm not found: install wabt")
	}
	dir := t.TempDir()
	src := `(module
	  (import "env" "f" (func $f (param i64) (result i64)))
	  (func (export "run") (result i32) (i32.const 0))
	  (func (export "takes") (param i32 f64))
	  (func (export "two") (result i32 i64) (i32.const 0) (i64.const 0))
	  (export "reexport" (func $f)))`
	in, out := filepath.Join(dir, "m.wat"), filepath.Join(dir, "m.wasm")
	os.WriteFile(in, []byte(src), 0o644)
	if b, err := exec.Command(bin, in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	wasm, _ := os.ReadFile(out)
	sigs, ok, err := ExportedFuncTypes(wasm)
	if err != nil || !ok {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
	want := map[string]FuncType{
		"run":      {Params: []byte{}, Results: []byte{I32}},
		"takes":    {Params: []byte{I32, 0x7c}, Results: []byte{}},
		"two":      {Params: []byte{}, Results: []byte{I32, 0x7e}},
		"reexport": {Params: []byte{0x7e}, Results: []byte{0x7e}},
	}
	if len(sigs) != len(want) {
		t.Fatalf("sigs = %+v", sigs)
	}
	for name, w := range want {
		g := sigs[name]
		if string(g.Params) != string(w.Params) || string(g.Results) != string(w.Results) {
			t.Errorf("%s: %+v, want %+v", name, g, w)
		}
	}
}

func TestExportedFuncTypesMalformed(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("\x00asm"), []byte("\x00asm\x01\x00\x00\x00\x07\x05\x01\x01x\x00\x05")} {
		if _, ok, err := ExportedFuncTypes(b); err == nil && ok {
			t.Errorf("%q: accepted", b)
		}
	}
}
