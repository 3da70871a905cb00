package wcp

// HallConfig is the Hall-wide governance configuration (PyHall's
// HallConfig). Its zero value behaves exactly as PyHall with no hall_config:
// floors PyHall turns on by default are *bool fields where nil means "on".
//
// The Hall's own generated configuration (DefaultStrict) turns on the
// stricter checks documented in docs/GUIDE.md; they are separate fields whose
// zero value is PyHall's behaviour.
type HallConfig struct {
	// RequireSignatory denies tenants not listed in AllowedTenants
	// (DENY_UNKNOWN_TENANT).
	RequireSignatory bool     `json:"require_signatory"`
	AllowedTenants   []string `json:"allowed_tenants"`
	// RequireCredential has no effect in WCP v0.1; setting it logs a
	// warning, as PyHall does.
	RequireCredential bool `json:"require_credential"`
	// RequireWorkerAttestation compares the selected worker's registered
	// and current code hashes before allowing.
	RequireWorkerAttestation bool `json:"require_worker_attestation"`

	EnforceCorrelationID      *bool `json:"enforce_correlation_id,omitempty"`        // nil = true
	EnforceRequiredControls   *bool `json:"enforce_required_controls,omitempty"`     // nil = true
	EnforceBlastScoringInProd *bool `json:"enforce_blast_scoring_in_prod,omitempty"` // nil = true
	EnforcePrivilegeEnvelopes bool  `json:"enforce_privilege_envelopes"`

	// EnforceAllowedEnvironments skips candidates whose enrolled workers do
	// not list the request's env in allowed_environments (skip reason
	// "env_not_allowed"). PyHall ignores allowed_environments.
	EnforceAllowedEnvironments bool `json:"enforce_allowed_environments,omitempty"`
	// EnforceWorkerControls skips candidates whose own required_controls are
	// not all in their currently_implements (skip reason
	// "worker_controls_missing"). PyHall checks controls fleet-wide only.
	EnforceWorkerControls bool `json:"enforce_worker_controls,omitempty"`
}

func floor(b *bool) bool { return b == nil || *b }

// CorrelationFloor reports whether the correlation-id check is forced on.
func (c *HallConfig) CorrelationFloor() bool { return c == nil || floor(c.EnforceCorrelationID) }

// ControlsFloor reports whether the required-controls check is forced on.
func (c *HallConfig) ControlsFloor() bool { return c == nil || floor(c.EnforceRequiredControls) }

// BlastFloor reports whether blast scoring is forced on in prod/edge.
func (c *HallConfig) BlastFloor() bool { return c == nil || floor(c.EnforceBlastScoringInProd) }

// DefaultStrict returns the configuration `hall` generates for a new Hall:
// PyHall's floors plus worker attestation, privilege envelopes, allowed
// environments and per-worker controls enforced.
func DefaultStrict() HallConfig {
	return HallConfig{
		RequireWorkerAttestation:   true,
		EnforcePrivilegeEnvelopes:  true,
		EnforceAllowedEnvironments: true,
		EnforceWorkerControls:      true,
	}
}
