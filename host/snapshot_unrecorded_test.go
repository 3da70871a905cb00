package host_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/router"
)

// countingGate allows and counts the requests it is asked about.
type countingGate struct{ calls atomic.Int64 }

func (g *countingGate) Evaluate(context.Context, router.PolicyContext) (router.PolicyResult, error) {
	g.calls.Add(1)
	return router.PolicyResult{Decision: router.PolicyAllow, PolicyVersion: "count"}, nil
}

// sealFailingLedger is a real ledger that, once failSeals is set, cannot
// record snapshot changes (enrollments still record).
type sealFailingLedger struct {
	*ledger.SQLite
	failSeals atomic.Bool
}

func (l *sealFailingLedger) RecordChange(ctx context.Context, c *ledger.Change) error {
	if c.Kind == ledger.ChangeSnapshot && l.failSeals.Load() {
		return errors.New("disk full")
	}
	return l.SQLite.RecordChange(ctx, c)
}

func (l *sealFailingLedger) Close() error { return nil } // the test closes it

// A snapshot that cannot be recorded decides nothing: the denial is made
// without asking the embedder's policy gate (or the policies) about a
// request under rules that are not evidence (issue 21: planFor ran the
// router, gate included, and only then turned its decision into
// SNAPSHOT_UNRECORDED).
func TestSnapshotUnrecordedAsksNoGate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mod, err := watModule(dir, "block", blockWAT("(i32.const 0)"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	sl := &sealFailingLedger{SQLite: l}
	gate := &countingGate{}
	gated := `{"rules": [{"rule_id": "r1", "match": {"capability_id": "cap.test.block", "env": {"in": ["dev"]}},
	  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.block"}], "escalation": {"policy_gate": true}}}]}`
	h := openInteg(t, gated, "", host.Options{Stores: &host.Stores{Evidence: sl}, Gate: gate, Pool: -1})
	enrollOK(t, h, mod, blockRecord)
	in := routeInput(t, "cap.test.block", "dev", "INTERNAL", "c-gate")
	// Under a recorded snapshot the rule asks the gate.
	if d := h.Decide(ctx, in); d.Denied {
		t.Fatalf("under a recorded snapshot: denied %s %+v", d.Code(), d.DenyReason)
	}
	if n := gate.calls.Load(); n != 1 {
		t.Fatalf("the gate was asked %d times for one decision, want 1", n)
	}
	// A new snapshot (another worker enrolled) that cannot be recorded.
	sl.failSeals.Store(true)
	enrollOK(t, h, mod, strings.Replace(blockRecord, "org.acme.block", "org.acme.block2", 1))
	d := h.Decide(ctx, in)
	if !d.Denied || d.Code() != wcp.DenyInternalError || !strings.Contains(d.DenyReason.Message, "SNAPSHOT_UNRECORDED") {
		t.Fatalf("under an unrecorded snapshot: denied %v %s %+v, want SNAPSHOT_UNRECORDED", d.Denied, d.Code(), d.DenyReason)
	}
	res, err := h.Run(ctx, host.RunRequest{Input: in})
	if c, _ := wcp.CodeOf(err); c != wcp.CodeSnapshotUnrecorded || (res != nil && res.Ran) {
		t.Fatalf("Run: %v (code %q)", err, c)
	}
	if n := gate.calls.Load(); n != 1 {
		t.Errorf("the gate was asked %d more time(s) under a snapshot that is not recorded", n-1)
	}
	if d.Policy != nil || d.SelectedWorkerSpeciesID != "" || d.MatchedRuleID == "r1" {
		t.Errorf("the denial shows a decision made under the unrecorded rules: policy %v species %q rule %q", d.Policy, d.SelectedWorkerSpeciesID, d.MatchedRuleID)
	}
}
