package policy

import (
	"encoding/json"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// Facts are what a policy sees: the request, the worker the decision
// bound, the matched rule, the tenant, the blast score and the time.
type Facts struct {
	Input  Input
	Worker Worker
	Rule   Rule
	// BlastScore is the score the router computed (-1 when it did not
	// score the request).
	BlastScore int64
	Now        time.Time
}

// Input is the RouteInput (CEL: input).
type Input struct {
	CapabilityID  string `cel:"capability_id" json:"capability_id,omitempty"`
	Env           string `cel:"env" json:"env,omitempty"`
	DataLabel     string `cel:"data_label" json:"data_label,omitempty"`
	TenantRisk    string `cel:"tenant_risk" json:"tenant_risk,omitempty"`
	QoSClass      string `cel:"qos_class" json:"qos_class,omitempty"`
	TenantID      string `cel:"tenant_id" json:"tenant_id,omitempty"`
	CorrelationID string `cel:"correlation_id" json:"correlation_id,omitempty"`
	// Request is the request object (empty when not given, or when no
	// policy reads it).
	Request map[string]any `cel:"request" json:"request,omitempty"`
	// BlastScore is the caller's blast_score, -1 when not given.
	BlastScore       int64          `cel:"blast_score" json:"blast_score,omitempty"`
	BlastRadius      map[string]any `cel:"blast_radius" json:"blast_radius,omitempty"`
	PrivilegeContext map[string]any `cel:"privilege_context" json:"privilege_context,omitempty"`
	DryRun           bool           `cel:"dry_run" json:"dry_run,omitempty"`
}

// Worker is the bound worker (CEL: worker).
type Worker struct {
	ID           string      `cel:"id" json:"id,omitempty"`
	Species      string      `cel:"species" json:"species,omitempty"`
	RiskTier     string      `cel:"risk_tier" json:"risk_tier,omitempty"`
	Capabilities []string    `cel:"capabilities" json:"capabilities,omitempty"`
	Controls     []string    `cel:"controls" json:"controls,omitempty"` // currently_implements
	Owner        string      `cel:"owner" json:"owner,omitempty"`
	Determinism  string      `cel:"determinism" json:"determinism,omitempty"`
	BlastRadius  BlastRadius `cel:"blast_radius" json:"blast_radius,omitempty"`
	Envelope     Envelope    `cel:"envelope" json:"envelope,omitempty"`
	// ModuleDigest and RecordDigest are "sha256:<hex>" ("" when the
	// record names no module).
	ModuleDigest string `cel:"module_digest" json:"module_digest,omitempty"`
	RecordDigest string `cel:"record_digest" json:"record_digest,omitempty"`
}

// BlastRadius is a record's blast_radius (zero when it declares none).
type BlastRadius struct {
	Data          int64  `cel:"data" json:"data,omitempty"`
	Network       int64  `cel:"network" json:"network,omitempty"`
	Financial     int64  `cel:"financial" json:"financial,omitempty"`
	Time          int64  `cel:"time" json:"time,omitempty"`
	Reversibility string `cel:"reversibility" json:"reversibility,omitempty"`
}

// Envelope is the privilege envelope in force.
type Envelope struct {
	SecretsAccess []string `cel:"secrets_access" json:"secrets_access,omitempty"`
	// NetworkEgress is the hosts a worker may reach: [] for none, ["*"]
	// for unrestricted.
	NetworkEgress    []string `cel:"network_egress" json:"network_egress,omitempty"`
	FilesystemWrites []string `cel:"filesystem_writes" json:"filesystem_writes,omitempty"`
	FilesystemReads  []string `cel:"filesystem_reads" json:"filesystem_reads,omitempty"`
	Tools            []string `cel:"tools" json:"tools,omitempty"`
}

// Rule is the matched routing rule (CEL: rule).
type Rule struct {
	ID                   string   `cel:"id" json:"id,omitempty"`
	PolicyGate           bool     `cel:"policy_gate" json:"policy_gate,omitempty"`
	HumanRequiredDefault bool     `cel:"human_required_default" json:"human_required_default,omitempty"`
	Controls             []string `cel:"controls" json:"controls,omitempty"`
}

// DecodeObject decodes a JSON object for Input.Request and friends; nil,
// empty or not an object gives an empty map.
func DecodeObject(raw json.RawMessage) map[string]any {
	if len(raw) < 2 {
		return map[string]any{}
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil || m == nil {
		return map[string]any{}
	}
	return m
}

// activation resolves the policy variables from one Facts without
// building a map per evaluation.
type activation struct{ f *Facts }

func (a *activation) ResolveName(name string) (any, bool) {
	switch name {
	case "input":
		return &a.f.Input, true
	case "worker":
		return &a.f.Worker, true
	case "rule":
		return &a.f.Rule, true
	case "tenant":
		return types.String(a.f.Input.TenantID), true
	case "blast_score":
		return types.Int(a.f.BlastScore), true
	case "now":
		return types.Timestamp{Time: a.f.Now}, true
	}
	return nil, false
}

func (a *activation) Parent() interpreter.Activation { return nil }
