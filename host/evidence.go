package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

// evidenceStore is the Hall's evidence ledger (opened by Open), with its
// write methods: only Hall methods write evidence; embedders read it
// through Evidence.
func (h *Hall) evidenceStore() (ledger.Store, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.ledger == nil {
		return nil, errors.New("evidence ledger: not open")
	}
	return h.ledger, nil
}

// openLedger opens the evidence ledger (creating the state directory, the
// database and the signing key on first use), or adopts Options.Stores'
// Evidence.
func (h *Hall) openLedger(storePayloads bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.opts.Stores; st != nil && st.Evidence != nil {
		h.ledger = st.Evidence
		return nil
	}
	s, err := OpenLocalEvidence(h.opts.Home, LocalStoreOptions{
		KeyFile:       h.opts.KeyFile,
		KeyFD:         h.opts.KeyFD,
		Checkpoints:   h.opts.Checkpoints,
		StorePayloads: h.opts.StorePayloads || storePayloads,
	})
	if err != nil {
		return fmt.Errorf("evidence ledger: %w", err)
	}
	h.ledger, h.ownLedger = s, true
	return nil
}

// Route decides a request and records the decision, with its telemetry,
// in the evidence ledger: the decision becomes the next signed entry of
// its tenant's decision chain (allowed, denied and dry runs alike). The decision is returned even when recording
// fails; the error says so.
func (h *Hall) Route(ctx context.Context, in *wcp.RouteInput) (wcp.RouteDecision, error) {
	dec, _, err := h.RouteJSON(ctx, in)
	return dec, err
}

// RouteJSON is [Hall.Route] that also returns the decision's JSON, the
// bytes json.Marshal gives for it, as the ledger recorded them: a server
// answers with them instead of encoding the decision a second time. The
// JSON is nil when the decision could not be recorded.
func (h *Hall) RouteJSON(ctx context.Context, in *wcp.RouteInput) (wcp.RouteDecision, []byte, error) {
	// Admitted until Close begins; Close waits for the decision to be
	// recorded before it closes the ledger.
	exit, ok := h.life.enterBrief()
	if !ok {
		return wcp.RouteDecision{}, nil, ErrClosed
	}
	defer exit()
	dec, _, s := h.plan(ctx, in)
	body, err := h.recordDecisionJSON(ctx, s, &dec)
	return dec, body, err
}

func (h *Hall) recordDecision(ctx context.Context, s *snapshot, dec *wcp.RouteDecision) error {
	_, err := h.recordDecisionJSON(ctx, s, dec)
	return err
}

// recordDecisionJSON records dec, made under s, and returns its JSON. A
// decision made under a snapshot that is not recorded is not recorded
// either: the error is a *SnapshotError.
func (h *Hall) recordDecisionJSON(ctx context.Context, s *snapshot, dec *wcp.RouteDecision) ([]byte, error) {
	snap, err := h.snapshotDigestOf(s)
	if err != nil {
		return nil, err
	}
	store, err := h.evidenceStore()
	if err != nil {
		return nil, err
	}
	d, err := decisionRecord(dec)
	if err != nil {
		return nil, err
	}
	d.Snapshot = snap
	ctx, cancel := evidenceContext(ctx)
	defer cancel()
	ctx, span := h.startSpan(ctx, "hall.evidence.commit")
	err = store.RecordDecision(ctx, d)
	endCommit(span, "", err)
	if err != nil {
		return nil, fmt.Errorf("recording decision %s in the evidence ledger: %w", dec.DecisionID, err)
	}
	return d.Decision, nil
}

// decisionRecord is what the ledger records of dec: its JSON and columns.
func decisionRecord(dec *wcp.RouteDecision) (ledger.DecisionRecord, error) {
	// What json.Marshal gives, without its second pass over the bytes.
	body, err := dec.AppendJSON(make([]byte, 0, 4096))
	if err != nil {
		return ledger.DecisionRecord{}, err
	}
	return ledger.DecisionRecord{
		DecisionID:    dec.DecisionID.String(),
		CorrelationID: dec.CorrelationID,
		TenantID:      dec.TenantID,
		CapabilityID:  dec.CapabilityID,
		Denied:        dec.Denied,
		DenyCode:      string(dec.Code()),
		DryRun:        dec.DryRun,
		Decision:      body,
		Timestamp:     dec.Timestamp,
	}, nil
}

// dispatchRecorder is the optional ability of an evidence store to
// record a dispatch's decision, its worker's events and its receipt in
// one transaction ([ledger.SQLite.RecordDispatch]).
type dispatchRecorder interface {
	RecordDispatch(ctx context.Context, d ledger.DecisionRecord, events []json.RawMessage, r *ledger.Receipt) error
}

// recordDispatch records a dispatch that ran, with its decision, in one
// commit (oneCommit in Run); without it the output is withheld.
func (h *Hall) recordDispatch(ctx context.Context, store dispatchRecorder, res *RunResult, plan *Plan, payload []byte, started time.Time) error {
	d, err := decisionRecord(&res.Decision)
	if err != nil {
		res.Output = nil
		return fmt.Errorf("recording decision %s: %w; the worker ran, its output is withheld", res.Decision.DecisionID, err)
	}
	d.Snapshot = plan.snap.digest()
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	ectx, span := h.startSpan(ectx, "hall.evidence.commit")
	r := receipt(res, plan, payload, started)
	err = store.RecordDispatch(ectx, d, res.Events, r)
	defer func() { endCommit(span, r.ReceiptID, err) }()
	if err != nil && len(res.Events) > 0 && errors.Is(err, ledger.ErrInvalid) {
		// A worker's malformed event does not cost its evidence: logged,
		// as with a decision recorded first, and recorded without it.
		h.log.Error("hall: recording worker telemetry failed", "correlation_id", res.Decision.CorrelationID, "error", err)
		err = store.RecordDispatch(ectx, d, nil, r)
	}
	if err != nil {
		res.Output = nil
		return fmt.Errorf("the worker ran but its evidence (decision %s and receipt) could not be committed, so its output is withheld: %w", res.Decision.DecisionID, err)
	}
	res.ReceiptID = r.ReceiptID
	res.chain.receipted()
	return nil
}

// receipt builds the evidence receipt of a dispatch.
func receipt(res *RunResult, plan *Plan, payload []byte, started time.Time) *ledger.Receipt {
	d := &res.Decision
	rec := plan.w.rec
	r := &ledger.Receipt{
		CorrelationID:    d.CorrelationID,
		DispatchedAt:     started,
		WorkerID:         rec.WorkerID,
		CapabilityID:     d.CapabilityID,
		PolicyDecision:   "ALLOW",
		ControlsVerified: d.RequiredControlsEffective,
		ArtifactHash:     plan.ArtifactHash(),
		RecordDigest:     plan.RecordDigest(),
		Envelope:         plan.Envelope(),
		Snapshot:         plan.snap.digest(),
		DecisionID:       d.DecisionID.String(),
		TenantID:         d.TenantID,
		RequestHash:      d.RequestHash.String(),
		InputHash:        digestOf(payload),
		DurationMS:       float64(res.Duration.Microseconds()) / 1000,
		QueueWaitMS:      float64(res.QueueWait.Microseconds()) / 1000,
		Outcome:          res.Outcome,
		Limits: ledger.Limits{
			TimeoutMS:   res.Limits.Timeout.Milliseconds(),
			MemoryMB:    int64(res.Limits.MemoryBytes >> 20),
			InputBytes:  res.Limits.InputBytes,
			OutputBytes: res.Limits.OutputBytes,
		},
		Determinism:   "clock,random",
		ReplayOf:      plan.replayOf,
		TraceID:       res.TraceID,
		InputPayload:  payload,
		OutputPayload: res.Output,
	}
	if rec.Determinism == "full" {
		r.Determinism = "deterministic"
	}
	res.chain.fill(r)
	r.Signer = plan.signer()
	if len(res.Output) > 0 {
		r.OutputHash = digestOf(res.Output)
	}
	if res.Err != nil {
		r.ErrorMessage = res.Err.Error()
	}
	return r
}

func digestOf(b []byte) string { return wcp.Digest(sha256.Sum256(b)).String() }

func jsonCompact(data []byte) ([]byte, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
