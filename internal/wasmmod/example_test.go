package wasmmod_test

import (
	"fmt"
	"os"

	"github.com/wcphall/hall/internal/wasmmod"
)

// Inspect shows what a module needs from its host before anything runs it.
func ExampleInspect() {
	wasm, err := os.ReadFile("testdata/count_vowels.wasm")
	if err != nil {
		panic(err)
	}
	info, err := wasmmod.Inspect(wasm)
	if err != nil {
		panic(err)
	}
	fmt.Println(info.HasExport("count_vowels", wasmmod.KindFunc))
	fmt.Println(info.HasImport("extism:host/user", "hall_http"))
	// Output:
	// true
	// false
}

// A custom section travels with the module without changing what it does.
func ExampleSetCustomSection() {
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	signed, err := wasmmod.SetCustomSection(wasm, "hall.signature", []byte("sig-bytes"))
	if err != nil {
		panic(err)
	}
	sig, ok, err := wasmmod.CustomSection(signed, "hall.signature")
	fmt.Printf("%s %v %v\n", sig, ok, err)
	// Output: sig-bytes true <nil>
}
