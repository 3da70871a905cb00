// Package registry holds the enrolled worker records a decision is made
// against, with PyHall's enrollment semantics (BEHAVIOUR.md §5): the set of
// available species, capability → species, the fleet-wide set of controls
// present, the last privilege envelope and registered code hash of each
// species.
//
// Records enter either through [Registry.Enroll] (PyHall's permissive
// enrollment: nothing is required, invalid control ids are dropped with a
// warning) or through [LoadDir] and [Validate], which first check each file
// against the Hall's JSON schema and id rules and report every problem of
// every file without giving up on the others.
package registry

import (
	"context"
	"slices"
	"strconv"
	"sync"

	"github.com/wcphall/hall/host/wcp"
)

// Registry is a set of enrolled records. It is safe for concurrent use.
type Registry struct {
	mu        sync.RWMutex
	order     []string               // worker ids in first-enrollment order
	records   map[string]*wcp.Record // by worker id
	available map[string]bool        // species
	capSpec   map[string][]string    // capability → species, enrollment order
	controls  map[string]bool
	envelopes map[string]*wcp.PrivilegeEnvelope // species → last non-empty envelope
	hashes    map[string]string                 // species → registered code hash (hex)
}

// New returns an empty registry.
func New() *Registry {
	return &Registry{
		records:   map[string]*wcp.Record{},
		available: map[string]bool{},
		capSpec:   map[string][]string{},
		controls:  map[string]bool{},
		envelopes: map[string]*wcp.PrivilegeEnvelope{},
		hashes:    map[string]string{},
	}
}

// Enroll adds or replaces a record with PyHall's semantics and returns the
// warnings PyHall prints (invalid control ids, invalid code hashes). As in
// PyHall, replacing a worker does not withdraw what its previous record
// contributed (species, capabilities, controls).
func (r *Registry) Enroll(rec *wcp.Record) (warnings []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := rec.WorkerID
	if id == "" {
		id = "unknown-" + strconv.Itoa(len(r.order))
	}
	if _, ok := r.records[id]; !ok {
		r.order = append(r.order, id)
	}
	r.records[id] = rec
	species := rec.WorkerSpeciesID
	if species != "" {
		r.available[species] = true
		for _, c := range rec.Capabilities {
			if !slices.Contains(r.capSpec[c], species) {
				r.capSpec[c] = append(r.capSpec[c], species)
			}
		}
	}
	for _, c := range rec.CurrentlyImplements {
		if wcp.ValidID(wcp.KindControl, c) {
			r.controls[c] = true
		} else {
			warnings = append(warnings, "invalid control id "+quote(c)+" of worker "+quote(id)+" ignored")
		}
	}
	if species != "" && rec.PrivilegeEnvelope != nil && !rec.PrivilegeEnvelope.IsEmpty() {
		r.envelopes[species] = rec.PrivilegeEnvelope
	}
	if species != "" && rec.Attestation != nil && rec.Attestation.CodeHash != "" {
		if wcp.ValidHexDigest(rec.Attestation.CodeHash) {
			r.hashes[species] = rec.Attestation.CodeHash
		} else {
			warnings = append(warnings, "invalid attestation.code_hash for species "+quote(species)+" ignored: expected 64 lowercase hex characters")
		}
	}
	return warnings
}

// Records returns the enrolled records in enrollment order.
func (r *Registry) Records() []*wcp.Record {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*wcp.Record, 0, len(r.order))
	for _, id := range r.order {
		out = append(out, r.records[id])
	}
	return out
}

// Record returns the record enrolled under worker id.
func (r *Registry) Record(workerID string) (*wcp.Record, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rec, ok := r.records[workerID]
	return rec, ok
}

// WorkersOf returns the records of a species in enrollment order.
func (r *Registry) WorkersOf(species string) []*wcp.Record {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*wcp.Record
	for _, id := range r.order {
		if rec := r.records[id]; rec.WorkerSpeciesID == species {
			out = append(out, rec)
		}
	}
	return out
}

// Capabilities returns every capability served, sorted, with its species.
func (r *Registry) Capabilities() map[string][]string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make(map[string][]string, len(r.capSpec))
	for c, s := range r.capSpec {
		out[c] = slices.Clone(s)
	}
	return out
}

// ControlPresent reports whether any enrolled worker implements control.
func (r *Registry) ControlPresent(control string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.controls[control]
}

// Controls returns the controls present, sorted.
func (r *Registry) Controls() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]string, 0, len(r.controls))
	for c := range r.controls {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// WorkerAvailable reports whether a worker of species is enrolled.
func (r *Registry) WorkerAvailable(species string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.available[species]
}

// Ineligible implements the Hall's stricter selection checks
// (router.Eligibility): a species is eligible when at least one of its
// workers allows env (when checkEnv; a worker without allowed_environments
// allows every env) and itself implements every one of its own
// required_controls (when checkControls).
func (r *Registry) Ineligible(species, env string, checkEnv, checkControls bool) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	reason := ""
	for _, id := range r.order {
		rec := r.records[id]
		if rec.WorkerSpeciesID != species {
			continue
		}
		if checkEnv && len(rec.AllowedEnvironments) > 0 && !slices.Contains(rec.AllowedEnvironments, env) {
			if reason == "" {
				reason = wcp.SkipEnvNotAllowed
			}
			continue
		}
		if checkControls && !implementsAll(rec) {
			reason = wcp.SkipWorkerControlsMissing
			continue
		}
		return ""
	}
	return reason
}

// implementsAll reports whether the worker itself implements every control
// its record requires.
func implementsAll(rec *wcp.Record) bool {
	for _, c := range rec.RequiredControls {
		if !slices.Contains(rec.CurrentlyImplements, c) {
			return false
		}
	}
	return true
}

// PrivilegeEnvelope returns the last non-empty envelope enrolled for the
// species, or nil.
func (r *Registry) PrivilegeEnvelope(species string) *wcp.PrivilegeEnvelope {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.envelopes[species]
}

// WorkerHash returns the species' registered attestation code hash (the
// last valid attestation.code_hash enrolled for it).
func (r *Registry) WorkerHash(_ context.Context, species string) (string, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.hashes[species]
	return h, ok
}

func quote(s string) string { return "'" + s + "'" }
