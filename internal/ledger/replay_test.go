package ledger

import (
	"bytes"
	"context"
	"testing"
)

// A replay's receipt (hall replay) names the receipt it replayed in
// replay_of, covered by its hash and signature; a receipt that is not a
// replay has no replay_of member, so the bodies and hashes of receipts
// written before the member existed do not change.
func TestReplayOfRoundTripAndVerify(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	orig := newReceipt("t", 0)
	if err := s.Append(ctx, orig); err != nil {
		t.Fatal(err)
	}
	body, err := orig.CanonicalBody()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(body, []byte("replay_of")) {
		t.Fatalf("a receipt that is no replay has a replay_of member: %s", body)
	}
	replay := newReceipt("t", 1)
	// A replay answers the original's request (docs/EVIDENCE.md,
	// "Replays"): its correlation id, worker and module.
	replay.ReplayOf, replay.CorrelationID = orig.ReceiptID, orig.CorrelationID
	if err := s.Append(ctx, replay); err != nil {
		t.Fatal(err)
	}
	got, err := s.Receipt(ctx, replay.ReceiptID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ReplayOf != orig.ReceiptID {
		t.Fatalf("read back replay_of %q, want %s", got.ReplayOf, orig.ReceiptID)
	}
	body, err = got.CanonicalBody()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(body, []byte(`"replay_of":"`+orig.ReceiptID+`"`)) {
		t.Fatalf("replay_of is not in the signed body: %s", body)
	}
	verifyOK(t, s, nil)
}
