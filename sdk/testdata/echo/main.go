// Command echo is the smallest SDK worker: it returns its input. The SDK
// tests build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o echo.wasm ./testdata/echo
//
// and use it for the throughput benchmark and the import-minimality check.
package main

import "github.com/wcphall/hall/sdk"

func init() {
	sdk.Handle("cap.test.echo", func(c *sdk.Call) error {
		c.Output(c.Input())
		return nil
	})
}

//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
