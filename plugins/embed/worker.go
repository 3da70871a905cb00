// Command embed is a Hall worker serving cap.ml.embed: a deterministic
// local embedding (Embed: feature hashing to a fixed dimension) of each
// text it is given, for the research pipeline (plugins/research_ingest).
//
// Input {"texts": ["...", ...], "dim": N}; output {"dim": N, "vectors":
// [[...], ...]}, in the same order.
//
// Build:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o embed.wasm ./plugins/embed
package main

import (
	"fmt"

	"github.com/wcphall/hall/sdk"
)

// Capability is the capability this worker serves.
const Capability = "cap.ml.embed"

func init() { sdk.Handle(Capability, embed) }

func embed(c *sdk.Call) error {
	var req struct {
		Texts []string `json:"texts"`
		Dim   int      `json:"dim"`
	}
	if err := c.InputJSON(&req); err != nil {
		return err
	}
	if req.Dim < 0 || req.Dim > 4096 {
		return fmt.Errorf("embed: dim %d: give a dimension from 1 to 4096 (0: %d)", req.Dim, DefaultDim)
	}
	dim := req.Dim
	if dim == 0 {
		dim = DefaultDim
	}
	vecs := make([][]float64, len(req.Texts))
	for i, t := range req.Texts {
		vecs[i] = Embed(t, dim)
	}
	return c.OutputJSON(map[string]any{"dim": dim, "vectors": vecs})
}

//lint:ignore U1000 called by the host through //go:wasmexport (wasip1 builds only)
//go:wasmexport run
func run() int32 { return sdk.Run() }

func main() {}
