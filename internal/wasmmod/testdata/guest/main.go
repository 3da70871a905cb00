// Command guest is the module wasmmod's tests inspect. It is built by the
// tests (see wasmmod_test.go) with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o guest.wasm ./testdata/guest
package main

//go:wasmimport extism:host/env input_length
func inputLength() uint64

//go:wasmimport extism:host/user hall_emit
func hallEmit(offset uint64)

//go:wasmexport count
func count() int32 {
	return int32(inputLength())
}

//go:wasmexport emit
func emit() int32 {
	hallEmit(0)
	return 0
}

func main() {}
