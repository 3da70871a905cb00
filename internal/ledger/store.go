package ledger

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/wcphall/hall/host/wcp"
)

// Store is where evidence goes. The SQLite engine returned by [Open] is the
// only implementation today; the interface exists so that another engine
// (a networked database, an append-only object store) can be added without
// touching the dispatch path.
//
// # Notes
//
//   - Every method is safe for concurrent use.
//   - Append assigns the chain fields itself; a Store never accepts a
//     receipt whose chain fields were computed elsewhere.
//   - A method returns only after its data is durable (see [Open]).
type Store interface {
	// RecordDecision stores one routing decision, allowed or denied, with
	// the telemetry envelopes it carries.
	RecordDecision(ctx context.Context, d DecisionRecord) error
	// RecordEvents stores telemetry events a worker emitted while serving
	// the request with the given correlation id, in order.
	RecordEvents(ctx context.Context, correlationID string, events []json.RawMessage) error
	// Append validates r, links it to the head of its tenant's stream, signs
	// it and stores it. On success it has filled r's ReceiptID, Sequence,
	// PrevReceiptHash, ReceiptHash, SigningKeyID and Signature; on failure r
	// is unchanged.
	Append(ctx context.Context, r *Receipt) error
	// Receipt returns the receipt with the given id, or an error wrapping
	// [ErrNotFound].
	Receipt(ctx context.Context, id string) (*Receipt, error)
	// Receipts returns the receipts that match every non-zero field of f,
	// newest first.
	Receipts(ctx context.Context, f Filter) ([]Receipt, error)
	// RecordChange validates c, links it to the head of the Hall's change
	// chain (one chain for the whole ledger), signs it with the receipt
	// key and stores it. On success it has filled c's ChangeID, Sequence,
	// PrevHash, Hash, SigningKeyID and Signature (and At when zero); on
	// failure c is unchanged.
	RecordChange(ctx context.Context, c *Change) error
	// Changes returns the changes of the given kind ("" for all) in chain
	// order.
	Changes(ctx context.Context, kind string) ([]Change, error)
	// Verify walks every receipt stream and the change chain and checks
	// hashes, links, sequence numbers and signatures against pub (the
	// store's own key when pub is nil). Breaks are data in the report;
	// the error is for failing to read.
	Verify(ctx context.Context, pub ed25519.PublicKey) (*Report, error)
	// Export writes every receipt as one JSON object per line, stream by
	// stream (tenants in byte order), each stream in chain order.
	Export(ctx context.Context, w io.Writer) error
	// Close releases the store. It does not wait for in-flight calls.
	Close() error
}

// DecisionRecord is one routing decision as the ledger keeps it: the full
// decision JSON plus the columns it is searched by.
type DecisionRecord struct {
	DecisionID    string
	CorrelationID string
	TenantID      string
	CapabilityID  string
	Denied        bool
	DenyCode      string // "" when allowed
	DryRun        bool
	// Decision is the RouteDecision JSON as returned to the caller. It is
	// stored in its signed entry, in canonical form (RFC 8785), which is
	// what [SQLite.Decision] returns; its telemetry_envelopes are the
	// events of the decision's correlation id ([SQLite.Events]).
	Decision  json.RawMessage
	Timestamp time.Time
	// Snapshot is the digest of the Hall snapshot the decision was made
	// under ("sha256:<hex>", docs/EVIDENCE.md "Snapshots"), signed in the
	// decision's entry; "" for decisions recorded before snapshots were.
	Snapshot string
	// Telemetry is ignored.
	//
	// Deprecated: the envelopes are read from the signed entry that holds
	// Decision ([SQLite.Events]); nothing stores a second copy of them.
	Telemetry []json.RawMessage
}

// Filter selects receipts. Zero fields match everything; Limit 0 means no
// limit.
type Filter struct {
	CorrelationID string
	TenantID      string
	WorkerID      string
	// Since keeps receipts dispatched at or after this instant.
	Since time.Time
	Limit int
}

// Report is the result of [Store.Verify].
type Report struct {
	// Streams is the number of tenant streams walked, Receipts the number
	// of receipts read.
	Streams  int
	Receipts int
	// Changes is the number of entries of the change chain read.
	Changes int
	// Decisions is the number of decision-chain entries read (decisions
	// and event batches), in DecisionStreams streams; Unchained counts
	// decisions recorded before decisions were chained (schema step 3):
	// no entry signs them, the seal of the ledger's first schema change
	// ([ChangeSchema]) covers them, and a ledger born with a schema
	// change has none.
	Decisions, DecisionStreams, Unchained int
	// Checkpoints is the number of checkpoints checked (VerifyOptions).
	Checkpoints int
	// Snapshots is the number of distinct snapshots the change chain
	// records; every decision and receipt naming one was checked against
	// them (docs/EVIDENCE.md, "Snapshots").
	Snapshots int
	// Breaks lists the first break found in each broken stream, in tenant
	// order. A break of the change chain has Tenant [ChangeChain] and
	// comes first.
	Breaks []Break
	// Heads is the last receipt of every stream as the store records it,
	// and, with Tenant [ChangeChain], the last change (its ReceiptID and
	// ReceiptHash are the change's id and hash). Copying the heads
	// somewhere the database's writers cannot reach is what makes cutting
	// the end of a chain detectable (see RATIONALE.md).
	Heads []Head
	// Signers are the keys that signed the entries verified, with their
	// node and how many entries each signed (several when the nodes of a
	// shared database sign with their own admitted keys).
	Signers []Signer
}

// OK reports whether nothing is broken: no stream, nor the change chain.
func (r *Report) OK() bool { return len(r.Breaks) == 0 }

// Break is the first inconsistency in one stream or in the change chain.
type Break struct {
	// Chain is [ChainReceipts] (also when empty), [ChainDecisions],
	// [ChainChanges], or "checkpoint" for a checkpoint that does not
	// verify.
	Chain string
	// Tenant is the stream's tenant, or [ChangeChain].
	Tenant string
	// ReceiptID is the receipt (or change) at which the chain stops
	// verifying: the one that was altered, the first one after a gap, or
	// the missing head itself.
	ReceiptID string
	Sequence  uint64
	Reason    string
}

func (b Break) String() string {
	switch chainOf(b.Chain, b.Tenant) {
	case ChainChanges:
		return "change chain: change " + b.ReceiptID + ": " + b.Reason
	case ChainDecisions:
		return "tenant " + strconv.Quote(b.Tenant) + " decisions: entry " + b.ReceiptID + ": " + b.Reason
	case "checkpoint":
		return "checkpoint " + b.ReceiptID + ": " + b.Reason
	}
	return "tenant " + b.Tenant + ": receipt " + b.ReceiptID + ": " + b.Reason
}

// Head is the newest entry of one chain: a tenant's receipt stream, a
// tenant's decision chain, or the change chain.
type Head struct {
	// Chain is [ChainReceipts] (also when empty), [ChainDecisions] or
	// [ChainChanges].
	Chain string `json:"chain"`
	// Tenant is the stream's tenant ("" for decisions without one), or
	// [ChangeChain].
	Tenant      string `json:"stream"`
	Sequence    uint64 `json:"sequence"`
	ReceiptID   string `json:"entry_id,omitempty"`
	ReceiptHash string `json:"hash,omitempty"`
}

// chainOf returns the chain a head or break names, defaulting as
// documented on Head.
func chainOf(chain, tenant string) string {
	switch {
	case chain != "":
		return chain
	case tenant == ChangeChain:
		return ChainChanges
	}
	return ChainReceipts
}

// Errors a caller can act on. Every error the package returns for one of
// these conditions wraps the matching value.
var (
	// ErrNotFound: no such receipt or decision.
	ErrNotFound error = &codeError{wcp.CodeLedgerNotFound, "not found"}
	// ErrInvalid: a receipt, decision or event is malformed; the message
	// names the field.
	ErrInvalid error = &codeError{wcp.CodeRecordInvalid, ""}
	// ErrReadOnly: the ledger cannot be written (opened with [ReadOnly], a
	// read-only file or file system).
	ErrReadOnly error = &codeError{wcp.CodeLedgerReadOnly, "the ledger database is read-only"}
	// ErrSchemaTooNew: the database was migrated by a newer Hall, or its
	// PRAGMA user_version is behind the schema version its change chain
	// records (set back outside the Hall).
	ErrSchemaTooNew error = &codeError{wcp.CodeLedgerSchemaTooNew, ""}
	// ErrKey: the signing key is missing, unreadable or malformed.
	ErrKey error = &codeError{wcp.CodeLedgerKey, ""}
	// ErrKeyNotAdmitted: this process's signing key is neither the
	// ledger's own key nor admitted to its keyring ([SQLite.AdmitKey]),
	// or it was revoked: it signs nothing. The message gives the
	// hall keys admit command.
	ErrKeyNotAdmitted error = &codeError{wcp.CodeKeyNotAdmitted, ""}
	// ErrClosed: a write was submitted after the ledger was closed.
	ErrClosed error = &codeError{wcp.CodeLedgerClosed, "the ledger is closed"}
)
