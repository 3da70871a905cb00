package wcp

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/wcphall/hall/internal/pyval"
)

// The closed value sets of a RouteInput (WCP §4.1, as PyHall enforces them:
// exact and case-sensitive). Validation reads these; the exported
// functions hand out copies, so no caller can widen a set.
var (
	envs        = []string{"dev", "stage", "prod", "edge"}
	dataLabels  = []string{"PUBLIC", "INTERNAL", "RESTRICTED"}
	tenantRisks = []string{"low", "medium", "high"}
	qosClasses  = []string{"P0", "P1", "P2", "P3"}
)

// Envs returns the envs a RouteInput may name (a fresh copy).
func Envs() []string { return slices.Clone(envs) }

// DataLabels returns the data labels a RouteInput may name (a fresh copy).
func DataLabels() []string { return slices.Clone(dataLabels) }

// TenantRisks returns the tenant risks a RouteInput may name (a fresh copy).
func TenantRisks() []string { return slices.Clone(tenantRisks) }

// QoSClasses returns the QoS classes a RouteInput may name (a fresh copy).
func QoSClasses() []string { return slices.Clone(qosClasses) }

// RouteInput is a capability request: what an agent asks the Hall for
// (WCP §4.1). Build one with ParseRouteInput or fill the fields and call
// Validate; Decide itself re-checks what PyHall's router re-checks.
type RouteInput struct {
	CapabilityID  string `json:"capability_id"`
	Env           string `json:"env"`
	DataLabel     string `json:"data_label"`
	TenantRisk    string `json:"tenant_risk"`
	QoSClass      string `json:"qos_class"`
	TenantID      string `json:"tenant_id"`
	CorrelationID string `json:"correlation_id"`
	// Request is the request payload, a JSON object ({} when unset).
	Request json.RawMessage `json:"request"`
	// BlastRadius and PrivilegeContext are JSON objects or nil; routing
	// does not read them, they only enter the request hash.
	BlastRadius json.RawMessage `json:"blast_radius"`
	// BlastScore is the caller's own score (any integer is accepted here;
	// Decide denies values outside [0, 100]). It can raise the computed
	// score, never lower it.
	BlastScore       *big.Int        `json:"blast_score"`
	PrivilegeContext json.RawMessage `json:"privilege_context"`
	DryRun           bool            `json:"dry_run"`
	TenantCredential *string         `json:"tenant_credential"`
}

// Bounds on caller strings, a deviation from PyHall, which accepts any
// length and any character (docs/GUIDE.md, "Conformance with PyHall and deliberate deviations"). A caller string is
// copied into the decision, every telemetry event, the receipts and their
// indexes: ten 7 MiB correlation ids grew hall.db from 20 MB to 1.4 GB.
// Control characters are refused because they are signed into evidence and
// printed by the CLI (terminal escape sequences).
const (
	// MaxIDBytes bounds capability_id, tenant_id and correlation_id.
	MaxIDBytes = 256
	// MaxCredentialBytes bounds tenant_credential.
	MaxCredentialBytes = 4096
	// MaxObjectBytes bounds the canonical JSON of request, blast_radius
	// and privilege_context, each.
	MaxObjectBytes = 64 << 10
)

// checkCallerString reports why s cannot be accepted as a caller string
// of at most maxBytes, or "".
func checkCallerString(s string, maxBytes int) string {
	if len(s) > maxBytes {
		return fmt.Sprintf("is %d bytes long; at most %d bytes are accepted", len(s), maxBytes)
	}
	for i, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) {
			return fmt.Sprintf("contains the control character U+%04X at byte %d; control characters are not accepted", r, i)
		}
	}
	return ""
}

// FieldError is one problem with one field of a document.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// InputError lists every field of a RouteInput that cannot be accepted.
// It corresponds to PyHall refusing to construct the RouteInput.
type InputError struct {
	Problems []FieldError
}

func (e *InputError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	return "invalid route input: " + strings.Join(parts, "; ")
}

// Fields returns the sorted, distinct names of the offending fields.
func (e *InputError) Fields() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range e.Problems {
		if !seen[p.Field] {
			seen[p.Field] = true
			out = append(out, p.Field)
		}
	}
	sort.Strings(out)
	return out
}

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// ParseRouteInput decodes a RouteInput from JSON with PyHall's (pydantic
// lax mode) coercions: dry_run accepts 0/1 and yes/no-style strings,
// blast_score accepts integral floats and numeric strings, unknown members
// are ignored. Every offending field is reported in one *InputError.
func ParseRouteInput(data []byte) (RouteInput, error) {
	v, err := pyval.Decode(data)
	if err != nil {
		return RouteInput{}, &InputError{Problems: []FieldError{{Field: "(document)", Message: "not valid JSON: " + err.Error()}}}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return RouteInput{}, &InputError{Problems: []FieldError{{Field: "(document)", Message: "must be a JSON object"}}}
	}
	return RouteInputFromMap(obj)
}

// RouteInputFromMap is ParseRouteInput for an already decoded object (as
// produced by pyval.Decode).
func RouteInputFromMap(obj map[string]any) (RouteInput, error) {
	var in RouteInput
	var problems []FieldError
	bad := func(field, format string, args ...any) {
		problems = append(problems, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	str := func(field string, dst *string, set []string) {
		raw, present := obj[field]
		if !present {
			bad(field, "is required")
			return
		}
		s, ok := raw.(string)
		if !ok {
			bad(field, "must be a string")
			return
		}
		if set != nil && !oneOf(s, set) {
			if msg := checkCallerString(s, MaxIDBytes); msg != "" {
				bad(field, "must be one of %s (exact, case-sensitive); it %s", strings.Join(set, ", "), msg)
				return
			}
			bad(field, "must be one of %s (exact, case-sensitive); got %q", strings.Join(set, ", "), s)
			return
		}
		if set == nil {
			if msg := checkCallerString(s, MaxIDBytes); msg != "" {
				bad(field, "%s", msg)
				return
			}
		}
		*dst = s
	}
	str("capability_id", &in.CapabilityID, nil)
	str("env", &in.Env, envs)
	str("data_label", &in.DataLabel, dataLabels)
	str("tenant_risk", &in.TenantRisk, tenantRisks)
	str("qos_class", &in.QoSClass, qosClasses)
	str("tenant_id", &in.TenantID, nil)
	if _, ok := obj["tenant_id"].(string); ok && pyval.Blank(in.TenantID) {
		bad("tenant_id", "must not be empty or whitespace")
	}
	str("correlation_id", &in.CorrelationID, nil)

	if raw, present := obj["request"]; present {
		if m, ok := raw.(map[string]any); ok {
			in.Request = marshalValue(m)
			if len(in.Request) > MaxObjectBytes {
				bad("request", "is %d bytes of JSON; at most %d bytes are accepted", len(in.Request), MaxObjectBytes)
			}
		} else {
			bad("request", "must be a JSON object")
		}
	}
	for _, f := range []struct {
		name string
		dst  *json.RawMessage
	}{{"blast_radius", &in.BlastRadius}, {"privilege_context", &in.PrivilegeContext}} {
		switch raw := obj[f.name].(type) {
		case nil:
		case map[string]any:
			*f.dst = marshalValue(raw)
			if len(*f.dst) > MaxObjectBytes {
				bad(f.name, "is %d bytes of JSON; at most %d bytes are accepted", len(*f.dst), MaxObjectBytes)
			}
		default:
			bad(f.name, "must be a JSON object or null")
		}
	}
	if raw, present := obj["blast_score"]; present && raw != nil {
		if n, err := laxInt(raw); err != nil {
			bad("blast_score", "%s", err)
		} else {
			in.BlastScore = n
		}
	}
	if raw, present := obj["dry_run"]; present {
		if b, ok := pyval.LaxBool(raw); ok {
			in.DryRun = b
		} else {
			bad("dry_run", "must be a boolean (true/false)")
		}
	}
	switch raw := obj["tenant_credential"].(type) {
	case nil:
	case string:
		if msg := checkCallerString(raw, MaxCredentialBytes); msg != "" {
			bad("tenant_credential", "%s", msg)
		} else {
			in.TenantCredential = &raw
		}
	default:
		bad("tenant_credential", "must be a string or null")
	}
	if problems != nil {
		return RouteInput{}, &InputError{Problems: problems}
	}
	return in, nil
}

func marshalValue(v any) json.RawMessage { return appendValue(nil, v) }

var intString = regexp.MustCompile(`^[+-]?[0-9]+(_[0-9]+)*(\.0*)?$`)

// laxInt converts a JSON value to an integer as pydantic's lax int does.
func laxInt(v any) (*big.Int, error) {
	switch x := v.(type) {
	case bool:
		return nil, fmt.Errorf("must be an integer or null, not a boolean")
	case json.Number:
		r, ok := new(big.Rat).SetString(string(x))
		if !ok || !r.IsInt() {
			return nil, fmt.Errorf("must be an integer; got %s", x)
		}
		return new(big.Int).Set(r.Num()), nil
	case string:
		s := pyval.Strip(x)
		if !intString.MatchString(s) {
			return nil, fmt.Errorf("must be an integer; got %q", x)
		}
		s, _, _ = strings.Cut(s, ".")
		s = strings.ReplaceAll(strings.TrimPrefix(s, "+"), "_", "")
		n, _ := new(big.Int).SetString(s, 10)
		return n, nil
	}
	return nil, fmt.Errorf("must be an integer or null")
}

// Validate reports every field of in that PyHall would refuse at
// construction (use it for inputs built in Go rather than parsed).
func (in *RouteInput) Validate() error {
	var problems []FieldError
	for _, f := range []struct {
		name, v string
		set     []string
	}{{"env", in.Env, envs}, {"data_label", in.DataLabel, dataLabels}, {"tenant_risk", in.TenantRisk, tenantRisks}, {"qos_class", in.QoSClass, qosClasses}} {
		if !oneOf(f.v, f.set) {
			problems = append(problems, FieldError{f.name, fmt.Sprintf("must be one of %s; got %q", strings.Join(f.set, ", "), f.v)})
		}
	}
	if pyval.Blank(in.TenantID) {
		problems = append(problems, FieldError{"tenant_id", "must not be empty or whitespace"})
	}
	for _, f := range []struct{ name, v string }{{"capability_id", in.CapabilityID}, {"tenant_id", in.TenantID}, {"correlation_id", in.CorrelationID}} {
		if msg := checkCallerString(f.v, MaxIDBytes); msg != "" {
			problems = append(problems, FieldError{f.name, msg})
		}
	}
	if in.TenantCredential != nil {
		if msg := checkCallerString(*in.TenantCredential, MaxCredentialBytes); msg != "" {
			problems = append(problems, FieldError{"tenant_credential", msg})
		}
	}
	if len(in.Request) > 0 && !isObject(in.Request) {
		problems = append(problems, FieldError{"request", "must be a JSON object"})
	}
	for _, f := range []struct {
		name string
		v    json.RawMessage
	}{{"request", in.Request}, {"blast_radius", in.BlastRadius}, {"privilege_context", in.PrivilegeContext}} {
		if len(f.v) > MaxObjectBytes {
			problems = append(problems, FieldError{f.name, fmt.Sprintf("is %d bytes of JSON; at most %d bytes are accepted", len(f.v), MaxObjectBytes)})
		}
	}
	if problems != nil {
		return &InputError{Problems: problems}
	}
	return nil
}

func isObject(raw json.RawMessage) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(raw, &m) == nil && m != nil
}

// MarshalJSON writes all thirteen fields, null where unset and {} for an
// unset request, as PyHall's model dump does.
func (in RouteInput) MarshalJSON() ([]byte, error) {
	type plain RouteInput
	p := plain(in)
	if len(p.Request) == 0 {
		p.Request = json.RawMessage("{}")
	}
	return json.Marshal(p)
}

// Canonical returns the canonical JSON of in: all thirteen fields, keys
// sorted at every level, no whitespace. RequestHash hashes it.
func (in *RouteInput) Canonical(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"blast_radius":`...)
	if b, err = appendCanonical(b, in.BlastRadius); err != nil {
		return b, fmt.Errorf("blast_radius: %w", err)
	}
	b = append(b, `,"blast_score":`...)
	if in.BlastScore == nil {
		b = append(b, "null"...)
	} else if in.BlastScore.IsInt64() && in.BlastScore.Int64() <= 1<<53 && in.BlastScore.Int64() >= -(1<<53) {
		b = in.BlastScore.Append(b, 10)
	} else if b, err = appendNumber(b, in.BlastScore.String()); err != nil {
		// RFC 8785: an integer beyond ±2^53 is written as the double it
		// denotes, as every other number in the canonical form.
		return b, fmt.Errorf("blast_score: %w", err)
	}
	b = append(b, `,"capability_id":`...)
	b = appendString(b, in.CapabilityID)
	b = append(b, `,"correlation_id":`...)
	b = appendString(b, in.CorrelationID)
	b = append(b, `,"data_label":`...)
	b = appendString(b, in.DataLabel)
	if in.DryRun {
		b = append(b, `,"dry_run":true,"env":`...)
	} else {
		b = append(b, `,"dry_run":false,"env":`...)
	}
	b = appendString(b, in.Env)
	b = append(b, `,"privilege_context":`...)
	if b, err = appendCanonical(b, in.PrivilegeContext); err != nil {
		return b, fmt.Errorf("privilege_context: %w", err)
	}
	b = append(b, `,"qos_class":`...)
	b = appendString(b, in.QoSClass)
	b = append(b, `,"request":`...)
	req := in.Request
	if len(req) == 0 {
		req = emptyObject
	}
	if b, err = appendCanonical(b, req); err != nil {
		return b, fmt.Errorf("request: %w", err)
	}
	b = append(b, `,"tenant_credential":`...)
	if in.TenantCredential == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *in.TenantCredential)
	}
	b = append(b, `,"tenant_id":`...)
	b = appendString(b, in.TenantID)
	b = append(b, `,"tenant_risk":`...)
	b = appendString(b, in.TenantRisk)
	return append(b, '}'), nil
}

// emptyObject is the request of a RouteInput without one.
var emptyObject = json.RawMessage("{}")

// Digest is a SHA-256 digest written as "sha256:<hex>".
type Digest [sha256.Size]byte

// String returns "sha256:" and the lowercase hex digest.
func (d Digest) String() string {
	var b [7 + 2*sha256.Size]byte
	copy(b[:], "sha256:")
	hex.Encode(b[7:], d[:])
	return string(b[:])
}

// Hex returns the bare lowercase hex digest.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is unset.
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText writes "sha256:<hex>".
func (d Digest) MarshalText() ([]byte, error) {
	b := make([]byte, 7+2*sha256.Size)
	copy(b, "sha256:")
	hex.Encode(b[7:], d[:])
	return b, nil
}

// UnmarshalText reads "sha256:<hex>".
func (d *Digest) UnmarshalText(b []byte) error {
	if !ValidArtifactHash(string(b)) {
		return fmt.Errorf("%q is not a sha256:<64 lowercase hex> digest", b)
	}
	_, err := hex.Decode(d[:], b[7:])
	return err
}

// ParseDigest reads "sha256:<hex>".
func ParseDigest(s string) (Digest, error) {
	var d Digest
	err := d.UnmarshalText([]byte(s))
	return d, err
}

// RequestHash returns the SHA-256 of in's canonical JSON: the decision's
// request_hash, which proves exactly what was asked.
func (in *RouteInput) RequestHash() (Digest, error) {
	var buf [512]byte
	b, err := in.Canonical(buf[:0])
	if err != nil {
		return Digest{}, err
	}
	return sha256.Sum256(b), nil
}
