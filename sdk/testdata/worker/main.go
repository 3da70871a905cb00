// Command worker exercises every part of the SDK, one capability per
// export, for the SDK tests. Built by the tests with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o worker.wasm ./testdata/worker
package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wcphall/hall/sdk"
)

func init() {
	sdk.Handle("cap.test.echo", func(c *sdk.Call) error {
		c.Output(c.Input())
		return nil
	})
	sdk.Handle("cap.test.upper", func(c *sdk.Call) error {
		c.OutputString(strings.ToUpper(string(c.Input())))
		return nil
	})
	sdk.Handle("cap.test.json", func(c *sdk.Call) error {
		var in struct {
			Name  string `json:"name"`
			Count int    `json:"count"`
		}
		if err := c.InputJSON(&in); err != nil {
			return err
		}
		return c.OutputJSON(map[string]any{
			"greeting": "hello " + in.Name,
			"double":   in.Count * 2,
		})
	})
	sdk.Handle("cap.test.context", func(c *sdk.Call) error {
		custom, ok := c.Config("custom")
		return c.OutputJSON(map[string]any{
			"correlation": c.Correlation(),
			"capability":  c.Capability(),
			"custom":      custom,
			"custom_set":  ok,
		})
	})
	sdk.Handle("cap.test.log", func(c *sdk.Call) error {
		c.Log(sdk.LevelTrace, "trace line")
		c.Log(sdk.LevelDebug, "debug line")
		c.Logf(sdk.LevelInfo, "info %d", 42)
		c.Log(sdk.LevelWarn, "warn line")
		c.Log(sdk.LevelError, "error line")
		return nil
	})
	sdk.Handle("cap.test.secret", func(c *sdk.Call) error {
		v, err := c.Secret(string(c.Input()))
		var he *sdk.Error
		if errors.As(err, &he) {
			return c.OutputJSON(map[string]any{
				"code":         he.Code,
				"message":      he.Message,
				"not_declared": errors.Is(err, sdk.ErrSecretNotDeclared),
			})
		}
		if err != nil {
			return err
		}
		return c.OutputJSON(map[string]any{"value": v})
	})
	sdk.Handle("cap.test.http", func(c *sdk.Call) error {
		var req sdk.HTTPRequest
		if err := c.InputJSON(&req); err != nil {
			return err
		}
		resp, err := c.HTTP(req)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		return c.OutputJSON(resp)
	})
	sdk.Handle("cap.test.emit", func(c *sdk.Call) error {
		var ev map[string]any
		if err := c.InputJSON(&ev); err != nil {
			return err
		}
		return c.Emit(ev)
	})
	sdk.Handle("cap.test.fail", func(c *sdk.Call) error {
		c.OutputString("partial")
		return fmt.Errorf("boom: %s", c.Input())
	})
	sdk.Handle("cap.test.panic", func(c *sdk.Call) error {
		var m map[string]int
		m["x"] = 1 // nil map write
		return nil
	})
}

//go:wasmexport echo
func echo() int32 { return sdk.Dispatch("cap.test.echo") }

//go:wasmexport json
func jsonExport() int32 { return sdk.Dispatch("cap.test.json") }

//go:wasmexport context
func context() int32 { return sdk.Dispatch("cap.test.context") }

//go:wasmexport log
func log() int32 { return sdk.Dispatch("cap.test.log") }

//go:wasmexport secret
func secret() int32 { return sdk.Dispatch("cap.test.secret") }

//go:wasmexport http
func http() int32 { return sdk.Dispatch("cap.test.http") }

//go:wasmexport emit
func emit() int32 { return sdk.Dispatch("cap.test.emit") }

//go:wasmexport fail
func fail() int32 { return sdk.Dispatch("cap.test.fail") }

//go:wasmexport panic
func panicExport() int32 { return sdk.Dispatch("cap.test.panic") }

//go:wasmexport missing
func missing() int32 { return sdk.Dispatch("cap.test.unregistered") }

// run serves cap.test.upper (and any other) via wcp.capability_id.
//
//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
