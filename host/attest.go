package host

import (
	"context"
	"strings"

	"github.com/wcphall/hall/host/registry"
	"github.com/wcphall/hall/host/wcp"
)

// registeredArtifacts is the known-good hash of a species for worker
// attestation: the artifact_hash its enrolled record declares (the digest
// of the .wasm module it was enrolled with, WCP §5.10), falling back to
// PyHall's attestation.code_hash.
type registeredArtifacts struct{ reg *registry.Registry }

func (r registeredArtifacts) WorkerHash(ctx context.Context, species string) (string, bool) {
	if rec := selectWorker(r.reg, species); rec != nil && wcp.ValidArtifactHash(rec.ArtifactHash) {
		return strings.TrimPrefix(rec.ArtifactHash, "sha256:"), true
	}
	return r.reg.WorkerHash(ctx, species)
}

// selectWorker chooses the worker that serves a species when several are
// enrolled: the one enrolled last in file-name order of enrolled/ (the same
// directory always gives the same choice).
func selectWorker(reg *registry.Registry, species string) *wcp.Record {
	ws := reg.WorkersOf(species)
	if len(ws) == 0 {
		return nil
	}
	return ws[len(ws)-1]
}
