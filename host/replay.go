package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/wcphall/hall/host/ledger"
	"github.com/wcphall/hall/host/sandbox"
	"github.com/wcphall/hall/host/wcp"
)

// ReplayResult compares a re-run with the receipt it replays.
type ReplayResult struct {
	ReceiptID    string
	WorkerID     string
	ArtifactHash string
	// RecordedOutputHash and OutputHash are the receipt's and the re-run's
	// output digests; Match reports whether they are equal.
	RecordedOutputHash string
	OutputHash         string
	Match              bool
	Outcome            string
	Output             []byte
}

// Replay re-runs the module a receipt names (by its artifact_hash, even if
// the worker has since been re-enrolled with other bytes) on input, with
// the receipt's correlation context, and reports whether the output hash
// matches. Only workers that declare determinism "full" can be replayed:
// they run with a deterministic clock and random source. The input must be
// the one the receipt hashed. Replays are not dispatches and leave no
// receipt.
func (h *Hall) Replay(ctx context.Context, receiptID string, input []byte) (*ReplayResult, error) {
	store, err := h.evidenceStore()
	if err != nil {
		return nil, err
	}
	r, err := store.Receipt(ctx, receiptID)
	if err != nil {
		return nil, err
	}
	if got := digestOf(input); got != r.InputHash {
		return nil, fmt.Errorf("the input hashes to %s but receipt %s recorded input %s: replay needs the same input", got, receiptID, r.InputHash)
	}
	rec, err := h.recordOf(ctx, r)
	if err != nil {
		return nil, err
	}
	if rec.Determinism != "full" {
		return nil, fmt.Errorf("worker %s declares determinism %q: only workers declaring \"full\" run with a deterministic clock and random source and can be replayed", r.WorkerID, rec.Determinism)
	}
	d, err := wcp.ParseDigest(r.ArtifactHash)
	if err != nil {
		return nil, fmt.Errorf("receipt %s: artifact_hash: %w", receiptID, err)
	}
	arts, err := h.artifacts()
	if err != nil {
		return nil, err
	}
	module, err := arts.Get(d)
	if err != nil {
		return nil, err
	}
	rec.ArtifactHash = r.ArtifactHash
	s := h.snap.Load()
	bw, err := newBoundWorker(rec, s.max)
	if err != nil {
		return nil, err
	}
	w, err := h.load(ctx, s, bw, module)
	if err != nil {
		return nil, err
	}
	defer w.Close(ctx)
	res := &ReplayResult{ReceiptID: receiptID, WorkerID: r.WorkerID, ArtifactHash: r.ArtifactHash, RecordedOutputHash: r.OutputHash, Outcome: "ok"}
	out, err := w.Call(ctx, sandbox.Request{
		Export: rec.Entrypoint(r.CapabilityID),
		Input:  input,
		Config: guestConfig(r.CorrelationID, r.TenantID, r.CapabilityID, "", "", r.WorkerID),
	})
	if err != nil {
		var se *sandbox.Error
		if !errors.As(err, &se) {
			return nil, err
		}
		res.Outcome = se.Code
	}
	if out != nil && len(out.Output) > 0 {
		res.Output = out.Output
		res.OutputHash = digestOf(out.Output)
	}
	res.Match = res.Outcome == r.Outcome && res.OutputHash == r.OutputHash
	return res, nil
}

// recordOf is the record a receipt's dispatch ran under: the sealed record
// its record_digest names in the ledger's change chain, or, for receipts
// from before records were sealed, the worker's record in force now.
func (h *Hall) recordOf(ctx context.Context, r *ledger.Receipt) (*wcp.Record, error) {
	if r.RecordDigest != "" {
		store, err := h.evidenceStore()
		if err != nil {
			return nil, err
		}
		changes, err := store.Changes(ctx, ledger.ChangeEnroll)
		if err != nil {
			return nil, err
		}
		for i := len(changes) - 1; i >= 0; i-- {
			if c := changes[i]; c.Subject == r.WorkerID && (c.Digest == r.RecordDigest || (c.DigestV1 != "" && c.DigestV1 == r.RecordDigest)) {
				var rec wcp.Record
				if err := json.Unmarshal(c.Body, &rec); err != nil {
					return nil, fmt.Errorf("the sealed record %s of receipt %s: %w", r.RecordDigest, r.ReceiptID, err)
				}
				return &rec, nil
			}
		}
		return nil, fmt.Errorf("receipt %s names record %s, which no enrollment in the ledger sealed", r.ReceiptID, r.RecordDigest)
	}
	w := h.snap.Load().workers[r.WorkerID]
	if w == nil {
		return nil, fmt.Errorf("worker %s of receipt %s is no longer enrolled", r.WorkerID, r.ReceiptID)
	}
	return cloneRecord(w.rec)
}
