// Command research_ingest is a Hall worker serving cap.research.ingest:
// PyHall's five-worker research pipeline as a governed chain. It fetches
// a URL (cap.web.fetch), chunks the text (cap.doc.chunk), embeds and hashes
// the chunks (cap.ml.embed, cap.doc.hash) and registers them
// (cap.research.register), each step a hop the Hall decides, runs and
// records under this call's decision (sdk Call.Invoke; docs/ABI.md).
//
// Input {"url": "...", "tokens": N, "dim": N}; output {"url", "chunks",
// "dim", "registered", "records"}.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o research_ingest.wasm ./plugins/research_ingest
package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wcphall/hall/sdk"
)

// Capability is the capability this worker serves.
const Capability = "cap.research.ingest"

func init() { sdk.Handle(Capability, ingest) }

// step invokes capability with in as JSON and decodes its JSON output
// into out.
func step(c *sdk.Call, capability string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	res, err := c.Invoke(capability, b)
	if err != nil {
		return fmt.Errorf("research_ingest: %s: %w", capability, err)
	}
	if err := json.Unmarshal(res, out); err != nil {
		return fmt.Errorf("research_ingest: %s answered %q: %w", capability, res, err)
	}
	return nil
}

type chunk struct {
	Index     int       `json:"index"`
	Hash      string    `json:"hash"`
	Words     int       `json:"words"`
	Embedding []float64 `json:"embedding"`
}

func ingest(c *sdk.Call) error {
	var req struct {
		URL    string `json:"url"`
		Tokens int    `json:"tokens"`
		Dim    int    `json:"dim"`
	}
	if err := c.InputJSON(&req); err != nil {
		return err
	}
	var page struct {
		Text string `json:"text"`
	}
	if err := step(c, "cap.web.fetch", map[string]any{"url": req.URL}, &page); err != nil {
		return err
	}
	var chunks struct {
		Chunks []string `json:"chunks"`
	}
	if err := step(c, "cap.doc.chunk", map[string]any{"text": page.Text, "tokens": req.Tokens}, &chunks); err != nil {
		return err
	}
	var emb struct {
		Dim     int         `json:"dim"`
		Vectors [][]float64 `json:"vectors"`
	}
	if err := step(c, "cap.ml.embed", map[string]any{"texts": chunks.Chunks, "dim": req.Dim}, &emb); err != nil {
		return err
	}
	var hashes struct {
		Hashes []string `json:"hashes"`
	}
	if err := step(c, "cap.doc.hash", map[string]any{"texts": chunks.Chunks}, &hashes); err != nil {
		return err
	}
	if len(emb.Vectors) != len(chunks.Chunks) || len(hashes.Hashes) != len(chunks.Chunks) {
		return fmt.Errorf("research_ingest: %d chunks but %d vectors and %d hashes", len(chunks.Chunks), len(emb.Vectors), len(hashes.Hashes))
	}
	recs := make([]chunk, len(chunks.Chunks))
	for i, text := range chunks.Chunks {
		recs[i] = chunk{Index: i, Hash: hashes.Hashes[i], Words: len(strings.Fields(text)), Embedding: emb.Vectors[i]}
	}
	var reg struct {
		Path    string `json:"path"`
		Records int    `json:"records"`
	}
	if err := step(c, "cap.research.register", map[string]any{"source": req.URL, "chunks": recs}, &reg); err != nil {
		return err
	}
	return c.OutputJSON(map[string]any{"url": req.URL, "chunks": len(recs), "dim": emb.Dim, "registered": reg.Path, "records": reg.Records})
}

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
