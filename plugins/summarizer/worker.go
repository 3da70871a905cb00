// Command summarizer is a Hall worker serving cap.doc.summarize: an
// extractive summary (Summarize) of a plain-text document.
//
// Input is either plain text, answered with the summary as plain text, or a
// JSON object {"text": "...", "sentences": N} or {"text": "...", "ratio": R},
// answered with JSON {"summary", "sentences", "indices", "total_sentences"}.
// Without an option in the input, the config keys summarizer.sentences and
// summarizer.ratio apply, then DefaultSentences.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o summarizer.wasm ./plugins/summarizer
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/wcphall/hall/sdk"
)

// Capability is the capability this worker serves.
const Capability = "cap.doc.summarize"

func init() { sdk.Handle(Capability, summarize) }

// request is the JSON form of the input.
type request struct {
	Text *string `json:"text"`
	Options
}

// response is the JSON form of the output.
type response struct {
	Summary   string   `json:"summary"`
	Sentences []string `json:"sentences"`
	Indices   []int    `json:"indices"`
	Total     int      `json:"total_sentences"`
}

func summarize(c *sdk.Call) error {
	opts, err := configOptions(c)
	if err != nil {
		return err
	}
	in := c.Input()
	req, isJSON, err := parseRequest(in)
	if err != nil {
		return err
	}
	if req.Sentences != 0 || req.Ratio != 0 {
		opts = req.Options
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("summarizer: %w", err)
	}
	text := string(in)
	if isJSON {
		text = *req.Text
	}
	s := Summarize(text, opts)
	c.Logf(sdk.LevelDebug, "summarized %d of %d sentences", len(s.Sentences), s.Total)
	if !isJSON {
		// Plain text in, a line of plain text out.
		c.OutputString(s.Text() + "\n")
		return nil
	}
	return c.OutputJSON(response{Summary: s.Text(), Sentences: s.Sentences, Indices: s.Indices, Total: s.Total})
}

// parseRequest recognizes the JSON form: an object with a "text" string.
// Anything else, including text that merely starts with '{', is plain text.
func parseRequest(in []byte) (request, bool, error) {
	var req request
	trimmed := bytes.TrimSpace(in)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return req, false, nil
	}
	if json.Unmarshal(trimmed, &req) != nil || req.Text == nil {
		// Not our JSON: summarize it as text. A well-formed object with a
		// "text" member but bad options is an error below, not text.
		var probe map[string]json.RawMessage
		if json.Unmarshal(trimmed, &probe) == nil && probe["text"] != nil {
			return req, false, fmt.Errorf("summarizer: invalid JSON request: want {\"text\": string, \"sentences\": int, \"ratio\": number}")
		}
		return request{}, false, nil
	}
	return req, true, nil
}

func configOptions(c *sdk.Call) (Options, error) {
	var o Options
	if v, ok := c.Config("summarizer.sentences"); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			return o, fmt.Errorf("summarizer: config summarizer.sentences: %w", err)
		}
		o.Sentences = n
	}
	if v, ok := c.Config("summarizer.ratio"); ok {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return o, fmt.Errorf("summarizer: config summarizer.ratio: %w", err)
		}
		o.Ratio = r
	}
	return o, nil
}

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport summarize
func summarizeExport() int32 { return sdk.Dispatch(Capability) }

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
