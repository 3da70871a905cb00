package host_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/wasmtest"
)

// Issue 21, item 3: every execution of guest code is a governed, recorded
// dispatch.

var governedMods struct {
	once                sync.Once
	startwrite, goguest []byte
	err                 error
}

// governedModules builds the start-section writer (testdata/sandbox) and
// the standard-Go test guest whose config export echoes a config key.
func governedModules(t *testing.T) (startwrite, goguest []byte) {
	t.Helper()
	m := &governedMods
	m.once.Do(func() {
		dir, err := os.MkdirTemp("", "hall-governed")
		if err != nil {
			m.err = err
			return
		}
		defer os.RemoveAll(dir)
		src, err := os.ReadFile("../testdata/sandbox/startwrite.wat")
		if err != nil {
			m.err = err
			return
		}
		if m.startwrite, m.err = watModule(dir, "startwrite", string(src)); m.err != nil {
			return
		}
		m.goguest, m.err = wasmtest.Build("../testdata/sandbox/goguest")
	})
	if m.err != nil {
		t.Fatal(m.err)
	}
	return m.startwrite, m.goguest
}

func dirEntries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// A module whose start section writes into its writable mount writes
// nothing before a decision naming it is durable: not when it is enrolled
// (the trial instantiation), not when the Hall keeps it loaded (no
// instance is pre-instantiated with the grant), not for a denied request;
// it writes once a dispatch's decision is recorded, inside that dispatch.
func TestStartSectionWritesNothingBeforeDecision(t *testing.T) {
	startwrite, _ := governedModules(t)
	h := openInteg(t, oneRule("cap.test.start", "wrk.test.start", "dev"), "", host.Options{})
	mount := filepath.Join(t.TempDir(), "out")
	enrollOK(t, h, startwrite, fmt.Sprintf(`{"worker_id": "org.acme.start", "worker_species_id": "wrk.test.start", "capabilities": ["cap.test.start"], "risk_tier": "low",
	  "privilege_envelope": {"network_egress": "none", "filesystem_writes": [%q]}}`, mount))
	if got := dirEntries(t, mount); len(got) != 0 {
		t.Fatalf("after enroll the mount holds %v: the start section ran with the worker's grant before any decision", got)
	}
	for _, p := range h.Pools() {
		if p.WorkerID == "org.acme.start" && p.Fresh != 0 {
			t.Fatalf("the Hall pre-instantiated %d instances of a start-section worker with its grant", p.Fresh)
		}
	}
	ctx := context.Background()
	denied, err := h.Run(ctx, host.RunRequest{Input: routeInput(t, "cap.test.start", "prod", "INTERNAL", "c-start-denied")})
	if err != nil || !denied.Decision.Denied || denied.Ran {
		t.Fatalf("prod run: denied %v ran %v err %v, want a denial", denied.Decision.Denied, denied.Ran, err)
	}
	if got := dirEntries(t, mount); len(got) != 0 {
		t.Fatalf("after a denied request the mount holds %v", got)
	}

	res, err := h.Run(ctx, host.RunRequest{Input: routeInput(t, "cap.test.start", "dev", "INTERNAL", "c-start")})
	if err != nil || res.Outcome != "ok" || res.ReceiptID == "" {
		t.Fatalf("run: outcome %q receipt %q err %v", res.Outcome, res.ReceiptID, err)
	}
	b, err := os.ReadFile(filepath.Join(mount, "started.txt"))
	if err != nil || string(b) != "ran" {
		t.Fatalf("after the dispatch started.txt = %q, %v; want the dispatch's instance to have run its start section with the grant", b, err)
	}
	if r := receiptOf(t, h, res.ReceiptID); r.DecisionID != res.Decision.DecisionID.String() {
		t.Fatalf("receipt decision %s, want %s", r.DecisionID, res.Decision.DecisionID)
	}
	for _, p := range h.Pools() {
		if p.WorkerID == "org.acme.start" && p.Fresh != 0 {
			t.Fatalf("after a dispatch the Hall pre-instantiated %d instances of a start-section worker with its grant", p.Fresh)
		}
	}
}

// replayOf is the replay_of member of a receipt's JSON ("" without one).
func replayOf(t *testing.T, r ledger.Receipt) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	s, _ := m["replay_of"].(string)
	return s
}

// hall replay is a decision and a dispatch: the guest sees exactly the
// config of the original dispatch (its record's config and the request's
// wcp.* keys, env and data_label included), the replay has a receipt of
// its own linking the original, and a replay the rules no longer allow is
// denied and runs nothing.
func TestReplayIsAGovernedDispatch(t *testing.T) {
	_, guest := governedModules(t)
	h := openInteg(t, oneRule("cap.test.cfg", "wrk.test.cfg", "dev"), "", host.Options{})
	enrollOK(t, h, guest, `{"worker_id": "org.acme.cfg", "worker_species_id": "wrk.test.cfg", "capabilities": ["cap.test.cfg"], "risk_tier": "low",
	  "determinism": "full", "entrypoints": {"cap.test.cfg": "config"}, "config": {"greeting": "Howdy"}}`)
	ctx := context.Background()
	ev, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	var lastID, lastKey string
	for _, key := range []string{"greeting", "wcp.env", "wcp.data_label", "wcp.correlation_id", "wcp.tenant_id"} {
		t.Run(key, func(t *testing.T) {
			corr := "c-replay-" + key
			res, err := h.Run(ctx, host.RunRequest{Input: routeInput(t, "cap.test.cfg", "dev", "INTERNAL", corr), Payload: []byte(key)})
			if err != nil || res.Outcome != "ok" || len(res.Output) == 0 {
				t.Fatalf("run: outcome %q output %q err %v", res.Outcome, res.Output, err)
			}
			lastID, lastKey = res.ReceiptID, key
			rp, err := h.Replay(ctx, res.ReceiptID, []byte(key))
			if err != nil {
				t.Fatalf("replay: %v", err)
			}
			if !rp.Match || string(rp.Output) != string(res.Output) {
				t.Fatalf("replay of %s: output %q (match %v), the dispatch's was %q: the replayed guest saw another config", key, rp.Output, rp.Match, res.Output)
			}
			rs, err := ev.Receipts(ctx, ledger.Filter{CorrelationID: corr})
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 2 {
				t.Fatalf("%d receipts under %s, want the dispatch's and the replay's", len(rs), corr)
			}
			replay := rs[0] // newest first
			if replay.ReceiptID != rp.ReplayReceiptID || replay.ReplayOf != res.ReceiptID {
				t.Fatalf("newest receipt %s (replay_of %q), want the replay's %s of %s", replay.ReceiptID, replay.ReplayOf, rp.ReplayReceiptID, res.ReceiptID)
			}
			if got := replayOf(t, replay); got != res.ReceiptID {
				t.Fatalf("the replay's receipt has replay_of %q, want %s", got, res.ReceiptID)
			}
			if replay.DecisionID == res.Decision.DecisionID.String() || replay.DecisionID == "" {
				t.Fatalf("the replay's receipt names decision %q: a replay is decided anew", replay.DecisionID)
			}
			orig := receiptOf(t, h, res.ReceiptID)
			if replay.ArtifactHash != orig.ArtifactHash || replay.RecordDigest != orig.RecordDigest || string(replay.Envelope) != string(orig.Envelope) {
				t.Fatalf("the replay ran %s/%s/%s, the original %s/%s/%s", replay.ArtifactHash, replay.RecordDigest, replay.Envelope, orig.ArtifactHash, orig.RecordDigest, orig.Envelope)
			}
		})
	}
	if lastID == "" {
		t.FailNow()
	}

	// Re-enrolled with other bytes, the worker is still replayed with the
	// module and sealed record the receipt names.
	const recCfg = `{"worker_id": "org.acme.cfg", "worker_species_id": "wrk.test.cfg", "capabilities": ["cap.test.cfg"], "risk_tier": "low",
	  "determinism": "full", "entrypoints": {"cap.test.cfg": "config"}, "config": {"greeting": "Hello again"}}`
	re := enrollOK(t, h, appendCustomSection(guest, "x.test", []byte("other bytes")), recCfg)
	orig := receiptOf(t, h, lastID)
	if re.ArtifactHash.String() == orig.ArtifactHash {
		t.Fatal("re-enrolled with the same bytes")
	}
	rp, err := h.Replay(ctx, lastID, []byte(lastKey))
	if err != nil || !rp.Match {
		t.Fatalf("replay after re-enrollment: match %v err %v", rp != nil && rp.Match, err)
	}
	if r := receiptOf(t, h, rp.ReplayReceiptID); r.ArtifactHash != orig.ArtifactHash || r.RecordDigest != orig.RecordDigest {
		t.Fatalf("replay after re-enrollment ran %s (record %s), want the original %s (record %s)", r.ArtifactHash, r.RecordDigest, orig.ArtifactHash, orig.RecordDigest)
	}
	if string(rp.Decision.ArtifactHash) != orig.ArtifactHash {
		t.Fatalf("the replay's decision names module %s, want the one that ran, %s", rp.Decision.ArtifactHash, orig.ArtifactHash)
	}

	// The rules stop routing the capability: the replay is decided under
	// them, denied, and nothing runs.
	if err := os.WriteFile(h.Options().Rules, []byte(oneRule("cap.test.other", "wrk.test.cfg", "dev")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := ev.Receipts(ctx, ledger.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	rp, err = h.Replay(ctx, lastID, []byte(lastKey))
	if err != nil {
		t.Fatalf("a denied replay is a decision, not an error: %v", err)
	}
	if rp.Match || len(rp.Output) != 0 || !rp.Decision.Denied || rp.ReplayReceiptID != "" {
		t.Fatalf("replay under rules that no longer route the capability: match %v output %q denied %v receipt %q, want a denial", rp.Match, rp.Output, rp.Decision.Denied, rp.ReplayReceiptID)
	}
	if rp.Outcome != string(rp.Decision.Code()) || rp.Decision.CorrelationID != "c-replay-"+lastKey {
		t.Fatalf("denied replay: outcome %q correlation %q", rp.Outcome, rp.Decision.CorrelationID)
	}
	after, err := ev.Receipts(ctx, ledger.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Fatalf("a denied replay left a receipt (%d → %d)", len(before), len(after))
	}
}
