package host

import (
	"github.com/wcphall/hall/internal/approval"
	"github.com/wcphall/hall/internal/artifact"
	"github.com/wcphall/hall/internal/auth"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/policy"
	"github.com/wcphall/hall/internal/registry"
	"github.com/wcphall/hall/internal/router"
	"github.com/wcphall/hall/internal/sandbox"
)

// The engines (decision engine, sandbox, ledger, stores) live under
// internal/: an embedder reaches them only through a Hall, so nothing
// outside this module can run guest code or sign evidence without a
// decision. The names below are the engines' types that the Hall's API
// takes or hands out; they are aliases, so values pass through unchanged.

// Extension points an embedder implements.
type (
	// PolicyGate evaluates rules whose escalation sets policy_gate
	// (Options.Gate). An error or a panic denies with DENY_INTERNAL_ERROR.
	PolicyGate = router.PolicyGate
	// PolicyContext is what a PolicyGate is asked about.
	PolicyContext = router.PolicyContext
	// PolicyResult is a PolicyGate's answer.
	PolicyResult = router.PolicyResult
	// SecretSource supplies the values of the secrets workers declare
	// (Options.Secrets); safe for concurrent use.
	SecretSource = sandbox.SecretSource
	// Compiler compiles modules off the serving path (Options.Compiler).
	Compiler = sandbox.Compiler
	// CompileCommand is a Compiler that runs a child process with a
	// deadline and resource limits.
	CompileCommand = sandbox.CompileCommand
	// EvidenceStore is the evidence ledger (Stores.Evidence; default the
	// SQLite ledger in the state directory). See Stores.
	EvidenceStore = ledger.Store
	// CheckpointPolicy says when the ledger signs checkpoints and where
	// it writes them (Options.Checkpoints).
	CheckpointPolicy = ledger.CheckpointPolicy
)

// Values the Hall hands out. They are copies or read-only views: changing
// one changes nothing in force.
type (
	// Approval is a human approval as the evidence ledger holds it.
	Approval = approval.Approval
	// Receipt is the signed evidence of one dispatch.
	Receipt = ledger.Receipt
	// ReceiptFilter selects receipts (Evidence.Receipts).
	ReceiptFilter = ledger.Filter
	// Change is one signed entry of the change chain: an enrollment, a
	// snapshot, an approval step, a key rotation, a schema version.
	Change = ledger.Change
	// AuditReport is what verifying the evidence found.
	AuditReport = ledger.Report
	// KeySet is every key that signed the evidence, with its validity.
	KeySet = ledger.KeySet
	// PolicySet is the compiled policy file in force.
	PolicySet = policy.Set
	// RuleSet is the routing rules in force.
	RuleSet = router.RuleSet
	// Limits are a dispatch's ceilings (time, memory, stack, sizes).
	Limits = sandbox.Limits
	// RecordError lists what is wrong with one registry record.
	RecordError = registry.RecordError
	// RecordProblem is one problem of a record: the field and the fix.
	RecordProblem = registry.Problem
	// ArtifactTamperedError says a stored module no longer has the digest
	// it was stored under.
	ArtifactTamperedError = artifact.TamperedError
)

// ErrReceiptNotFound is returned by Evidence.Receipt for an unknown id.
var ErrReceiptNotFound = ledger.ErrNotFound

// The HTTP API's bearer tokens (TokenStore, host/server's Config.Tokens).
type (
	// Token is one bearer token's public part: its id, scope and label.
	Token = auth.Token
	// TokenScope is what a token may do: administer, act as one tenant,
	// or answer approvals.
	TokenScope = auth.Scope
)
