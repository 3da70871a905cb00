// Package approval stores human approvals (WCP §5.8): a request a policy
// requires a human for waits, bound to its request hash, payload hash and
// the plan the decision bound (worker id, module digest, record digest),
// until an approver approves or denies it or it expires; an approved
// request runs once.
//
// The package is storage only: every state change is a compare-and-set
// from the state the caller expects, so two approvers racing (approve
// against deny, or two approves) cannot both succeed and an approval
// cannot be used twice. Package host decides who may change what and
// records each change in the evidence ledger.
//
// # Notes
//
//   - The SQLite store keeps its own file (approvals.db in the Hall's
//     state directory), never the ledger's database.
//   - Times are stored in UTC with microsecond precision.
package approval

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
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

// Filter selects approvals for List; zero fields select everything.
type Filter struct {
	State    State
	TenantID string
	Limit    int // default 100
}

// Store keeps approvals. Implementations are safe for concurrent use and
// every transition is atomic.
type Store interface {
	// Create stores a new pending approval.
	Create(ctx context.Context, a *Approval) error
	// Get returns one approval (ErrNotFound).
	Get(ctx context.Context, id string) (*Approval, error)
	// List returns approvals, newest first.
	List(ctx context.Context, f Filter) ([]Approval, error)
	// Decide moves a pending approval that has not expired at now to
	// Approved or Denied (a *ConflictError otherwise).
	Decide(ctx context.Context, id string, to State, by, comment string, now time.Time) (*Approval, error)
	// Use moves an approved approval that has not expired at now to Used
	// (a *ConflictError otherwise): the one run it allows.
	Use(ctx context.Context, id, decisionID string, now time.Time) (*Approval, error)
	// Revert undoes a transition whose evidence could not be recorded:
	// from back to to, only if the approval is still in from.
	Revert(ctx context.Context, id string, from, to State) error
	// Expire moves every pending or approved approval whose expiry is at
	// or before now to Expired and returns them.
	Expire(ctx context.Context, now time.Time) ([]Approval, error)
	// Pending returns how many approvals are pending and the creation time
	// of the oldest (zero when none).
	Pending(ctx context.Context) (int, time.Time, error)
	Close() error
}
