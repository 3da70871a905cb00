package server

import "github.com/wcphall/hall/host"

// Compliance levels of the Hall as /wcp/health and `hall status` report
// them (docs/HTTP.md).
const (
	levelBasic    = "WCP-Basic"
	levelStandard = "WCP-Standard"
	levelFull     = "WCP-Full"
)

// Compliance returns the Hall's WCP compliance level (WCP-Basic,
// WCP-Standard or WCP-Full) and the checks it is computed from, for the
// API served over h (authentication, tenant binding and the dispatch cap
// are properties of this server and always on).
func Compliance(h *host.Hall) (level string, enabled map[string]bool) {
	cfg := h.Config()
	hc := &cfg.HallConfig
	_, lerr := h.Evidence()
	enabled = map[string]bool{
		"signatory":                cfg.RequireSignatory,
		"attestation":              cfg.RequireWorkerAttestation,
		"envelopes":                cfg.EnforcePrivilegeEnvelopes,
		"ledger":                   lerr == nil,
		"correlation_id":           hc.CorrelationFloor(),
		"required_controls":        hc.ControlsFloor(),
		"blast_scoring_in_prod":    hc.BlastFloor(),
		"allowed_environments":     cfg.EnforceAllowedEnvironments,
		"worker_controls":          cfg.EnforceWorkerControls,
		"authentication":           true,
		"tenant_bound_to_token":    true,
		"dispatch_concurrency_cap": true,
	}
	level = levelBasic
	if enabled["correlation_id"] && enabled["required_controls"] && enabled["ledger"] {
		level = levelStandard
		if enabled["attestation"] && enabled["envelopes"] && enabled["blast_scoring_in_prod"] {
			level = levelFull
		}
	}
	return level, enabled
}
