package host

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/registry"
	"github.com/wcphall/hall/internal/router"
	"github.com/wcphall/hall/internal/wasmmod"
)

// RecordSection is the name of the custom section a module may carry its
// registry record in. The embedded record has no artifact_hash (it cannot
// name the digest of the bytes that contain it).
const RecordSection = "wcp.record"

// EnrollRequest is a module to enroll and, optionally, its record.
type EnrollRequest struct {
	// Module is the .wasm bytes.
	Module []byte
	// Record is the registry record JSON; nil means the module's wcp.record
	// custom section. When the module carries one, Record must say the same
	// (artifact_hash aside): the embedded record is authoritative.
	Record []byte
	// RecordSource names where Record came from, for messages.
	RecordSource string
	// AddRule appends an explicit dev-only rule for each capability no rule
	// routes to the worker's species.
	AddRule bool
	// Actor is who enrolls, as the evidence ledger records it: "token:<id>"
	// over HTTP, "local:<user>" from the CLI (default "embedder").
	Actor string
	// Signed is where the module came from and the signatures found for
	// it (nil: a local module with no signature). The trust policy
	// (trust.json) is applied to them; what was found and the verdict are
	// recorded in a provenance change before the enrollment change.
	Signed *Signed
}

// EnrollResult says what was enrolled.
type EnrollResult struct {
	// Record is a copy of the sealed record: changing it changes nothing.
	Record       *wcp.Record
	RecordSource string
	ArtifactHash wcp.Digest
	// RecordDigest is the record's seal (sha256 of its canonical JSON).
	RecordDigest wcp.Digest
	RecordPath   string // enrolled/<worker_id>.json
	ModulePath   string // in the artifact store ("" for a store that keeps no files)
	// ChangeID is the enrollment's entry in the evidence ledger.
	ChangeID string
	// Replaced is set when the worker id was enrolled before with other
	// bytes; PreviousArtifact is that module's digest.
	Replaced         bool
	PreviousArtifact string
	// Unrouted lists the capabilities no rule routes to the species (after
	// RulesAdded were appended, those remain empty).
	Unrouted   []string
	RulesAdded []string
	// RoutingOnly is set for a record enrolled without a module
	// (EnrollRecord): it decides, never dispatches. RecordHash is then its
	// verified PyHall record hash, and ArtifactHash is zero.
	RoutingOnly bool
	RecordHash  string
	// Provenance is what was recorded of the module's origin, signer and
	// trust verdict (nil when nothing was: no trust policy and no
	// signature); ProvenanceID is its change entry.
	Provenance   *ProvenanceBody
	ProvenanceID string
	// NoTrustPolicy is set when no trust policy (trust.json) is in force:
	// the worker was enrolled without checking who signed it, as before
	// trust policies existed. Callers say so (hall enroll does, once).
	NoTrustPolicy bool
}

// EnrollError lists every reason a module or record was refused.
type EnrollError struct {
	Source   string // the record's source or the module
	Problems []registry.Problem
	// Code is RECORD_INVALID, RECORD_MISMATCH or MODULE_INVALID.
	code string
}

func (e *EnrollError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.Source + ": " + p.String()
	}
	return strings.Join(lines, "\n")
}

// Code is the stable code of the refusal: RECORD_MISMATCH when a supplied
// record differs from the module's embedded one, MODULE_INVALID when the
// module is not usable, RECORD_INVALID otherwise.
func (e *EnrollError) Code() wcp.Code {
	if e.code == "" {
		return wcp.CodeRecordInvalid
	}
	return wcp.Code(e.code)
}

func moduleError(msg string) *EnrollError {
	return &EnrollError{Source: "module", Problems: []registry.Problem{{Message: msg}}, code: string(wcp.CodeModuleInvalid)}
}

// Enroll validates a module and its record, stores the module in the
// artifact store, compiles it (so that no dispatch pays the cold compile),
// seals the record (its digest, the module's digest and the actor go into
// the evidence ledger's change chain) and writes enrolled/<worker_id>.json
// with artifact_hash set to the module's digest. The new snapshot is
// swapped in atomically; calls already running on a previous module of the
// worker finish on it.
//
// # Notes
//
//   - Enrolling runs no guest code with a grant: the instantiation that
//     proves the module loads runs its start section (if any) with no
//     mount, no egress, no secret and no config, and a module with a start
//     section and any grant is not pre-instantiated afterwards, so its
//     start section first runs with the grant inside a dispatch whose
//     decision is recorded (docs/SECURITY.md). A start section that fails
//     without grants is refused (MODULE_INVALID or a LIMIT_* code).
//   - Once Close (or Shutdown) has begun, Enroll returns ErrClosed
//     (HALL_CLOSED) and does nothing; an enrollment already admitted is
//     waited for like a dispatch, so its seal is never cut off by the
//     ledger closing.
func (h *Hall) Enroll(ctx context.Context, req EnrollRequest) (*EnrollResult, error) {
	ctx, exit, ok := h.life.enter(ctx)
	if !ok {
		return nil, ErrClosed
	}
	defer exit()
	if err := h.checkAdmin(ctx, actor(req.Actor)); err != nil {
		return nil, err
	}
	info, err := wasmmod.Inspect(req.Module)
	if err != nil {
		return nil, moduleError("not a WebAssembly module: " + err.Error())
	}
	embedded, err := wasmmod.CustomSections(req.Module, RecordSection)
	if err != nil {
		return nil, moduleError("not a WebAssembly module: " + err.Error())
	}
	if len(embedded) > 1 {
		return nil, moduleError(fmt.Sprintf("carries %d %s custom sections; a module carries at most one record (rebuild it with hall build)", len(embedded), RecordSection))
	}
	src := req.RecordSource
	if src == "" {
		src = "record"
	}
	raw := req.Record
	switch {
	case raw == nil && len(embedded) == 0:
		return nil, moduleError("no registry record: pass one (--record FILE, or registry_record.json beside the module), or embed it: hall build (Go), hall record embed MODULE.wasm --record FILE (any language)")
	case raw == nil:
		raw, src = embedded[0], "the module's "+RecordSection+" section"
	case len(embedded) == 1:
		if probs := recordDiff(embedded[0], raw); len(probs) > 0 {
			return nil, &EnrollError{Source: src, Problems: probs, code: string(wcp.CodeRecordMismatch)}
		}
	}
	rec, err := registry.ValidateWith(raw, registry.Options{AllowUnknownFields: h.Config().AllowUnknownRecordFields})
	if err != nil {
		var re *registry.RecordError
		if errors.As(err, &re) {
			return nil, &EnrollError{Source: src, Problems: re.Problems}
		}
		return nil, err
	}
	digest := wcp.Digest(sha256.Sum256(req.Module))
	var probs []registry.Problem
	if rec.ArtifactHash != "" && rec.ArtifactHash != digest.String() {
		probs = append(probs, registry.Problem{Field: "artifact_hash", Message: fmt.Sprintf("is %s but the module's digest is %s: the record was generated for other bytes (rebuild it, or drop the field)", rec.ArtifactHash, digest)})
	}
	for _, c := range rec.Capabilities {
		export := rec.Entrypoint(c)
		if !info.HasExport(export, wasmmod.KindFunc) {
			probs = append(probs, registry.Problem{Field: "entrypoints." + c, Message: fmt.Sprintf("the module exports no function %q to serve %s (exports: %s)", export, c, exportNames(info))})
		}
	}
	if e := rec.PrivilegeEnvelope; e != nil && e.NetworkEgress.Mode == "unrestricted" {
		probs = append(probs, registry.Problem{Field: "privilege_envelope.network_egress", Message: `"unrestricted" is not granted by the Hall sandbox: list the "host[:port]" entries the worker needs, or "none"`})
	}
	probs = append(probs, vetGrants(rec, h.opts)...)
	if len(probs) > 0 {
		return nil, &EnrollError{Source: src, Problems: probs}
	}
	rec.ArtifactHash = digest.String()

	h.changeMu.Lock()
	defer h.changeMu.Unlock()
	old := h.snap.Load()
	bw, err := newBoundWorker(rec, old.max)
	if err != nil {
		return nil, err
	}
	prov, err := h.checkTrust(old, rec.WorkerID, digest, req.Module, req.Signed)
	if err != nil {
		return nil, err
	}
	compiled, err := h.load(ctx, old, bw, req.Module)
	if err != nil {
		return nil, moduleError(err.Error())
	}
	installed := false
	defer func() {
		if !installed {
			compiled.Close(context.WithoutCancel(ctx))
		}
	}()
	store, err := h.artifacts()
	if err != nil {
		return nil, err
	}
	if _, err := store.Put(ctx, req.Module); err != nil {
		return nil, err
	}
	res := &EnrollResult{RecordSource: src, ArtifactHash: digest, RecordDigest: bw.recordDigest, ModulePath: ArtifactPath(store, digest), NoTrustPolicy: old.signers == nil}
	if res.Record, err = cloneRecord(bw.rec); err != nil {
		return nil, err
	}
	if prev := old.workers[rec.WorkerID]; prev != nil && prev.module != digest {
		res.Replaced, res.PreviousArtifact = true, prev.rec.ArtifactHash
	}
	out, err := json.MarshalIndent(bw.rec, "", "  ")
	if err != nil {
		return nil, err
	}
	// The seal goes into the ledger before the file is replaced: a crash in
	// between leaves a file that does not match the newest seal, which is
	// reported as tampered (and fixed by enrolling again) — never a record
	// in force that no seal covers.
	ledgerStore, err := h.evidenceStore()
	if err != nil {
		return nil, err
	}
	compact, err := json.Marshal(bw.rec)
	if err != nil {
		return nil, err
	}
	change := &ledger.Change{
		Kind: ledger.ChangeEnroll, Subject: rec.WorkerID, Digest: bw.recordDigest.String(),
		ArtifactHash: digest.String(), Body: compact, Actor: actor(req.Actor), At: time.Now().UTC(),
	}
	ectx, cancel := evidenceContext(ctx)
	defer cancel()
	if prov != nil {
		pc, err := recordProvenance(ectx, ledgerStore, rec.WorkerID, bw.recordDigest.String(), digest.String(), actor(req.Actor), prov)
		if err != nil {
			return nil, err
		}
		res.Provenance, res.ProvenanceID = prov, pc.ChangeID
		bw.prov = &provenance{body: *prov, changeID: pc.ChangeID, hash: pc.Hash}
	}
	if err := ledgerStore.RecordChange(ectx, change); err != nil {
		return nil, fmt.Errorf("enroll: recording the enrollment in the evidence ledger: %w; nothing was enrolled", err)
	}
	res.ChangeID = change.ChangeID
	if res.RecordPath, err = h.src.PutRecord(ctx, rec.WorkerID, append(out, '\n')); err != nil {
		return nil, fmt.Errorf("enroll: %w (the enrollment was sealed; enroll again to write the record)", err)
	}
	next := old.with(bw, actor(req.Actor))
	h.swap(next)
	h.install(ctx, workerKey{rec.WorkerID, bw.recordDigest, digest}, compiled, 0)
	installed = true
	h.retire(ctx, next)

	for _, c := range rec.Capabilities {
		if !next.rules.Routes(c, rec.WorkerSpeciesID) {
			res.Unrouted = append(res.Unrouted, c)
		}
	}
	if req.AddRule && len(res.Unrouted) > 0 {
		added, err := h.addDevRules(ctx, rec.WorkerSpeciesID, res.Unrouted, actor(req.Actor))
		if err != nil {
			return res, err
		}
		res.RulesAdded, res.Unrouted = added, nil
	}
	return res, nil
}

func actor(a string) string {
	if a == "" {
		return "embedder"
	}
	return a
}

// recordDiff lists the fields in which a supplied record differs from the
// module's embedded one, artifact_hash aside (the embedded record cannot
// name the digest of the bytes that contain it).
func recordDiff(embedded, supplied []byte) []registry.Problem {
	var a, b any
	if err := decodeNumbers(embedded, &a); err != nil {
		return []registry.Problem{{Field: RecordSection, Message: "the module's embedded record is not valid JSON: " + err.Error()}}
	}
	if err := decodeNumbers(supplied, &b); err != nil {
		return []registry.Problem{{Message: "not valid JSON: " + err.Error()}}
	}
	if am, ok := a.(map[string]any); ok {
		delete(am, "artifact_hash")
	}
	if bm, ok := b.(map[string]any); ok {
		delete(bm, "artifact_hash")
	}
	var probs []registry.Problem
	var walk func(path string, x, y any)
	walk = func(path string, x, y any) {
		xm, xok := x.(map[string]any)
		ym, yok := y.(map[string]any)
		if xok && yok {
			keys := map[string]bool{}
			for k := range xm {
				keys[k] = true
			}
			for k := range ym {
				keys[k] = true
			}
			names := slices.Sorted(maps.Keys(keys))
			for _, k := range names {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, xm[k], ym[k])
			}
			return
		}
		if !reflect.DeepEqual(x, y) {
			probs = append(probs, registry.Problem{Field: path, Message: fmt.Sprintf("differs from the module's embedded %s record (embedded %s, supplied %s): the embedded record is authoritative; rebuild the module with hall build to change it, or enroll it without --record", RecordSection, jsonText(x), jsonText(y))})
		}
	}
	walk("", a, b)
	return probs
}

func decodeNumbers(data []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return dec.Decode(v)
}

func jsonText(v any) string {
	if v == nil {
		return "absent"
	}
	b, _ := json.Marshal(v)
	if len(b) > 120 {
		return string(b[:117]) + "..."
	}
	return string(b)
}

// addDevRules appends one explicit dev-only rule per capability to the
// rules file, refusing if an earlier rule would shadow it.
func (h *Hall) addDevRules(ctx context.Context, species string, caps []string, who string) ([]string, error) {
	var file wcp.RulesFile
	doc, err := h.src.Get(ctx, DocRules)
	switch {
	case err != nil:
		return nil, fmt.Errorf("--add-rule: %w", err)
	case doc.Present:
		if err := json.Unmarshal(doc.Data, &file); err != nil {
			return nil, fmt.Errorf("--add-rule: %s: %w", doc.Name, err)
		}
	}
	var ids []string
	for _, c := range caps {
		id := "rr_" + strings.NewReplacer(".", "_", "-", "_").Replace(strings.TrimPrefix(c, "cap.")) + "_dev_enrolled"
		match, _ := json.Marshal(map[string]any{"capability_id": c, "env": map[string]any{"in": []string{"dev"}}})
		decision, _ := json.Marshal(map[string]any{
			"candidate_workers_ranked":    []any{map[string]any{"worker_species_id": species, "score_hint": 1.0}},
			"required_controls_suggested": []string{},
			"escalation":                  map[string]any{"policy_gate": false, "human_required_default": false, "rationale": "added by hall enroll --add-rule (dev only)"},
		})
		file.Rules = append(file.Rules, wcp.Rule{RuleID: id, Match: match, Decision: decision})
		ids = append(ids, id)
	}
	rs, err := router.CompileRules(file.Rules)
	if err != nil {
		return nil, fmt.Errorf("--add-rule: %w", err)
	}
	for _, s := range rs.Shadows {
		for _, id := range ids {
			if s.Shadowed == id {
				return nil, fmt.Errorf("--add-rule: rule %s would be shadowed by rule %s (it already matches the capability in dev without this worker): add %s to that rule's candidate_workers_ranked instead", id, s.Shadower, species)
			}
		}
	}
	out, err := json.MarshalIndent(file, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := h.writeRules(ctx, rs, append(out, '\n'), "", who); err != nil {
		return nil, fmt.Errorf("--add-rule: %w", err)
	}
	return ids, nil
}

// exportNames lists the module's callable exports for a message.
func exportNames(info wasmmod.Info) string {
	if names := info.Functions(); len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return "none"
}
