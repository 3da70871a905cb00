package host

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

// ReplayResult compares a replay with the receipt it replays.
type ReplayResult struct {
	// ReceiptID is the replayed receipt; ReplayReceiptID is the replay's
	// own receipt (its replay_of names ReceiptID), "" when the replay was
	// denied.
	ReceiptID       string
	ReplayReceiptID string
	// Decision is the replay's own decision, made under the rules,
	// policies and configuration in force now and recorded.
	Decision     wcp.RouteDecision
	WorkerID     string
	ArtifactHash string
	// RecordedOutputHash and OutputHash are the receipt's and the re-run's
	// output digests; Match reports whether they and the outcomes are
	// equal.
	RecordedOutputHash string
	OutputHash         string
	Match              bool
	// Outcome is the replay's outcome ("ok" or a code), or the deny code
	// of a denied replay.
	Outcome string
	Output  []byte
}

// replaySpec binds a dispatch to the worker, record and module a receipt
// names (RunRequest.replay).
type replaySpec struct {
	receiptID string
	rec       *wcp.Record // the sealed record the original ran under
}

// view is the snapshot s as a replay decides in it: the replayed worker is
// the one worker of its species (with the sealed record and module of the
// original dispatch, bound under s's ceilings), and no other species has a
// worker, so that the router's eligibility, envelope and attestation
// checks, the policies and the plan all concern what will run. When the
// worker is no longer enrolled in s, the view has no worker at all and
// the router denies.
func (rp *replaySpec) view(s *snapshot) *snapshot {
	v := *s
	v.workers = map[string]*boundWorker{}
	v.species = map[string][]*boundWorker{}
	if s.workers[rp.rec.WorkerID] == nil {
		return &v
	}
	w, err := newBoundWorker(rp.rec, s.max)
	if err != nil {
		return &v
	}
	v.workers[w.rec.WorkerID] = w
	v.species[w.rec.WorkerSpeciesID] = []*boundWorker{w}
	return &v
}

// Replay re-runs the module a receipt names on input, as a governed
// dispatch of its own, and reports whether its output hash and outcome
// match the receipt's.
//
// The replay is decided like a run, under the rules, policies and
// configuration in force now, for the original request's tenant,
// capability, env, data_label, tenant_risk, qos_class and correlation id
// (read from the original decision). In that decision the receipt's
// worker is the only worker of its species, with the sealed record and
// the module (artifact_hash) of the original dispatch, even if the worker
// has since been re-enrolled with other bytes; a worker no longer enrolled,
// or a request the rules no longer route to its species, is denied. An
// allowed replay is dispatched by Run's own path: the same guest config
// (record config, hall.json overrides, wcp.* keys), envelope and limits
// as a run, its decision recorded before any guest code with a grant runs,
// and a receipt whose replay_of names the original.
//
// Only workers that declare determinism "full" can be replayed: they run
// with a deterministic clock and random source. The input must be the one
// the receipt hashed. A denied replay is not an error: its Decision says
// why, and nothing ran.
//
// Once Close (or Shutdown) has begun, Replay returns ErrClosed
// (HALL_CLOSED) before reading anything. A replay admitted earlier is
// waited for by Close like a dispatch; if Close began before it reached
// its dispatch, it is refused there with ErrClosed, as Run is, and nothing
// ran.
func (h *Hall) Replay(ctx context.Context, receiptID string, input []byte) (*ReplayResult, error) {
	ctx, exit, ok := h.life.enter(ctx)
	if !ok {
		return nil, ErrClosed
	}
	defer exit()
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
	if _, err := wcp.ParseDigest(r.ArtifactHash); err != nil {
		return nil, fmt.Errorf("receipt %s: artifact_hash: %w", receiptID, err)
	}
	rec.ArtifactHash = r.ArtifactHash
	in, err := h.replayInput(ctx, store, r)
	if err != nil {
		return nil, err
	}
	run, err := h.Run(ctx, RunRequest{Input: in, Payload: input, replay: &replaySpec{receiptID: r.ReceiptID, rec: rec}})
	if err != nil {
		return nil, err
	}
	res := &ReplayResult{
		ReceiptID: receiptID, ReplayReceiptID: run.ReceiptID, Decision: run.Decision,
		WorkerID: r.WorkerID, ArtifactHash: r.ArtifactHash, RecordedOutputHash: r.OutputHash,
		Outcome: run.Outcome, Output: run.Output,
	}
	if run.Decision.Denied {
		res.Outcome = string(run.Decision.Code())
		return res, nil
	}
	if len(run.Output) > 0 {
		res.OutputHash = digestOf(run.Output)
	}
	res.Match = run.Ran && res.Outcome == r.Outcome && res.OutputHash == r.OutputHash
	return res, nil
}

// replayInput is the request a replay of r is decided for: the routing
// fields of r's decision. The request object, blast_radius and
// privilege_context are not recorded (only their hash, request_hash), so
// the replay is decided without them.
func (h *Hall) replayInput(ctx context.Context, store ledger.Store, r *ledger.Receipt) (*wcp.RouteInput, error) {
	ds, ok := store.(interface {
		Decision(ctx context.Context, id string) (*ledger.DecisionRecord, error)
	})
	if !ok {
		return nil, fmt.Errorf("the evidence store %T does not return recorded decisions: a replay is decided for the original decision's request", store)
	}
	d, err := ds.Decision(ctx, r.DecisionID)
	if err != nil {
		return nil, fmt.Errorf("receipt %s: its decision %s: %w", r.ReceiptID, r.DecisionID, err)
	}
	var orig struct {
		Env        string `json:"env"`
		DataLabel  string `json:"data_label"`
		TenantRisk string `json:"tenant_risk"`
		QoSClass   string `json:"qos_class"`
	}
	if err := json.Unmarshal(d.Decision, &orig); err != nil {
		return nil, fmt.Errorf("receipt %s: its decision %s does not decode: %w", r.ReceiptID, r.DecisionID, err)
	}
	body, err := json.Marshal(map[string]any{
		"capability_id": r.CapabilityID, "tenant_id": r.TenantID, "correlation_id": r.CorrelationID,
		"env": orig.Env, "data_label": orig.DataLabel, "tenant_risk": orig.TenantRisk, "qos_class": orig.QoSClass,
	})
	if err != nil {
		return nil, err
	}
	in, err := wcp.ParseRouteInput(body)
	if err != nil {
		return nil, fmt.Errorf("receipt %s: the request of its decision %s: %w", r.ReceiptID, r.DecisionID, err)
	}
	return &in, nil
}

// recordOf is the record a receipt's dispatch ran under: the sealed record
// its record_digest names in the ledger's change chain, or, for receipts
// from before records were sealed, the worker's record in force now.
//
// The sealed record is taken from an enroll change only once that change
// verifies (its body hashes to its hash, the hash's signature verifies,
// its columns say what its body says), names the receipt's worker and
// module (artifact_hash), and seals the receipt's record_digest: the
// digest it signed, or the digest of the record its signed body holds.
// Anything else refuses the replay before anything runs (issue 21: an
// enroll change's body edited with SQL made a replay run under the edited
// envelope). The receipt itself was verified by the store's Receipt.
func (h *Hall) recordOf(ctx context.Context, r *ledger.Receipt) (*wcp.Record, error) {
	if r.RecordDigest != "" {
		store, err := h.evidenceStore()
		if err != nil {
			return nil, err
		}
		signed, ok := store.(interface {
			SignedChange(ctx context.Context, changeID string) (*ledger.Change, error)
		})
		if !ok {
			return nil, fmt.Errorf("the evidence store %T does not return verified changes: a replay runs only under a sealed record whose enroll change verifies", store)
		}
		changes, err := store.Changes(ctx, ledger.ChangeEnroll)
		if err != nil {
			return nil, err
		}
		for i := len(changes) - 1; i >= 0; i-- {
			c := changes[i]
			if c.Subject != r.WorkerID || c.ArtifactHash != r.ArtifactHash || (c.Digest != r.RecordDigest && (c.DigestV1 == "" || c.DigestV1 != r.RecordDigest)) {
				continue
			}
			return sealedRecord(ctx, signed.SignedChange, c.ChangeID, r)
		}
		return nil, fmt.Errorf("receipt %s names record %s of module %s, which no enrollment of worker %s in the ledger sealed", r.ReceiptID, r.RecordDigest, r.ArtifactHash, r.WorkerID)
	}
	w := h.snap.Load().workers[r.WorkerID]
	if w == nil {
		return nil, fmt.Errorf("worker %s of receipt %s is no longer enrolled", r.WorkerID, r.ReceiptID)
	}
	return cloneRecord(w.rec)
}

// sealedRecord is the record enroll change changeID sealed, read from the
// change as signed and checked against receipt r (see recordOf).
func sealedRecord(ctx context.Context, signed func(context.Context, string) (*ledger.Change, error), changeID string, r *ledger.Receipt) (*wcp.Record, error) {
	c, err := signed(ctx, changeID)
	if err != nil {
		return nil, fmt.Errorf("receipt %s: the enroll change %s sealing its record %s does not verify, nothing was run (hall audit verify says more): %w", r.ReceiptID, changeID, r.RecordDigest, err)
	}
	if c.Kind != ledger.ChangeEnroll || c.Subject != r.WorkerID || c.ArtifactHash != r.ArtifactHash {
		return nil, fmt.Errorf("receipt %s: change %s is a signed %s change of %q for module %q, not the enrollment of worker %s with module %s; nothing was run",
			r.ReceiptID, changeID, c.Kind, c.Subject, c.ArtifactHash, r.WorkerID, r.ArtifactHash)
	}
	var rec wcp.Record
	if err := json.Unmarshal(c.Body, &rec); err != nil {
		return nil, fmt.Errorf("the sealed record %s of receipt %s: %w", r.RecordDigest, r.ReceiptID, err)
	}
	if c.Digest != r.RecordDigest {
		// A version 1 seal re-expressed in the current canonical form:
		// the record the signed body holds must seal to it.
		canon, err := wcp.CanonicalJSON(c.Body)
		if err != nil || wcp.Digest(sha256.Sum256(canon)).String() != r.RecordDigest {
			return nil, fmt.Errorf("receipt %s: the enroll change %s seals %s, and the record its signed body holds does not seal to the receipt's record_digest %s; nothing was run", r.ReceiptID, changeID, c.Digest, r.RecordDigest)
		}
	}
	return &rec, nil
}
