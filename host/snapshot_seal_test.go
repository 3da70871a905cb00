package host_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/ledger"
)

// sealed is one snapshot change entry of the change chain, its body
// decoded (docs/EVIDENCE.md, "Snapshots").
type sealed struct {
	ledger.Change
	sealedBody
}

type sealedBody struct {
	Manifest struct {
		Rules      string `json:"rules"`
		Policy     string `json:"policy"`
		Config     string `json:"config"`
		ConfigFile string `json:"config_file"`
		Records    string `json:"records"`
		// TrustPolicy is absent without a trust.json.
		TrustPolicy string `json:"trust_policy"`
	} `json:"manifest"`
	Changed map[string]json.RawMessage `json:"changed"`
}

// snapshotChanges returns the snapshot entries of h's change chain, in
// chain order.
func snapshotChanges(t *testing.T, h *host.Hall) []sealed {
	t.Helper()
	store, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := store.Changes(context.Background(), "snapshot")
	if err != nil {
		t.Fatal(err)
	}
	out := make([]sealed, len(cs))
	for i, c := range cs {
		out[i].Change = c
		if err := json.Unmarshal(c.Body, &out[i].sealedBody); err != nil {
			t.Fatalf("snapshot change %d: %v", c.Sequence, err)
		}
	}
	return out
}

func lastSealed(t *testing.T, h *host.Hall) sealed {
	t.Helper()
	cs := snapshotChanges(t, h)
	if len(cs) == 0 {
		t.Fatal("no snapshot is recorded in the change chain")
	}
	return cs[len(cs)-1]
}

// Deleting policy.json while the Hall runs must not switch the policies
// off without a trace, and putting the same file back is a change too.
func TestSnapshotPolicyRemovalIsRecorded(t *testing.T) {
	ctx := context.Background()
	h := policyHall(t, "1h")
	in := pickInput(t, "prod", "INTERNAL")
	if d := h.Decide(ctx, in); d.Code() != wcp.DenyRequiresHumanApproval {
		t.Fatalf("with the policy: %s, want DENY_REQUIRES_HUMAN_APPROVAL", d.Code())
	}
	set := h.Policies().Digest()
	path := h.PolicyFile()
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if d := h.Decide(ctx, in); d.Denied || d.Policy != nil {
		t.Fatalf("without the policy: %s policy=%v, want allowed without policy", d.Code(), d.Policy)
	}
	none := lastSealed(t, h)
	if none.Manifest.Policy != "none" || string(none.Changed["policy"]) != `"none"` || none.Actor != "file" {
		t.Fatalf("the removal is not recorded: manifest policy %q, changed %s, actor %q", none.Manifest.Policy, none.Changed["policy"], none.Actor)
	}
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if d := h.Decide(ctx, in); d.Code() != wcp.DenyRequiresHumanApproval {
		t.Fatalf("policy back: %s", d.Code())
	}
	back := lastSealed(t, h)
	if back.Sequence <= none.Sequence || back.Manifest.Policy != set || !strings.Contains(string(back.Changed["policy"]), "prod-writes-need-a-human") {
		t.Fatalf("the same policy set added again is not recorded: %+v", back.Manifest)
	}
}

// A policy file deleted while the Hall was stopped is found, and
// recorded, at start-up.
func TestSnapshotPolicyRemovedWhileStopped(t *testing.T) {
	ctx := context.Background()
	h := policyHall(t, "1h")
	dir := h.Options().Dir
	in := pickInput(t, "prod", "INTERNAL")
	if d := h.Decide(ctx, in); d.Code() != wcp.DenyRequiresHumanApproval {
		t.Fatalf("with the policy: %s", d.Code())
	}
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "policy.json")); err != nil {
		t.Fatal(err)
	}
	h2, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close(ctx)
	dec, err := h2.Route(ctx, in)
	if err != nil || dec.Policy != nil {
		t.Fatalf("after restart: %v policy=%v", err, dec.Policy)
	}
	last := lastSealed(t, h2)
	if last.Manifest.Policy != "none" || last.Actor != "file" {
		t.Fatalf("the removal found at start-up is not recorded: %+v actor %q", last.Manifest, last.Actor)
	}
	h2.Close(ctx)
	if got := storedSnapshots(t, h2.Options().Home, dec.DecisionID.String()); got[0] != last.Digest {
		t.Fatalf("the decision names snapshot %q, want %q", got[0], last.Digest)
	}
}

// storedSnapshots reads, from the closed Hall's ledger in home, the
// snapshot each decision's signed entry names.
func storedSnapshots(t *testing.T, home string, ids ...string) []string {
	t.Helper()
	l, err := ledger.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out := make([]string, len(ids))
	for i, id := range ids {
		rec, err := l.Decision(context.Background(), id)
		if err != nil {
			t.Fatalf("decision %s: %v", id, err)
		}
		out[i] = rec.Snapshot
	}
	return out
}

// hall.json rewritten while the Hall runs is recorded, with the
// effective configuration, before a decision uses it.
func TestSnapshotConfigChangeIsRecorded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rules.json", rules)
	write("hall.json", `{"enforce_worker_controls": true}`)
	h, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	first := lastSealed(t, h)
	cfg2 := `{"enforce_worker_controls": false, "workers": {"org.acme.tiny": {"config": {"mode": "unseen"}}}}`
	write("hall.json", cfg2)
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Route(ctx, input(t, "cap.test.tiny", "org.acme")); err != nil {
		t.Fatal(err)
	}
	last := lastSealed(t, h)
	if last.Sequence == first.Sequence || last.Manifest.Config == first.Manifest.Config {
		t.Fatal("the hall.json rewrite is not recorded")
	}
	got := string(last.Changed["config"])
	if !strings.Contains(got, `"enforce_worker_controls":false`) || !strings.Contains(got, `"mode":"unseen"`) {
		t.Fatalf("the recorded configuration is not the one in force: %s", got)
	}
	if want := digestHex(cfg2); last.Manifest.ConfigFile != want {
		t.Fatalf("config_file %s, want the file's digest %s", last.Manifest.ConfigFile, want)
	}
}

// The rules in force are recorded at start-up, after an edit made while
// the Hall was stopped, and for every generation that decides.
func TestSnapshotRulesEveryGenerationIsRecorded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	gen := func(i int) string {
		return fmt.Sprintf(`{"rules": [{"rule_id": "gen-%d", "match": {"capability_id": "cap.test.tiny"},
		  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.tiny"}]}}]}`, i)
	}
	path := filepath.Join(dir, "rules.json")
	if err := os.WriteFile(path, []byte(gen(0)), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	h.Close(ctx)
	if err := os.WriteFile(path, []byte(gen(1)), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err = host.Open(ctx, host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	for i := 2; i < 8; i++ {
		if err := os.WriteFile(path, []byte(gen(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := h.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		if d := h.Decide(ctx, input(t, "cap.test.tiny", "org.acme")); d.MatchedRuleID != fmt.Sprintf("gen-%d", i) {
			t.Fatalf("generation %d decided under rule %q", i, d.MatchedRuleID)
		}
	}
	var recorded []string
	for _, c := range snapshotChanges(t, h) {
		recorded = append(recorded, string(c.Changed["rules"]))
	}
	all := strings.Join(recorded, "\n")
	for i := range 8 {
		if !strings.Contains(all, fmt.Sprintf(`"gen-%d"`, i)) {
			t.Errorf("rules generation %d decided but is in no change entry", i)
		}
	}
}

// Concurrent first decisions under a new snapshot wait for one recording.
func TestSnapshotRecordedOnceUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	h := newHall(t, host.Options{Pool: -1})
	before := len(snapshotChanges(t, h))
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Go(func() {
			dec, err := h.Route(ctx, input(t, "cap.test.tiny", "org.acme"))
			if err == nil {
				ids[i] = dec.DecisionID.String()
			}
		})
	}
	wg.Wait()
	cs := snapshotChanges(t, h)
	if len(cs)-before != 1 {
		t.Fatalf("%d snapshot entries for one snapshot, want 1", len(cs)-before)
	}
	want := cs[len(cs)-1].Digest
	// A dispatch's receipt names it too.
	res, err := h.Run(ctx, host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")})
	if err != nil || res.ReceiptID == "" {
		t.Fatalf("run: %v", err)
	}
	store, _ := h.Evidence()
	r, err := store.Receipt(ctx, res.ReceiptID)
	if err != nil || r.Snapshot != want {
		t.Fatalf("receipt names snapshot %q, want %q (%v)", r.Snapshot, want, err)
	}
	h.Close(ctx)
	for i, got := range storedSnapshots(t, h.Options().Home, ids...) {
		if got != want {
			t.Fatalf("decision %s names snapshot %q, want %q", ids[i], got, want)
		}
	}
}

// unsealableLedger cannot record changes; it counts the decisions it is
// asked to record.
type unsealableLedger struct {
	nopLedger
	decisions atomic.Int64
}

func (*unsealableLedger) RecordChange(context.Context, *ledger.Change) error {
	return errors.New("disk full")
}

func (l *unsealableLedger) RecordDecision(context.Context, ledger.DecisionRecord) error {
	l.decisions.Add(1)
	return nil
}

// A snapshot that cannot be recorded decides nothing.
func TestSnapshotUnrecordedFailsClosed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	l := &unsealableLedger{}
	h, err := host.Open(ctx, host.Options{Dir: dir, Stores: &host.Stores{Evidence: l}, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	in := input(t, "cap.test.tiny", "org.acme")
	if d := h.Decide(ctx, in); !d.Denied || d.Code() != wcp.DenyInternalError || !strings.Contains(d.DenyReason.Message, "SNAPSHOT_UNRECORDED") {
		t.Fatalf("Decide under an unrecorded snapshot: %s", d.Code())
	}
	_, err = h.Route(ctx, in)
	if c, _ := wcp.CodeOf(err); c != wcp.CodeSnapshotUnrecorded {
		t.Fatalf("Route: %v (code %q), want SNAPSHOT_UNRECORDED", err, c)
	}
	res, err := h.Run(ctx, host.RunRequest{Input: in})
	if c, _ := wcp.CodeOf(err); c != wcp.CodeSnapshotUnrecorded || (res != nil && res.Ran) {
		t.Fatalf("Run: %v (code %q)", err, c)
	}
	if n := l.decisions.Load(); n != 0 {
		t.Fatalf("%d decisions recorded under an unrecorded snapshot", n)
	}
}

func digestHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func changedParts(c sealed) []string {
	var out []string
	for k := range c.Changed {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Each snapshot entry names who made the change and carries only what
// changed; a reload or a restart that finds nothing new records nothing.
func TestSnapshotNamesWhoChangedIt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	in := input(t, "cap.test.tiny", "org.acme")
	h.Decide(ctx, in)
	first := lastSealed(t, h)
	if first.Actor != "file" || !slices.Equal(changedParts(first), []string{"config", "policy", "records", "rules", "trust"}) {
		t.Fatalf("first snapshot: actor %q, changed %v", first.Actor, changedParts(first))
	}
	// An admin token the ledger records (an unrecorded one is refused:
	// ADMIN_TOKEN_UNRECORDED).
	if err := host.RecordTokenIssued(h, "tok_0123456789ab", "admin"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.ReplaceRules(ctx, []byte(rules), "", "token:tok_0123456789ab"); err != nil {
		t.Fatal(err)
	}
	h.Decide(ctx, in)
	if got := lastSealed(t, h); got.Sequence != first.Sequence {
		t.Fatalf("the same rules written again made a new snapshot entry: %v", changedParts(got))
	}
	if _, _, err := h.ReplaceRules(ctx, []byte(strings.Replace(rules, `"sum"`, `"summarize"`, 1)), "", "token:tok_0123456789ab"); err != nil {
		t.Fatal(err)
	}
	h.Decide(ctx, in)
	byToken := lastSealed(t, h)
	if byToken.Actor != "token:tok_0123456789ab" || !slices.Equal(changedParts(byToken), []string{"rules"}) {
		t.Fatalf("rules by token: actor %q, changed %v", byToken.Actor, changedParts(byToken))
	}
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: mods.tiny, Record: record("org.acme.tiny", "wrk.test.tiny", "cap.test.tiny", ""), Actor: "local:alice"}); err != nil {
		t.Fatal(err)
	}
	h.Decide(ctx, in)
	enrolled := lastSealed(t, h)
	if enrolled.Actor != "local:alice" || !slices.Equal(changedParts(enrolled), []string{"records"}) || !strings.Contains(string(enrolled.Changed["records"]), "org.acme.tiny") {
		t.Fatalf("enrollment: actor %q, changed %v %s", enrolled.Actor, changedParts(enrolled), enrolled.Changed["records"])
	}
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	h.Decide(ctx, in)
	h.Close(ctx)
	h, err = host.Open(ctx, host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	h.Decide(ctx, in)
	if got := lastSealed(t, h); got.Sequence != enrolled.Sequence {
		t.Fatalf("a reload and a restart that found nothing new recorded snapshot %d (%v)", got.Sequence, changedParts(got))
	}
}

// The case as reported: policy.json deleted under a Hall that
// watches its files. The reload Watch makes is awaited through OnChange,
// not by polling.
func TestSnapshotPolicyRemovedUnderWatch(t *testing.T) {
	ctx := context.Background()
	h := policyHall(t, "1h")
	in := pickInput(t, "prod", "INTERNAL")
	if d := h.Decide(ctx, in); d.Code() != wcp.DenyRequiresHumanApproval {
		t.Fatalf("with the policy: %s", d.Code())
	}
	changed := make(chan struct{}, 16)
	defer h.OnChange(func() { changed <- struct{}{} })()
	watching(t, h)
	if err := os.Remove(h.PolicyFile()); err != nil {
		t.Fatal(err)
	}
	for h.Policies() != nil {
		<-changed
	}
	if d := h.Decide(ctx, in); d.Denied || d.Policy != nil {
		t.Fatalf("after the removal: %s", d.Code())
	}
	if last := lastSealed(t, h); last.Manifest.Policy != "none" || last.Actor != "file" {
		t.Fatalf("the removal Watch found is not recorded: %+v actor %q", last.Manifest, last.Actor)
	}
}
