package host

import (
	"fmt"

	"github.com/wcphall/hall/internal/approval"
)

// ApprovalPayloadConfig is the "approval_payload" block of hall.json: what
// a pending approval keeps of the dispatch payload, so that an approver
// judges the request and not only its hash (issue 25). It is part of the
// sealed snapshot.
//
// The rule (docs/SECURITY.md, "What an approver sees"): an approval keeps
// the payload's first MaxBytes bytes, as text when they are printable
// UTF-8, else as hex, in its signed approval_requested change — so the
// approver, `hall approvals show`, the API and the console show the same
// bytes, whatever store_payloads says. A payload is secret-bearing when
// the request's data_label is RESTRICTED or the worker's privilege
// envelope declares secrets_access; its bytes are then not kept (only its
// size and hash, and why) unless ShowSecretBearing is set.
type ApprovalPayloadConfig struct {
	// MaxBytes caps the bytes kept (0: DefaultApprovalPayloadBytes; -1:
	// none kept, only the size and hash).
	MaxBytes int `json:"max_bytes,omitempty"`
	// ShowSecretBearing keeps the first bytes of secret-bearing payloads
	// too.
	ShowSecretBearing bool `json:"show_secret_bearing,omitempty"`
}

// DefaultApprovalPayloadBytes is the default cap of what an approval keeps
// of a payload.
const DefaultApprovalPayloadBytes = 4096

// maxApprovalPayloadBytes bounds the cap: an approval is a signed change of
// the ledger, read whole whenever the approval is.
const maxApprovalPayloadBytes = 64 << 10

func (c ApprovalPayloadConfig) check() error {
	if c.MaxBytes < -1 || c.MaxBytes > maxApprovalPayloadBytes {
		return fmt.Errorf("approval_payload.max_bytes: %d is out of range; give how many bytes of a held request's payload its approval keeps for the approver, from 1 to %d (0 or absent: %d; -1: none)", c.MaxBytes, maxApprovalPayloadBytes, DefaultApprovalPayloadBytes)
	}
	return nil
}

func (c ApprovalPayloadConfig) bytes() int {
	switch {
	case c.MaxBytes == 0:
		return DefaultApprovalPayloadBytes
	case c.MaxBytes < 0:
		return 0
	}
	return c.MaxBytes
}

// approvalPayload is what the approval of a held dispatch keeps of its
// payload under cfg.
func approvalPayload(cfg ApprovalPayloadConfig, payload []byte, dataLabel string, secrets []string) *approval.Payload {
	why := ""
	switch {
	case dataLabel == "RESTRICTED":
		why = "the request's data_label is RESTRICTED"
	case len(secrets) > 0:
		why = "the worker's privilege envelope declares secrets_access"
	}
	if why != "" && !cfg.ShowSecretBearing && len(payload) > 0 {
		return &approval.Payload{Size: len(payload), Withheld: "secret-bearing: " + why + "; hall.json approval_payload.show_secret_bearing shows it"}
	}
	return approval.NewPayload(payload, cfg.bytes())
}
