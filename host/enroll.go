package host

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/wcphall/hall/host/registry"
	"github.com/wcphall/hall/host/router"
	"github.com/wcphall/hall/host/wasmmod"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/fsutil"
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
	// custom section.
	Record []byte
	// RecordSource names where Record came from, for messages.
	RecordSource string
	// AddRule appends an explicit dev-only rule for each capability no rule
	// routes to the worker's species.
	AddRule bool
}

// EnrollResult says what was enrolled.
type EnrollResult struct {
	Record       *wcp.Record
	RecordSource string
	ArtifactHash wcp.Digest
	RecordPath   string // enrolled/<worker_id>.json
	ModulePath   string // in the artifact store
	// Replaced is set when the worker id was enrolled before with other
	// bytes; PreviousArtifact is that module's digest.
	Replaced         bool
	PreviousArtifact string
	// Unrouted lists the capabilities no rule routes to the species (after
	// RulesAdded were appended, those remain empty).
	Unrouted   []string
	RulesAdded []string
}

// EnrollError lists every reason a module or record was refused.
type EnrollError struct {
	Source   string // the record's source or the module
	Problems []registry.Problem
}

func (e *EnrollError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = e.Source + ": " + p.String()
	}
	return strings.Join(lines, "\n")
}

// Enroll validates a module and its record, stores the module in the
// artifact store, compiles it (so that no dispatch pays the cold compile)
// and writes enrolled/<worker_id>.json with artifact_hash set to the
// module's digest. The Hall's registry is updated in place.
func (h *Hall) Enroll(ctx context.Context, req EnrollRequest) (*EnrollResult, error) {
	info, err := wasmmod.Inspect(req.Module)
	if err != nil {
		return nil, &EnrollError{Source: "module", Problems: []registry.Problem{{Message: "not a WebAssembly module: " + err.Error()}}}
	}
	src := req.RecordSource
	raw := req.Record
	if raw == nil {
		sec, ok, err := wasmmod.CustomSection(req.Module, RecordSection)
		if err != nil || !ok {
			return nil, &EnrollError{Source: "module", Problems: []registry.Problem{{Message: "no registry record: pass one (--record FILE, or registry_record.json beside the module) or embed it with `hall build`"}}}
		}
		raw, src = sec, "the module's "+RecordSection+" section"
	}
	if src == "" {
		src = "record"
	}
	rec, err := registry.Validate(raw)
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
	if len(probs) > 0 {
		return nil, &EnrollError{Source: src, Problems: probs}
	}
	if e := rec.PrivilegeEnvelope; e != nil && e.NetworkEgress.Mode == "unrestricted" {
		probs = append(probs, registry.Problem{Field: "privilege_envelope.network_egress", Message: `"unrestricted" is not granted by the Hall sandbox: list the "host[:port]" entries the worker needs, or "none"`})
	}
	if len(probs) > 0 {
		return nil, &EnrollError{Source: src, Problems: probs}
	}
	rec.ArtifactHash = digest.String()

	if err := h.compile(ctx, rec, req.Module); err != nil {
		return nil, &EnrollError{Source: "module", Problems: []registry.Problem{{Message: err.Error()}}}
	}
	store, err := h.artifacts()
	if err != nil {
		return nil, err
	}
	if _, err := store.Put(req.Module); err != nil {
		return nil, err
	}
	res := &EnrollResult{Record: rec, RecordSource: src, ArtifactHash: digest, ModulePath: store.Path(digest)}
	if prev, ok := h.reg.Record(rec.WorkerID); ok && prev.ArtifactHash != rec.ArtifactHash {
		res.Replaced, res.PreviousArtifact = true, prev.ArtifactHash
	}
	out, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return nil, err
	}
	res.RecordPath = filepath.Join(h.opts.RegistryDir, rec.WorkerID+".json")
	if err := os.MkdirAll(h.opts.RegistryDir, 0o755); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	if err := fsutil.WriteFileAtomic(res.RecordPath, append(out, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	h.reg.Enroll(rec)

	for _, c := range rec.Capabilities {
		if !h.Rules().Routes(c, rec.WorkerSpeciesID) {
			res.Unrouted = append(res.Unrouted, c)
		}
	}
	if req.AddRule && len(res.Unrouted) > 0 {
		added, err := h.addDevRules(rec.WorkerSpeciesID, res.Unrouted)
		if err != nil {
			return res, err
		}
		res.RulesAdded, res.Unrouted = added, nil
	}
	return res, nil
}

// addDevRules appends one explicit dev-only rule per capability to the
// rules file, refusing if an earlier rule would shadow it.
func (h *Hall) addDevRules(species string, caps []string) ([]string, error) {
	var file wcp.RulesFile
	data, err := os.ReadFile(h.opts.Rules)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("--add-rule: %w", err)
	default:
		if err := json.Unmarshal(data, &file); err != nil {
			return nil, fmt.Errorf("--add-rule: %s: %w", h.opts.Rules, err)
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
	if err := fsutil.WriteFileAtomic(h.opts.Rules, append(out, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("--add-rule: %w", err)
	}
	h.rules.Store(rs)
	return ids, nil
}

// exportNames lists the module's callable exports for a message.
func exportNames(info wasmmod.Info) string {
	if names := info.Functions(); len(names) > 0 {
		return strings.Join(names, ", ")
	}
	return "none"
}
