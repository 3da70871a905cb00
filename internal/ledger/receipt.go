package ledger

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wcphall/hall/host/wcp"
)

// Receipt is the evidence of one dispatch (WCP §5.7): who ran what, under
// which decision and limits, on which input, with which result, linked into
// its tenant's hash chain and signed by the Hall.
//
// The caller fills the dispatch fields; [Store.Append] fills the chain
// fields (ReceiptID through Signature).
//
// # Notes
//
//   - ReceiptHash is "sha256:" + hex SHA-256 of the receipt's canonical JSON
//     without receipt_hash and signature (see [Receipt.CanonicalBody]).
//   - Signature is the standard base64 (RFC 4648 §4, padded) Ed25519
//     signature of the ASCII bytes of ReceiptHash.
//   - Sequence is the Hall's addition to the §5.7 fields: it numbers the
//     receipts of a stream from 1 and is covered by the hash, so a gap or a
//     swap is visible from the receipts alone.
type Receipt struct {
	// Chain fields, set by Append.
	//
	// Version is the receipt's format version: 2 (RFC 8785 canonical
	// form) for receipts Append writes now, 0 or 1 for receipts written
	// before, whose hash covers the version 1 canonical form
	// (docs/EVIDENCE.md, "Versions").
	Version   int
	ReceiptID string
	Sequence  uint64
	// PrevReceiptHash is "" (JSON null) for the first receipt of a stream.
	PrevReceiptHash string
	ReceiptHash     string
	SigningKeyID    string
	Signature       string

	// Dispatch fields, set by the caller.
	CorrelationID string
	// DispatchedAt is stored in UTC with microsecond precision.
	DispatchedAt     time.Time
	WorkerID         string
	CapabilityID     string
	PolicyDecision   string // "ALLOW" for a dispatch
	ControlsVerified []string
	ArtifactHash     string // "sha256:<hex>" of the module that ran
	DecisionID       string
	TenantID         string
	RequestHash      string // the decision's request_hash
	InputHash        string
	OutputHash       string // "" when the worker produced no output
	DurationMS       float64
	// QueueWaitMS is how long the dispatch waited for a dispatch slot and
	// for cores before and while it ran (0: not at all, or not recorded).
	QueueWaitMS float64
	// Outcome is "ok" or an upper-case error code such as LIMIT_TIMEOUT.
	Outcome      string
	ErrorMessage string
	Limits       Limits
	// Determinism says which sources of nondeterminism the sandbox gave
	// the worker (for example "deterministic" or "clock,random").
	Determinism string
	// RecordDigest is "sha256:<hex>" of the canonical JSON of the worker's
	// sealed registry record in force at dispatch, "" when not known.
	// With ArtifactHash it pins both what ran and what it was allowed to
	// declare (WCP §5.7 asks for the worker; the record says which one).
	RecordDigest string
	// Envelope is the privilege envelope in force (WCP §4), a JSON object;
	// "{}" when the worker declared none, empty when not known. Append
	// stores it canonicalized.
	Envelope json.RawMessage
	// ReplayOf is the receipt_id of the receipt this dispatch replayed
	// (hall replay), "" for a dispatch that is not a replay. A replay is a
	// dispatch of its own: decided anew (DecisionID), run with the
	// original's module, record and guest config, and receipted here.
	ReplayOf string
	// Snapshot is the digest of the Hall snapshot the dispatch was decided
	// and run under ("sha256:<hex>", docs/EVIDENCE.md "Snapshots"); ""
	// for receipts written before snapshots were recorded.
	Snapshot string
	// TraceID is the W3C trace id (32 lowercase hex digits) of the
	// dispatch's trace when the Hall traced it, else "": the link from the
	// evidence to the trace (docs/OBSERVABILITY.md). It is signed like
	// every field, and says nothing about what ran.
	TraceID string
	// Signer is who signed the module that ran, as the trust policy in
	// force verified it when the dispatch was decided ("key <key id>", or
	// "<subject> (issuer <issuer>)" for a keyless signer); "" when no
	// trust policy applied or no signature verified. The provenance
	// change of the worker's enrollment holds the signature itself
	// (docs/SUPPLY-CHAIN.md).
	Signer string
	// Chain fields of a governed pipeline (docs/EVIDENCE.md, "Chains of
	// dispatches"), all zero for a dispatch that neither is a hop nor
	// made one. ParentDecisionID is the decision of the dispatch whose
	// worker asked for this one (hall_invoke) and ChainDepth its depth
	// (1 under a root). BlastScore is this dispatch's own blast score, the
	// term it adds to its chain's sum. ChainHops and ChainBlast are set on
	// the root only: how many hops of the chain ran (have receipts) and
	// the sum of the blast scores of the root and those hops.
	ParentDecisionID string
	ChainDepth       int
	BlastScore       *int
	ChainHops        int
	ChainBlast       int
	// InputPayload and OutputPayload are kept only when the ledger was
	// opened with [WithPayloads]; otherwise Append drops them and only the
	// hashes remain.
	InputPayload  []byte
	OutputPayload []byte
}

// Limits are the resource limits the worker ran under.
type Limits struct {
	TimeoutMS   int64 `json:"timeout_ms"`
	MemoryMB    int64 `json:"memory_mb"`
	InputBytes  int64 `json:"input_bytes"`
	OutputBytes int64 `json:"output_bytes"`
}

// receiptJSON is the wire form. Key order here does not matter: every
// encoding goes through canonical.
type receiptJSON struct {
	Version          int      `json:"version,omitempty"`
	ReceiptID        string   `json:"receipt_id"`
	Sequence         uint64   `json:"sequence"`
	PrevReceiptHash  *string  `json:"prev_receipt_hash"`
	ReceiptHash      string   `json:"receipt_hash,omitempty"`
	SigningKeyID     string   `json:"signing_key_id"`
	Signature        string   `json:"signature,omitempty"`
	CorrelationID    string   `json:"correlation_id"`
	DispatchedAt     string   `json:"dispatched_at"`
	WorkerID         string   `json:"worker_id"`
	CapabilityID     string   `json:"capability_id"`
	PolicyDecision   string   `json:"policy_decision"`
	ControlsVerified []string `json:"controls_verified"`
	ArtifactHash     string   `json:"artifact_hash"`
	DecisionID       string   `json:"decision_id"`
	TenantID         string   `json:"tenant_id"`
	RequestHash      string   `json:"request_hash"`
	InputHash        string   `json:"input_hash"`
	OutputHash       string   `json:"output_hash,omitempty"`
	DurationMS       float64  `json:"duration_ms"`
	// Omitted when zero: receipts written before it keep their hashes.
	QueueWaitMS  float64 `json:"queue_wait_ms,omitempty"`
	Outcome      string  `json:"outcome"`
	ErrorMessage string  `json:"error_message,omitempty"`
	Limits       Limits  `json:"limits"`
	Determinism  string  `json:"determinism"`
	// Both omitted when empty, so receipts written before they existed
	// keep their canonical bodies and hashes.
	RecordDigest string          `json:"record_digest,omitempty"`
	Envelope     json.RawMessage `json:"privilege_envelope,omitempty"`
	// Omitted for a dispatch that is not a replay.
	ReplayOf string `json:"replay_of,omitempty"`
	// Omitted when empty: receipts written before snapshots keep their hashes.
	Snapshot string `json:"snapshot,omitempty"`
	// Omitted when empty: receipts of untraced dispatches, and those
	// written before tracing, keep their hashes.
	TraceID string `json:"trace_id,omitempty"`
	// Omitted when no signer was verified: older receipts keep their
	// hashes.
	Signer string `json:"signer,omitempty"`
	// Omitted outside chains: other receipts keep their bodies.
	ParentDecisionID string `json:"parent_decision_id,omitempty"`
	ChainDepth       int    `json:"chain_depth,omitempty"`
	BlastScore       *int   `json:"blast_score,omitempty"`
	ChainHops        int    `json:"chain_hops,omitempty"`
	ChainBlast       int    `json:"chain_blast,omitempty"`
	InputPayload     []byte `json:"input_payload,omitempty"`
	OutputPayload    []byte `json:"output_payload,omitempty"`
}

func (r *Receipt) wire(withSeal bool) receiptJSON {
	w := receiptJSON{
		Version:          r.Version,
		ReceiptID:        r.ReceiptID,
		Sequence:         r.Sequence,
		SigningKeyID:     r.SigningKeyID,
		CorrelationID:    r.CorrelationID,
		DispatchedAt:     r.DispatchedAt.UTC().Format(wcp.TimeLayout),
		WorkerID:         r.WorkerID,
		CapabilityID:     r.CapabilityID,
		PolicyDecision:   r.PolicyDecision,
		ControlsVerified: r.ControlsVerified,
		ArtifactHash:     r.ArtifactHash,
		DecisionID:       r.DecisionID,
		TenantID:         r.TenantID,
		RequestHash:      r.RequestHash,
		InputHash:        r.InputHash,
		OutputHash:       r.OutputHash,
		DurationMS:       r.DurationMS,
		QueueWaitMS:      r.QueueWaitMS,
		Outcome:          r.Outcome,
		ErrorMessage:     r.ErrorMessage,
		Limits:           r.Limits,
		Determinism:      r.Determinism,
		RecordDigest:     r.RecordDigest,
		Envelope:         r.Envelope,
		ReplayOf:         r.ReplayOf,
		Snapshot:         r.Snapshot,
		TraceID:          r.TraceID,
		Signer:           r.Signer,
		ParentDecisionID: r.ParentDecisionID,
		ChainDepth:       r.ChainDepth,
		BlastScore:       r.BlastScore,
		ChainHops:        r.ChainHops,
		ChainBlast:       r.ChainBlast,
		InputPayload:     r.InputPayload,
		OutputPayload:    r.OutputPayload,
	}
	if w.ControlsVerified == nil {
		w.ControlsVerified = []string{}
	}
	if r.PrevReceiptHash != "" {
		p := r.PrevReceiptHash
		w.PrevReceiptHash = &p
	}
	if withSeal {
		w.ReceiptHash = r.ReceiptHash
		w.Signature = r.Signature
	}
	return w
}

// CanonicalBody returns the bytes receipt_hash is computed over: the
// receipt's JSON without receipt_hash and signature, in the canonical form
// of its Version (RFC 8785 for version 2).
func (r *Receipt) CanonicalBody() ([]byte, error) {
	b, err := json.Marshal(r.wire(false))
	if err != nil {
		return nil, err
	}
	return canonicalFor(r.Version, b)
}

// ComputeHash returns "sha256:<hex>" of r's canonical body. It does not
// modify r.
func (r *Receipt) ComputeHash() (string, error) {
	body, err := r.CanonicalBody()
	if err != nil {
		return "", err
	}
	return hashBody(body), nil
}

func hashBody(body []byte) string {
	return wcp.Digest(sha256.Sum256(body)).String()
}

// MarshalJSON writes the receipt with its hash and signature, in the
// canonical form of its version: the line format of [Store.Export].
func (r Receipt) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(r.wire(true))
	if err != nil {
		return nil, err
	}
	return canonicalFor(r.Version, b)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (r *Receipt) UnmarshalJSON(b []byte) error {
	var w receiptJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	at, err := time.Parse(time.RFC3339Nano, w.DispatchedAt)
	if err != nil {
		return fmt.Errorf("dispatched_at: %w", err)
	}
	*r = Receipt{
		Version:          w.Version,
		ReceiptID:        w.ReceiptID,
		Sequence:         w.Sequence,
		ReceiptHash:      w.ReceiptHash,
		SigningKeyID:     w.SigningKeyID,
		Signature:        w.Signature,
		CorrelationID:    w.CorrelationID,
		DispatchedAt:     at.UTC(),
		WorkerID:         w.WorkerID,
		CapabilityID:     w.CapabilityID,
		PolicyDecision:   w.PolicyDecision,
		ControlsVerified: w.ControlsVerified,
		ArtifactHash:     w.ArtifactHash,
		DecisionID:       w.DecisionID,
		TenantID:         w.TenantID,
		RequestHash:      w.RequestHash,
		InputHash:        w.InputHash,
		OutputHash:       w.OutputHash,
		DurationMS:       w.DurationMS,
		QueueWaitMS:      w.QueueWaitMS,
		Outcome:          w.Outcome,
		ErrorMessage:     w.ErrorMessage,
		Limits:           w.Limits,
		Determinism:      w.Determinism,
		RecordDigest:     w.RecordDigest,
		Snapshot:         w.Snapshot,
		TraceID:          w.TraceID,
		Signer:           w.Signer,
		Envelope:         w.Envelope,
		ReplayOf:         w.ReplayOf,
		ParentDecisionID: w.ParentDecisionID,
		ChainDepth:       w.ChainDepth,
		BlastScore:       w.BlastScore,
		ChainHops:        w.ChainHops,
		ChainBlast:       w.ChainBlast,
		InputPayload:     w.InputPayload,
		OutputPayload:    w.OutputPayload,
	}
	if w.PrevReceiptHash != nil {
		r.PrevReceiptHash = *w.PrevReceiptHash
	}
	return nil
}

// outcomeCode is "ok" or a deny/limit/error code in WCP's style.
var outcomeCode = regexp.MustCompile(`^(ok|[A-Z][A-Z0-9_]*)$`)

// receiptID is the form of the receipt ids Append assigns (UUIDs).
var receiptID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// traceID is the form of a W3C trace id (all zeros, which is invalid, is
// refused beside it).
var traceID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// maxSignerLen bounds a receipt's signer: a key id, or a keyless
// signer's certificate subject and issuer.
const maxSignerLen = 1024

const zeroTraceID = "00000000000000000000000000000000"

// validate checks the caller's fields. Chain fields are ignored: Append
// overwrites them.
func (r *Receipt) validate() error {
	required := []struct{ name, v string }{
		{"tenant_id", r.TenantID},
		{"correlation_id", r.CorrelationID},
		{"decision_id", r.DecisionID},
		{"worker_id", r.WorkerID},
		{"capability_id", r.CapabilityID},
		{"policy_decision", r.PolicyDecision},
		{"outcome", r.Outcome},
	}
	for _, f := range required {
		if f.v == "" {
			return invalid(f.name, "is required")
		}
	}
	if r.TenantID == ChangeChain {
		return invalid("tenant_id", fmt.Sprintf("%q is reserved for the change chain", ChangeChain))
	}
	if r.DispatchedAt.IsZero() {
		return invalid("dispatched_at", "is required")
	}
	if y := r.DispatchedAt.UTC().Year(); y < 1 || y > 9999 {
		return invalid("dispatched_at", "year must be between 1 and 9999")
	}
	digests := []struct {
		name, v string
		need    bool
	}{
		{"artifact_hash", r.ArtifactHash, true},
		{"request_hash", r.RequestHash, true},
		{"input_hash", r.InputHash, true},
		{"output_hash", r.OutputHash, false},
		{"record_digest", r.RecordDigest, false},
		{"snapshot", r.Snapshot, false},
	}
	for _, d := range digests {
		if d.v == "" && !d.need {
			continue
		}
		if !wcp.ValidArtifactHash(d.v) {
			return invalid(d.name, fmt.Sprintf("%q is not sha256:<64 lowercase hex>", d.v))
		}
	}
	if r.ReplayOf != "" && !receiptID.MatchString(r.ReplayOf) {
		return invalid("replay_of", fmt.Sprintf("%q is not a receipt id (a UUID)", r.ReplayOf))
	}
	if len(r.Signer) > maxSignerLen || !utf8.ValidString(r.Signer) || strings.ContainsFunc(r.Signer, unicode.IsControl) {
		return invalid("signer", fmt.Sprintf("is not a signer's name (printable UTF-8, at most %d bytes)", maxSignerLen))
	}
	if r.TraceID != "" && (!traceID.MatchString(r.TraceID) || r.TraceID == zeroTraceID) {
		return invalid("trace_id", fmt.Sprintf("%q is not a W3C trace id (32 lowercase hex digits, not all zero)", r.TraceID))
	}
	if r.ParentDecisionID != "" && !receiptID.MatchString(r.ParentDecisionID) {
		return invalid("parent_decision_id", fmt.Sprintf("%q is not a decision id (a UUID)", r.ParentDecisionID))
	}
	if (r.ParentDecisionID == "") != (r.ChainDepth == 0) || r.ChainDepth < 0 {
		return invalid("chain_depth", "a hop has both parent_decision_id and a chain_depth ≥ 1; any other receipt neither")
	}
	if r.ChainHops < 0 || r.ChainBlast < 0 || (r.BlastScore != nil && *r.BlastScore < 0) {
		return invalid("chain_hops", "chain_hops, chain_blast and blast_score are counts ≥ 0")
	}
	if len(r.Envelope) > 0 && !isJSONObject(r.Envelope) {
		return invalid("privilege_envelope", "must be a JSON object")
	}
	if !outcomeCode.MatchString(r.Outcome) {
		return invalid("outcome", fmt.Sprintf("%q is neither \"ok\" nor an upper-case error code", r.Outcome))
	}
	if r.QueueWaitMS < 0 || math.IsNaN(r.QueueWaitMS) || math.IsInf(r.QueueWaitMS, 0) {
		return invalid("queue_wait_ms", fmt.Sprintf("%v is not a non-negative number of milliseconds", r.QueueWaitMS))
	}
	if r.DurationMS < 0 || math.IsNaN(r.DurationMS) || math.IsInf(r.DurationMS, 0) {
		return invalid("duration_ms", "must be a finite number ≥ 0")
	}
	return nil
}

// isJSONObject reports whether b is one well-formed JSON object.
func isJSONObject(b []byte) bool {
	var m map[string]json.RawMessage
	return json.Unmarshal(b, &m) == nil && m != nil
}

func invalid(field, msg string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, field, msg)
}
