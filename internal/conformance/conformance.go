// Package conformance runs WCP conformance vectors (PyHall's recorded
// decisions, ../shared/wcp/vectors) through the Hall's decision engine and
// compares the outcome with what PyHall decided. It backs `hall
// conformance` and the conformance tests.
package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"

	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/registry"
	"github.com/wcphall/hall/internal/router"
)

// Vector is one conformance case: everything make_decision needs, plus
// PyHall's recorded outcome.
type Vector struct {
	Name                string             `json:"name"`
	Rules               json.RawMessage    `json:"rules"`
	Records             []json.RawMessage  `json:"records"`
	HallConfig          *wcp.HallConfig    `json:"hall_config"`
	PolicyGate          *GateStandIn       `json:"policy_gate"`
	Privilege           *PrivilegeStandIn  `json:"privilege"`
	CurrentWorkerHashes map[string]*string `json:"current_worker_hashes"`
	Input               json.RawMessage    `json:"input"`
	Expect              json.RawMessage    `json:"expect"`
}

// GateStandIn is a policy gate that always answers the same; Decision
// "RAISE" makes it fail.
type GateStandIn struct {
	Decision      string `json:"decision"`
	PolicyVersion string `json:"policy_version"`
	Reason        string `json:"reason"`
}

// Evaluate implements router.PolicyGate.
func (g *GateStandIn) Evaluate(context.Context, router.PolicyContext) (router.PolicyResult, error) {
	if g.Decision == "RAISE" {
		return router.PolicyResult{}, errors.New("policy gate stand-in raised")
	}
	return router.PolicyResult{Decision: g.Decision, PolicyVersion: g.PolicyVersion, Reason: g.Reason}, nil
}

// PrivilegeStandIn configures PyHall's stock privilege policy.
type PrivilegeStandIn struct {
	EgressAllowlist map[string][]string `json:"egress_allowlist"`
}

type liveHashes map[string]*string

func (m liveHashes) WorkerHash(_ context.Context, species string) (string, bool) {
	h := m[species]
	if h == nil {
		return "", false
	}
	return *h, true
}

// ReadFile decodes a vectors file: one vector object or an array of them.
func ReadFile(r io.Reader) ([]Vector, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse decodes one vector object or an array of them.
func Parse(data []byte) ([]Vector, error) {
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		var v Vector
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("not a conformance vector: %w", err)
		}
		return []Vector{v}, nil
	}
	var vs []Vector
	if err := json.Unmarshal(data, &vs); err != nil {
		return nil, fmt.Errorf("expected a vector object or a JSON array of vectors: %w", err)
	}
	return vs, nil
}

// Invalid is the outcome for an input PyHall refuses to construct.
type Invalid struct {
	InvalidInput bool     `json:"invalid_input"`
	ErrorFields  []string `json:"error_fields"`
}

// Run decides one vector. It returns either a *wcp.RouteDecision or an
// *Invalid; an error means the vector itself is malformed (rules or
// records that do not load).
func Run(ctx context.Context, v *Vector) (any, error) {
	in, err := wcp.ParseRouteInput(v.Input)
	if err != nil {
		var ie *wcp.InputError
		if errors.As(err, &ie) {
			return &Invalid{InvalidInput: true, ErrorFields: ie.Fields()}, nil
		}
		return nil, fmt.Errorf("%s: input: %w", v.Name, err)
	}
	rules, err := router.ParseRules(v.Rules)
	if err != nil {
		return nil, fmt.Errorf("%s: rules: %w", v.Name, err)
	}
	reg := registry.New()
	for i, raw := range v.Records {
		var rec wcp.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			return nil, fmt.Errorf("%s: records[%d]: %w", v.Name, i, err)
		}
		reg.Enroll(&rec)
	}
	opts := router.Options{Config: v.HallConfig}
	if v.PolicyGate != nil {
		opts.Gate = v.PolicyGate
	}
	if v.Privilege != nil {
		opts.Envelopes = reg
		opts.Privilege = registry.StockPrivilegePolicy{EgressAllowlist: v.Privilege.EgressAllowlist}
	}
	if v.CurrentWorkerHashes != nil {
		opts.RegisteredHashes = reg
		opts.CurrentHashes = liveHashes(v.CurrentWorkerHashes)
	}
	dec := router.Decide(ctx, &in, rules, reg, opts)
	return &dec, nil
}

// Summary reduces an outcome to the fields the vectors record.
func Summary(outcome any) (map[string]any, error) {
	b, err := json.Marshal(outcome)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if _, ok := outcome.(*Invalid); ok {
		return m, nil
	}
	s := map[string]any{}
	for _, k := range []string{"denied", "matched_rule_id", "selected_worker_species_id",
		"required_controls_effective", "recommended_profiles_effective", "escalation_effective",
		"preconditions_checked", "candidate_workers_ranked", "dry_run",
		"worker_attestation_checked", "worker_attestation_valid"} {
		s[k] = m[k]
	}
	s["deny_code"] = nil
	s["deny_extra"] = nil
	if dr, ok := m["deny_reason_if_denied"].(map[string]any); ok {
		s["deny_code"] = dr["code"]
		extra := map[string]any{}
		for k, v := range dr {
			if k != "code" && k != "message" {
				extra[k] = v
			}
		}
		s["deny_extra"] = extra
	}
	ids := []any{}
	if evs, ok := m["telemetry_envelopes"].([]any); ok {
		for _, e := range evs {
			if em, ok := e.(map[string]any); ok {
				ids = append(ids, em["event_id"])
			}
		}
	}
	s["telemetry_event_ids"] = ids
	return s, nil
}

// Compare returns one line per expected field the outcome gets wrong.
func Compare(expect json.RawMessage, outcome any) ([]string, error) {
	var want map[string]any
	if err := json.Unmarshal(expect, &want); err != nil {
		return nil, fmt.Errorf("expect: %w", err)
	}
	got, err := Summary(outcome)
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var diffs []string
	for _, k := range keys {
		w := want[k]
		g, ok := got[k]
		if k == "deny_extra" && isEmptyObject(w) && g == nil {
			continue
		}
		if !ok || !reflect.DeepEqual(w, g) {
			diffs = append(diffs, fmt.Sprintf("%s: want %s, got %s", k, compact(w), compact(g)))
		}
	}
	return diffs, nil
}

func isEmptyObject(v any) bool {
	m, ok := v.(map[string]any)
	return v == nil || (ok && len(m) == 0)
}

func compact(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return string(bytes.TrimSpace(b.Bytes()))
}
