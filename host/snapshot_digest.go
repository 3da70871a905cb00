package host

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

// A snapshot is sealed before it decides anything: its manifest (the
// digest of every part that can change a decision or a dispatch) and the
// content of the parts that changed since the last sealed snapshot are
// one signed entry of the change chain, of kind ledger.ChangeSnapshot,
// whose Digest is the snapshot's digest. Every decision entry and receipt
// then names that digest, and `hall audit verify` checks that it names a
// snapshot recorded before it (docs/EVIDENCE.md, "Snapshots").
//
// Recording is lazy: the first Decide, Route or Run under a new snapshot
// records it, and every other decision under it waits for that one
// recording (Hall.seals.mu); afterwards the check is one atomic load.

// snapshotFormat names the manifest layout.
const snapshotFormat = "hall-snapshot/1"

// noPart is a manifest part that is absent (no rules file, no policy
// file, no hall.json): absence is a state, recorded like any other.
const noPart = "none"

// snapshotManifest is what a snapshot's digest covers: one digest per
// part. Its canonical JSON (RFC 8785) is hashed.
type snapshotManifest struct {
	Format string `json:"format"`
	// Rules is the digest of the rules file's bytes, or "none".
	Rules string `json:"rules"`
	// Policy is the policy set's digest (of the file's bytes), or "none".
	Policy string `json:"policy"`
	// Config is the digest of the canonical JSON of the effective
	// configuration (hall.json over the defaults): every field, so two
	// files that parse to the same configuration have the same Config.
	Config string `json:"config"`
	// ConfigFile is the digest of hall.json's bytes, or "none".
	ConfigFile string `json:"config_file"`
	// Records is the digest of the canonical JSON object that maps each
	// worker id the snapshot holds to its sealed record's digest
	// ("tampered:<digest>" for a record file that no longer matches its
	// seal: dispatches to it are denied). The object itself is not in
	// every entry (a fleet of 10,000 workers would add ~1 MB to each);
	// entries carry what changed (sealBody.Changed["records"]).
	Records string `json:"records"`
	// TrustPolicy is the digest of the trust policy (trust.json, stored
	// self-contained), absent from manifests without one so that their
	// digests are unchanged.
	TrustPolicy string `json:"trust_policy,omitempty"`
	// Trust is what the embedder set that changes a decision or a
	// dispatch outside the files.
	Trust snapshotTrust `json:"trust"`
}

// snapshotTrust are the Options that govern decisions and dispatches.
type snapshotTrust struct {
	// Gate is "none", or "embedder:<Go type>" for Options.Gate.
	Gate string `json:"gate"`
	// StorePayloads, MemoryBudget: Options.StorePayloads and
	// Options.MemoryBudget.
	StorePayloads bool   `json:"store_payloads"`
	MemoryBudget  uint64 `json:"memory_budget"`
}

// snapshotSource is what a snapshot was read from, kept to record the
// content of what changed.
type snapshotSource struct {
	rulesDoc   []byte // the rules file's bytes (nil: none)
	policyDoc  []byte // the policy file's bytes (nil: none)
	trustDoc   []byte // the trust policy's bytes (nil: none)
	configFile string // digest of hall.json's bytes ("": none)
}

// snapshotSeal is a snapshot's digest, computed once, and whether it is
// recorded.
type snapshotSeal struct {
	once     sync.Once
	digest   string
	manifest snapshotManifest
	config   json.RawMessage   // canonical effective configuration
	records  map[string]string // worker id -> record digest (Records)
	err      error
	// sealed is set once the snapshot is in the change chain: the check
	// every decision makes.
	sealed atomic.Bool
	// lastErr is why the last recording failed (guarded by Hall.seals.mu).
	lastErr error
}

// sealState is the Hall's view of the change chain's snapshots, guarded
// by mu, which also serialises recordings.
type sealState struct {
	mu       sync.Mutex
	read     bool // the last recorded snapshot was read from the ledger
	digest   string
	manifest *snapshotManifest
	// records is the record map of the last recorded snapshot when this
	// Hall recorded it (nil otherwise: the next entry lists them all).
	records map[string]string
}

// digest returns "sha256:<hex>" of the canonical JSON of the snapshot's
// manifest, computed once ("" when the manifest cannot be encoded, which
// leaves the snapshot unrecordable: decisions under it fail closed).
func (s *snapshot) digest() string {
	s.computeSeal()
	return s.seal.digest
}

func (s *snapshot) computeSeal() {
	s.seal.once.Do(func() {
		m, cfg, recs, err := s.buildManifest()
		if err != nil {
			s.seal.err = err
			return
		}
		raw, err := json.Marshal(m)
		if err == nil {
			raw, err = wcp.CanonicalJSON(raw)
		}
		if err != nil {
			s.seal.err = err
			return
		}
		s.seal.manifest, s.seal.config, s.seal.records = m, cfg, recs
		s.seal.digest = wcp.Digest(sha256.Sum256(raw)).String()
	})
}

func (s *snapshot) buildManifest() (snapshotManifest, json.RawMessage, map[string]string, error) {
	raw, err := json.Marshal(everyField(reflect.ValueOf(s.cfg)))
	if err != nil {
		return snapshotManifest{}, nil, nil, fmt.Errorf("the configuration does not encode: %w", err)
	}
	cfg, err := wcp.CanonicalJSON(raw)
	if err != nil {
		return snapshotManifest{}, nil, nil, fmt.Errorf("the configuration does not encode: %w", err)
	}
	recs := make(map[string]string, len(s.workers))
	for id, w := range s.workers {
		d := w.recordDigest.String()
		if w.tampered != nil {
			d = "tampered:" + d
		}
		recs[id] = d
	}
	raw, err = json.Marshal(recs)
	if err == nil {
		raw, err = wcp.CanonicalJSON(raw)
	}
	if err != nil {
		return snapshotManifest{}, nil, nil, fmt.Errorf("the record seals do not encode: %w", err)
	}
	m := snapshotManifest{
		Format:     snapshotFormat,
		Rules:      orAbsent(s.rulesDigest),
		Policy:     orAbsent(s.policies.Digest()),
		Config:     digestOf(cfg),
		ConfigFile: orAbsent(s.src.configFile),
		Records:    digestOf(raw),
		Trust:      s.trust,
	}
	if s.src.trustDoc != nil {
		m.TrustPolicy = digestOf(s.src.trustDoc)
	}
	return m, cfg, recs, nil
}

func orAbsent(d string) string {
	if d == "" {
		return noPart
	}
	return d
}

// trustOf is the part of the manifest the Options give.
func trustOf(o Options) snapshotTrust {
	t := snapshotTrust{Gate: noPart, StorePayloads: o.StorePayloads, MemoryBudget: o.MemoryBudget}
	if o.Gate != nil {
		t.Gate = fmt.Sprintf("embedder:%T", o.Gate)
	}
	return t
}

// SnapshotError is a snapshot that could not be recorded in the evidence
// ledger: nothing is decided under it until it is.
type SnapshotError struct {
	// Digest is the snapshot's digest ("" when it could not be computed).
	Digest string
	// Err is why it could not be recorded (the ledger's error).
	Err error
}

func (e *SnapshotError) Error() string {
	return fmt.Sprintf("SNAPSHOT_UNRECORDED: the snapshot %s (the rules, policies, hall.json and records in force) could not be recorded in the evidence ledger: %v; nothing is decided under it until it is: check the ledger (hall audit verify, free space, the signing key) and retry", orAbsent(e.Digest), e.Err)
}

func (e *SnapshotError) Unwrap() error { return e.Err }

// Code is SNAPSHOT_UNRECORDED.
func (e *SnapshotError) Code() wcp.Code { return wcp.CodeSnapshotUnrecorded }

// sealSnapshot makes sure s is recorded in the change chain before a
// decision uses it. The check is one atomic load once it is.
func (h *Hall) sealSnapshot(ctx context.Context, s *snapshot) error {
	if s.seal.sealed.Load() {
		return nil
	}
	return h.sealSlow(ctx, s)
}

// sealSlow records s unless the last snapshot the change chain holds has
// its digest. Concurrent callers wait for the one recording; a failure is
// returned to every caller and retried by the next decision.
func (h *Hall) sealSlow(ctx context.Context, s *snapshot) error {
	st := &h.seals
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.seal.sealed.Load() {
		return nil
	}
	err := h.recordSnapshot(ctx, st, s)
	s.seal.lastErr = err
	if err != nil {
		h.log.Error("hall: the snapshot could not be recorded; decisions under it are refused", "error", err)
		return err
	}
	s.seal.sealed.Store(true)
	return nil
}

func (h *Hall) recordSnapshot(ctx context.Context, st *sealState, s *snapshot) error {
	d := s.digest()
	if s.seal.err != nil {
		return &SnapshotError{Err: s.seal.err}
	}
	store, err := h.evidenceStore()
	if err != nil {
		return &SnapshotError{Digest: d, Err: err}
	}
	if !st.read {
		last, err := lastSnapshot(ctx, store)
		if err != nil {
			return &SnapshotError{Digest: d, Err: err}
		}
		if last != nil {
			var b sealBody
			if json.Unmarshal(last.Body, &b) == nil {
				st.manifest = &b.Manifest
			}
			st.digest = last.Digest
		}
		st.read = true
	}
	if st.digest == d {
		return nil // in force already: a reload that found nothing new
	}
	body, err := json.Marshal(sealBody{Manifest: s.seal.manifest, Changed: s.changedSince(st.manifest, st.records)})
	if err != nil {
		return &SnapshotError{Digest: d, Err: err}
	}
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	actor := s.actor
	if actor == "" {
		actor = "file"
	}
	if err := store.RecordChange(ectx, &ledger.Change{Kind: ledger.ChangeSnapshot, Subject: "snapshot", Digest: d, Body: body, Actor: actor, At: time.Now().UTC()}); err != nil {
		return &SnapshotError{Digest: d, Err: err}
	}
	m := s.seal.manifest
	st.digest, st.manifest, st.records = d, &m, s.seal.records
	return nil
}

// lastChanger is the optional ability of an evidence store to read the
// newest change of a kind without reading the others
// ([ledger.SQLite.LastChange]).
type lastChanger interface {
	LastChange(ctx context.Context, kind string) (*ledger.Change, error)
}

// lastSnapshot is the newest snapshot entry of the change chain, or nil.
func lastSnapshot(ctx context.Context, store ledger.Store) (*ledger.Change, error) {
	if l, ok := store.(lastChanger); ok {
		c, err := l.LastChange(ctx, ledger.ChangeSnapshot)
		if err != nil {
			return nil, fmt.Errorf("reading the change chain: %w", err)
		}
		return c, nil
	}
	cs, err := store.Changes(ctx, ledger.ChangeSnapshot)
	if err != nil {
		return nil, fmt.Errorf("reading the change chain: %w", err)
	}
	if len(cs) == 0 {
		return nil, nil
	}
	return &cs[len(cs)-1], nil
}

// sealBody is the body of a snapshot change entry (docs/EVIDENCE.md,
// "Snapshots").
type sealBody struct {
	Manifest snapshotManifest `json:"manifest"`
	// Changed holds, for each part that differs from the previous
	// snapshot entry (every part for the first), its content: "rules"
	// and "policy" the documents (the string "none" when absent),
	// "config" the effective configuration, "records" the worker ids
	// whose record changed with their new digest ("none": removed; every
	// worker when the previous map is not known to this process),
	// "trust" the trust settings.
	Changed map[string]json.RawMessage `json:"changed"`
}

func (s *snapshot) changedSince(prev *snapshotManifest, prevRecords map[string]string) map[string]json.RawMessage {
	m := s.seal.manifest
	out := map[string]json.RawMessage{}
	doc := func(data []byte) json.RawMessage {
		if data == nil {
			return json.RawMessage(`"none"`)
		}
		if c := compactJSON(data); c != nil {
			return c
		}
		b, _ := json.Marshal(string(data)) // not JSON: kept as text
		return b
	}
	if prev == nil || prev.Rules != m.Rules {
		out["rules"] = doc(s.src.rulesDoc)
	}
	if prev == nil || prev.Policy != m.Policy {
		out["policy"] = doc(s.src.policyDoc)
	}
	if (prev == nil && m.TrustPolicy != "") || (prev != nil && prev.TrustPolicy != m.TrustPolicy) {
		out["trust_policy"] = doc(s.src.trustDoc)
	}
	if prev == nil || prev.Config != m.Config || prev.ConfigFile != m.ConfigFile {
		out["config"] = s.seal.config
	}
	if prev == nil || prev.Trust != m.Trust {
		out["trust"], _ = json.Marshal(m.Trust)
	}
	if prev == nil || prev.Records != m.Records {
		recs := map[string]string{}
		for id, d := range s.seal.records {
			if prevRecords == nil || prevRecords[id] != d {
				recs[id] = d
			}
		}
		for id := range prevRecords {
			if _, ok := s.seal.records[id]; !ok {
				recs[id] = noPart
			}
		}
		out["records"], _ = json.Marshal(recs)
	}
	return out
}

// snapshotDigestOf is the digest a decision or receipt names: s's, once
// s is recorded; otherwise the error that kept it from being recorded.
func (h *Hall) snapshotDigestOf(s *snapshot) (string, error) {
	if s == nil {
		return "", &SnapshotError{Err: errors.New("the decision names no snapshot")}
	}
	if !s.seal.sealed.Load() {
		h.seals.mu.Lock()
		err := s.seal.lastErr
		h.seals.mu.Unlock()
		if err == nil {
			err = &SnapshotError{Digest: s.digest(), Err: errors.New("not recorded")}
		}
		return "", err
	}
	return s.digest(), nil
}

// denyUnrecorded turns a decision made under a snapshot that could not be
// recorded into DENY_INTERNAL_ERROR (fail closed): nothing is dispatched
// under governance that is not evidence.
func denyUnrecorded(dec *wcp.RouteDecision, err error) {
	msg := "SNAPSHOT_UNRECORDED: the rules, policies and configuration in force could not be recorded in the evidence ledger; nothing is decided under them until they are."
	dec.Denied = true
	dec.DenyReason = &wcp.DenyReason{Code: wcp.DenyInternalError, Message: msg}
	dec.SelectedWorkerSpeciesID = ""
	dec.ArtifactHash = ""
	dec.Policy = nil
	dec.TelemetryEnvelopes = append(dec.TelemetryEnvelopes, wcp.Event{
		EventID: wcp.EvtTaskDenied, Timestamp: dec.Timestamp, CorrelationID: dec.CorrelationID,
		TenantID: dec.TenantID, CapabilityID: dec.CapabilityID, DenyCode: wcp.DenyInternalError, DenyMessage: msg, MatchedRuleID: dec.MatchedRuleID,
	})
}

// everyField is v as a JSON value with every field present: encoding/json
// leaves out omitempty fields, so a false enforce_worker_controls would
// read back as the strict default. Structs become objects of every
// exported field under its JSON name (embedded structs flattened), maps
// and slices are walked, anything else (and any json.Marshaler) is left
// to encoding/json. It covers what Config holds; nil pointers and maps
// stay null.
func everyField(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	if v.Type().Implements(reflect.TypeFor[json.Marshaler]()) {
		return v.Interface()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return everyField(v.Elem())
	case reflect.Struct:
		out := map[string]any{}
		structFields(v, out)
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[fmt.Sprint(it.Key().Interface())] = everyField(it.Value())
		}
		return out
	case reflect.Slice:
		if v.IsNil() {
			return nil
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Interface() // []byte: base64, as encoding/json
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = everyField(v.Index(i))
		}
		return out
	}
	return v.Interface()
}

func structFields(v reflect.Value, out map[string]any) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			structFields(v.Field(i), out)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = everyField(v.Field(i))
	}
}
