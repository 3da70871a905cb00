// Command doc_hash is a Hall worker serving cap.doc.hash: the SHA-256 of
// each text it is given, for the research pipeline
// (plugins/research_ingest).
//
// Input {"texts": ["...", ...]}; output {"hashes": ["sha256:<hex>", ...]},
// in the same order.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o doc_hash.wasm ./plugins/doc_hash
package main

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/wcphall/hall/sdk"
)

// Capability is the capability this worker serves.
const Capability = "cap.doc.hash"

func init() { sdk.Handle(Capability, hashAll) }

// Hash is "sha256:" and the lowercase hex SHA-256 of the UTF-8 bytes of s.
func Hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func hashAll(c *sdk.Call) error {
	var req struct {
		Texts []string `json:"texts"`
	}
	if err := c.InputJSON(&req); err != nil {
		return err
	}
	hashes := make([]string, len(req.Texts))
	for i, t := range req.Texts {
		hashes[i] = Hash(t)
	}
	return c.OutputJSON(map[string]any{"hashes": hashes})
}

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
