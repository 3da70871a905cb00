package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	extism "github.com/extism/go-sdk"

	"github.com/wcphall/hall/host/artifact"
	"github.com/wcphall/hall/host/sandbox"
	"github.com/wcphall/hall/host/wcp"
)

// Default ceilings of a dispatch (hall.json "limits" lowers or raises them).
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMemoryMB    = 256
	DefaultInputBytes  = 16 << 20
	DefaultOutputBytes = 16 << 20
	DefaultLogBytes    = 64 << 10
)

// maxLimits is the Hall's ceiling (and default) for every dispatch.
func (c Config) maxLimits() sandbox.Limits {
	l := sandbox.Limits{
		Timeout:     DefaultTimeout,
		MemoryBytes: DefaultMemoryMB << 20,
		InputBytes:  DefaultInputBytes,
		OutputBytes: DefaultOutputBytes,
		LogBytes:    DefaultLogBytes,
	}
	if c.Limits.TimeoutMS > 0 {
		l.Timeout = time.Duration(c.Limits.TimeoutMS) * time.Millisecond
	}
	if c.Limits.MemoryMB > 0 {
		l.MemoryBytes = uint64(c.Limits.MemoryMB) << 20
	}
	if c.Limits.InputBytes > 0 {
		l.InputBytes = c.Limits.InputBytes
	}
	if c.Limits.OutputBytes > 0 {
		l.OutputBytes = c.Limits.OutputBytes
	}
	if c.Limits.LogBytes > 0 {
		l.LogBytes = int(c.Limits.LogBytes)
	}
	return l
}

// MaxInputBytes is the largest dispatch input the Hall accepts.
func (c Config) MaxInputBytes() int64 { return c.maxLimits().InputBytes }

// workerLimits are a record's declared limits (zero: the Hall's default);
// the sandbox caps each by the Hall's ceiling.
func workerLimits(rec *wcp.Record) sandbox.Limits {
	var l sandbox.Limits
	if wl := rec.Limits; wl != nil {
		l.Timeout = time.Duration(wl.TimeoutMS) * time.Millisecond
		l.MemoryBytes = uint64(max(wl.MemoryMB, 0)) << 20
		l.OutputBytes = wl.OutputBytes
	}
	return l
}

// policy maps a record's privilege envelope onto sandbox capabilities.
// Anything not declared is denied: no envelope means no files, no network
// and no secrets.
func policy(rec *wcp.Record) sandbox.Policy {
	p := sandbox.Policy{Deterministic: rec.Determinism == "full"}
	if e := rec.PrivilegeEnvelope; e != nil {
		p.Writes = cleanDirs(e.FilesystemWrites)
		p.Reads = cleanDirs(e.FilesystemReads)
		p.Egress = e.NetworkEgress.Hosts
		p.Secrets = e.SecretsAccess
	}
	return p
}

func cleanDirs(dirs []string) []string {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		out = append(out, filepath.Clean(d))
	}
	return out
}

func (h *Hall) artifacts() (*artifact.Store, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.store == nil {
		s, err := artifact.Open(filepath.Join(h.opts.Home, "artifacts"))
		if err != nil {
			return nil, err
		}
		h.store = s
	}
	return h.store, nil
}

// guestLogs raises Extism's process-wide log level (to info) once so that guest
// log_* calls reach each instance's logger (and RunResult.Logs); Extism's
// default is off.
var guestLogs sync.Once

func (h *Hall) sandboxEngine(ctx context.Context) (*sandbox.Engine, error) {
	guestLogs.Do(func() { extism.SetLogLevel(extism.LogLevelInfo) })
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.engine == nil {
		secrets := h.opts.Secrets
		if secrets == nil {
			secrets = sandbox.EnvSecrets{}
		}
		e, err := sandbox.New(ctx, sandbox.Config{
			CacheDir: filepath.Join(h.opts.Home, "cache"),
			Max:      h.cfg.maxLimits(),
			Secrets:  secrets,
			Logger:   h.log,
		})
		if err != nil {
			return nil, err
		}
		h.engine = e
	}
	return h.engine, nil
}

// loadedWorker is an enrolled worker's compiled module, verified against
// its artifact_hash once when it was loaded.
type loadedWorker struct {
	digest string
	worker *sandbox.Worker
	err    error // *artifact.TamperedError, not found, or load failure
}

// compile loads a module into a sandbox worker once, which also fills the
// on-disk compilation cache so later processes start warm.
func (h *Hall) compile(ctx context.Context, rec *wcp.Record, module []byte) error {
	w, err := h.load(ctx, rec, module)
	if err != nil {
		return err
	}
	h.mu.Lock()
	if old := h.workers[rec.WorkerID]; old != nil && old.worker != nil {
		old.worker.Close(ctx)
	}
	if h.workers == nil {
		h.workers = map[string]*loadedWorker{}
	}
	h.workers[rec.WorkerID] = &loadedWorker{digest: rec.ArtifactHash, worker: w}
	h.mu.Unlock()
	return nil
}

func (h *Hall) load(ctx context.Context, rec *wcp.Record, module []byte) (*sandbox.Worker, error) {
	eng, err := h.sandboxEngine(ctx)
	if err != nil {
		return nil, err
	}
	p := policy(rec)
	for _, d := range p.Writes {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("privilege_envelope.filesystem_writes: cannot create %s: %w", d, err)
		}
	}
	ws := h.cfg.Workers[rec.WorkerID]
	pool := h.opts.Pool
	if ws.Pool != 0 {
		pool = ws.Pool
	}
	return eng.Load(ctx, module, sandbox.Spec{Name: rec.WorkerID, Policy: p, Limits: workerLimits(rec), Pool: pool, Reuse: ws.ReuseInstances})
}

// worker returns the loaded worker for rec, loading and verifying its
// module on first use. A loaded worker and a tampered module are
// remembered for the module's digest; other failures (a cancelled load, a
// missing file) are not, so the next dispatch tries again.
func (h *Hall) worker(ctx context.Context, rec *wcp.Record) (*sandbox.Worker, error) {
	h.mu.Lock()
	lw := h.workers[rec.WorkerID]
	h.mu.Unlock()
	if lw != nil && lw.digest == rec.ArtifactHash {
		return lw.worker, lw.err
	}
	lw = &loadedWorker{digest: rec.ArtifactHash}
	d, err := wcp.ParseDigest(rec.ArtifactHash)
	if err != nil {
		lw.err = fmt.Errorf("worker %s has no valid artifact_hash (enroll it with hall enroll)", rec.WorkerID)
	} else if store, err := h.artifacts(); err != nil {
		lw.err = err
	} else if module, err := store.Get(d); err != nil {
		lw.err = err
	} else {
		lw.worker, lw.err = h.load(ctx, rec, module)
	}
	h.mu.Lock()
	if h.workers == nil {
		h.workers = map[string]*loadedWorker{}
	}
	if cur := h.workers[rec.WorkerID]; cur != nil && cur.digest == lw.digest {
		h.mu.Unlock()
		if lw.worker != nil {
			lw.worker.Close(ctx)
		}
		return cur.worker, cur.err
	}
	var te *artifact.TamperedError
	if lw.err == nil || errors.As(lw.err, &te) {
		h.workers[rec.WorkerID] = lw
	}
	h.mu.Unlock()
	return lw.worker, lw.err
}

// currentArtifacts is the live-hash source of worker attestation: the
// digest of the selected worker's stored module as read from the artifact
// store (a module altered on disk hashes differently and is denied
// DENY_WORKER_TAMPERED).
func (h *Hall) currentArtifacts() storedHashes { return storedHashes{h} }

type storedHashes struct{ h *Hall }

func (s storedHashes) WorkerHash(ctx context.Context, species string) (string, bool) {
	rec := selectWorker(s.h.reg, species)
	if rec == nil {
		return "", false
	}
	d, err := wcp.ParseDigest(rec.ArtifactHash)
	if err != nil {
		return "", false
	}
	store, err := s.h.artifacts()
	if err != nil {
		return "", false
	}
	got, err := store.Verify(d)
	if err != nil {
		return "", false
	}
	return got.Hex(), true
}

// RunRequest is one governed dispatch.
type RunRequest struct {
	Input   *wcp.RouteInput
	Payload []byte
	// Timeout, when positive, lowers the worker's time limit for this run.
	Timeout time.Duration
}

// RunResult is a dispatch's decision and, when the worker ran, its output.
type RunResult struct {
	Decision wcp.RouteDecision
	// Ran reports whether a worker was run (allowed and not a dry run).
	Ran      bool
	WorkerID string
	Export   string
	Output   []byte
	Events   []json.RawMessage // telemetry the worker emitted (hall_emit)
	Logs     []byte
	Duration time.Duration
	// Outcome is "ok", or the sandbox code of a failed run (LIMIT_TIMEOUT,
	// WORKER_TRAP, ...); Err carries the details.
	Outcome string
	Err     error
	Limits  sandbox.Limits
	// ReceiptID identifies the dispatch's evidence receipt.
	ReceiptID string
}

// Run decides a request and, when it is allowed and not a dry run,
// dispatches the selected worker in the sandbox. A denied decision is not
// an error; neither is a worker failure (see RunResult.Outcome). The error
// is for failures of the Hall itself.
func (h *Hall) Run(ctx context.Context, req RunRequest) (*RunResult, error) {
	if !h.Online() {
		return nil, ErrOffline
	}
	res := &RunResult{Decision: h.Decide(ctx, req.Input)}
	dec := &res.Decision
	if dec.Denied || dec.DryRun {
		return res, h.recordDecision(ctx, dec)
	}
	rec := selectWorker(h.reg, string(dec.SelectedWorkerSpeciesID))
	if rec == nil {
		return res, fmt.Errorf("no enrolled worker of species %s", dec.SelectedWorkerSpeciesID)
	}
	res.WorkerID = rec.WorkerID
	w, err := h.worker(ctx, rec)
	var te *artifact.TamperedError
	if errors.As(err, &te) {
		denyTampered(dec, te)
		h.log.Error("hall: stored module tampered", "worker_id", rec.WorkerID, "error", te)
		return res, h.recordDecision(ctx, dec)
	}
	if err != nil {
		return res, fmt.Errorf("loading worker %s: %w", rec.WorkerID, err)
	}
	// The decision is committed before anything runs: a Hall that cannot
	// record evidence does not dispatch.
	if err := h.recordDecision(ctx, dec); err != nil {
		return res, fmt.Errorf("%w; the worker was not run", err)
	}
	store, err := h.Ledger()
	if err != nil {
		return res, err
	}
	started := time.Now()
	res.Export = rec.Entrypoint(req.Input.CapabilityID)
	res.Ran = true
	out, err := w.Call(ctx, sandbox.Request{
		Export:   res.Export,
		Input:    req.Payload,
		Timeout:  req.Timeout,
		ReuseKey: req.Input.TenantID,
		Config: map[string]string{
			"wcp.correlation_id": req.Input.CorrelationID,
			"wcp.tenant_id":      req.Input.TenantID,
			"wcp.capability_id":  req.Input.CapabilityID,
			"wcp.env":            req.Input.Env,
			"wcp.data_label":     req.Input.DataLabel,
			"wcp.worker_id":      rec.WorkerID,
		},
	})
	if out != nil {
		res.Output, res.Logs, res.Duration, res.Limits, res.Events = out.Output, out.Logs, out.Duration, out.Limits, out.Events
	}
	res.Outcome = "ok"
	if err != nil {
		res.Err = err
		var se *sandbox.Error
		if errors.As(err, &se) {
			res.Outcome = se.Code
		} else {
			res.Outcome = "HALL_ERROR"
		}
		h.log.Warn("hall: worker failed", "worker_id", rec.WorkerID, "correlation_id", req.Input.CorrelationID, "outcome", res.Outcome, "error", err)
	}
	if len(res.Logs) > 0 {
		// Captured guest output (bounded by the log limit) joins the Hall's
		// log under the correlation id.
		h.log.Info("hall: worker log", "worker_id", rec.WorkerID, "correlation_id", req.Input.CorrelationID, "log", string(res.Logs))
	}
	if len(res.Events) > 0 {
		if err := store.RecordEvents(ctx, req.Input.CorrelationID, res.Events); err != nil {
			h.log.Error("hall: recording worker telemetry failed", "correlation_id", req.Input.CorrelationID, "error", err)
		}
	}
	r := receipt(res, rec, req.Payload, started)
	if err := store.Append(ctx, r); err != nil {
		res.Output = nil
		return res, fmt.Errorf("the worker ran but its evidence receipt could not be committed, so its output is withheld: %w", err)
	}
	res.ReceiptID = r.ReceiptID
	return res, nil
}

// denyTampered turns an allowed decision into DENY_WORKER_TAMPERED: the
// stored module no longer matches the digest it was enrolled under, so it
// must not run (reached when attestation is not required by the config,
// otherwise the decision itself is already denied).
func denyTampered(dec *wcp.RouteDecision, te *artifact.TamperedError) {
	species := string(dec.SelectedWorkerSpeciesID)
	dec.Denied = true
	dec.DenyReason = &wcp.DenyReason{
		Code:            wcp.DenyWorkerTampered,
		Message:         fmt.Sprintf("The stored module of %s no longer matches its enrolled artifact_hash %s; it was not run.", species, te.Want),
		WorkerSpeciesID: &species,
	}
	dec.SelectedWorkerSpeciesID = ""
	dec.WorkerAttestationChecked = true
	f := false
	dec.WorkerAttestationValid = &f
	dec.TelemetryEnvelopes = append(dec.TelemetryEnvelopes, wcp.Event{
		EventID: wcp.EvtTaskDenied, Timestamp: dec.Timestamp, CorrelationID: dec.CorrelationID,
		TenantID: dec.TenantID, CapabilityID: dec.CapabilityID, DenyCode: wcp.DenyWorkerTampered, DenyMessage: dec.DenyReason.Message, MatchedRuleID: dec.MatchedRuleID,
	})
}

// PoolStats is how many sandbox instances a loaded worker has ready.
type PoolStats struct {
	WorkerID string
	Fresh    int // pre-instantiated, never used
	Idle     int // kept for reuse by the same tenant
}

// Pools reports the instances ready for each worker loaded in this
// process, sorted by worker id.
func (h *Hall) Pools() []PoolStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]PoolStats, 0, len(h.workers))
	for id, lw := range h.workers {
		if lw.worker == nil {
			continue
		}
		fresh, idle := lw.worker.Pooled()
		out = append(out, PoolStats{WorkerID: id, Fresh: fresh, Idle: idle})
	}
	slices.SortFunc(out, func(a, b PoolStats) int { return strings.Compare(a.WorkerID, b.WorkerID) })
	return out
}

// Close releases the sandbox (compiled modules, pooled instances).
func (h *Hall) Close(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var errs []error
	for _, lw := range h.workers {
		if lw.worker != nil {
			errs = append(errs, lw.worker.Close(ctx))
		}
	}
	h.workers = nil
	if h.ownLedger && h.ledger != nil {
		errs = append(errs, h.ledger.Close())
		h.ledger = nil
	}
	if h.engine != nil {
		errs = append(errs, h.engine.Close(ctx))
		h.engine = nil
	}
	return errors.Join(errs...)
}
