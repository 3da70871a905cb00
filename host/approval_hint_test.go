package host_test

import (
	"context"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
)

// An approval presented with the approved request under another
// correlation id is refused (the request hash covers it), and the refusal
// names the correlation id to send, so that the hint can be acted on
// (issues 21 and 27: `hall run --approval` drew a new correlation id and
// was told only "another request"). Resent with it, the request runs.
func TestApprovalRefusalNamesOriginalCorrelationID(t *testing.T) {
	ctx := context.Background()
	h := policyHall(t, "1h")
	id, in := pend(t, h)
	if _, err := h.DecideApproval(ctx, id, true, approver, ""); err != nil {
		t.Fatal(err)
	}
	other := *in
	other.CorrelationID = "c-fresh"
	res, err := h.Run(ctx, host.RunRequest{Input: &other, Payload: []byte("x"), ApprovalID: id})
	if err != nil || res.Ran {
		t.Fatalf("another correlation id: %v ran=%v", err, res.Ran)
	}
	msg := res.Decision.DenyReason.Message
	if !strings.Contains(msg, `correlation_id "c-pick"`) || !strings.Contains(msg, "--correlation-id") {
		t.Fatalf("refusal %q does not name the approved request's correlation id and how to send it", msg)
	}
	res, err = h.Run(ctx, host.RunRequest{Input: in, Payload: []byte("x"), ApprovalID: id})
	if err != nil || !res.Ran {
		t.Fatalf("the approved request resent: %v ran=%v %+v", err, res.Ran, res.Decision.DenyReason)
	}
}
