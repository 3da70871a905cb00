package wcp

import (
	"encoding/json"
	"fmt"
)

// Record is a worker registry record: the enrollment document a worker
// submits to the Hall (WCP §6; the fields of PyHall's quick start and
// registry). Members the type does not declare are kept in Extra and
// written back.
type Record struct {
	WorkerID            string             `json:"worker_id"`
	WorkerSpeciesID     string             `json:"worker_species_id"`
	Capabilities        []string           `json:"capabilities"`
	RiskTier            string             `json:"risk_tier,omitzero"`
	Idempotency         string             `json:"idempotency,omitzero"`
	Determinism         string             `json:"determinism,omitzero"`
	RequiredControls    []string           `json:"required_controls,omitzero"`
	CurrentlyImplements []string           `json:"currently_implements,omitzero"`
	AllowedEnvironments []string           `json:"allowed_environments,omitzero"`
	PrivilegeEnvelope   *PrivilegeEnvelope `json:"privilege_envelope,omitzero"`
	BlastRadius         *BlastRadius       `json:"blast_radius,omitzero"`
	Owner               string             `json:"owner,omitzero"`
	Contact             string             `json:"contact,omitzero"`
	// ArtifactHash is "sha256:<hex>" of the worker's .wasm module: what
	// will run is provably what was enrolled.
	ArtifactHash      string       `json:"artifact_hash,omitzero"`
	CatalogVersionMin string       `json:"catalog_version_min,omitzero"`
	Attestation       *Attestation `json:"attestation,omitzero"`
	// Entrypoints maps a capability id to the module export serving it; a
	// capability not listed is served by the export "run".
	Entrypoints map[string]string `json:"entrypoints,omitzero"`
	// Limits are the worker's own resource limits, each capped by the
	// Hall's maximum.
	Limits *WorkerLimits `json:"limits,omitzero"`
	// Description, InputSchema and OutputSchema are Hall extensions that
	// describe the worker to agents (host/mcp shows them as the tool's
	// description and schemas): a sentence on what the worker does, a JSON
	// Schema (an object schema) of the JSON input it takes, and a JSON
	// Schema of the JSON it outputs. The record schema checks them at
	// enrollment.
	Description  string          `json:"description,omitzero"`
	InputSchema  json.RawMessage `json:"input_schema,omitzero"`
	OutputSchema json.RawMessage `json:"output_schema,omitzero"`
	// Config is the Extism plugin config every call of the worker reads
	// with config_get (a Hall extension), under the Hall's own wcp.* keys,
	// which it may not name; hall.json can override it per worker. It is
	// part of the sealed record, never a place for secrets
	// (privilege_envelope.secrets_access).
	Config map[string]string `json:"config,omitzero"`

	Extra Extra `json:"-"`
}

// PrivilegeEnvelope declares everything a worker may touch; the Hall's
// sandbox grants exactly this and nothing else.
type PrivilegeEnvelope struct {
	SecretsAccess    []string      `json:"secrets_access,omitzero"`
	NetworkEgress    NetworkEgress `json:"network_egress,omitzero"`
	FilesystemWrites []string      `json:"filesystem_writes,omitzero"`
	// FilesystemReads are directories mounted read-only (a Hall addition).
	FilesystemReads []string `json:"filesystem_reads,omitzero"`
	Tools           []string `json:"tools,omitzero"`
	// PropagateTraceContext sends the W3C traceparent (and tracestate)
	// of the Hall's egress span upstream with each of the worker's HTTP
	// requests, when the Hall traces (a Hall addition; default false:
	// trace ids never leave for third parties unless the record says so,
	// and a record is sealed evidence). docs/OBSERVABILITY.md.
	PropagateTraceContext bool `json:"propagate_trace_context,omitzero"`
	// Egress is the block PyHall's stock privilege policy inspects.
	Egress *LegacyEgress `json:"egress,omitzero"`

	Extra Extra `json:"-"`
}

// LegacyEgress is PyHall's egress block: {"allowlist": ["host", ...]}.
type LegacyEgress struct {
	Allowlist []string `json:"allowlist,omitzero"`
	Extra     Extra    `json:"-"`
}

// Granted returns what the record grants its worker: its privilege
// envelope, or an empty one (nothing granted, `{}` in JSON) when it
// declares none. `hall enroll` and POST /enroll show it.
func (r *Record) Granted() *PrivilegeEnvelope {
	if r.PrivilegeEnvelope == nil {
		return &PrivilegeEnvelope{}
	}
	return r.PrivilegeEnvelope
}

// IsEmpty reports whether the envelope declares nothing at all (an empty
// JSON object), which PyHall treats as no envelope.
func (p *PrivilegeEnvelope) IsEmpty() bool {
	return p == nil || (p.SecretsAccess == nil && p.NetworkEgress.IsZero() && p.FilesystemWrites == nil &&
		p.FilesystemReads == nil && p.Tools == nil && p.Egress == nil && !p.PropagateTraceContext && len(p.Extra) == 0)
}

// NetworkEgress is "none" (the default: no network at all), "unrestricted",
// or a list of "host" / "host:port" entries.
type NetworkEgress struct {
	Mode  string   // "none", "unrestricted", or "" with Hosts
	Hosts []string // allow-list when Mode is ""
}

// IsZero reports whether the egress was not declared.
func (e NetworkEgress) IsZero() bool { return e.Mode == "" && e.Hosts == nil }

// None reports whether no network is allowed.
func (e NetworkEgress) None() bool { return e.Mode == "none" || (e.Mode == "" && len(e.Hosts) == 0) }

// MarshalJSON writes the mode string or the host list.
func (e NetworkEgress) MarshalJSON() ([]byte, error) {
	if e.Mode != "" {
		return json.Marshal(e.Mode)
	}
	if e.Hosts == nil {
		return []byte(`"none"`), nil
	}
	return json.Marshal(e.Hosts)
}

// UnmarshalJSON reads a mode string or a host list.
func (e *NetworkEgress) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s != "none" && s != "unrestricted" {
			return fmt.Errorf(`network_egress must be "none", "unrestricted" or a list of "host[:port]"; got %q`, s)
		}
		*e = NetworkEgress{Mode: s}
		return nil
	}
	var hosts []string
	if err := json.Unmarshal(b, &hosts); err != nil {
		return fmt.Errorf(`network_egress must be "none", "unrestricted" or a list of "host[:port]"`)
	}
	if hosts == nil {
		hosts = []string{}
	}
	*e = NetworkEgress{Hosts: hosts}
	return nil
}

// BlastRadius is the worker's declared blast radius (WCP §7): four 0–5
// dimensions and a reversibility class.
type BlastRadius struct {
	Data          int    `json:"data"`
	Network       int    `json:"network"`
	Financial     int    `json:"financial"`
	Time          int    `json:"time"`
	Reversibility string `json:"reversibility,omitzero"`
	Extra         Extra  `json:"-"`
}

// Attestation is a worker's registered code hash (WCP §5.10).
type Attestation struct {
	// CodeHash is the known-good SHA-256 of the worker's code, bare hex.
	CodeHash   string `json:"code_hash,omitzero"`
	HashMethod string `json:"hash_method,omitzero"`
	SourceFile string `json:"source_file,omitzero"`
	AttestedAt string `json:"attested_at,omitzero"`
	AttestedBy string `json:"attested_by,omitzero"`
	Extra      Extra  `json:"-"`
}

// WorkerLimits are per-worker resource limits declared in a record.
type WorkerLimits struct {
	TimeoutMS   int64 `json:"timeout_ms,omitzero"`
	MemoryMB    int64 `json:"memory_mb,omitzero"`
	OutputBytes int64 `json:"output_bytes,omitzero"`
	Extra       Extra `json:"-"`
}

// The JSON methods below keep undeclared members (Extra) on every object
// of a record.

func (r *Record) UnmarshalJSON(b []byte) (err error) {
	type plain Record
	var p plain
	extra, err := decodeWithExtra(b, &p)
	*r = Record(p)
	r.Extra = extra
	return err
}

func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	return encodeWithExtra(plain(r), r.Extra)
}

func (p *PrivilegeEnvelope) UnmarshalJSON(b []byte) error {
	type plain PrivilegeEnvelope
	var v plain
	extra, err := decodeWithExtra(b, &v)
	*p = PrivilegeEnvelope(v)
	p.Extra = extra
	return err
}

func (p PrivilegeEnvelope) MarshalJSON() ([]byte, error) {
	type plain PrivilegeEnvelope
	return encodeWithExtra(plain(p), p.Extra)
}

func (e *LegacyEgress) UnmarshalJSON(b []byte) error {
	type plain LegacyEgress
	var v plain
	extra, err := decodeWithExtra(b, &v)
	*e = LegacyEgress(v)
	e.Extra = extra
	return err
}

func (e LegacyEgress) MarshalJSON() ([]byte, error) {
	type plain LegacyEgress
	return encodeWithExtra(plain(e), e.Extra)
}

func (br *BlastRadius) UnmarshalJSON(b []byte) error {
	type plain BlastRadius
	var v plain
	extra, err := decodeWithExtra(b, &v)
	*br = BlastRadius(v)
	br.Extra = extra
	return err
}

func (br BlastRadius) MarshalJSON() ([]byte, error) {
	type plain BlastRadius
	return encodeWithExtra(plain(br), br.Extra)
}

func (a *Attestation) UnmarshalJSON(b []byte) error {
	type plain Attestation
	var v plain
	extra, err := decodeWithExtra(b, &v)
	*a = Attestation(v)
	a.Extra = extra
	return err
}

func (a Attestation) MarshalJSON() ([]byte, error) {
	type plain Attestation
	return encodeWithExtra(plain(a), a.Extra)
}

func (l *WorkerLimits) UnmarshalJSON(b []byte) error {
	type plain WorkerLimits
	var v plain
	extra, err := decodeWithExtra(b, &v)
	*l = WorkerLimits(v)
	l.Extra = extra
	return err
}

func (l WorkerLimits) MarshalJSON() ([]byte, error) {
	type plain WorkerLimits
	return encodeWithExtra(plain(l), l.Extra)
}

// Entrypoint returns the module export that serves capability.
func (r *Record) Entrypoint(capability string) string {
	if e, ok := r.Entrypoints[capability]; ok && e != "" {
		return e
	}
	return "run"
}

// Rule is one routing rule of rules.json as written. Its match and
// decision are kept raw: package router compiles them with PyHall's
// semantics and reports malformed content.
type Rule struct {
	RuleID   string          `json:"rule_id"`
	Match    json.RawMessage `json:"match,omitempty"`
	Decision json.RawMessage `json:"decision,omitempty"`
	Extra    Extra           `json:"-"`
}

func (r *Rule) UnmarshalJSON(b []byte) error {
	type plain Rule
	var v plain
	extra, err := decodeWithExtra(b, &v)
	*r = Rule(v)
	r.Extra = extra
	return err
}

func (r Rule) MarshalJSON() ([]byte, error) {
	type plain Rule
	return encodeWithExtra(plain(r), r.Extra)
}

// RulesFile is the rules.json document: {"rules": [...]}, evaluated in
// order.
type RulesFile struct {
	Rules []Rule `json:"rules"`
	Extra Extra  `json:"-"`
}

func (f *RulesFile) UnmarshalJSON(b []byte) error {
	type plain RulesFile
	var v plain
	extra, err := decodeWithExtra(b, &v)
	*f = RulesFile(v)
	f.Extra = extra
	return err
}

func (f RulesFile) MarshalJSON() ([]byte, error) {
	type plain RulesFile
	return encodeWithExtra(plain(f), f.Extra)
}
