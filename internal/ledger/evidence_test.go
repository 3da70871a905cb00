package ledger

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/wcphall/hall/host/wcp"
)

// tricky holds the strings RFC 8785 and encoding/json disagree on, and
// those a terminal must not receive raw.
const tricky = "a\u2028b\u2029c\x01d\x7fe\U0001F600f<&>g\bh\fi\"j\\k\x1b[2J"

// newDecision returns a decision record for tenant; kind is "allowed",
// "denied" or "dry".
func newDecision(tenant, kind string, i int) DecisionRecord {
	d := DecisionRecord{
		DecisionID: uuid.NewString(), CorrelationID: fmt.Sprintf("corr-%s-%d-%s", tenant, i, tricky), TenantID: tenant,
		CapabilityID: "cap.doc.summarize", Timestamp: time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC).Add(time.Duration(i) * time.Second),
	}
	code := "null"
	switch kind {
	case "denied":
		d.Denied, d.DenyCode, code = true, "DENY_NO_MATCHING_RULE", `"DENY_NO_MATCHING_RULE"`
	case "dry":
		d.DryRun = true
	}
	corr, _ := json.Marshal(d.CorrelationID)
	d.Decision = json.RawMessage(fmt.Sprintf(`{"decision_id":%q,"denied":%v,"deny_reason_if_denied":{"code":%s},"score_hint":1.0,"correlation_id":%s,
		"telemetry_envelopes":[{"event_id":"evt.os.task.routed","correlation_id":%s,"n":%d}]}`, d.DecisionID, d.Denied, code, corr, corr, i))
	return d
}

func recordDecisions(t testing.TB, s *SQLite, tenant string, kinds ...string) []DecisionRecord {
	t.Helper()
	var out []DecisionRecord
	for i, k := range kinds {
		d := newDecision(tenant, k, i)
		if err := s.RecordDecision(context.Background(), d); err != nil {
			t.Fatalf("RecordDecision: %v", err)
		}
		out = append(out, d)
	}
	return out
}

// rawEvidenceDB is rawDB for the decision chain: the attacker drops the
// guard triggers of entries too.
func rawEvidenceDB(t *testing.T, s *SQLite) *sql.DB {
	t.Helper()
	db := rawDB(t, s)
	for _, q := range []string{"DROP TRIGGER entries_no_update", "DROP TRIGGER entries_no_delete"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func TestDecisionsAreChained(t *testing.T) {
	s := openT(t, t.TempDir())
	ds := recordDecisions(t, s, "a", "allowed", "denied", "dry")
	recordDecisions(t, s, "", "denied")
	if err := s.RecordEvents(context.Background(), ds[0].CorrelationID, []json.RawMessage{json.RawMessage(`{"event_id":"w.1","x":1.0}`)}); err != nil {
		t.Fatal(err)
	}
	rep := verifyOK(t, s, nil)
	if rep.Decisions != 5 || rep.DecisionStreams != 2 || rep.Unchained != 0 {
		t.Fatalf("report %+v: want 5 entries (4 decisions, 1 event batch) in 2 streams", rep)
	}
	// The worker's events went to the tenant of the decision with their
	// correlation id, after its three decisions.
	var stream string
	var seq int
	if err := s.r.QueryRow(`SELECT stream, seq FROM entries WHERE kind = 'events'`).Scan(&stream, &seq); err != nil || stream != "a" || seq != 4 {
		t.Fatalf("events entry in stream %q at %d (%v), want a at 4", stream, seq, err)
	}
	got, err := s.Decision(context.Background(), ds[1].DecisionID)
	if want, _ := canonical(ds[1].Decision); err != nil || !got.Denied || got.DenyCode != "DENY_NO_MATCHING_RULE" || string(got.Decision) != string(want) {
		t.Fatalf("Decision = %+v, %v", got, err)
	}
	for _, h := range rep.Heads {
		if h.Chain == ChainDecisions && h.Tenant == "a" && h.Sequence != 4 {
			t.Errorf("head of a's decisions %+v", h)
		}
	}
}

// TestVerifyDetectsDecisionTampering: deleting, altering or reordering a
// denied decision (its signed entry or the row hall reads) is a break.
func TestVerifyDetectsDecisionTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB, ds []DecisionRecord)
		at     int // index in ds of the entry the break names
		reason string
	}{
		{"denied decision row deleted", func(t *testing.T, db *sql.DB, ds []DecisionRecord) {
			mustExec(t, db, `DELETE FROM decisions WHERE decision_id = ?`, ds[1].DecisionID)
		}, 1, "row of this signed decision is missing"},
		{"denied decision deleted, entry and row", func(t *testing.T, db *sql.DB, ds []DecisionRecord) {
			mustExec(t, db, `DELETE FROM decisions WHERE decision_id = ?`, ds[1].DecisionID)
			mustExec(t, db, `DELETE FROM entries WHERE entry_id = ?`, ds[1].DecisionID)
		}, 2, "entries 2..2 are missing"},
		{"denial turned into an allow in the row", func(t *testing.T, db *sql.DB, ds []DecisionRecord) {
			mustExec(t, db, `UPDATE decisions SET denied = 0, deny_code = '' WHERE decision_id = ?`, ds[1].DecisionID)
		}, 1, "decisions row column denied"},
		{"decision JSON altered in the row", func(t *testing.T, db *sql.DB, ds []DecisionRecord) {
			// The row holds no copy (the entry is the one record); a
			// decision written into it must be the signed one.
			mustExec(t, db, `UPDATE decisions SET decision = ? WHERE decision_id = ?`,
				strings.Replace(string(ds[1].Decision), "DENY_NO_MATCHING_RULE", "DENY_OTHER", 1), ds[1].DecisionID)
		}, 1, "decision JSON differs"},
		{"signed entry altered", func(t *testing.T, db *sql.DB, ds []DecisionRecord) {
			mustExec(t, db, `UPDATE entries SET body = replace(body, '"denied":true', '"denied":false') WHERE entry_id = ?`, ds[1].DecisionID)
		}, 1, "entry altered"},
		{"newest decision deleted", func(t *testing.T, db *sql.DB, ds []DecisionRecord) {
			mustExec(t, db, `DELETE FROM decisions WHERE decision_id = ?`, ds[2].DecisionID)
			mustExec(t, db, `DELETE FROM entries WHERE entry_id = ?`, ds[2].DecisionID)
		}, 2, "newest entries deleted"},
		{"two entries swapped", func(t *testing.T, db *sql.DB, ds []DecisionRecord) {
			mustExec(t, db, `UPDATE entries SET seq = -1 WHERE entry_id = ?`, ds[0].DecisionID)
			mustExec(t, db, `UPDATE entries SET seq = 1 WHERE entry_id = ?`, ds[1].DecisionID)
			mustExec(t, db, `UPDATE entries SET seq = 2 WHERE entry_id = ?`, ds[0].DecisionID)
		}, 1, "column seq"},
		{"head row deleted", func(t *testing.T, db *sql.DB, ds []DecisionRecord) {
			mustExec(t, db, `DELETE FROM entry_heads WHERE stream = 'a'`)
		}, 2, "head row deleted"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			ds := recordDecisions(t, s, "a", "allowed", "denied", "dry")
			recordDecisions(t, s, "b", "denied", "allowed")
			tc.tamper(t, rawEvidenceDB(t, s), ds)
			rep, err := s.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Breaks) != 1 {
				t.Fatalf("breaks %v, want exactly one (stream b is untouched)", rep.Breaks)
			}
			b := rep.Breaks[0]
			if b.Chain != ChainDecisions || b.Tenant != "a" || b.ReceiptID != ds[tc.at].DecisionID || !strings.Contains(b.Reason, tc.reason) {
				t.Errorf("break %+v\nwant a's decision %s, reason containing %q", b, ds[tc.at].DecisionID, tc.reason)
			}
		})
	}
}

// TestCheckpointDetectsTruncation: cutting the end of a chain together with
// its head row, or restoring an older copy of the database, leaves a
// consistent ledger that only a checkpoint kept elsewhere can contradict.
func TestCheckpointDetectsTruncation(t *testing.T) {
	dir, witness := t.TempDir(), t.TempDir()
	s := openT(t, dir, WithCheckpoints(CheckpointPolicy{Dir: witness}))
	rs := appendN(t, s, "a", 3)
	ds := recordDecisions(t, s, "a", "denied", "denied")
	cp, err := s.Checkpoint(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Heads) != 2+schemaChanges || cp.Heads[0].Chain != ChainReceipts || cp.Heads[1].Chain != ChainDecisions {
		t.Fatalf("checkpoint heads %+v", cp.Heads)
	}
	saved, err := ReadCheckpoints(witness)
	if err != nil || len(saved) != 1 || saved[0].Hash != cp.Hash {
		t.Fatalf("witness dir: %+v, %v", saved, err)
	}
	if rep, err := s.VerifyWith(context.Background(), VerifyOptions{Checkpoints: saved}); err != nil || !rep.OK() || rep.Checkpoints != 1 {
		t.Fatalf("untouched: %+v, %v", rep, err)
	}

	db := rawEvidenceDB(t, s)
	mustExec(t, db, `DELETE FROM receipts WHERE receipt_id = ?`, rs[2].ReceiptID)
	mustExec(t, db, `UPDATE stream_heads SET seq = 2, receipt_id = ?, receipt_hash = ? WHERE tenant_id = 'a'`, rs[1].ReceiptID, rs[1].ReceiptHash)
	mustExec(t, db, `DELETE FROM decisions WHERE decision_id = ?`, ds[1].DecisionID)
	mustExec(t, db, `DELETE FROM entries WHERE entry_id = ?`, ds[1].DecisionID)
	var h1 string
	if err := db.QueryRow(`SELECT hash FROM entries WHERE entry_id = ?`, ds[0].DecisionID).Scan(&h1); err != nil {
		t.Fatal(err)
	}
	mustExec(t, db, `UPDATE entry_heads SET seq = 1, entry_id = ?, hash = ? WHERE stream = 'a'`, ds[0].DecisionID, h1)

	verifyOK(t, s, nil) // consistent: nothing inside the database tells
	rep, err := s.VerifyWith(context.Background(), VerifyOptions{Checkpoints: saved})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Breaks) != 2 {
		t.Fatalf("breaks %v, want the receipt stream and the decision chain truncated", rep.Breaks)
	}
	for i, want := range []struct{ chain, id string }{{ChainReceipts, rs[2].ReceiptID}, {ChainDecisions, ds[1].DecisionID}} {
		if b := rep.Breaks[i]; b.Chain != want.chain || b.ReceiptID != want.id || !strings.Contains(b.Reason, "truncated or rolled back") {
			t.Errorf("break %d: %+v, want %s %s truncated", i, b, want.chain, want.id)
		}
	}

	// A checkpoint altered in the witness directory does not verify.
	forged := saved[0]
	forged.Heads = forged.Heads[:1]
	rep, err = s.VerifyWith(context.Background(), VerifyOptions{Checkpoints: []Checkpoint{forged}})
	if err != nil || len(rep.Breaks) != 1 || rep.Breaks[0].Chain != "checkpoint" || !strings.Contains(rep.Breaks[0].Reason, "checkpoint altered") {
		t.Fatalf("forged checkpoint: %v, %v", rep.Breaks, err)
	}
}

// TestCheckpointsByCount: with Every set, checkpoints appear by themselves.
func TestCheckpointsByCount(t *testing.T) {
	witness := t.TempDir()
	s := openT(t, t.TempDir(), WithCheckpoints(CheckpointPolicy{Dir: witness, Every: 5}))
	appendN(t, s, "a", 12)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cps, err := ReadCheckpoints(witness)
		if err != nil {
			t.Fatal(err)
		}
		if len(cps) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d checkpoints after 12 receipts with Every 5, want 2", len(cps))
		}
		time.Sleep(10 * time.Millisecond) // polling the witness directory, not synchronising
	}
	if err := s.LastCheckpointError(); err != nil {
		t.Fatal(err)
	}
}

// TestKeyRotation: after `hall keys rotate`, entries before the rotation
// verify with the old key, entries after with the new one, a verifier
// that trusts only the newest key checks both (the rotation carries the
// new key's proof), and the old key cannot sign after its retirement.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	other := openT(t, dir) // a second process on the same state directory
	appendN(t, s, "a", 2)
	recordDecisions(t, s, "a", "denied")
	recordChanges(t, s, 3)
	oldPub, oldID := s.PublicKey(), s.KeyID()
	ch, err := s.RotateKey(context.Background(), "local:alice")
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() == oldID || ch.Kind != ChangeKey || ch.SigningKeyID != oldID || ch.Subject != s.KeyID() {
		t.Fatalf("rotation %+v; key %s, old %s", ch, s.KeyID(), oldID)
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile+nextSuffix)); !os.IsNotExist(err) {
		t.Errorf("the new key is still beside the key file: %v", err)
	}
	// The other process picks the new key up at its next write.
	r := newReceipt("a", 9)
	if err := other.Append(context.Background(), r); err != nil || r.SigningKeyID != s.KeyID() {
		t.Fatalf("append in the other process: %v, signed by %s, want %s", err, r.SigningKeyID, s.KeyID())
	}
	recordDecisions(t, s, "a", "allowed")

	rep := verifyOK(t, s, nil) // trusts the new key only
	if rep.Receipts != 3 || rep.Decisions != 2 || rep.Changes != 4+schemaChanges {
		t.Fatalf("report %+v", rep)
	}
	ks, err := s.KeySet(context.Background())
	if err != nil || len(ks.Keys) != 2 || ks.Keys[0].KeyID != oldID || ks.Keys[0].ValidUntil == "" || ks.Keys[1].ValidFrom != ks.Keys[0].ValidUntil {
		t.Fatalf("key set %+v, %v", ks, err)
	}
	keys, err := ks.Public()
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.VerifyWith(context.Background(), VerifyOptions{Keys: keys}); err != nil || !rep.OK() {
		t.Fatalf("with the published key set: %v, %v", rep.Breaks, err)
	}
	// Trusting only the old key, everything after the rotation fails.
	rep, err = s.Verify(context.Background(), oldPub)
	if err != nil || rep.OK() {
		t.Fatalf("old key alone: %+v, %v", rep, err)
	}
	for _, b := range rep.Breaks {
		if !strings.Contains(b.Reason, "signed by key "+s.KeyID()) {
			t.Errorf("break %v, want only entries signed by the new key", b)
		}
	}

	// An entry forged with the retired key after the rotation is refused
	// even by a verifier that trusts both keys.
	forger := &SQLite{path: s.path}
	db := rawDB(t, s)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	// The retired private key is gone from disk; an attacker who kept a
	// copy is simulated by a key with the old id pinned into the ring.
	_, fake, _ := ed25519.GenerateKey(nil)
	forger.key.Store(newSigner(fake))
	fr := newReceipt("a", 10)
	fr.ReceiptID, fr.Version = uuid.NewString(), formatV2
	if err := forger.link(tx, fr); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	ring := newKeyRing(map[string]ed25519.PublicKey{s.KeyID(): s.PublicKey(), forger.KeyID(): forger.PublicKey()}, []rotation{{
		KeyRotation: KeyRotation{OldKeyID: forger.KeyID(), NewKeyID: s.KeyID(), Heads: []Head{{Chain: ChainReceipts, Tenant: "a", Sequence: 2}}}}})
	if reason := ring.check(ChainReceipts, "a", 4, forger.KeyID(), fr.ReceiptHash, fr.Signature); !strings.Contains(reason, "rotated out") {
		t.Errorf("retired key signing after its retirement: %q", reason)
	}
	if reason := ring.check(ChainReceipts, "a", 2, forger.KeyID(), fr.ReceiptHash, fr.Signature); reason != "" {
		t.Errorf("retired key within its range: %q", reason)
	}
}

// TestKeyOutsideStateDir: the key can live elsewhere (a path) or come from
// a file descriptor, with the same permission checks.
func TestKeyOutsideStateDir(t *testing.T) {
	state, keys := t.TempDir(), t.TempDir()
	kp := filepath.Join(keys, "hall.key")
	s := openT(t, state, WithKeyFile(kp))
	appendN(t, s, "a", 1)
	if _, err := os.Stat(filepath.Join(state, KeyFile)); !os.IsNotExist(err) {
		t.Errorf("a key was created in the state directory: %v", err)
	}
	id := s.KeyID()
	if _, err := s.RotateKey(context.Background(), "local:alice"); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, s, nil)
	s.Close()

	f, err := os.Open(kp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s2 := openT(t, state, WithKeyReader(f))
	if s2.KeyID() == id {
		t.Fatal("the rotated key file still holds the old key")
	}
	appendN(t, s2, "a", 1)
	if _, err := s2.RotateKey(context.Background(), "local:alice"); err == nil || !strings.Contains(err.Error(), "stream") {
		t.Errorf("rotating a key given as a stream: %v", err)
	}
	verifyOK(t, s2, nil)

	if err := os.Chmod(kp, 0o640); err != nil {
		t.Fatal(err)
	}
	f2, _ := os.Open(kp)
	defer f2.Close()
	if _, err := Open(state, WithKeyReader(f2)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable key descriptor: %v", err)
	}
	if _, err := Open(state, WithKeyFile(kp)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("group-readable key file: %v", err)
	}
}

// TestVersion1EntriesStillVerify: receipts and changes written before RFC
// 8785 (no "version" member, hashed over encoding/json's form, which
// escapes U+2028) keep verifying beside version 2 ones; an enrollment seal
// made with the old record encoder is re-expressed by Changes so the same
// record still loads.
func TestVersion1EntriesStillVerify(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	old := &SQLite{path: s.path}
	old.key.Store(s.key.Load())
	db, err := sql.Open("sqlite", s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	r := newReceipt("a", 0)
	r.CorrelationID, r.ErrorMessage = tricky, "x\u2028y"
	r.ReceiptID, r.InputPayload, r.OutputPayload = uuid.NewString(), nil, nil
	r.DispatchedAt = r.DispatchedAt.UTC().Truncate(time.Microsecond)
	if err := old.link(tx, r); err != nil { // Version 0: written as before
		t.Fatal(err)
	}
	record := `{"worker_id":"org.acme.w","extra_score":1.0,"note":"\u2028<&>\b"}`
	oldSeal, _ := sealV1([]byte(record))
	c := &Change{Kind: ChangeEnroll, Subject: "org.acme.w", Digest: digestOf(oldSeal), ArtifactHash: digest("m"),
		Body: json.RawMessage(record), Actor: "local:alice", At: time.Now().UTC().Truncate(time.Microsecond), ChangeID: newChangeID()}
	if c.Body, err = canonicalV1(c.Body); err != nil {
		t.Fatal(err)
	}
	if err := old.linkChange(tx, "test", c); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	var body string
	if err := db.QueryRow(`SELECT body FROM receipts`).Scan(&body); err != nil || !strings.Contains(body, `\u2028`) || strings.Contains(body, `"version"`) {
		t.Fatalf("version 1 body %s (%v): want encoding/json's \\u2028 and no version", body, err)
	}
	appendN(t, s, "a", 1) // version 2 after it
	rep := verifyOK(t, s, nil)
	if rep.Receipts != 2 || rep.Changes != 1+schemaChanges {
		t.Fatalf("report %+v", rep)
	}
	rs, _ := s.Receipts(context.Background(), Filter{TenantID: "a"})
	if rs[0].Version != 2 || rs[1].Version != 0 {
		t.Errorf("versions %d, %d; want 2 then 0", rs[0].Version, rs[1].Version)
	}
	// The seal: Changes returns the RFC 8785 digest of the same record,
	// which is what wcp.RecordDigest computes for it now.
	cs, err := s.Changes(context.Background(), ChangeEnroll)
	if err != nil || len(cs) != 1 {
		t.Fatal(err)
	}
	jcs, _ := wcp.CanonicalJSON(json.RawMessage(record))
	if cs[0].Digest != digestOf(jcs) || cs[0].DigestV1 != c.Digest || cs[0].Digest == c.Digest {
		t.Errorf("seal %s (v1 %s), want %s re-expressed from %s", cs[0].Digest, cs[0].DigestV1, digestOf(jcs), c.Digest)
	}
}

// Two tenants that use the same correlation id: a worker's events filed by
// decision land in the chain of the tenant whose dispatch emitted them, not
// in the chain of whichever tenant decided last.
func TestDecisionEventsFollowTheirDecision(t *testing.T) {
	s := openT(t, t.TempDir())
	ctx := context.Background()
	a := newDecision("a", "allowed", 0)
	b := newDecision("b", "allowed", 1)
	b.CorrelationID = a.CorrelationID
	for _, d := range []DecisionRecord{a, b} {
		if err := s.RecordDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordDecisionEvents(ctx, a.DecisionID, a.CorrelationID, []json.RawMessage{json.RawMessage(`{"event_id":"w.1"}`)}); err != nil {
		t.Fatal(err)
	}
	var stream string
	if err := s.r.QueryRow(`SELECT stream FROM entries WHERE kind = 'events'`).Scan(&stream); err != nil || stream != "a" {
		t.Fatalf("events of a's dispatch filed in stream %q (%v), want a", stream, err)
	}
	if err := s.RecordDecisionEvents(ctx, "no-such-decision", a.CorrelationID, []json.RawMessage{json.RawMessage(`{"event_id":"w.2"}`)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("events of an unknown decision: %v, want ErrInvalid", err)
	}
	verifyOK(t, s, nil)
}
