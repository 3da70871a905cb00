// Command research_register is a Hall worker serving
// cap.research.register: it appends one JSON line per chunk (source,
// correlation id, index, hash, embedding) to research.jsonl in a directory
// its privilege envelope lets it write, for the research pipeline
// (plugins/research_ingest).
//
// The directory is the config key research_register.dir (default
// /var/lib/hall/research); the record's filesystem_writes must list it, or
// the sandbox has no such directory and the call fails.
//
// Input {"source": "...", "chunks": [{"index", "hash", "words",
// "embedding"}]}; output {"path", "records"}.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o research_register.wasm ./plugins/research_register
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/wcphall/hall/sdk"
)

// Capability is the capability this worker serves.
const Capability = "cap.research.register"

// DefaultDir is where records go without the research_register.dir config.
const DefaultDir = "/var/lib/hall/research"

func init() { sdk.Handle(Capability, register) }

// Chunk is one registered chunk.
type Chunk struct {
	Index     int       `json:"index"`
	Hash      string    `json:"hash"`
	Words     int       `json:"words"`
	Embedding []float64 `json:"embedding"`
}

// Lines are the JSON Lines recorded for chunks of source under
// correlation id corr, one per chunk, in order.
func Lines(source, corr string, chunks []Chunk) ([]byte, error) {
	var b bytes.Buffer
	for _, ch := range chunks {
		line, err := json.Marshal(struct {
			Source        string `json:"source"`
			CorrelationID string `json:"correlation_id"`
			Chunk
		}{source, corr, ch})
		if err != nil {
			return nil, err
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

func register(c *sdk.Call) error {
	var req struct {
		Source string  `json:"source"`
		Chunks []Chunk `json:"chunks"`
	}
	if err := c.InputJSON(&req); err != nil {
		return err
	}
	dir, ok := c.Config("research_register.dir")
	if !ok {
		dir = DefaultDir
	}
	lines, err := Lines(req.Source, c.Correlation().CorrelationID, req.Chunks)
	if err != nil {
		return fmt.Errorf("research_register: %w", err)
	}
	path := filepath.Join(dir, "research.jsonl")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("research_register: %w (is %s in the record's filesystem_writes?)", err, dir)
	}
	if _, err := f.Write(lines); err != nil {
		f.Close()
		return fmt.Errorf("research_register: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("research_register: closing %s: %w", path, err)
	}
	return c.OutputJSON(map[string]any{"path": path, "records": len(req.Chunks)})
}

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
