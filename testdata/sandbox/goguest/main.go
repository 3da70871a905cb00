// Command goguest is the standard-Go test worker of internal/sandbox: an Extism
// plugin written against the raw kernel imports (no PDK), one export per
// behaviour the sandbox tests exercise.
//
// Built by the tests (internal/sandbox TestMain) with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o goguest.wasm ./testdata/sandbox/goguest
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

//go:wasmimport extism:host/env input_length
func inputLength() uint64

//go:wasmimport extism:host/env input_load_u8
func inputLoadU8(offs uint64) uint32

//go:wasmimport extism:host/env alloc
func alloc(n uint64) uint64

//go:wasmimport extism:host/env length
func length(offs uint64) uint64

//go:wasmimport extism:host/env load_u8
func loadU8(offs uint64) uint32

//go:wasmimport extism:host/env store_u8
func storeU8(offs uint64, v uint32)

//go:wasmimport extism:host/env load_u64
func loadU64(offs uint64) uint64

//go:wasmimport extism:host/env store_u64
func storeU64(offs uint64, v uint64)

//go:wasmimport extism:host/env output_set
func outputSet(offs, n uint64)

//go:wasmimport extism:host/env error_set
func errorSet(offs uint64)

//go:wasmimport extism:host/env config_get
func configGet(offs uint64) uint64

//go:wasmimport extism:host/user hall_secret
func hallSecret(offs uint64) uint64

//go:wasmimport extism:host/user hall_http
func hallHTTP(offs uint64) uint64

//go:wasmimport extism:host/user hall_emit
func hallEmit(offs uint64)

func input() []byte {
	n := inputLength()
	b := make([]byte, n)
	for i := uint64(0); i < n; i++ {
		b[i] = byte(inputLoadU8(i))
	}
	return b
}

func put(b []byte) uint64 {
	offs := alloc(uint64(len(b)))
	i := 0
	for ; i+8 <= len(b); i += 8 {
		var v uint64
		for j := 7; j >= 0; j-- {
			v = v<<8 | uint64(b[i+j])
		}
		storeU64(offs+uint64(i), v)
	}
	for ; i < len(b); i++ {
		storeU8(offs+uint64(i), uint32(b[i]))
	}
	return offs
}

func get(offs uint64) []byte {
	if offs == 0 {
		return nil
	}
	n := length(offs)
	b := make([]byte, n)
	for i := uint64(0); i < n; i++ {
		b[i] = byte(loadU8(offs + i))
	}
	return b
}

func output(b []byte) { outputSet(put(b), uint64(len(b))) }

func fail(msg string) int32 {
	errorSet(put([]byte(msg)))
	return 1
}

//go:wasmexport run
func run() int32 {
	output(append([]byte("hello "), input()...))
	return 0
}

//go:wasmexport config
func config() int32 {
	output(get(configGet(put(input()))))
	return 0
}

//go:wasmexport fail
func failExport() int32 { return fail("boom: " + string(input())) }

//go:wasmexport panic
func panicExport() int32 { panic("kaboom") }

var hoard [][]byte

//go:wasmexport alloc_forever
func allocForever() int32 {
	for {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = byte(i)
		}
		hoard = append(hoard, b)
	}
}

//go:wasmexport spin
func spin() int32 {
	x := 0
	for {
		x++
	}
}

// readfile: input is a path; output is the content or "ERR: ...".
//
//go:wasmexport readfile
func readfile() int32 {
	b, err := os.ReadFile(string(input()))
	if err != nil {
		output([]byte("ERR: " + err.Error()))
		return 0
	}
	output(b)
	return 0
}

type fsOp struct {
	Op, Path, Data, Target string
}

// fsop: input is a JSON fsOp; output is "OK" or "ERR: ...".
//
//go:wasmexport fsop
func fsop() int32 {
	var op fsOp
	if err := json.Unmarshal(input(), &op); err != nil {
		return fail(err.Error())
	}
	var err error
	switch op.Op {
	case "write":
		err = os.WriteFile(op.Path, []byte(op.Data), 0o644)
	case "append":
		var f *os.File
		if f, err = os.OpenFile(op.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			_, err = f.WriteString(op.Data)
			f.Close()
		}
	case "symlink":
		err = os.Symlink(op.Target, op.Path)
	case "mkdir":
		err = os.Mkdir(op.Path, 0o755)
	case "list":
		var ents []os.DirEntry
		if ents, err = os.ReadDir(op.Path); err == nil {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			output([]byte(strings.Join(names, ",")))
			return 0
		}
	case "rename":
		err = os.Rename(op.Path, op.Target)
	case "remove":
		err = os.Remove(op.Path)
	default:
		return fail("unknown op " + op.Op)
	}
	if err != nil {
		output([]byte("ERR: " + err.Error()))
		return 0
	}
	output([]byte("OK"))
	return 0
}

//go:wasmexport http
func httpExport() int32 {
	output(get(hallHTTP(put(input()))))
	return 0
}

//go:wasmexport secret
func secret() int32 {
	output(get(hallSecret(put(input()))))
	return 0
}

//go:wasmexport emit
func emit() int32 {
	for _, ev := range strings.Split(string(input()), "\n") {
		hallEmit(put([]byte(ev)))
	}
	return 0
}

// print writes input to stdout and stderr N times (N from config "n").
//
//go:wasmexport print
func print() int32 {
	n, _ := strconv.Atoi(string(get(configGet(put([]byte("n"))))))
	in := input()
	for i := 0; i < n; i++ {
		fmt.Fprintf(os.Stdout, "%s\n", in)
		fmt.Fprintf(os.Stderr, "%s\n", in)
	}
	return 0
}

// big outputs N bytes (N from the input).
//
//go:wasmexport big
func big() int32 {
	n, _ := strconv.Atoi(string(input()))
	output([]byte(strings.Repeat("x", n)))
	return 0
}

//go:wasmexport now
func now() int32 {
	output([]byte(strconv.FormatInt(time.Now().UnixNano(), 10)))
	return 0
}

//go:wasmexport env
func env() int32 {
	output([]byte(strings.Join(append(os.Environ(), os.Args...), "\n")))
	return 0
}

func main() {}

var counter int

// count increments a global counter and outputs it: 1 on a fresh instance.
//
//go:wasmexport count
func count() int32 {
	counter++
	output([]byte(strconv.Itoa(counter)))
	return 0
}

// depth recurses as deep as the decimal input says, through a JSON
// document of that nesting decoded by encoding/json (a legitimate deep
// recursion), and outputs the depth it reached.
//
//go:wasmexport depth
func depth() int32 {
	n, err := strconv.Atoi(string(input()))
	if err != nil {
		return 1
	}
	doc := strings.Repeat("[", n) + strings.Repeat("]", n)
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		output([]byte(err.Error()))
		return 1
	}
	d := 0
	for a, ok := v.([]any); ok; d++ {
		if len(a) == 0 {
			d++
			break
		}
		a, ok = a[0].([]any)
	}
	output([]byte(strconv.Itoa(d)))
	return 0
}
