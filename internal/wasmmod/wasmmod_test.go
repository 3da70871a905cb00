package wasmmod_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/wcphall/hall/internal/wasmmod"
)

// guestWasm is testdata/guest built for wasip1 once per test binary.
var guestWasm []byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wasmmod-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	out := filepath.Join(dir, "guest.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./testdata/guest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building testdata/guest: %v\n%s", err, msg)
		os.Exit(2)
	}
	guestWasm, err = os.ReadFile(out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func countVowels(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/count_vowels.wasm")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestInspectGoGuest(t *testing.T) {
	info, err := wasmmod.Inspect(guestWasm)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range []wasmmod.Import{
		{Module: "extism:host/env", Name: "input_length", Kind: wasmmod.KindFunc},
		{Module: "extism:host/user", Name: "hall_emit", Kind: wasmmod.KindFunc},
		{Module: "wasi_snapshot_preview1", Name: "fd_write", Kind: wasmmod.KindFunc},
	} {
		if !slices.Contains(info.Imports, im) {
			t.Errorf("import %+v missing from %+v", im, info.Imports)
		}
	}
	for _, ex := range []wasmmod.Export{
		{Name: "count", Kind: wasmmod.KindFunc},
		{Name: "emit", Kind: wasmmod.KindFunc},
		{Name: "_initialize", Kind: wasmmod.KindFunc},
		{Name: "memory", Kind: wasmmod.KindMemory},
	} {
		if !slices.Contains(info.Exports, ex) {
			t.Errorf("export %+v missing from %+v", ex, info.Exports)
		}
	}
	if info.HasExport("_start", wasmmod.KindFunc) {
		t.Error("a c-shared build must not export _start")
	}
	if !info.HasImport("extism:host/user", "hall_emit") || info.HasImport("extism:host/user", "hall_http") {
		t.Errorf("HasImport disagrees with the import list %+v", info.Imports)
	}
}

func TestInspectCountVowels(t *testing.T) {
	info, err := wasmmod.Inspect(countVowels(t))
	if err != nil {
		t.Fatal(err)
	}
	// count_vowels is a Rust PDK plugin: every import comes from the kernel.
	if len(info.Imports) == 0 {
		t.Fatal("no imports")
	}
	for _, im := range info.Imports {
		if im.Module != "extism:host/env" {
			t.Errorf("unexpected import module %q (%s)", im.Module, im.Name)
		}
	}
	for _, name := range []string{"input_length", "output_set", "alloc"} {
		if !info.HasImport("extism:host/env", name) {
			t.Errorf("missing import extism:host/env %s", name)
		}
	}
	if !info.HasExport("count_vowels", wasmmod.KindFunc) {
		t.Errorf("count_vowels export missing: %+v", info.Exports)
	}
	if !info.HasExport("memory", wasmmod.KindMemory) {
		t.Errorf("memory export missing: %+v", info.Exports)
	}
}

func TestCustomSectionRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		wasm []byte
	}{
		{"go-guest", guestWasm},
		{"count-vowels", countVowels(t)},
		{"header-only", []byte("\x00asm\x01\x00\x00\x00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := bytes.Clone(tc.wasm)
			before, err := wasmmod.Inspect(tc.wasm)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := wasmmod.CustomSection(tc.wasm, "hall.sig"); err != nil || ok {
				t.Fatalf("CustomSection before set = ok %v, err %v; want absent", ok, err)
			}

			big := bytes.Repeat([]byte{0xAB}, 300) // a size needing a 2-byte LEB
			withSig, err := wasmmod.SetCustomSection(tc.wasm, "hall.sig", big)
			if err != nil {
				t.Fatal(err)
			}
			if len(withSig) != len(tc.wasm)+1+2+1+len("hall.sig")+len(big) {
				t.Errorf("appended section size: got module of %d bytes from %d", len(withSig), len(tc.wasm))
			}
			got, ok, err := wasmmod.CustomSection(withSig, "hall.sig")
			if err != nil || !ok || !bytes.Equal(got, big) {
				t.Fatalf("CustomSection after set = %d bytes, ok %v, err %v", len(got), ok, err)
			}

			replaced, err := wasmmod.SetCustomSection(withSig, "hall.sig", []byte("v2"))
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err = wasmmod.CustomSection(replaced, "hall.sig")
			if err != nil || !ok || string(got) != "v2" {
				t.Fatalf("after replace: %q ok %v err %v", got, ok, err)
			}
			after, err := wasmmod.Inspect(replaced)
			if err != nil {
				t.Fatal(err)
			}
			if n := countName(after.CustomSections, "hall.sig"); n != 1 {
				t.Errorf("hall.sig appears %d times after replace, want 1", n)
			}
			if !slices.Equal(before.Imports, after.Imports) || !slices.Equal(before.Exports, after.Exports) {
				t.Error("imports or exports changed by SetCustomSection")
			}
			if !bytes.Equal(orig, tc.wasm) {
				t.Error("SetCustomSection modified its input")
			}

			empty, err := wasmmod.SetCustomSection(replaced, "hall.sig", nil)
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err = wasmmod.CustomSection(empty, "hall.sig")
			if err != nil || !ok || len(got) != 0 {
				t.Fatalf("empty section: %q ok %v err %v", got, ok, err)
			}
		})
	}
}

func TestSetCustomSectionReplacesInPlaceAndDropsDuplicates(t *testing.T) {
	m := []byte("\x00asm\x01\x00\x00\x00")
	m = append(m, custom("a", "1")...)
	m = append(m, custom("b", "x")...)
	m = append(m, custom("a", "2")...)
	out, err := wasmmod.SetCustomSection(m, "a", []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := wasmmod.Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b"}; !slices.Equal(info.CustomSections, want) {
		t.Errorf("sections = %q, want %q", info.CustomSections, want)
	}
	got, _, _ := wasmmod.CustomSection(out, "a")
	if string(got) != "new" {
		t.Errorf("a = %q", got)
	}
	// The first of several same-named sections is the one reported.
	got, _, _ = wasmmod.CustomSection(m, "a")
	if string(got) != "1" {
		t.Errorf("first a = %q, want 1", got)
	}
}

func TestSetCustomSectionRejectsInvalidName(t *testing.T) {
	_, err := wasmmod.SetCustomSection(guestWasm, "\xff", nil)
	if err == nil {
		t.Fatal("invalid UTF-8 name accepted")
	}
}

func TestMalformed(t *testing.T) {
	hdr := "\x00asm\x01\x00\x00\x00"
	for _, tc := range []struct {
		name, wasm string
		offset     int
	}{
		{"empty", "", 0},
		{"short", "\x00asm", 0},
		{"bad-magic", "\x00wasm\x01\x00\x00", 0},
		{"version-2", "\x00asm\x02\x00\x00\x00", 4},
		{"component", "\x00asm\x0d\x00\x01\x00", 4},
		{"truncated-section-size", hdr + "\x01", 9},
		{"section-too-long", hdr + "\x01\x05\x00", 8},
		{"unknown-section", hdr + "\x0e\x00", 8},
		{"leb-overflow", hdr + "\x01\xff\xff\xff\xff\x7f", 9},
		{"leb-unterminated", hdr + "\x01\x80\x80", 11},
		{"custom-name-too-long", hdr + "\x00\x02\x05a", 10},
		{"custom-name-not-utf8", hdr + "\x00\x02\x01\xff", 10},
		{"import-count-lie", hdr + "\x02\x01\x09", 10},
		{"import-bad-kind", hdr + "\x02\x06\x01\x01m\x01n\x09", 15},
		{"import-truncated", hdr + "\x02\x05\x01\x01m\x01n", 15},
		{"import-bad-limits", hdr + "\x02\x07\x01\x01m\x01n\x02\x09", 16},
		{"import-bad-global", hdr + "\x02\x08\x01\x01m\x01n\x03\x7f\x02", 17},
		{"import-bad-reftype", hdr + "\x02\x08\x01\x01m\x01n\x01\x01\x00", 16},
		{"export-bad-kind", hdr + "\x07\x05\x01\x01e\x07\x00", 13},
		{"export-duplicate", hdr + "\x07\x09\x02\x01e\x00\x00\x01e\x00\x01", 15},
		{"import-trailing", hdr + "\x02\x08\x01\x01m\x01n\x00\x00\x00", 17},
		{"duplicate-section", hdr + "\x07\x01\x00\x07\x01\x00", 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wasmmod.Inspect([]byte(tc.wasm))
			var fe *wasmmod.FormatError
			if !errors.As(err, &fe) || !errors.Is(err, wasmmod.ErrMalformed) {
				t.Fatalf("Inspect error = %v, want a *FormatError wrapping ErrMalformed", err)
			}
			if fe.Offset != tc.offset {
				t.Errorf("offset = %d, want %d (%v)", fe.Offset, tc.offset, err)
			}
		})
	}
}

func TestInspectAcceptsImportKinds(t *testing.T) {
	hdr := "\x00asm\x01\x00\x00\x00"
	imports := "\x05" + // five imports
		"\x01m\x01f\x00\x00" + // func, type 0
		"\x01m\x01t\x01\x70\x00\x01" + // table funcref, min 1
		"\x01m\x03mem\x02\x05\x01\x02" + // memory64 with max
		"\x01m\x01g\x03\x7e\x01" + // mutable i64 global
		"\x01m\x02tg\x04\x00\x00" // tag
	mod := hdr + "\x02" + string(rune(len(imports))) + imports
	info, err := wasmmod.Inspect([]byte(mod))
	if err != nil {
		t.Fatal(err)
	}
	want := []wasmmod.Import{
		{"m", "f", wasmmod.KindFunc},
		{"m", "t", wasmmod.KindTable},
		{"m", "mem", wasmmod.KindMemory},
		{"m", "g", wasmmod.KindGlobal},
		{"m", "tg", wasmmod.KindTag},
	}
	if !slices.Equal(info.Imports, want) {
		t.Errorf("imports = %+v, want %+v", info.Imports, want)
	}
}

func FuzzInspect(f *testing.F) {
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x00\x04\x03sig"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x07\x01\x01m\x01n\x00\x00\x07\x05\x01\x01e\x00\x00"))
	f.Add(countVowels(f)[:4096])
	f.Add(guestWasm[:2048])
	f.Fuzz(func(t *testing.T, wasm []byte) {
		info, err := wasmmod.Inspect(wasm)
		if err != nil {
			if !errors.Is(err, wasmmod.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out, err := wasmmod.SetCustomSection(wasm, "fuzz", []byte("data"))
		if err != nil {
			t.Fatalf("SetCustomSection failed on an inspectable module: %v", err)
		}
		info2, err := wasmmod.Inspect(out)
		if err != nil {
			t.Fatalf("Inspect of rewritten module: %v", err)
		}
		if !slices.Equal(info.Imports, info2.Imports) || !slices.Equal(info.Exports, info2.Exports) {
			t.Fatal("rewriting a custom section changed imports or exports")
		}
		got, ok, err := wasmmod.CustomSection(out, "fuzz")
		if err != nil || !ok || string(got) != "data" {
			t.Fatalf("roundtrip: %q %v %v", got, ok, err)
		}
	})
}

func custom(name, data string) []byte {
	payload := append([]byte{byte(len(name))}, name...)
	payload = append(payload, data...)
	return append([]byte{0, byte(len(payload))}, payload...)
}

func countName(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}
