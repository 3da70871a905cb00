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
	CapabilityID  string `cel:"capability_id"`
	Env           string `cel:"env"`
	DataLabel     string `cel:"data_label"`
	TenantRisk    string `cel:"tenant_risk"`
	QoSClass      string `cel:"qos_class"`
	TenantID      string `cel:"tenant_id"`
	CorrelationID string `cel:"correlation_id"`
	// Request is the request object (empty when not given, or when no
	// policy reads it).
	Request map[string]any `cel:"request"`
	// BlastScore is the caller's blast_score, -1 when not given.
	BlastScore       int64          `cel:"blast_score"`
	BlastRadius      map[string]any `cel:"blast_radius"`
	PrivilegeContext map[string]any `cel:"privilege_context"`
	DryRun           bool           `cel:"dry_run"`
}

// Worker is the bound worker (CEL: worker).
type Worker struct {
	ID           string      `cel:"id"`
	Species      string      `cel:"species"`
	RiskTier     string      `cel:"risk_tier"`
	Capabilities []string    `cel:"capabilities"`
	Controls     []string    `cel:"controls"` // currently_implements
	Owner        string      `cel:"owner"`
	Determinism  string      `cel:"determinism"`
	BlastRadius  BlastRadius `cel:"blast_radius"`
	Envelope     Envelope    `cel:"envelope"`
	// ModuleDigest and RecordDigest are "sha256:<hex>" ("" when the
	// record names no module).
	ModuleDigest string `cel:"module_digest"`
	RecordDigest string `cel:"record_digest"`
}

// BlastRadius is a record's blast_radius (zero when it declares none).
type BlastRadius struct {
	Data          int64  `cel:"data"`
	Network       int64  `cel:"network"`
	Financial     int64  `cel:"financial"`
	Time          int64  `cel:"time"`
	Reversibility string `cel:"reversibility"`
}

// Envelope is the privilege envelope in force.
type Envelope struct {
	SecretsAccess []string `cel:"secrets_access"`
	// NetworkEgress is the hosts a worker may reach: [] for none, ["*"]
	// for unrestricted.
	NetworkEgress    []string `cel:"network_egress"`
	FilesystemWrites []string `cel:"filesystem_writes"`
	FilesystemReads  []string `cel:"filesystem_reads"`
	Tools            []string `cel:"tools"`
}

// Rule is the matched routing rule (CEL: rule).
type Rule struct {
	ID                   string   `cel:"id"`
	PolicyGate           bool     `cel:"policy_gate"`
	HumanRequiredDefault bool     `cel:"human_required_default"`
	Controls             []string `cel:"controls"`
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
