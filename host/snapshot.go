package host

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/policy"
	"github.com/wcphall/hall/internal/registry"
	"github.com/wcphall/hall/internal/router"
	"github.com/wcphall/hall/internal/sandbox"
	"github.com/wcphall/hall/internal/trust"
)

// snapshot is everything a decision and its dispatch read: the rules, the
// configuration and the enrolled workers, built once and never changed.
// A change (enroll, a rules or hall.json edit, a reload) builds a new
// snapshot and swaps it in atomically; a decision and the dispatch it
// plans use the snapshot they started with from start to end.
type snapshot struct {
	rules *router.RuleSet
	// rulesDigest is "sha256:<hex>" of the rules file's bytes ("" for none).
	rulesDigest string
	// rulesName is where the rules are stored (SnapshotSource Doc.Name):
	// the rules file's path for the files of Options.
	rulesName string
	cfg       Config
	// reg holds the PyHall views of the enrolled records (species and
	// capability sets, controls present fleet-wide); built for this
	// snapshot, never enrolled into afterwards.
	reg       *registry.Registry
	workers   map[string]*boundWorker   // by worker id
	species   map[string][]*boundWorker // worker_id descending: the selection order
	privilege registry.StockPrivilegePolicy
	max       sandbox.Limits

	problems error
	warnings []string

	// policies is the compiled policy file (nil: none).
	policies *policy.Set
	// signers is the trust policy (trust.json; nil: none) and verdicts
	// its verdict on each worker, computed on first use (trust.go).
	signers  *trust.Policy
	verdicts *verdictCache

	// src is what the snapshot was read from, trust the Options that
	// govern it, actor who made the change that built it ("file" for
	// what was found on disk); seal its digest and whether it is recorded
	// (snapshot_digest.go).
	src   snapshotSource
	trust snapshotTrust
	actor string
	seal  *snapshotSeal
}

// boundWorker is one enrolled worker as a snapshot holds it: a private copy
// of its sealed record and everything a dispatch derives from it, computed
// once here so that the decision, the sandbox grant and the evidence all
// read the same values.
type boundWorker struct {
	rec          *wcp.Record // private: never handed out, never mutated
	recordDigest wcp.Digest
	module       wcp.Digest // zero when the record names no module
	hasModule    bool
	moduleHex    string          // module, bare hex (attestation's registered hash)
	moduleRef    string          // module, "sha256:<hex>" (the decision's artifact_hash)
	envelope     json.RawMessage // canonical JSON of the envelope in force ({} when none)
	policy       sandbox.Policy
	limits       sandbox.Limits
	// prov is what the evidence ledger recorded of where the module came
	// from and who signed it (nil: nothing recorded; trust.go).
	prov *provenance
	// tampered is set when the record file no longer matches its seal:
	// the worker stays selectable (its sealed record says what it serves)
	// so that a dispatch to it is denied DENY_WORKER_TAMPERED.
	tampered error

	verify      sync.Once
	currentHash string // hex digest of the stored module, "" when unreadable
}

// contained reports whether the worker's grants give it no way to act
// outside its sandbox: no writable path, no network egress and no secret
// (reading a secret is an act another system may log). Reads of its
// mounted directories and its own output stay inside the call.
func (w *boundWorker) contained() bool {
	return len(w.policy.Writes) == 0 && len(w.policy.Egress) == 0 && len(w.policy.Secrets) == 0
}

// current returns the digest of the worker's module as read from the
// artifact store, computed on first use and kept for the snapshot's life
// (the store is watched; a change builds a new snapshot).
func (w *boundWorker) current(h *Hall) (string, bool) {
	w.verify.Do(func() {
		if !w.hasModule {
			return
		}
		store, err := h.artifacts()
		if err != nil {
			return
		}
		if got, err := store.Verify(context.Background(), w.module); err == nil {
			w.currentHash = got.Hex()
		}
	})
	return w.currentHash, w.currentHash != ""
}

func (w *boundWorker) allowsEnv(env string) bool {
	return len(w.rec.AllowedEnvironments) == 0 || slices.Contains(w.rec.AllowedEnvironments, env)
}

func (w *boundWorker) implementsOwnControls() bool {
	for _, c := range w.rec.RequiredControls {
		if !slices.Contains(w.rec.CurrentlyImplements, c) {
			return false
		}
	}
	return true
}

// newBoundWorker derives a worker's dispatch values from its record. The
// record is copied, so a caller's later changes to rec do not reach it.
func newBoundWorker(rec *wcp.Record, max sandbox.Limits) (*boundWorker, error) {
	rec, err := cloneRecord(rec)
	if err != nil {
		return nil, err
	}
	rd, err := wcp.RecordDigest(rec)
	if err != nil {
		return nil, err
	}
	w := &boundWorker{rec: rec, recordDigest: rd, policy: sandboxPolicy(rec), limits: effectiveLimits(workerLimits(rec), max)}
	if d, err := wcp.ParseDigest(rec.ArtifactHash); err == nil {
		w.module, w.hasModule, w.moduleHex, w.moduleRef = d, true, d.Hex(), d.String()
	}
	w.envelope = json.RawMessage(`{}`)
	if e := rec.PrivilegeEnvelope; e != nil {
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		if w.envelope, err = wcp.CanonicalJSON(raw); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// effectiveLimits caps a worker's declared limits by the Hall's ceilings,
// as the sandbox does, so that a plan states the limits the call gets.
func effectiveLimits(l, max sandbox.Limits) sandbox.Limits {
	lower := func(v, m int64) int64 {
		if v <= 0 || v > m {
			return m
		}
		return v
	}
	if l.Timeout <= 0 || l.Timeout > max.Timeout {
		l.Timeout = max.Timeout
	}
	if l.MemoryBytes == 0 || l.MemoryBytes > max.MemoryBytes {
		l.MemoryBytes = max.MemoryBytes
	}
	if l.StackBytes == 0 || l.StackBytes > max.StackBytes {
		l.StackBytes = max.StackBytes
	}
	l.InputBytes = lower(l.InputBytes, max.InputBytes)
	l.OutputBytes = lower(l.OutputBytes, max.OutputBytes)
	if l.LogBytes <= 0 || l.LogBytes > max.LogBytes {
		l.LogBytes = max.LogBytes
	}
	return l
}

// pluginConfig is the Extism config a call of w reads (config_get): its
// record's config, then this snapshot's hall.json overrides for it, then
// the Hall's wcp.* keys of the call, which always win; a wcp.* key from
// the record or hall.json never reaches the guest (both refuse them).
func (s *snapshot) pluginConfig(w *boundWorker, wcpKeys map[string]string) map[string]string {
	rec, over := w.rec.Config, s.cfg.Workers[w.rec.WorkerID].Config
	if len(rec) == 0 && len(over) == 0 {
		return wcpKeys
	}
	m := make(map[string]string, len(rec)+len(over)+len(wcpKeys))
	for _, src := range []map[string]string{rec, over} {
		for k, v := range src {
			if !strings.HasPrefix(k, "wcp.") {
				m[k] = v
			}
		}
	}
	for k, v := range wcpKeys {
		m[k] = v
	}
	return m
}

func cloneRecord(rec *wcp.Record) (*wcp.Record, error) {
	raw, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	var out wcp.Record
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// seals maps a worker id to its latest enrollment in the evidence ledger.
type seals map[string]ledger.Change

func loadSeals(ctx context.Context, store ledger.Store) (seals, error) {
	changes, err := store.Changes(ctx, ledger.ChangeEnroll)
	if err != nil {
		return nil, fmt.Errorf("reading enrollment seals from the evidence ledger: %w", err)
	}
	// Routing-only records enrolled PyHall's way (pyenroll.go) are sealed
	// by changes of their own kind; with a module's seals, the last in
	// chain order wins.
	records, err := store.Changes(ctx, ChangeEnrollRecord)
	if err != nil {
		return nil, fmt.Errorf("reading enrollment seals from the evidence ledger: %w", err)
	}
	if len(records) > 0 {
		changes = append(changes, records...)
		slices.SortStableFunc(changes, func(a, b ledger.Change) int { return cmp.Compare(a.Sequence, b.Sequence) })
	}
	out := make(seals, len(changes))
	for _, c := range changes { // chain order: the last one wins
		out[c.Subject] = c
	}
	return out, nil
}

// TamperedRecordError reports an enrolled record file that no longer
// matches the record sealed when it was enrolled.
type TamperedRecordError struct {
	Path     string
	WorkerID string
	Sealed   string // the record digest sealed at enrollment
	Got      string // the file's record digest ("" when it does not parse)
}

func (e *TamperedRecordError) Error() string {
	return fmt.Sprintf("%s: RECORD_TAMPERED: the record of %s was changed after it was enrolled (sealed %s, file %s); it is not loaded and dispatches to it are denied DENY_WORKER_TAMPERED: to change a record, enroll it again with hall enroll", e.Path, e.WorkerID, e.Sealed, orNone(e.Got))
}

// Code is RECORD_TAMPERED.
func (e *TamperedRecordError) Code() wcp.Code { return wcp.CodeRecordTampered }

func orNone(s string) string {
	if s == "" {
		return "unreadable"
	}
	return s
}

// buildSnapshot reads the rules, the policy set, the configuration and
// the enrolled records from the snapshot source (one Load) and checks
// every record against its seal.
func (h *Hall) buildSnapshot(ctx context.Context) (*snapshot, error) {
	docs, err := h.src.Load(ctx)
	if err != nil {
		return nil, err
	}
	cfg, cfgData, err := parseConfigDoc(docs.Config)
	if err != nil {
		return nil, err
	}
	rules, rulesDigest, rulesData, err := h.compileRules(docs.Rules)
	if err != nil {
		return nil, err
	}
	store, err := h.evidenceStore()
	if err != nil {
		return nil, err
	}
	sealed, err := loadSeals(ctx, store)
	if err != nil {
		return nil, err
	}
	recs, problems := parseRecords(docs.Records, registry.Options{AllowUnknownFields: cfg.AllowUnknownRecordFields})
	var errs []error
	if problems != nil {
		errs = append(errs, unjoin(problems)...)
	}
	var keep []*wcp.Record
	var tampered []*boundWorker
	max := cfg.maxLimits()
	for _, f := range recs {
		seal, ok := sealed[f.rec.WorkerID]
		if !ok {
			if f.rec.ArtifactHash != "" {
				errs = append(errs, &registry.RecordError{Path: f.path, Problems: []registry.Problem{{Message: "RECORD_UNSEALED: this record names a module but was not enrolled by this Hall (no seal in its evidence ledger); it is not loaded: enroll the module with hall enroll"}}})
				continue
			}
			keep = append(keep, f.rec) // a routing-only record: decisions, never a dispatch
			continue
		}
		got, err := wcp.RecordDigest(f.rec)
		if err == nil && got.String() == seal.Digest {
			keep = append(keep, f.rec)
			continue
		}
		te := &TamperedRecordError{Path: f.path, WorkerID: f.rec.WorkerID, Sealed: seal.Digest}
		if err == nil {
			te.Got = got.String()
		}
		errs = append(errs, te)
		if w := sealedWorker(seal, max, te); w != nil {
			tampered = append(tampered, w)
		}
	}
	workers := tampered
	for _, rec := range keep {
		w, err := newBoundWorker(rec, max)
		if err != nil {
			return nil, fmt.Errorf("worker %s: %w", rec.WorkerID, err)
		}
		workers = append(workers, w)
	}
	s := newSnapshot(rules, docs.Rules.Name, cfg, workers)
	s.rulesDigest, s.rulesName = rulesDigest, docs.Rules.Name
	s.problems = errors.Join(errs...)
	if s.policies, s.src.policyDoc, err = parsePolicies(docs.Policy, cfg.Policy); err != nil {
		return nil, err
	}
	if s.signers, s.src.trustDoc, err = parseTrust(docs.Trust); err != nil {
		return nil, err
	}
	if err := attachProvenance(ctx, store, s); err != nil {
		return nil, err
	}
	s.src.rulesDoc = rulesData
	if cfgData != nil {
		s.src.configFile = digestOf(cfgData)
	}
	s.trust, s.actor = trustOf(h.opts), "file"
	return s, nil
}

// sealedWorker is the placeholder of a tampered record: what the seal says
// the worker serves, marked tampered.
func sealedWorker(seal ledger.Change, max sandbox.Limits, te error) *boundWorker {
	var rec wcp.Record
	if json.Unmarshal(seal.Body, &rec) != nil || rec.WorkerID == "" {
		return nil
	}
	w, err := newBoundWorker(&rec, max)
	if err != nil {
		return nil
	}
	w.tampered = te
	return w
}

type recordFile struct {
	path string
	rec  *wcp.Record
}

// parseRecords validates every stored record, in the source's order.
// Records that cannot be read or fail validation are reported together
// (one *registry.RecordError per record, naming it) while the others load.
func parseRecords(docs []RecordDoc, vo registry.Options) ([]recordFile, error) {
	var (
		out  []recordFile
		errs []error
	)
	for _, d := range docs {
		if d.Err != nil {
			errs = append(errs, &registry.RecordError{Path: d.Name, Problems: []registry.Problem{{Message: d.Err.Error()}}})
			continue
		}
		rec, err := registry.ValidateWith(d.Data, vo)
		if err != nil {
			var re *registry.RecordError
			if errors.As(err, &re) {
				re.Path = d.Name
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, recordFile{path: d.Name, rec: rec})
	}
	return out, errors.Join(errs...)
}

// newSnapshot indexes bound workers for decisions. A tampered worker is
// selectable (so that a dispatch to it is denied as tampered) but adds
// nothing to the registry's species, capabilities or controls.
func newSnapshot(rules *router.RuleSet, rulesPath string, cfg Config, workers []*boundWorker) *snapshot {
	s := &snapshot{
		rules:     rules,
		cfg:       cfg,
		reg:       registry.New(),
		workers:   make(map[string]*boundWorker, len(workers)),
		species:   map[string][]*boundWorker{},
		seal:      &snapshotSeal{},
		verdicts:  &verdictCache{},
		privilege: registry.StockPrivilegePolicy{EgressAllowlist: cfg.EgressAllowlist},
		max:       cfg.maxLimits(),
	}
	// Records enter the registry in worker-id order, so that its warnings
	// (and nothing else: selection is by worker id) read the same in every
	// process.
	slices.SortFunc(workers, func(a, b *boundWorker) int { return strings.Compare(a.rec.WorkerID, b.rec.WorkerID) })
	for _, w := range workers {
		if old, dup := s.workers[w.rec.WorkerID]; dup && old.tampered == nil {
			continue // a sound record wins over a tampered placeholder
		}
		s.workers[w.rec.WorkerID] = w
	}
	for _, w := range workers {
		if s.workers[w.rec.WorkerID] != w {
			continue
		}
		if w.tampered == nil {
			s.warnings = append(s.warnings, s.reg.Enroll(w.rec)...)
		}
		if sp := w.rec.WorkerSpeciesID; sp != "" {
			s.species[sp] = append(s.species[sp], w)
		}
	}
	for _, ws := range s.species {
		slices.Reverse(ws) // worker_id descending
	}
	for _, w := range rules.Warnings {
		s.warnings = append(s.warnings, rulesPath+": "+w)
	}
	return s
}

// with returns a copy of s in which w (just enrolled and sealed by actor)
// replaces the worker of the same id.
func (s *snapshot) with(w *boundWorker, actor string) *snapshot {
	workers := make([]*boundWorker, 0, len(s.workers)+1)
	for id, old := range s.workers {
		if id != w.rec.WorkerID {
			workers = append(workers, old)
		}
	}
	n := newSnapshot(s.rules, s.rulesName, s.cfg, append(workers, w))
	n.rulesDigest, n.rulesName, n.policies, n.signers = s.rulesDigest, s.rulesName, s.policies, s.signers
	n.problems = withoutWorker(s.problems, w.rec.WorkerID)
	n.src, n.trust, n.actor = s.src, s.trust, actor
	return n
}

// withRules returns a copy of s with other rules (the document data,
// written by actor).
func (s *snapshot) withRules(rules *router.RuleSet, data []byte, actor string) *snapshot {
	digest := digestOf(data)
	workers := make([]*boundWorker, 0, len(s.workers))
	for _, w := range s.workers {
		workers = append(workers, w)
	}
	n := newSnapshot(rules, s.rulesName, s.cfg, workers)
	n.rulesDigest, n.rulesName, n.policies, n.signers = digest, s.rulesName, s.policies, s.signers
	n.problems = s.problems
	n.src, n.trust, n.actor = s.src, s.trust, actor
	n.src.rulesDoc = data
	return n
}

// withoutWorker drops the tamper report of a worker that was enrolled again.
func withoutWorker(problems error, workerID string) error {
	if problems == nil {
		return nil
	}
	var keep []error
	for _, e := range unjoin(problems) {
		var te *TamperedRecordError
		if errors.As(e, &te) && te.WorkerID == workerID {
			continue
		}
		keep = append(keep, e)
	}
	return errors.Join(keep...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// compileRules compiles the rules document; digest is the SHA-256 of its
// bytes and data the bytes ("" and nil when an absent document was
// accepted as no rules: Options.MissingRulesOK).
func (h *Hall) compileRules(d Doc) (rules *router.RuleSet, digest string, data []byte, err error) {
	if !d.Present {
		if h.opts.MissingRulesOK {
			rules, err = router.ParseRules([]byte(`{"rules": []}`))
			return rules, "", nil, err
		}
		if _, files := h.src.(*fileSource); files {
			return nil, "", nil, fmt.Errorf("rules file %s does not exist: pass --rules FILE or create it (see examples/quickstart/rules.json)", d.Name)
		}
		return nil, "", nil, fmt.Errorf("rules %s: the snapshot source holds no rules document: store one (SnapshotSource.Put with DocRules) or open with Options.MissingRulesOK", d.Name)
	}
	rules, err = router.ParseRules(d.Data)
	var le *router.LoadError
	if errors.As(err, &le) {
		le.File = d.Name
	}
	if err != nil {
		return nil, "", nil, err
	}
	return rules, digestOf(d.Data), d.Data, nil
}

// readConfig reads the configuration from the snapshot source and parses
// it over DefaultConfig; data is its bytes (nil when there is none).
func (h *Hall) readConfig(ctx context.Context) (cfg Config, data []byte, err error) {
	d, err := h.src.Get(ctx, DocConfig)
	if err != nil {
		return Config{}, nil, err
	}
	return parseConfigDoc(d)
}

// parseConfigDoc is the configuration of a stored hall.json: DefaultConfig
// when the source holds none, an error naming the document when it does
// not parse.
func parseConfigDoc(d Doc) (Config, []byte, error) {
	if !d.Present {
		return DefaultConfig(), nil, nil
	}
	cfg, err := ParseConfig(d.Data)
	if err != nil {
		return Config{}, nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	return cfg, d.Data, nil
}

// binding is one decision's view of a snapshot. It answers the router's
// questions about species by judging concrete workers, and remembers the
// worker it chose, so that attestation, the privilege check and the
// dispatch all concern that one worker.
type binding struct {
	h       *Hall
	s       *snapshot
	species string
	w       *boundWorker
}

func (b *binding) ControlPresent(c string) bool { return b.s.reg.ControlPresent(c) }

func (b *binding) WorkerAvailable(species string) bool { return len(b.s.species[species]) > 0 }

// Ineligible implements router.Eligibility per concrete worker: among the
// species' workers, in worker_id order from the last, the first that allows
// env (when checkEnv) and implements its own required controls (when
// checkControls) is chosen. The skip reason of an ineligible species is
// the controls one when any worker failed only on controls, else the env
// one.
func (b *binding) Ineligible(species, env string, checkEnv, checkControls bool) string {
	reason := ""
	for _, w := range b.s.species[species] {
		if checkEnv && !w.allowsEnv(env) {
			if reason == "" {
				reason = wcp.SkipEnvNotAllowed
			}
			continue
		}
		if checkControls && !w.implementsOwnControls() {
			reason = wcp.SkipWorkerControlsMissing
			continue
		}
		b.species, b.w = species, w
		return ""
	}
	return reason
}

// pick is the worker bound to species: the one Ineligible chose, else (no
// eligibility checks configured) the one whose worker_id sorts last.
func (b *binding) pick(species string) *boundWorker {
	if b.w != nil && b.species == species {
		return b.w
	}
	ws := b.s.species[species]
	if len(ws) == 0 {
		return nil
	}
	b.species, b.w = species, ws[0]
	return ws[0]
}

// PrivilegeEnvelope implements router.EnvelopeSource for the bound worker.
func (b *binding) PrivilegeEnvelope(species string) *wcp.PrivilegeEnvelope {
	if w := b.pick(species); w != nil {
		return w.rec.PrivilegeEnvelope
	}
	return nil
}

// registeredHashes is the known-good code hash of the bound worker: the
// artifact_hash its sealed record declares (the digest of the module it
// was enrolled with, WCP §5.10), else PyHall's attestation.code_hash.
type registeredHashes binding

func (r *registeredHashes) WorkerHash(ctx context.Context, species string) (string, bool) {
	b := (*binding)(r)
	if w := b.pick(species); w != nil && w.hasModule {
		return w.moduleHex, true
	}
	return b.s.reg.WorkerHash(ctx, species)
}

// currentHashes is the live code hash of the bound worker: its module as
// the artifact store holds it now.
type currentHashes binding

func (c *currentHashes) WorkerHash(_ context.Context, species string) (string, bool) {
	b := (*binding)(c)
	w := b.pick(species)
	if w == nil {
		return "", false
	}
	return w.current(b.h)
}

// sameAs reports whether s decides exactly as o: the same rules file, the
// same configuration and the same sealed records and modules. A reload
// that finds nothing new does not notify OnChange watchers.
func (s *snapshot) sameAs(o *snapshot) bool {
	if s.rulesDigest != o.rulesDigest || s.policies.Digest() != o.policies.Digest() || len(s.workers) != len(o.workers) || !reflect.DeepEqual(s.cfg, o.cfg) ||
		!bytes.Equal(s.src.trustDoc, o.src.trustDoc) {
		return false
	}
	for id, w := range s.workers {
		ow := o.workers[id]
		if ow == nil || ow.recordDigest != w.recordDigest || (ow.tampered == nil) != (w.tampered == nil) || ow.prov.digest() != w.prov.digest() {
			return false
		}
	}
	return true
}
