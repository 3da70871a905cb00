package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/wcphall/hall/host/wcp"
)

// CheckReceiptsAgainstEnrollments checks that every receipt says what was
// in force when it ran, as the change chain sealed it: its record_digest
// names an enrollment of its worker_id in the change chain, that
// enrollment sealed the receipt's artifact_hash, was recorded before the
// dispatch, and its record's privilege envelope is the receipt's envelope.
// Receipts from before records were sealed (no record_digest) are not
// checked. Each mismatch is a Break of the receipt's chain; the error is
// for failing to read.
//
// Hash chains prove that nothing was altered after it was written; this
// proves that what was written agrees across chains: a receipt cannot name
// an envelope its worker was never enrolled with.
func CheckReceiptsAgainstEnrollments(ctx context.Context, s Store) ([]Break, error) {
	changes, err := s.Changes(ctx, ChangeEnroll)
	if err != nil {
		return nil, err
	}
	type seal struct {
		c        Change
		envelope []byte
	}
	seals := map[string][]seal{} // by worker id
	for _, c := range changes {
		var rec struct {
			Envelope json.RawMessage `json:"privilege_envelope"`
		}
		if err := json.Unmarshal(c.Body, &rec); err != nil {
			continue // the chain walk reports a body that does not parse
		}
		env := []byte(`{}`)
		if len(rec.Envelope) > 0 && string(rec.Envelope) != "null" {
			if env, err = wcp.CanonicalJSON(rec.Envelope); err != nil {
				continue
			}
		}
		seals[c.Subject] = append(seals[c.Subject], seal{c, env})
	}
	rs, err := s.Receipts(ctx, Filter{})
	if err != nil {
		return nil, err
	}
	var breaks []Break
	for _, r := range rs {
		if r.RecordDigest == "" {
			continue
		}
		brk := func(format string, args ...any) {
			breaks = append(breaks, Break{Chain: ChainReceipts, Tenant: r.TenantID, ReceiptID: r.ReceiptID, Sequence: r.Sequence,
				Reason: fmt.Sprintf(format, args...)})
		}
		var found *seal
		for i := range seals[r.WorkerID] {
			if sl := &seals[r.WorkerID][i]; sl.c.Digest == r.RecordDigest || (sl.c.DigestV1 != "" && sl.c.DigestV1 == r.RecordDigest) {
				found = sl
			}
		}
		switch {
		case found == nil:
			brk("record_digest %s: no enrollment of %s in the change chain sealed that record", r.RecordDigest, r.WorkerID)
		case found.c.ArtifactHash != r.ArtifactHash:
			brk("artifact_hash %s: the enrollment %s that sealed its record sealed module %s", r.ArtifactHash, found.c.ChangeID, found.c.ArtifactHash)
		case found.c.At.After(r.DispatchedAt):
			brk("dispatched at %s, before its record was enrolled (%s, %s)", r.DispatchedAt.Format(wcp.TimeLayout), found.c.ChangeID, found.c.At.Format(wcp.TimeLayout))
		case len(r.Envelope) > 0 && !envelopeEqual(r.Envelope, found.envelope):
			brk("privilege_envelope %s differs from the envelope sealed by %s: %s", r.Envelope, found.c.ChangeID, found.envelope)
		}
	}
	sortBreaks(breaks)
	return breaks, nil
}

func envelopeEqual(a json.RawMessage, b []byte) bool {
	ca, err := wcp.CanonicalJSON(a)
	return err == nil && bytes.Equal(ca, b)
}
