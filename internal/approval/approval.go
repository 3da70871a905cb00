// Package approval holds the types of human approvals (WCP §5.8): a
// request a policy requires a human for waits, bound to its request hash,
// payload hash, the plan the decision bound (worker id, module digest,
// record digest) and the digest of the Hall's snapshot it was requested
// under, until an approver approves or denies it or it expires; an
// approved request runs once.
//
// The package is types only. Approvals are kept in the evidence ledger
// (internal/ledger, approvals.go): every state of an approval is the body of a
// signed change, written in the same transaction as the row that indexes
// it, and the Hall acts on the signed change, never on the row alone.
// Package host decides who may change what.
//
// # Notes
//
//   - Times are in UTC with microsecond precision.
package approval

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// State is where an approval stands.
type State string

// The states. Pending goes to Approved, Denied or Expired; Approved goes
// to Used or Expired. Denied, Expired and Used are final.
const (
	Pending  State = "pending"
	Approved State = "approved"
	Denied   State = "denied"
	Expired  State = "expired"
	Used     State = "used"
)

// Errors a caller can act on.
var (
	// ErrNotFound: no approval has this id.
	ErrNotFound = errors.New("APPROVAL_NOT_FOUND: no such approval")
	// ErrConflict: the approval is not in the state the change needs
	// (already decided, expired or used). The *ConflictError says which
	// state it is in.
	ErrConflict = errors.New("APPROVAL_CONFLICT")
)

// ConflictError is a state change refused because the approval is in
// another state.
type ConflictError struct {
	ID    string
	State State
	Want  State
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("APPROVAL_CONFLICT: approval %s is %s, not %s", e.ID, e.State, e.Want)
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// Approval is one request waiting for, or having had, a human's answer.
type Approval struct {
	ID    string `json:"approval_id"`
	State State  `json:"state"`

	TenantID      string `json:"tenant_id"`
	CapabilityID  string `json:"capability_id"`
	CorrelationID string `json:"correlation_id"`
	// Input is the RouteInput as requested (JSON); RequestHash its hash
	// ("sha256:<hex>"); PayloadHash the dispatch payload's.
	Input       json.RawMessage `json:"input"`
	RequestHash string          `json:"request_hash"`
	PayloadHash string          `json:"payload_hash"`
	// DecisionID is the decision that asked for the approval.
	DecisionID string `json:"decision_id"`
	// Payload is what an approver is shown of the dispatch payload (nil
	// in approvals recorded before it was kept).
	Payload *Payload `json:"payload,omitempty"`

	// The bound plan.
	WorkerID     string          `json:"worker_id"`
	Species      string          `json:"worker_species_id"`
	ModuleDigest string          `json:"module_digest"`
	RecordDigest string          `json:"record_digest"`
	Envelope     json.RawMessage `json:"privilege_envelope"`
	RiskTier     string          `json:"risk_tier,omitempty"`
	BlastRadius  json.RawMessage `json:"blast_radius,omitempty"`
	BlastScore   int64           `json:"blast_score"`

	RuleID          string `json:"matched_rule_id"`
	PolicyID        string `json:"policy_id,omitempty"`
	Reason          string `json:"reason"`
	PolicySetDigest string `json:"policy_set_digest"`
	// SnapshotDigest is the digest of the Hall's snapshot (rules, policy
	// set, configuration, enrolled records) the approval was requested
	// under: under any other snapshot it is void (APPROVAL_STALE).
	SnapshotDigest string `json:"snapshot_digest,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`

	// DecidedBy is the approver ("token:<id>") who approved or denied.
	DecidedBy string    `json:"decided_by,omitempty"`
	DecidedAt time.Time `json:"decided_at,omitzero"`
	Comment   string    `json:"comment,omitempty"`
	// UsedBy is the decision id of the run that used the approval.
	UsedBy string    `json:"used_by_decision_id,omitempty"`
	UsedAt time.Time `json:"used_at,omitzero"`
}

// Payload is the part of a dispatch payload an approval keeps for the
// approver to judge (docs/SECURITY.md, "What an approver sees"): its
// first bytes, up to a cap, as text when they are printable UTF-8, else as
// hex — data to display, never markup or code — or nothing, and why.
type Payload struct {
	// Size is the whole payload's length in bytes.
	Size int `json:"size"`
	// Encoding is "text" or "hex" ("" when withheld or empty).
	Encoding string `json:"encoding,omitempty"`
	// Shown is the first bytes of the payload: the text itself, or two
	// lowercase hex digits per byte.
	Shown string `json:"shown,omitempty"`
	// Truncated: Shown is a prefix of the payload (Size says how long
	// it is).
	Truncated bool `json:"truncated,omitempty"`
	// Withheld says why nothing is shown ("" when something is).
	Withheld string `json:"withheld,omitempty"`
}

// NewPayload is what an approval keeps of payload: at most maxBytes of it
// (no cut inside a UTF-8 sequence of text). Text is UTF-8 without control
// characters other than tab, newline and carriage return and without
// bidirectional controls (which could make a terminal or a page show
// something else than the bytes); anything else is hex.
func NewPayload(payload []byte, maxBytes int) *Payload {
	p := &Payload{Size: len(payload)}
	if len(payload) == 0 {
		return p
	}
	if maxBytes <= 0 {
		p.Withheld = "payload previews are turned off (hall.json approval_payload.max_bytes)"
		return p
	}
	shown := payload
	if len(shown) > maxBytes {
		shown, p.Truncated = shown[:maxBytes], true
	}
	if text, ok := printable(shown, p.Truncated); ok {
		p.Encoding, p.Shown = "text", text
		return p
	}
	p.Encoding, p.Shown = "hex", hex.EncodeToString(shown)
	return p
}

// printable returns b as text when it is printable UTF-8; cut says b is
// a prefix, whose last rune may be incomplete (then dropped).
func printable(b []byte, cut bool) (string, bool) {
	if cut {
		// Drop an incomplete last rune (the cap fell inside it), only that.
		for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
			if utf8.RuneStart(b[i]) {
				if !utf8.FullRune(b[i:]) {
					b = b[:i]
				}
				break
			}
		}
	}
	if !utf8.Valid(b) {
		return "", false
	}
	for _, r := range string(b) {
		if (unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r') || unicode.Is(unicode.Bidi_Control, r) || r == '\uFEFF' {
			return "", false
		}
	}
	return string(b), true
}

// NewID returns a fresh approval id, "apr_" and 32 hex digits.
func NewID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("approval: crypto/rand failed: " + err.Error())
	}
	return "apr_" + hex.EncodeToString(b[:])
}

// ValidID reports whether id has the form NewID returns.
func ValidID(id string) bool {
	rest, ok := strings.CutPrefix(id, "apr_")
	if !ok || len(rest) != 32 {
		return false
	}
	_, err := hex.DecodeString(rest)
	return err == nil && strings.ToLower(rest) == rest
}

// IDBytes is the length of an approval id: "apr_" and 32 hex digits.
const IDBytes = 4 + 32

// CheckID returns nil when id has the form NewID returns, else an error
// that says so and shows at most the first 16 bytes of id, escaped: an id
// is caller input (issue 21: a 4 MiB id holding ESC/BEL was echoed whole).
func CheckID(id string) error {
	if ValidID(id) {
		return nil
	}
	shown := id
	if len(shown) > 16 {
		shown = shown[:16]
	}
	return fmt.Errorf("%q (%d bytes) is not an approval id: give apr_ and 32 lowercase hex digits, as the pending decision's pending_approval_id or hall approvals list shows it", shown, len(id))
}

// Filter selects approvals for List; zero fields select everything.
type Filter struct {
	State    State
	TenantID string
	Limit    int // default 100
	// Offset skips that many of the selected approvals, newest first
	// (paging).
	Offset int
}
