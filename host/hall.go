package host

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/cpushare"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/router"
	"github.com/wcphall/hall/internal/sandbox"
	"github.com/wcphall/hall/internal/tracing"
)

// Options say where a Hall's files are. Relative paths are relative to Dir.
type Options struct {
	// Dir is the working directory (default ".").
	Dir string
	// Rules is the rules file (default "rules.json", as PyHall).
	Rules string
	// RegistryDir is the enrolled records directory (default "enrolled").
	RegistryDir string
	// Home is the state directory (default ".hall" in Dir, created or
	// tightened to mode 0700 by Open; a relative path is in Dir). The
	// environment is not read here: the hall CLI's --home flag defaults
	// to $HALL_HOME, else ".hall".
	Home string
	// ConfigFile is the Hall configuration (default "hall.json" in Dir if
	// it exists), applied over the strict defaults of DefaultConfig.
	ConfigFile string
	// MissingRulesOK opens a Hall whose rules file does not exist yet with
	// no rules (every request is denied DENY_NO_MATCHING_RULE), for
	// enrollment into a fresh directory. Otherwise a missing rules file is
	// an error.
	MissingRulesOK bool
	// Gate is the policy gate for rules that set escalation.policy_gate
	// (default none: such rules are denied DENY_POLICY_GATE_UNCONFIGURED).
	Gate router.PolicyGate
	// Logger receives the Hall's operational log (default: discarded).
	Logger *slog.Logger
	// Secrets is where hall_secret values come from (default: environment
	// variables HALL_SECRET_<NAME>).
	Secrets sandbox.SecretSource
	// Stores is where the Hall keeps its evidence and modules (see
	// Stores). Nil, or a nil part: the local default in Home (the SQLite
	// ledger, opened by Open; the artifact directory, on first use). Parts
	// given here are the caller's to close; KeyFile, KeyFD, Checkpoints
	// and StorePayloads (and hall.json's store_payloads) apply to the
	// default ledger only: a given Evidence store was opened with its own.
	Stores *Stores
	// Pool is how many pre-instantiated instances each worker keeps ready
	// (0: the sandbox default of 2; negative: none, for one-shot processes
	// such as `hall run`, where a background refill only competes with the
	// call).
	Pool int
	// IdleMemory bounds what loaded workers keep between dispatches: their
	// ready sandbox instances (sandbox.Config.IdleMemory) and the loaded
	// workers themselves, the least recently dispatched giving way first
	// (0: sandbox.DefaultIdleMemory). See host/dispatch.go, "eviction".
	IdleMemory uint64
	// StorePayloads keeps dispatch inputs and outputs in the ledger (by
	// default only their hashes are recorded).
	StorePayloads bool
	// CompilationCacheDir is where wazero keeps the machine code it
	// compiles, so that a fresh process loads a known module without
	// compiling it again (default: "hall/wazero" in os.UserCacheDir; in
	// memory only when there is none). It is deliberately not in Home:
	// its entries are native code the Hall executes, checked by a CRC32
	// only, so whoever can write this directory can run code in the Hall's
	// process. Give a directory only the Hall's user can write (it is
	// refused if group or others can). See docs/SECURITY.md.
	CompilationCacheDir string
	// Compiler compiles modules off the serving path, bounded in time and
	// memory (sandbox.CompileCommand: a child process); nil compiles in
	// process, bounded only by the module size cap (docs/SECURITY.md).
	Compiler sandbox.Compiler
	// MinFreeDisk is the free space, in bytes, the state directory's file
	// system must keep for a dispatch to start (HALL_DISK_LOW below it;
	// 0: DefaultMinFreeDisk; negative: no floor).
	MinFreeDisk int64
	// Policies is the policy file (default "policy.json" in Dir when it
	// exists; none: PyHall's behaviour). See docs/POLICY.md.
	Policies string
	// KeyFile is the evidence signing key's path (default
	// Home/keys/ed25519.key): keep it outside the state directory so that
	// whoever can rewrite the database cannot also re-sign it.
	KeyFile string
	// KeyFD, when set, is read once at Open for the signing key instead of
	// KeyFile (a descriptor the Hall was started with, os.NewFile(3, …)),
	// with the same permission check. Such a key cannot be rotated here.
	KeyFD *os.File
	// Checkpoints says when the ledger signs checkpoints of every chain and
	// where it writes them (a witness directory outside Home); default:
	// only on demand (hall audit checkpoint). See docs/EVIDENCE.md.
	Checkpoints ledger.CheckpointPolicy
	// MemoryBudget is the host memory, in bytes, all concurrent dispatches
	// may take together (sandbox.Config.MemoryBudget); it wins over
	// hall.json's limits.memory_budget_mb. 0: that, else half of physical
	// memory. At least MinMemoryBudgetMB MiB.
	MemoryBudget uint64
	// MaxConcurrent is the number of dispatch slots: dispatches running
	// guest code at once, admitted fairly between tenants (admission.go;
	// 0: DefaultMaxConcurrent()).
	MaxConcurrent int
	// TenantShare is the share of the slots one tenant may hold while
	// another tenant holds or waits for one, in (0, 1] (0:
	// DefaultTenantShare; 1: no cap).
	TenantShare float64
	// ShutdownGrace bounds how long Close waits for dispatches in flight
	// to finish on their own (0: DefaultShutdownGrace; negative: not at
	// all). Past it they are cancelled, and recorded CANCELLED, before
	// the ledger closes. See Hall.Close.
	ShutdownGrace time.Duration
	// TracerProvider, when set, turns tracing on: the Hall's spans
	// (docs/OBSERVABILITY.md) come from it, and host/server and host/mcp
	// start theirs from it too. Nil (the default): no spans, no cost. The
	// Hall never sets OpenTelemetry's process-wide provider or propagator;
	// it reads and writes W3C trace context only.
	TracerProvider trace.TracerProvider
}

// MinMemoryBudgetMB is the smallest memory budget the Hall accepts: above
// the charge of the smallest possible call (internal/sandbox budget.go
// callCharge: two 1 MiB linear memories, four times a 1 MiB stack budget
// and 8 MiB of engine overhead, about 14.3 MiB). A budget below it could
// admit no call at all; one below a given worker's charge refuses that
// worker with LIMIT_MEMORY when it loads, naming both.
const MinMemoryBudgetMB = 16

// Config is the Hall configuration file (hall.json): PyHall's HallConfig
// fields at the top level, plus the Hall's own settings.
type Config struct {
	wcp.HallConfig
	// EgressAllowlist maps an env to the network destinations privilege
	// envelopes may name in it (PyHall's set_egress_allowlist).
	EgressAllowlist map[string][]string `json:"egress_allowlist,omitempty"`
	// Limits are the Hall's ceilings on every dispatch, and the defaults
	// for workers whose record declares none.
	Limits LimitsConfig `json:"limits,omitzero"`
	// StorePayloads keeps dispatch inputs and outputs in the evidence
	// ledger, inside the signed receipts (by default only their hashes).
	StorePayloads bool `json:"store_payloads,omitempty"`
	// Workers holds per-worker dispatch settings, by worker id.
	Workers map[string]WorkerSettings `json:"workers,omitempty"`
	// AllowUnknownRecordFields accepts registry records with members the
	// record schema does not know, as PyHall does (by default a misspelt
	// field such as risk_teir is refused, naming the closest known one).
	AllowUnknownRecordFields bool `json:"allow_unknown_record_fields,omitempty"`
	// DefaultTenant is the tenant_id the hall CLI uses when neither
	// --tenant nor HALL_TENANT names one (the CLI's own default: "local").
	DefaultTenant string `json:"default_tenant,omitempty"`
	// Quotas bound what callers create that bears on decisions
	// (quotas.go).
	Quotas QuotasConfig `json:"quotas,omitzero"`
	// ApprovalPayload says what a pending approval keeps of the dispatch
	// payload for its approver (approval_view.go).
	ApprovalPayload ApprovalPayloadConfig `json:"approval_payload,omitzero"`
	// HTTP configures the HTTP API (host/server). It changes nothing that
	// is decided or run; like every hall.json member it is part of the
	// sealed snapshot, so that who may call the API from a browser is
	// recorded evidence too (docs/PYHALL.md, "CORS").
	HTTP HTTPConfig `json:"http,omitzero"`
	// Chain bounds governed pipelines: the sub-dispatches workers make
	// through hall_invoke (chain.go, docs/ABI.md).
	Chain ChainConfig `json:"chain,omitzero"`
	// Policy bounds the evaluation of the policy file (docs/POLICY.md,
	// "Cost").
	Policy PolicyConfig `json:"policy,omitzero"`
	// Tenants holds per-tenant settings, by tenant id (cores.go).
	Tenants map[string]TenantSettings `json:"tenants,omitempty"`
}

// HTTPConfig configures the HTTP API.
type HTTPConfig struct {
	// CORSOrigins are the browser origins ("https://dash.example.com",
	// scheme://host[:port]) whose pages may call the API across origins,
	// or "*" for any origin (then never with credentials). None by
	// default: no cross-origin call is allowed.
	CORSOrigins []string `json:"cors_origins,omitempty"`
}

// TenantSettings tune how one tenant shares the Hall.
type TenantSettings struct {
	// Weight is the tenant's share of the cores relative to the others
	// while they compete (0: 1; at most MaxTenantWeight): a tenant of
	// weight 2 gets twice the CPU of a tenant of weight 1 (cores.go).
	Weight int `json:"weight,omitempty"`
}

// MaxTenantWeight is the largest tenants.<id>.weight.
const MaxTenantWeight = 1000

// PolicyConfig is the "policy" block of hall.json.
type PolicyConfig struct {
	// CostLimit is the CEL cost one evaluation of the policy set may spend
	// (0: policy.DefaultCostLimit, one million); past it the request is
	// denied with DENY_POLICY_COST_EXCEEDED.
	CostLimit uint64 `json:"cost_limit,omitempty"`
}

// MaxPolicyCostLimit is the largest policy.cost_limit hall.json may set:
// some minutes of one core, already far past any useful policy.
const MaxPolicyCostLimit = 1_000_000_000

// WorkerSettings tune how one worker is dispatched.
type WorkerSettings struct {
	// ReuseInstances lets an instance serve further calls of the same
	// tenant instead of a fresh instance per call: faster, but state a call
	// leaves in the instance's memory is visible to the next call of that
	// tenant. Never across tenants, never after a trap or a limit.
	ReuseInstances bool `json:"reuse_instances,omitempty"`
	// Pool overrides Options.Pool for this worker.
	Pool int `json:"pool,omitempty"`
	// Config overrides, key by key, the Extism plugin config of the
	// worker's record (its "config"); the Hall's wcp.* keys cannot be set.
	Config PluginConfig `json:"config,omitempty"`
}

// PluginConfig is Extism plugin config: string values by key. Keys under
// "wcp." are the Hall's own (docs/ABI.md) and refused.
type PluginConfig map[string]string

// UnmarshalJSON refuses the reserved wcp.* keys, naming the fix.
func (c *PluginConfig) UnmarshalJSON(b []byte) error {
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("workers.<id>.config must be an object of string values: %w", err)
	}
	for k := range m {
		if k == "" || (len(k) >= 4 && k[:4] == "wcp.") {
			return fmt.Errorf("workers.<id>.config: key %q is not allowed: wcp.* keys are set by the Hall for every call (docs/ABI.md); choose another name", k)
		}
	}
	*c = m
	return nil
}

// LimitsConfig is the "limits" block of hall.json. Zero fields take the
// defaults of DefaultLimits.
type LimitsConfig struct {
	TimeoutMS   int64 `json:"timeout_ms,omitempty"`
	MemoryMB    int64 `json:"memory_mb,omitempty"`
	InputBytes  int64 `json:"input_bytes,omitempty"`
	OutputBytes int64 `json:"output_bytes,omitempty"`
	LogBytes    int64 `json:"log_bytes,omitempty"`
	// StackMB is the call stack budget of one worker instance, in MiB
	// (0: DefaultStackMB): deeper calls end as LIMIT_STACK, and each call
	// is charged 4 × (StackMB + 1/16) MiB of the memory budget
	// (docs/SECURITY.md).
	StackMB int64 `json:"stack_mb,omitempty"`
	// MemoryBudgetMB is the host memory, in MiB, all concurrent dispatches
	// may take together (Options.MemoryBudget wins; 0: half of physical
	// memory). Read when the sandbox starts: a change needs a restart.
	MemoryBudgetMB int64 `json:"memory_budget_mb,omitempty"`
}

// DefaultConfig is the configuration of a Hall without a hall.json:
// PyHall's floors plus the Hall's stricter checks (docs/GUIDE.md, "Conformance with PyHall and deliberate deviations").
func DefaultConfig() Config { return Config{HallConfig: wcp.DefaultStrict()} }

// ParseConfig decodes a hall.json document over DefaultConfig: a key given
// replaces the default, a key left out keeps it (so a file that only sets
// limits keeps the strict governance defaults; PyHall's behaviour needs
// the stricter switches set to false explicitly). Unknown keys are errors
// (a misspelt governance switch must not silently do nothing).
func ParseConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	if err := unknownConfigKey(data); err != nil {
		return Config{}, fmt.Errorf("not a valid Hall configuration: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Config{}, fmt.Errorf("not a valid Hall configuration: %w (known keys: %s)", err, strings.Join(configKeys(), ", "))
	}
	if err := c.Chain.check(); err != nil {
		return Config{}, err
	}
	if mb := c.Limits.StackMB; mb < 0 || mb > 1024 {
		return Config{}, fmt.Errorf("limits.stack_mb: %d is out of range; give the call stack budget of one worker instance in MiB, from 1 to 1024 (0 or absent: %d)", mb, DefaultStackMB)
	}
	if err := CheckMemoryBudgetMB("limits.memory_budget_mb", c.Limits.MemoryBudgetMB); err != nil {
		return Config{}, err
	}
	if err := c.Quotas.check(); err != nil {
		return Config{}, err
	}
	if err := c.ApprovalPayload.check(); err != nil {
		return Config{}, err
	}
	for i, o := range c.HTTP.CORSOrigins {
		if err := CheckCORSOrigin(o); err != nil {
			return Config{}, fmt.Errorf("http.cors_origins[%d]: %w", i, err)
		}
	}
	for id, ts := range c.Tenants {
		if strings.TrimSpace(id) == "" {
			return Config{}, fmt.Errorf("tenants: a tenant id is empty; key each entry by the tenant_id its requests carry")
		}
		if ts.Weight < 0 || ts.Weight > MaxTenantWeight {
			return Config{}, fmt.Errorf("tenants.%s.weight: %d is out of range; give the tenant's share of the cores relative to the others, from 1 to %d (0 or absent: 1)", id, ts.Weight, MaxTenantWeight)
		}
	}
	if n := c.Policy.CostLimit; n > MaxPolicyCostLimit {
		return Config{}, fmt.Errorf("policy.cost_limit: %d is beyond any useful policy; give the CEL cost one evaluation of the policy set may spend, at most %d (0 or absent: one million)", n, uint64(MaxPolicyCostLimit))
	}
	return c, nil
}

// CheckMemoryBudgetMB checks a memory budget in MiB given as field (a
// hall.json key or a flag): 0 means the default, anything else must be at
// least MinMemoryBudgetMB.
func CheckMemoryBudgetMB(field string, mb int64) error {
	switch {
	case mb < 0:
		return fmt.Errorf("%s: %d is negative; give the host memory, in MiB, all concurrent dispatches may take together (at least %d), or 0 for half of physical memory", field, mb, MinMemoryBudgetMB)
	case mb > 0 && mb < MinMemoryBudgetMB:
		return fmt.Errorf("%s: %d MiB could not admit even the smallest call (its linear memories, stack and engine overhead; docs/SECURITY.md); give at least %d, or 0 for half of physical memory", field, mb, MinMemoryBudgetMB)
	case mb > 1<<40:
		return fmt.Errorf("%s: %d MiB is beyond any machine; give the budget in MiB (e.g. 4096 for 4 GiB)", field, mb)
	}
	return nil
}

// Hall is a loaded Hall. Its methods are safe for concurrent use.
//
// # Notes
//
//   - Every decision reads one immutable snapshot of the rules, the
//     policies, the configuration and the enrolled workers; a change swaps
//     in a new snapshot atomically and never alters one a decision holds.
//     A snapshot is recorded in the evidence ledger's change chain before
//     the first decision under it, and every decision and receipt names
//     its digest (docs/EVIDENCE.md, "Snapshots").
//   - Close is final: afterwards every method that needs the Hall's state
//     returns an error wrapping ErrClosed.
type Hall struct {
	opts Options
	// tokens is the token store UseTokens named (tokens.go), else nil.
	tokens atomic.Pointer[TokenStore]
	// src is Options.Stores.Source, else the files of opts.
	src  SnapshotSource
	log  *slog.Logger
	snap atomic.Pointer[snapshot]

	// reloads counts Reload's outcomes (reloads.go).
	reloads reloadCounts
	// changeMu serialises changes (enroll, rules, reload), so that each
	// builds on the snapshot the previous one installed.
	changeMu sync.Mutex
	// noTrustOnce says once that enrollments are not checked (no trust.json).
	noTrustOnce sync.Once
	// seals records each snapshot before its first decision
	// (snapshot_digest.go).
	seals sealState
	// ingestMu serialises decision ingestion (ingest.go); active lists the
	// dispatches running (active.go).
	ingestMu sync.Mutex
	active   activeSet

	mu        sync.Mutex // guards the fields below
	closed    bool
	store     ArtifactStore
	engine    *sandbox.Engine
	loaded    map[workerKey]*loadedWorker
	ledger    ledger.Store
	ownLedger bool // opened by the Hall, closed by Close
	offline   atomic.Bool
	// engineBudget is the memory budget engine was made with (0: the
	// sandbox's default); guarded by mu.
	engineBudget uint64

	watchers watchers

	// admission hands out the dispatch slots fairly between tenants
	// (admission.go).
	admission *admission
	// cores shares the CPUs between tenants while guest code runs
	// (cores.go).
	cores *cpushare.Scheduler

	// uses and evicted count acquisitions and evictions of loaded
	// workers (dispatch.go), guarded by mu.
	uses, evicted uint64

	// life admits calls until Close and lets Close wait for them
	// (lifecycle.go).
	life lifecycle

	// tracer is Options.TracerProvider's tracer, nil when tracing is off;
	// held links a resumed approval's call to the held one (tracing.go).
	tracer trace.Tracer
	held   heldSpans
}

// Open loads the configuration, the rules and the enrolled records, opens
// the evidence ledger (creating the state directory and signing key on
// first use) and checks every record against the seal its enrollment left
// in the ledger. A rules file or configuration that does not load is an
// error; enrolled records that do not validate or no longer match their
// seal are not loaded and are reported by Problems, so one bad file does
// not take the Hall down.
func Open(ctx context.Context, opts Options) (*Hall, error) {
	if opts.Dir == "" {
		opts.Dir = "."
	}
	if opts.Rules == "" {
		opts.Rules = "rules.json"
	}
	if opts.RegistryDir == "" {
		opts.RegistryDir = "enrolled"
	}
	if opts.Home == "" {
		opts.Home = ".hall"
	}
	opts.Rules = opts.path(opts.Rules)
	opts.RegistryDir = opts.path(opts.RegistryDir)
	opts.Home = opts.path(opts.Home)
	if opts.MemoryBudget > 0 && opts.MemoryBudget < MinMemoryBudgetMB<<20 {
		return nil, fmt.Errorf("Options.MemoryBudget: %d bytes could not admit even the smallest call; give at least %d bytes (MinMemoryBudgetMB MiB), or 0 for the default", opts.MemoryBudget, MinMemoryBudgetMB<<20)
	}
	if opts.TenantShare < 0 || opts.TenantShare > 1 {
		return nil, fmt.Errorf("Options.TenantShare: %v is not a share of the dispatch slots; give a fraction in (0, 1], or 0 for %v", opts.TenantShare, DefaultTenantShare)
	}
	h := &Hall{opts: opts, log: opts.Logger, admission: newAdmission(opts.MaxConcurrent, opts.TenantShare), tracer: tracing.Tracer(opts.TracerProvider), cores: cpushare.New(0)}
	if opts.Stores != nil && opts.Stores.Source != nil {
		h.src = opts.Stores.Source
	}
	if h.src == nil {
		h.src = newFileSource(opts)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	// The ledger is opened first and eagerly: it holds the seals the
	// records are checked against, and a Hall that cannot record evidence
	// should fail here, not at its first dispatch.
	cfg, _, err := h.readConfig(ctx)
	if err != nil {
		return nil, err
	}
	if err := prepareStateDir(opts); err != nil {
		return nil, err
	}
	if err := h.openLedger(cfg.StorePayloads); err != nil {
		return nil, err
	}
	s, err := h.buildSnapshot(ctx)
	if err != nil {
		h.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	h.snap.Store(s)
	return h, nil
}

func (o Options) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(o.Dir, p)
}

// Options returns the options the Hall was opened with, paths resolved.
func (h *Hall) Options() Options { return h.opts }

// Rules returns a copy of the compiled rules in force: changing it
// changes nothing the Hall decides.
func (h *Hall) Rules() *router.RuleSet { return h.snap.Load().rules.Clone() }

// Config returns a copy of the configuration in force: its maps, slices
// and pointers are the caller's, and changing them changes nothing the
// Hall decides or dispatches.
func (h *Hall) Config() Config { return h.snap.Load().cfg.clone() }

// Problems returns the enrolled records that were not loaded (one
// *registry.RecordError or *TamperedRecordError per file, joined), or nil.
func (h *Hall) Problems() error { return h.snap.Load().problems }

// Warnings returns what loading noticed but accepted (rules conditions
// that never match, invalid control ids ignored at enrollment).
func (h *Hall) Warnings() []string { return slices.Clone(h.snap.Load().warnings) }

// Decide routes one request. It never fails: every problem is a denied
// decision. An allowed decision's artifact_hash is the digest of the module
// of the one worker a dispatch of it would run.
//
// Once Close has begun, every decision is denied (DENY_INTERNAL_ERROR,
// its message naming HALL_CLOSED): a closing Hall decides nothing.
//
// A decision is made only under a snapshot recorded in the evidence
// ledger (docs/EVIDENCE.md, "Snapshots"): the first decision under a new
// snapshot records it; when it cannot be recorded the decision is denied
// DENY_INTERNAL_ERROR with a message naming SNAPSHOT_UNRECORDED (Route and
// Run return a *SnapshotError), before any rule is matched: neither
// Options.Gate nor the policies are asked about the request.
func (h *Hall) Decide(ctx context.Context, in *wcp.RouteInput) wcp.RouteDecision {
	if h.life.closing() {
		return closedDecision(ctx, in)
	}
	dec, _, _ := h.plan(ctx, in)
	return dec
}

// plan decides in against the current snapshot, which it returns, and,
// when allowed, binds the decision to the concrete worker it selected.
func (h *Hall) plan(ctx context.Context, in *wcp.RouteInput) (wcp.RouteDecision, *Plan, *snapshot) {
	return h.planFor(ctx, in, nil)
}

// planFor is plan, or, with rp, the plan of a replay: decided in the
// current snapshot as rp sees it (replaySpec.view, which shares the
// snapshot's seal: the replay names the snapshot in force).
func (h *Hall) planFor(ctx context.Context, in *wcp.RouteInput, rp *replaySpec) (wcp.RouteDecision, *Plan, *snapshot) {
	ctx, span := h.startSpan(ctx, "hall.decide")
	dec, p, s := h.planIn(ctx, in, rp)
	if span.IsRecording() {
		decisionAttributes(span, &dec, s.digest())
	}
	span.End()
	return dec, p, s
}

func (h *Hall) planIn(ctx context.Context, in *wcp.RouteInput, rp *replaySpec) (wcp.RouteDecision, *Plan, *snapshot) {
	s := h.snap.Load()
	if rp != nil {
		s = rp.view(s)
	}
	if err := h.sealSnapshot(ctx, s); err != nil {
		// Fail closed before anything is asked under rules that are not
		// evidence: no rule is matched, and neither the embedder's gate
		// nor the policies see the request.
		dec := router.Decide(ctx, in, &router.RuleSet{}, nil, router.Options{})
		dec.TelemetryEnvelopes = nil
		denyUnrecorded(&dec, err)
		return dec, nil, s
	}
	b := &binding{h: h, s: s}
	dec := router.Decide(ctx, in, s.rules, b, router.Options{
		Config:           &s.cfg.HallConfig,
		Gate:             h.gate(s),
		RegisteredHashes: (*registeredHashes)(b),
		CurrentHashes:    (*currentHashes)(b),
		Envelopes:        b,
		Privilege:        s.privilege,
		Logger:           h.log,
		// With approvals on, a prod/edge blast score ≥ 85 is held for a
		// human (applyPolicies) instead of PyHall's plain denial.
		DeferHighBlast: s.policies != nil && s.policies.Approvals().Enabled,
	})
	detach(&dec)
	if dec.Denied {
		return dec, nil, s
	}
	w := b.pick(string(dec.SelectedWorkerSpeciesID))
	if w == nil { // the router selected a species the snapshot does not hold
		denyInternal(&dec)
		return dec, nil, s
	}
	if w.tampered != nil {
		denyTampered(&dec, fmt.Sprintf("The record of %s was changed after it was enrolled; it was not run.", w.rec.WorkerID))
		return dec, nil, s
	}
	if why := s.untrusted(h, w); why != "" {
		denyUntrusted(&dec, why)
		return dec, nil, s
	}
	if w.hasModule {
		dec.ArtifactHash = wcp.OptString(w.moduleRef)
	}
	if !h.applyPolicies(ctx, s, w, in, &dec) {
		return dec, nil, s
	}
	p := &Plan{snap: s, w: w}
	if rp != nil {
		p.replayOf = rp.receiptID
	}
	return dec, p, s
}

// detach gives a decision its own copies of what the router shares with
// the compiled rules (controls, profiles, escalation, shadowed rule ids):
// a caller that changes the decision it was handed must not change the
// rules every later decision is made with.
func detach(d *wcp.RouteDecision) {
	if len(d.RequiredControlsEffective) > 0 {
		d.RequiredControlsEffective = slices.Clone(d.RequiredControlsEffective)
	}
	if len(d.RecommendedProfilesEffective) > 0 {
		d.RecommendedProfilesEffective = bytes.Clone(d.RecommendedProfilesEffective)
	}
	e := &d.EscalationEffective
	if len(e.HumanRequiredIf) > 0 {
		e.HumanRequiredIf = bytes.Clone(e.HumanRequiredIf)
	}
	if e.Rationale != nil {
		r := *e.Rationale
		e.Rationale = &r
	}
	if r := d.DenyReason; r != nil && len(r.ShadowedRuleIDs) > 0 {
		r.ShadowedRuleIDs = slices.Clone(r.ShadowedRuleIDs)
	}
	for i := range d.CandidateWorkersRanked {
		c := &d.CandidateWorkersRanked[i]
		if c.ScoreHint != nil { // the rule's own score_hint
			v := *c.ScoreHint
			c.ScoreHint = &v
		}
	}
}

// configKeys returns hall.json's top-level keys in declaration order, read
// from Config's json tags so that the list in ParseConfig's error never
// goes stale.
func configKeys() []string {
	t := reflect.TypeFor[Config]()
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}
