package host

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/artifact"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/sandbox"
	"github.com/wcphall/hall/internal/tracing"
)

// Default ceilings of a dispatch (hall.json "limits" lowers or raises them).
const (
	DefaultTimeout     = 10 * time.Second
	DefaultMemoryMB    = 256
	DefaultInputBytes  = 16 << 20
	DefaultOutputBytes = 16 << 20
	DefaultLogBytes    = 64 << 10
	// DefaultStackMB is the call stack budget of a worker instance:
	// enough for encoding/json to decode ~2,000 levels of nesting in a
	// standard-Go guest (internal/sandbox TestGoGuestDeepRecursion).
	DefaultStackMB = 16
)

// maxLimits is the Hall's ceiling (and default) for every dispatch.
func (c Config) maxLimits() sandbox.Limits {
	l := sandbox.Limits{
		Timeout:     DefaultTimeout,
		MemoryBytes: DefaultMemoryMB << 20,
		InputBytes:  DefaultInputBytes,
		OutputBytes: DefaultOutputBytes,
		LogBytes:    DefaultLogBytes,
		StackBytes:  DefaultStackMB << 20,
	}
	if c.Limits.StackMB > 0 {
		l.StackBytes = uint64(c.Limits.StackMB) << 20
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

// sandboxPolicy maps a record's privilege envelope onto sandbox capabilities.
// Anything not declared is denied: no envelope means no files, no network
// and no secrets.
func sandboxPolicy(rec *wcp.Record) sandbox.Policy {
	p := sandbox.Policy{Deterministic: rec.Determinism == "full"}
	if e := rec.PrivilegeEnvelope; e != nil {
		p.Writes = cleanDirs(e.FilesystemWrites)
		p.Reads = cleanDirs(e.FilesystemReads)
		p.Egress = e.NetworkEgress.Hosts
		p.PropagateTrace = e.PropagateTraceContext
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

// artifacts is the artifact store: Options.Stores' Artifacts, else the
// artifact directory in Home (opened on first use).
func (h *Hall) artifacts() (ArtifactStore, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.store == nil {
		if st := h.opts.Stores; st != nil && st.Artifacts != nil {
			h.store = st.Artifacts
			return h.store, nil
		}
		s, err := OpenLocalArtifacts(h.opts.Home)
		if err != nil {
			return nil, err
		}
		h.store = s
	}
	return h.store, nil
}

// Guest log lines (Extism's log_info, log_warn…) pass Extism's own level
// filter before they reach RunResult.Logs and the Hall's log. That filter
// is process-wide (extism.SetLogLevel) and off by default, so the Hall, a
// library, leaves it to the program: the hall CLI raises it to info at
// start; an embedder that wants guest logs calls
// extism.SetLogLevel(extism.LogLevelInfo) once in main (see Run's notes).

func (h *Hall) sandboxEngine(ctx context.Context) (*sandbox.Engine, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.engine == nil {
		secrets := h.opts.Secrets
		if secrets == nil {
			secrets = sandbox.EnvSecrets{}
		}
		e, err := sandbox.New(ctx, sandbox.Config{
			// wazero's machine code: outside the state directory
			// (Options.CompilationCacheDir).
			CacheDir: h.compilationCacheDir(),
			// The Hall's derived wasm forms: in the state directory,
			// each entry authenticated under a key derived from the
			// evidence signing key; none without one.
			FormCacheDir: filepath.Join(h.opts.Home, "cache"),
			CacheKey:     h.formCacheKey(),
			Max:          h.snap.Load().max,
			Secrets:      secrets,
			Logger:       h.log,
			Compiler:     h.opts.Compiler,
			// Options.MemoryBudget, else hall.json's; 0: the sandbox's
			// default (half of physical memory).
			MemoryBudget: h.configuredBudget(),
			// Loaded workers themselves count against the same bound
			// (evictIdle).
			IdleMemory: h.idleMemory(),
		})
		if err != nil {
			return nil, err
		}
		h.engine, h.engineBudget = e, h.configuredBudget()
	}
	return h.engine, nil
}

// formCacheKeyPurpose separates the form cache's key from every other use
// of the signing key.
const formCacheKeyPurpose = "hall compiled-form cache v1"

// formCacheKey is the key that authenticates the sandbox's derived wasm
// forms in Home/cache: derived from the evidence signing key when the
// evidence store can derive one (the default ledger does), else nil (the
// forms are then rebuilt in every process). h.mu is held.
func (h *Hall) formCacheKey() []byte {
	if k, ok := h.ledger.(interface{ DerivedKey(purpose string) []byte }); ok {
		return k.DerivedKey(formCacheKeyPurpose)
	}
	return nil
}

// compilationCacheDir is Options.CompilationCacheDir, else "hall/wazero" in
// the user's cache directory, else "" (in memory only).
func (h *Hall) compilationCacheDir() string {
	if h.opts.CompilationCacheDir != "" {
		return h.opts.CompilationCacheDir
	}
	base, err := os.UserCacheDir()
	if err != nil {
		h.log.Info("no user cache directory: compiled machine code is kept in memory only (set Options.CompilationCacheDir)", "error", err)
		return ""
	}
	return filepath.Join(base, "hall", "wazero")
}

// workerKey names one compiled worker: a worker's sealed record and module.
// Re-enrolling a worker makes a new key; calls planned against the old one
// finish on the old module.
type workerKey struct {
	id           string
	recordDigest wcp.Digest
	module       wcp.Digest
}

// loadedWorker is a compiled module with the sandbox grant of its record.
// refs counts the calls using it; a worker no longer in the snapshot is
// closed when its last call returns.
type loadedWorker struct {
	worker  *sandbox.Worker
	refs    int
	retired bool
	// used orders idle workers for eviction (a counter of acquisitions,
	// guarded by Hall.mu).
	used uint64
}

// Eviction: between dispatches a loaded worker keeps its ready sandbox
// instances and its own state (its share of the compiled module, mounts,
// grant). The sandbox Engine bounds both by Options.IdleMemory, trimming
// the ready instances of the least recently called workers to make room
// for others; when the loaded workers alone fill it, the least recently
// dispatched idle ones are closed here, and a later dispatch loads them
// again (from the compiled module shared with workers of the same module
// when one is loaded, else from the compilation cache). Issue 12 measured
// 7.3 MiB per loaded worker, never released, before this.

func (h *Hall) idleMemory() uint64 {
	if h.opts.IdleMemory > 0 {
		return h.opts.IdleMemory
	}
	return sandbox.DefaultIdleMemory
}

// evictIdle closes the least recently dispatched idle workers while what
// the loaded workers keep exceeds IdleMemory (trimming the ready instances
// of those that have some first). Called with h.mu held; returns the
// workers to close and to trim once it is released.
func (h *Hall) evictIdle() (closeList, trimList []*loadedWorker) {
	if h.engine == nil {
		return nil, nil
	}
	budget := h.idleMemory()
	held := h.engine.IdleInUse()
	if held <= budget {
		return nil, nil
	}
	type cand struct {
		k  workerKey
		lw *loadedWorker
	}
	var idle []cand
	for k, lw := range h.loaded {
		if lw.refs == 0 {
			idle = append(idle, cand{k, lw})
		}
	}
	slices.SortFunc(idle, func(a, b cand) int { return cmp.Compare(a.lw.used, b.lw.used) })
	for _, c := range idle {
		if held <= budget {
			break
		}
		if r := c.lw.worker.ReadyBytes(); r > 0 {
			trimList = append(trimList, c.lw)
			held -= min(held, r)
			continue
		}
		delete(h.loaded, c.k)
		c.lw.retired = true
		held -= min(held, c.lw.worker.IdleBytes())
		closeList = append(closeList, c.lw)
		h.evicted++
	}
	return closeList, trimList
}

func closeWorkers(ctx context.Context, closeList, trimList []*loadedWorker) {
	for _, lw := range trimList {
		lw.worker.Trim()
	}
	for _, lw := range closeList {
		lw.worker.Close(context.WithoutCancel(ctx))
	}
}

// Plan is what an allowed decision binds a dispatch to: one concrete
// worker, its sealed record and module, the envelope and limits it runs
// under. Run executes exactly the plan of its decision.
type Plan struct {
	snap *snapshot
	w    *boundWorker
	// replayOf is the receipt a replay re-runs ("" for a run).
	replayOf string
}

// WorkerID is the worker that runs.
func (p *Plan) WorkerID() string { return p.w.rec.WorkerID }

// ArtifactHash is "sha256:<hex>" of the module that runs ("" for a
// routing-only record).
func (p *Plan) ArtifactHash() string {
	if !p.w.hasModule {
		return ""
	}
	return p.w.module.String()
}

// RecordDigest is "sha256:<hex>" of the sealed record in force.
func (p *Plan) RecordDigest() string { return p.w.recordDigest.String() }

// Envelope is the privilege envelope in force, canonical JSON ({} when
// the record declares none). The returned bytes are a copy.
func (p *Plan) Envelope() json.RawMessage { return bytes.Clone(p.w.envelope) }

// Limits are the limits the call runs under (the record's, capped by the
// Hall's ceilings).
func (p *Plan) Limits() sandbox.Limits { return p.w.limits }

// Export is the function called for capability.
func (p *Plan) Export(capability string) string { return p.w.rec.Entrypoint(capability) }

// guestRequest is the one way from a plan to a guest call: the export for
// in's capability, payload, and the config the guest reads (the record's
// config, hall.json's overrides, then the request's wcp.* keys).
func (p *Plan) guestRequest(in *wcp.RouteInput, payload []byte, timeout time.Duration) sandbox.Request {
	return sandbox.Request{
		Export:   p.Export(in.CapabilityID),
		Input:    payload,
		Timeout:  timeout,
		ReuseKey: in.TenantID,
		Config:   p.snap.pluginConfig(p.w, guestConfig(in.CorrelationID, in.TenantID, in.CapabilityID, in.Env, in.DataLabel, p.WorkerID())),
	}
}

func (p *Plan) key() workerKey {
	return workerKey{id: p.w.rec.WorkerID, recordDigest: p.w.recordDigest, module: p.w.module}
}

// loadedWorker takes a reference on the compiled worker of p, or returns
// nil when it is not loaded.
func (h *Hall) loadedWorker(p *Plan) (*loadedWorker, error) {
	k := p.key()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	lw := h.loaded[k]
	if lw != nil {
		lw.refs++
		h.uses++
		lw.used = h.uses
	}
	return lw, nil
}

// verifiedModule reads p's module from the artifact store and checks it
// against its digest (an *artifact.TamperedError when it no longer
// matches). No guest code runs.
func (h *Hall) verifiedModule(p *Plan) ([]byte, error) {
	if !p.w.hasModule {
		return nil, &codedError{wcp.CodeWorkerRoutingOnly, fmt.Sprintf("worker %s has no module (a routing-only record: it decides, it is never dispatched; nothing ran): enroll its module with hall enroll to dispatch it", p.w.rec.WorkerID)}
	}
	store, err := h.artifacts()
	if err != nil {
		return nil, err
	}
	return store.Get(context.Background(), p.w.module)
}

// loadModule compiles and instantiates p's verified module (running its
// start section under the worker's deadline) and takes a reference on it.
func (h *Hall) loadModule(ctx context.Context, p *Plan, module []byte) (*loadedWorker, error) {
	k := p.key()
	w, err := h.loadVerified(ctx, p.snap, p.w, module, k.module)
	if err != nil {
		return nil, err
	}
	return h.install(ctx, k, w, 1), nil
}

// install records a freshly compiled worker under k (or, when a concurrent
// load won, closes it and uses that one) with refs references.
func (h *Hall) install(ctx context.Context, k workerKey, w *sandbox.Worker, refs int) *loadedWorker {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		w.Close(ctx)
		return &loadedWorker{worker: w, retired: true, refs: refs}
	}
	if cur := h.loaded[k]; cur != nil {
		cur.refs += refs
		h.mu.Unlock()
		w.Close(ctx)
		return cur
	}
	h.uses++
	lw := &loadedWorker{worker: w, refs: refs, used: h.uses}
	if h.loaded == nil {
		h.loaded = map[workerKey]*loadedWorker{}
	}
	h.loaded[k] = lw
	// A worker loaded for a plan of an older snapshot is retired at once:
	// it serves that call and is closed after it.
	if s := h.snap.Load(); s != nil {
		if cur := s.workers[k.id]; cur == nil || (workerKey{k.id, cur.recordDigest, cur.module}) != k {
			lw.retired = true
			delete(h.loaded, k)
		}
	}
	closeList, trimList := h.evictIdle()
	h.mu.Unlock()
	closeWorkers(ctx, closeList, trimList)
	return lw
}

func (h *Hall) release(ctx context.Context, lw *loadedWorker) {
	h.mu.Lock()
	lw.refs--
	done := lw.retired && lw.refs == 0
	var closeList, trimList []*loadedWorker
	if lw.refs == 0 {
		closeList, trimList = h.evictIdle()
	}
	h.mu.Unlock()
	if done {
		lw.worker.Close(context.WithoutCancel(ctx))
	}
	closeWorkers(ctx, closeList, trimList)
}

// retire closes the compiled workers the snapshot s no longer plans for,
// once their in-flight calls have returned. Called with changeMu held,
// after s was installed.
func (h *Hall) retire(ctx context.Context, s *snapshot) {
	var idle []*loadedWorker
	h.mu.Lock()
	for k, lw := range h.loaded {
		if cur := s.workers[k.id]; cur != nil && (workerKey{k.id, cur.recordDigest, cur.module}) == k {
			continue
		}
		delete(h.loaded, k)
		lw.retired = true
		if lw.refs == 0 {
			idle = append(idle, lw)
		}
	}
	h.mu.Unlock()
	for _, lw := range idle {
		lw.worker.Close(context.WithoutCancel(ctx))
	}
}

func (h *Hall) load(ctx context.Context, s *snapshot, w *boundWorker, module []byte) (*sandbox.Worker, error) {
	return h.loadVerified(ctx, s, w, module, wcp.Digest{})
}

// loadVerified is load of a module the artifact store verified against
// digest (the zero digest: not verified, the sandbox hashes it).
func (h *Hall) loadVerified(ctx context.Context, s *snapshot, w *boundWorker, module []byte, digest wcp.Digest) (*sandbox.Worker, error) {
	eng, err := h.sandboxEngine(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range w.policy.Writes {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("privilege_envelope.filesystem_writes: cannot create %s: %w", d, err)
		}
	}
	ws := s.cfg.Workers[w.rec.WorkerID]
	pool := h.opts.Pool
	if ws.Pool != 0 {
		pool = ws.Pool
	}
	return eng.Load(ctx, module, sandbox.Spec{Name: w.rec.WorkerID, Policy: w.policy, Limits: w.limits, Pool: pool, Reuse: ws.ReuseInstances, Digest: digest})
}

// RunRequest is one governed dispatch.
type RunRequest struct {
	Input   *wcp.RouteInput
	Payload []byte
	// Timeout, when positive, lowers the worker's time limit for this run.
	Timeout time.Duration
	// ApprovalID presents a human approval (WCP §5.8) of exactly this
	// request, payload and plan, granted under the snapshot in force:
	// "apr_" and 32 lowercase hex digits (anything else: a *RequestError,
	// nothing decided). The run uses it up when its decision is recorded,
	// after admission (docs/POLICY.md).
	ApprovalID string

	// replay, set by Hall.Replay, makes the dispatch a replay of a
	// receipt: decided and run as a run, bound to the receipt's worker,
	// record and module, receipted with replay_of.
	replay *replaySpec
}

// RunResult is a dispatch's decision and, when the worker ran, its output.
type RunResult struct {
	Decision wcp.RouteDecision
	// Plan is what the allowed decision bound the dispatch to (nil when
	// denied).
	Plan *Plan
	// Ran reports whether a worker was run (allowed and not a dry run).
	Ran      bool
	WorkerID string
	Export   string
	Output   []byte
	Events   []json.RawMessage // telemetry the worker emitted (hall_emit)
	Logs     []byte
	Duration time.Duration
	// Outcome is "ok", or the code of a failed run (LIMIT_TIMEOUT,
	// WORKER_TRAP, CANCELLED, ...); Err carries the details.
	Outcome string
	Err     error
	Limits  sandbox.Limits
	// QueueWait is how long the dispatch waited for its dispatch slot
	// (admission.go) and for cores (cores.go).
	QueueWait time.Duration
	// ReceiptID identifies the dispatch's evidence receipt.
	ReceiptID string
	// TraceID is the W3C trace id (32 hex digits) of the dispatch's span
	// when tracing is on (Options.TracerProvider) and the span is sampled,
	// else "". The receipt records it (trace_id), so a trace leads to its
	// evidence and the evidence to its trace.
	TraceID string

	// chain is the dispatch's place in its chain (chain.go); nil when it
	// was not run.
	chain *frame
}

// evidenceTimeout bounds an evidence write that no longer follows the
// caller's cancellation.
const evidenceTimeout = 30 * time.Second

// evidenceContext detaches evidence writes from the caller: a dispatch
// whose caller gave up is still recorded, within its own bound.
func evidenceContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), evidenceTimeout)
}

// Run decides a request and, when it is allowed and not a dry run,
// dispatches the worker the decision bound in the sandbox. A denied
// decision is not an error; neither is a worker failure (see
// RunResult.Outcome). The error is for failures of the Hall itself.
//
// # Notes
//
//   - The decision, the grant and the receipt come from one snapshot: a
//     concurrent enrollment does not change what this call runs.
//   - Evidence is written on a context detached from ctx: a caller that
//     cancels mid-call gets outcome CANCELLED, and the receipt says so.
//   - Once Close has begun, Run returns ErrClosed (HALL_CLOSED), and so
//     does a Run that was still waiting for a dispatch slot; a dispatch
//     already running is waited for, or cancelled and recorded CANCELLED
//     when Close's bound ends (Options.ShutdownGrace).
//   - RunResult.Logs holds the guest's log_* lines only when the program
//     has raised Extism's process-wide log level, which is off by
//     default: call extism.SetLogLevel(extism.LogLevelInfo) once at start
//     (the hall CLI does). The Hall never changes it.
func (h *Hall) Run(ctx context.Context, req RunRequest) (*RunResult, error) {
	// Under the Hall's own span of the request (POST /wcp/run, an MCP
	// tools/call), the run's attributes go on that span; otherwise (hall
	// run, an embedder) the run is a "hall.run" span of its own.
	var span trace.Span = noop.Span{}
	var adopted *tracing.Adopted
	if h.tracer != nil {
		if a, ok := tracing.RunSpan(ctx); ok {
			adopted, span = a, a.Span
		} else {
			ctx, span = h.startSpan(ctx, "hall.run")
		}
	}
	if span.IsRecording() && req.ApprovalID != "" {
		// The call a human approval resumes links to the call that was
		// held for it, when this process held it.
		span.SetAttributes(tracing.ApprovalID.String(req.ApprovalID))
		if sc, ok := h.held.get(req.ApprovalID); ok {
			span.AddLink(trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{attribute.String("hall.link", "approval_held")}})
		}
	}
	res, err := h.runRoot(ctx, req)
	endRun(span, res, err, adopted)
	return res, err
}

// runRoot is Run without its span: a root dispatch.
func (h *Hall) runRoot(ctx context.Context, req RunRequest) (*RunResult, error) {
	ctx, exit, ok := h.life.enter(ctx)
	if !ok {
		return nil, ErrClosed
	}
	defer exit()
	if !h.Online() {
		return nil, ErrOffline
	}
	if err := checkRunRequest(&req); err != nil {
		return nil, err
	}
	return h.run(ctx, req, nil)
}

// run is Run of a root dispatch (parent nil) or of a hop of parent's
// chain (chain.go): one path decides, runs and records both.
func (h *Hall) run(ctx context.Context, req RunRequest, parent *frame) (*RunResult, error) {
	ctx = runContext(ctx, &req)
	dec, plan, snap := h.planFor(ctx, req.Input, req.replay)
	res := &RunResult{Decision: dec, Plan: plan}
	if h.tracer != nil {
		res.TraceID = tracing.TraceID(ctx)
	}
	var fr *frame
	if parent != nil {
		res.Decision.Chain = &wcp.ChainRef{ParentDecisionID: parent.decisionID, Depth: parent.depth + 1}
	}
	if !res.Decision.Denied && !res.Decision.DryRun {
		blast := workerBlast(req.Input, plan.w.rec)
		c := &chain{cfg: snap.cfg.Chain, snap: snap}
		if parent != nil {
			c = parent.chain
		}
		c.mu.Lock()
		threshold := c.cfg.BlastThreshold(c.snap.envOf(parent, req.Input), c.snap.labelOf(parent, req.Input))
		if parent != nil && c.blast+blast > threshold {
			sum := c.blast
			c.mu.Unlock()
			denyChainBlast(&res.Decision, sum, blast, threshold)
			res.Plan, plan = nil, nil
		} else {
			c.blast += blast
			c.mu.Unlock()
			fr = newFrame(c, parent, &res.Decision, req.Input, plan, blast)
			res.chain = fr
		}
	}
	if res.Decision.Denied || res.Decision.DryRun {
		if parent == nil {
			// A hop holds no approval: it cannot present one (chain.go).
			if err := h.holdForApproval(ctx, &res.Decision); err != nil {
				var qe *QuotaError
				if errors.As(err, &qe) {
					// The refusal is a decision like any other: recorded.
					if rerr := h.recordDecision(ctx, snap, &res.Decision); rerr != nil {
						return res, rerr
					}
				}
				return res, err
			}
		}
		return res, h.recordDecision(ctx, snap, &res.Decision)
	}
	res.WorkerID = plan.WorkerID()
	lw, err := h.loadedWorker(plan)
	if err != nil {
		return res, err
	}
	var module []byte
	if lw == nil {
		module, err = h.verifiedModule(plan)
		var te *artifact.TamperedError
		if errors.As(err, &te) {
			denyTampered(&res.Decision, fmt.Sprintf("The stored module of %s no longer matches its enrolled artifact_hash %s; it was not run.", res.WorkerID, te.Want))
			res.Plan = nil
			h.log.ErrorContext(ctx, "hall: stored module tampered", "worker_id", res.WorkerID, "error", te)
			return res, h.recordDecision(ctx, snap, &res.Decision)
		}
		if err != nil {
			return res, fmt.Errorf("loading worker %s: %w", res.WorkerID, err)
		}
	} else {
		defer h.release(ctx, lw)
	}
	// A fair dispatch slot (admission.go), waited for within the worker's
	// time limit; refused, nothing ran and nothing is recorded.
	wait := plan.Limits().Timeout
	if req.Timeout > 0 && (wait <= 0 || req.Timeout < wait) {
		wait = req.Timeout
	}
	if wait <= 0 {
		wait = DefaultTimeout
	}
	if parent == nil {
		// A hop runs on its root's slot (chain.go): it never waits for
		// one its ancestors hold.
		actx, cancelWait := context.WithTimeout(ctx, wait)
		slotWait := time.Now()
		releaseSlot, queued, err := h.admission.acquireQueued(actx, req.Input.TenantID)
		if (queued || err != nil) && h.tracer != nil {
			// The wait for a slot is a span when there was one: a
			// dispatch admitted at once makes none (a sixth of what
			// tracing a dispatch costs, for a span of no length).
			admissionSpan(ctx, h.tracer, slotWait, err)
		}
		cancelWait()
		if err != nil {
			return res, err
		}
		res.QueueWait = time.Since(slotWait)
		defer releaseSlot()
	}
	defer h.active.add(&res.Decision, res.WorkerID)()
	// The dispatch's claim on the cores (cores.go): from here its tenant
	// counts as active, so other tenants are held to their share. A hop's
	// parent gives its core back while it waits in hall_invoke.
	claim := h.coreClaim(snap, req.Input.TenantID)
	defer claim.Done()
	if h.life.closing() {
		// Close began while this dispatch waited for its slot: it is not
		// admitted (nothing ran, nothing is recorded).
		return res, ErrClosed
	}
	if err := h.checkFreeSpace(); err != nil {
		return res, err
	}
	store, err := h.evidenceStore()
	if err != nil {
		return res, err
	}
	// The decision is committed before any guest code runs (loading runs
	// the module's start section): a Hall that cannot record evidence does
	// not dispatch. A worker whose envelope grants it no way to act
	// outside the sandbox (no writable path, no network, no secret) cannot
	// leave an effect without evidence, so its decision commits with its
	// receipt, in one transaction after the call (RATIONALE.md of
	// internal/ledger, "Durability contract of a dispatch"); the output is
	// still withheld unless both commit.
	in := req.Input
	recorder, oneCommit := store.(dispatchRecorder)
	// A run allowed by a human approval uses it up in the transaction
	// that records its decision, before the worker runs (approvals.go).
	call := runCallFrom(ctx)
	// A dispatch that may make hops commits its decision first: its
	// hops' decisions name it as their parent.
	oneCommit = oneCommit && plan.w.contained() && call.use == nil && len(fr.tools) == 0
	switch {
	case call.use != nil:
		ran, err := h.recordDecisionUsing(ctx, snap, &res.Decision, call)
		if err != nil || !ran {
			res.Plan, res.WorkerID = nil, ""
			return res, err
		}
	case !oneCommit:
		if err := h.recordDecision(ctx, snap, &res.Decision); err != nil {
			return res, fmt.Errorf("%w; the worker was not run", err)
		}
	}
	started := time.Now()
	finish := func(ctx context.Context) error {
		if oneCommit {
			return h.recordDispatch(ctx, recorder, res, plan, req.Payload, started)
		}
		if len(res.Events) > 0 {
			if err := recordWorkerEvents(ctx, store, res.Decision.DecisionID.String(), in.CorrelationID, res.Events); err != nil {
				h.log.Error("hall: recording worker telemetry failed", "correlation_id", in.CorrelationID, "error", err)
			}
		}
		return h.appendReceipt(ctx, store, res, plan, req.Payload, started)
	}
	res.Export = plan.Export(in.CapabilityID)
	if lw == nil {
		lw, err = h.loadModule(ctx, plan, module)
		var se *sandbox.Error
		if err != nil && (errors.As(err, &se) || ctx.Err() != nil) {
			// The module failed at instantiation (its start section ran out
			// of time or memory, or trapped), or the caller gave up while it
			// loaded: guest code may have run, so the dispatch has a
			// receipt with that outcome.
			res.Ran, res.Err, res.Limits, res.Duration = true, err, plan.Limits(), time.Since(started)
			switch {
			case ctx.Err() != nil:
				res.Outcome = outcomeCancelled
			default:
				res.Outcome = se.Code
			}
			h.log.WarnContext(ctx, "hall: worker failed at instantiation", "worker_id", res.WorkerID, "correlation_id", in.CorrelationID, "outcome", res.Outcome, "error", err)
			return res, finish(ctx)
		}
		if err != nil {
			err = fmt.Errorf("loading worker %s: %w", res.WorkerID, err)
			if oneCommit {
				// No guest code ran; the decision is still evidence.
				if rerr := h.recordDecision(ctx, snap, &res.Decision); rerr != nil {
					err = errors.Join(err, rerr)
				}
			}
			return res, err
		}
		defer h.release(ctx, lw)
	}
	res.Ran = true
	cctx, cspan := h.startSpan(ctx, "hall.sandbox.call")
	greq := plan.guestRequest(in, req.Payload, req.Timeout)
	greq.Tracer = h.tracer
	greq.CPU = claim
	if plan.replayOf == "" {
		greq.Invoke = h.invoker(fr)
	}
	greq.Hop = parent != nil
	out, err := lw.worker.Call(cctx, greq)
	res.QueueWait += claim.Waited()
	if out != nil {
		res.Output, res.Logs, res.Duration, res.Limits, res.Events = out.Output, out.Logs, out.Duration, out.Limits, out.Events
	}
	if cspan.IsRecording() {
		sandboxAttributes(cspan, plan, out, err)
	}
	cspan.End()
	res.Outcome = "ok"
	if err != nil {
		res.Err = err
		var se *sandbox.Error
		switch {
		case ctx.Err() != nil:
			res.Outcome = outcomeCancelled
			res.Output = nil
		case errors.As(err, &se):
			res.Outcome = se.Code
		default:
			res.Outcome = outcomeHallError
		}
		h.log.WarnContext(ctx, "hall: worker failed", "worker_id", res.WorkerID, "correlation_id", in.CorrelationID, "outcome", res.Outcome, "error", err)
	}
	if res.Limits == (sandbox.Limits{}) {
		res.Limits = plan.Limits()
	}
	if out != nil && len(out.Stdio) > 0 {
		// The guest's stdout and stderr (bounded by the log limit) join the
		// Hall's log under the correlation id; its Extism log lines are
		// there already, one by one at their levels (sandbox guestLog).
		h.log.InfoContext(ctx, "hall: worker output", "worker_id", res.WorkerID, "correlation_id", in.CorrelationID, "output", string(out.Stdio))
	}
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	return res, finish(ectx)
}

// appendReceipt commits the receipt of a dispatch that ran, on a context
// detached from the caller; without it the output is withheld.
func (h *Hall) appendReceipt(ctx context.Context, store ledger.Store, res *RunResult, plan *Plan, payload []byte, started time.Time) error {
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	ectx, span := h.startSpan(ectx, "hall.evidence.commit")
	r := receipt(res, plan, payload, started)
	err := store.Append(ectx, r)
	endCommit(span, r.ReceiptID, err)
	if err != nil {
		res.Output = nil
		return fmt.Errorf("the worker ran but its evidence receipt could not be committed, so its output is withheld: %w", err)
	}
	res.ReceiptID = r.ReceiptID
	res.chain.receipted()
	return nil
}

// Outcomes of a dispatch that are not sandbox codes.
const (
	outcomeCancelled = string(wcp.CodeCancelled)
	outcomeHallError = string(wcp.CodeHallError)
)

// guestConfig is the Extism config a worker sees: the request's WCP
// context under reserved wcp.* keys.
func guestConfig(correlation, tenant, capability, env, label, worker string) map[string]string {
	m := map[string]string{
		"wcp.correlation_id": correlation,
		"wcp.tenant_id":      tenant,
		"wcp.capability_id":  capability,
		"wcp.worker_id":      worker,
	}
	if env != "" {
		m["wcp.env"] = env
	}
	if label != "" {
		m["wcp.data_label"] = label
	}
	return m
}

// denyTampered turns an allowed decision into DENY_WORKER_TAMPERED: the
// worker's record or stored module no longer matches what was enrolled,
// so it must not run.
func denyTampered(dec *wcp.RouteDecision, msg string) {
	species := string(dec.SelectedWorkerSpeciesID)
	dec.Denied = true
	dec.DenyReason = &wcp.DenyReason{Code: wcp.DenyWorkerTampered, Message: msg, WorkerSpeciesID: &species}
	dec.SelectedWorkerSpeciesID = ""
	dec.ArtifactHash = ""
	dec.WorkerAttestationChecked = true
	f := false
	dec.WorkerAttestationValid = &f
	dec.TelemetryEnvelopes = append(dec.TelemetryEnvelopes, wcp.Event{
		EventID: wcp.EvtTaskDenied, Timestamp: dec.Timestamp, CorrelationID: dec.CorrelationID,
		TenantID: dec.TenantID, CapabilityID: dec.CapabilityID, DenyCode: wcp.DenyWorkerTampered, DenyMessage: msg, MatchedRuleID: dec.MatchedRuleID,
	})
}

// denyInternal turns an allowed decision whose worker cannot be bound into
// DENY_INTERNAL_ERROR (fail closed).
func denyInternal(dec *wcp.RouteDecision) {
	msg := "The Hall could not bind the decision to an enrolled worker; nothing was dispatched."
	dec.Denied = true
	dec.DenyReason = &wcp.DenyReason{Code: wcp.DenyInternalError, Message: msg}
	dec.SelectedWorkerSpeciesID = ""
	dec.ArtifactHash = ""
	dec.TelemetryEnvelopes = append(dec.TelemetryEnvelopes, wcp.Event{
		EventID: wcp.EvtTaskDenied, Timestamp: dec.Timestamp, CorrelationID: dec.CorrelationID,
		TenantID: dec.TenantID, CapabilityID: dec.CapabilityID, DenyCode: wcp.DenyInternalError, DenyMessage: msg, MatchedRuleID: dec.MatchedRuleID,
	})
}

// PoolStats is how many sandbox instances a loaded worker has ready.
type PoolStats struct {
	WorkerID string
	Fresh    int // pre-instantiated, never used
	Idle     int // kept for reuse by the same tenant
	// MemoryBytes is what the worker keeps between dispatches: its ready
	// instances and its own loaded state (see Options.IdleMemory).
	MemoryBytes uint64
}

// LoadStats is what loaded workers hold between dispatches.
type LoadStats struct {
	// Loaded is how many workers are loaded in this process.
	Loaded int
	// SharedModules is how many compiled modules they share (one per
	// distinct module and memory limit).
	SharedModules int
	// IdleBytes is what they keep between dispatches (ready instances and
	// their own state), bounded by Options.IdleMemory.
	IdleBytes uint64
	// Evicted counts idle workers closed to stay within IdleMemory.
	Evicted uint64
}

// Loads reports the loaded workers' footprint.
func (h *Hall) Loads() LoadStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := LoadStats{Loaded: len(h.loaded), Evicted: h.evicted}
	if h.engine != nil {
		st.SharedModules = h.engine.SharedModules()
		st.IdleBytes = h.engine.IdleInUse()
	}
	return st
}

// Pools reports the instances ready for each worker loaded in this
// process, sorted by worker id.
func (h *Hall) Pools() []PoolStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]PoolStats, 0, len(h.loaded))
	for k, lw := range h.loaded {
		fresh, idle := lw.worker.Pooled()
		out = append(out, PoolStats{WorkerID: k.id, Fresh: fresh, Idle: idle, MemoryBytes: lw.worker.IdleBytes()})
	}
	slices.SortFunc(out, func(a, b PoolStats) int { return strings.Compare(a.WorkerID, b.WorkerID) })
	return out
}

// isClosed reports whether Close has released the Hall's resources.
func (h *Hall) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// Close shuts the Hall down: it stops admitting, waits for the calls in
// flight and their evidence (as Shutdown, which it calls), then releases
// the sandbox (compiled modules, pooled instances) and closes the
// evidence ledger the Hall opened.
//
// # Notes
//
//   - From the moment Close is called, Run, Route, RouteJSON, Replay, Enroll
//     and EnrollStored return ErrClosed (HALL_CLOSED) and Decide denies; a
//     Run still waiting for a dispatch slot is refused, with nothing
//     recorded.
//   - Dispatches already running are waited for, with their receipts, for
//     at most Options.ShutdownGrace (DefaultShutdownGrace) and until ctx
//     is done. Those still running then are cancelled and recorded with
//     outcome CANCELLED before the ledger closes (each receipt within the
//     evidence write bound of 30 s).
//   - Close is final: later calls return ErrClosed. A second Close waits
//     for the first and returns its result.
func (h *Hall) Close(ctx context.Context) error {
	derr := h.Shutdown(ctx)
	first, released := h.life.beginRelease()
	if !first {
		<-released // bounded: the first Close has drained already
		return h.life.releaseResult()
	}
	errs := []error{derr}
	rctx := context.WithoutCancel(ctx)
	h.mu.Lock()
	h.closed = true
	loaded, eng, store, own := h.loaded, h.engine, h.ledger, h.ownLedger
	h.loaded = nil
	h.mu.Unlock()
	for _, lw := range loaded {
		errs = append(errs, lw.worker.Close(rctx))
	}
	if eng != nil {
		errs = append(errs, eng.Close(rctx))
	}
	if own && store != nil {
		errs = append(errs, store.Close())
	}
	err := errors.Join(errs...)
	h.life.finishRelease(err)
	return err
}

// recordWorkerEvents files a worker's telemetry under the decision it
// served, so that it lands in that decision's tenant chain even when
// another tenant used the same correlation id (stores without that
// ability file it by correlation id).
func recordWorkerEvents(ctx context.Context, store ledger.Store, decisionID, correlationID string, events []json.RawMessage) error {
	if s, ok := store.(interface {
		RecordDecisionEvents(ctx context.Context, decisionID, correlationID string, events []json.RawMessage) error
	}); ok {
		return s.RecordDecisionEvents(ctx, decisionID, correlationID, events)
	}
	return store.RecordEvents(ctx, correlationID, events)
}

// MemoryBudget is the configured Hall-wide memory budget in bytes
// (Options.MemoryBudget, else hall.json's limits.memory_budget_mb); 0 when
// neither sets it and the sandbox's default (half of physical memory)
// applies.
func (h *Hall) MemoryBudget() uint64 { return h.memoryBudget() }

func (h *Hall) memoryBudget() uint64 {
	h.mu.Lock()
	engine, budget := h.engine, h.engineBudget
	h.mu.Unlock()
	if engine != nil {
		return budget // the one in force: a reload does not change it
	}
	return h.configuredBudget()
}

func (h *Hall) configuredBudget() uint64 {
	if h.opts.MemoryBudget > 0 {
		return h.opts.MemoryBudget
	}
	return uint64(max(h.snap.Load().cfg.Limits.MemoryBudgetMB, 0)) << 20
}

// Admission returns the state of the dispatch slots (admission.go).
func (h *Hall) Admission() AdmissionStats { return h.admission.stats() }
