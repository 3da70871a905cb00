// Command doc_chunk is a Hall worker serving cap.doc.chunk: it splits a
// document into chunks of about 500 tokens (Chunk), for the research
// pipeline (plugins/research_ingest).
//
// Input {"text": "...", "tokens": N}; output {"chunks": ["...", ...],
// "tokens": N}.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o doc_chunk.wasm ./plugins/doc_chunk
package main

import (
	"fmt"

	"github.com/wcphall/hall/sdk"
)

// Capability is the capability this worker serves.
const Capability = "cap.doc.chunk"

func init() { sdk.Handle(Capability, chunk) }

func chunk(c *sdk.Call) error {
	var req struct {
		Text   string `json:"text"`
		Tokens int    `json:"tokens"`
	}
	if err := c.InputJSON(&req); err != nil {
		return err
	}
	if req.Tokens < 0 || req.Tokens > 100_000 {
		return fmt.Errorf("doc_chunk: tokens %d: give a chunk size from 1 to 100000 (0: %d)", req.Tokens, DefaultTokens)
	}
	tokens := req.Tokens
	if tokens == 0 {
		tokens = DefaultTokens
	}
	return c.OutputJSON(map[string]any{"chunks": Chunk(req.Text, tokens), "tokens": tokens})
}

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
