// Command redactor is a Hall worker serving cap.doc.redact: it masks email
// addresses, payment card numbers, US SSNs, IBANs, IPv4 addresses and phone
// numbers in a text (Redact).
//
// Input is plain text, answered with the redacted text, or a JSON object
// {"text": "...", "kinds": ["email", ...], "mask": "label"|"stars"},
// answered with {"text": redacted, "counts": {"email": n, ...}}. Without
// options in the input, the config keys redactor.kinds (comma-separated)
// and redactor.mask apply. Each call emits one evt.doc.redacted event with
// the counts, never the redacted values.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o redactor.wasm ./plugins/redactor
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wcphall/hall/sdk"
)

// Capability is the capability this worker serves.
const Capability = "cap.doc.redact"

func init() { sdk.Handle(Capability, redact) }

type request struct {
	Text *string `json:"text"`
	Options
}

type response struct {
	Text   string         `json:"text"`
	Counts map[string]int `json:"counts"`
}

func redact(c *sdk.Call) error {
	opts := configOptions(c)
	in := c.Input()
	text, isJSON := string(in), false
	if trimmed := bytes.TrimSpace(in); len(trimmed) > 0 && trimmed[0] == '{' {
		var req request
		if err := json.Unmarshal(trimmed, &req); err == nil && req.Text != nil {
			text, isJSON = *req.Text, true
			if len(req.Kinds) > 0 {
				opts.Kinds = req.Kinds
			}
			if req.Mask != "" {
				opts.Mask = req.Mask
			}
		}
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("redactor: %w", err)
	}
	out, counts := Redact(text, opts)
	total := 0
	for _, n := range counts {
		total += n
	}
	if err := c.Emit(map[string]any{
		"event_id": "evt.doc.redacted",
		"counts":   countsJSON(opts.Kinds, counts),
		"total":    total,
	}); err != nil {
		return err
	}
	if !isJSON {
		c.OutputString(out)
		return nil
	}
	return c.OutputJSON(response{Text: out, Counts: countsJSON(opts.Kinds, counts)})
}

func configOptions(c *sdk.Call) Options {
	var o Options
	if v, ok := c.Config("redactor.kinds"); ok {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				o.Kinds = append(o.Kinds, Kind(k))
			}
		}
	}
	o.Mask, _ = c.Config("redactor.mask")
	return o
}

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport redact
func redactExport() int32 { return sdk.Dispatch(Capability) }

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
