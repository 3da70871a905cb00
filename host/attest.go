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
// enrolled: the one whose worker_id sorts last (byte order). The choice
// depends only on what is enrolled, not on the order it was enrolled in, so
// every process over the same enrolled/ directory makes the same one.
func selectWorker(reg *registry.Registry, species string) *wcp.Record {
	var best *wcp.Record
	for _, rec := range reg.WorkersOf(species) {
		if best == nil || rec.WorkerID > best.WorkerID {
			best = rec
		}
	}
	return best
}
