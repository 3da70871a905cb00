package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawChangesDB is rawDB with the change chain's guard triggers dropped too.
func rawChangesDB(t *testing.T, s *SQLite) *sql.DB {
	t.Helper()
	db := rawDB(t, s)
	for _, q := range []string{"DROP TRIGGER changes_no_update", "DROP TRIGGER changes_no_delete"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// TestReceiptHashUnchangedWithoutNewFields pins the hash of a receipt
// without record digest and envelope to the value computed before those
// fields existed: receipts already in ledgers must keep verifying.
func TestReceiptHashUnchangedWithoutNewFields(t *testing.T) {
	r := newReceipt("org.acme", 7)
	r.DecisionID = "0189aaaa-0000-7000-8000-000000000001"
	r.ReceiptID, r.Sequence, r.PrevReceiptHash, r.SigningKeyID = "01890000-0000-7000-8000-000000000007", 7, digest("prev"), "ed25519:0123456789abcdef"
	got, err := r.ComputeHash()
	if err != nil {
		t.Fatal(err)
	}
	// Computed with the receipt code of commit d5a575a.
	const want = "sha256:114e6b210433c238a1174f4bf58b7c58f107cba922e9072bef1ec3ab42bbd2a7"
	if got != want {
		t.Fatalf("hash %s, want %s: the canonical body of old receipts changed", got, want)
	}
	r.RecordDigest = digest("record")
	if got2, _ := r.ComputeHash(); got2 == want {
		t.Fatal("record_digest is not covered by the hash")
	}
	r.RecordDigest, r.Envelope = "", json.RawMessage(`{}`)
	if got2, _ := r.ComputeHash(); got2 == want {
		t.Fatal("privilege_envelope is not covered by the hash")
	}
}

func TestReceiptRecordDigestAndEnvelope(t *testing.T) {
	for _, tc := range []struct {
		name     string
		digest   string
		envelope string
		// stored is the envelope as read back ("" for none).
		stored string
	}{
		{"neither (older callers)", "", "", ""},
		{"both", digest("record"), `{ "network_egress": ["api.example.com"], "filesystem_reads": [] }`,
			`{"filesystem_reads":[],"network_egress":["api.example.com"]}`},
		{"empty envelope declared", digest("record"), `{}`, `{}`},
		{"envelope without record digest", "", `{"secrets":["K"]}`, `{"secrets":["K"]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			appendN(t, s, "a", 1)
			r := newReceipt("a", 1)
			r.RecordDigest = tc.digest
			if tc.envelope != "" {
				r.Envelope = json.RawMessage(tc.envelope)
			}
			if err := s.Append(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			if string(r.Envelope) != tc.stored {
				t.Errorf("Append left envelope %s, want %s", r.Envelope, tc.stored)
			}
			got, err := s.Receipt(context.Background(), r.ReceiptID)
			if err != nil {
				t.Fatal(err)
			}
			if got.RecordDigest != tc.digest || string(got.Envelope) != tc.stored {
				t.Errorf("read back record_digest %q envelope %s, want %q %s", got.RecordDigest, got.Envelope, tc.digest, tc.stored)
			}
			var body string
			if err := s.r.QueryRow(`SELECT body FROM receipts WHERE receipt_id = ?`, r.ReceiptID).Scan(&body); err != nil {
				t.Fatal(err)
			}
			for key, present := range map[string]bool{`"record_digest"`: tc.digest != "", `"privilege_envelope"`: tc.stored != ""} {
				if strings.Contains(body, key) != present {
					t.Errorf("stored body has %s: %v, want %v\n%s", key, !present, present, body)
				}
			}
			if rep := verifyOK(t, s, nil); rep.Receipts != 2 {
				t.Errorf("%d receipts verified, want 2", rep.Receipts)
			}
		})
	}
}

func TestReceiptRecordDigestAndEnvelopeInvalid(t *testing.T) {
	s := openT(t, t.TempDir())
	for _, tc := range []struct {
		name, digest, envelope, field string
	}{
		{"digest without algorithm", strings.Repeat("a", 64), "", "record_digest"},
		{"digest upper case", "sha256:" + strings.Repeat("A", 64), "", "record_digest"},
		{"digest short", "sha256:abc", "", "record_digest"},
		{"envelope array", "", `[]`, "privilege_envelope"},
		{"envelope null", "", `null`, "privilege_envelope"},
		{"envelope string", "", `"x"`, "privilege_envelope"},
		{"envelope malformed", "", `{"a":`, "privilege_envelope"},
		{"envelope trailing data", "", `{} {}`, "privilege_envelope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceipt("a", 1)
			r.RecordDigest = tc.digest
			if tc.envelope != "" {
				r.Envelope = json.RawMessage(tc.envelope)
			}
			err := s.Append(context.Background(), r)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Append: %v, want ErrInvalid naming %s", err, tc.field)
			}
			if r.ReceiptID != "" {
				t.Fatal("a refused receipt got chain fields")
			}
		})
	}
}

// TestVerifyDetectsEnvelopeTampering: widening the recorded envelope in the
// database file, with or without recomputing the hash, breaks the stream.
func TestVerifyDetectsEnvelopeTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		rehash bool
		reason string
	}{
		{"envelope widened", false, "receipt altered"},
		{"envelope widened and hash recomputed", true, "signature does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			var rs []*Receipt
			for i := range 3 {
				r := newReceipt("a", i)
				r.RecordDigest = digest("record")
				r.Envelope = json.RawMessage(`{"network_egress":[]}`)
				if err := s.Append(context.Background(), r); err != nil {
					t.Fatal(err)
				}
				rs = append(rs, r)
			}
			appendN(t, s, "b", 2)
			verifyOK(t, s, nil)

			db := rawDB(t, s)
			if tc.rehash {
				f := *rs[1]
				f.Envelope = json.RawMessage(`{"network_egress":["*"]}`)
				body, _ := f.CanonicalBody()
				mustExec(t, db, `UPDATE receipts SET body = ?, receipt_hash = ? WHERE receipt_id = ?`, string(body), hashBody(body), rs[1].ReceiptID)
			} else {
				mustExec(t, db, `UPDATE receipts SET body = replace(body, '"network_egress":[]', '"network_egress":["*"]') WHERE receipt_id = ?`, rs[1].ReceiptID)
			}
			rep, err := s.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Breaks) != 1 || rep.Breaks[0].Tenant != "a" || rep.Breaks[0].ReceiptID != rs[1].ReceiptID || !strings.Contains(rep.Breaks[0].Reason, tc.reason) {
				t.Fatalf("breaks %v, want one at %s containing %q", rep.Breaks, rs[1].ReceiptID, tc.reason)
			}
		})
	}
}

// newChange returns a valid enrollment change without chain fields.
func newChange(i int) *Change {
	return &Change{
		Kind:         ChangeEnroll,
		Subject:      fmt.Sprintf("org.acme.worker%d", i),
		Digest:       digest(fmt.Sprint("record", i)),
		ArtifactHash: digest(fmt.Sprint("module", i)),
		Body:         json.RawMessage(fmt.Sprintf(`{"worker_id": "org.acme.worker%d", "privilege_envelope": {}}`, i)),
		Actor:        "local:alice",
		At:           time.Date(2025, 3, 4, 5, 6, 7, 891234567, time.FixedZone("X", -7200)).Add(time.Duration(i) * time.Minute),
	}
}

// recordChanges records an enroll, a rules and a config change, then n-3
// more enrollments (n ≥ 3).
func recordChanges(t testing.TB, s *SQLite, n int) []*Change {
	t.Helper()
	var out []*Change
	for i := range n {
		c := newChange(i)
		switch i {
		case 1:
			c.Kind, c.Subject, c.ArtifactHash, c.Actor = ChangeRules, "/srv/hall/rules.json", "", "token:tok_0123456789ab"
			c.Body = json.RawMessage(`{"rules": []}`)
		case 2:
			c.Kind, c.Subject, c.ArtifactHash, c.Actor, c.Body = ChangeConfig, "/srv/hall/hall.json", "", "embedder", nil
		}
		if err := s.RecordChange(context.Background(), c); err != nil {
			t.Fatalf("RecordChange #%d: %v", i, err)
		}
		out = append(out, c)
	}
	return out
}

func TestRecordChange(t *testing.T) {
	s := openT(t, t.TempDir())
	appendN(t, s, "a", 2)
	cs := recordChanges(t, s, 5)
	for i, c := range cs {
		if !strings.HasPrefix(c.ChangeID, "chg_") || len(c.ChangeID) != len("chg_")+32 {
			t.Errorf("change %d id %q", i, c.ChangeID)
		}
		if c.Sequence != uint64(i+1+schemaChanges) || c.SigningKeyID != s.KeyID() || c.Signature == "" {
			t.Errorf("change %d chain fields: %+v", i, c)
		}
		if h, _ := c.ComputeHash(); h != c.Hash {
			t.Errorf("change %d hash %s, recomputed %s", i, c.Hash, h)
		}
		want := schemaHead(t, s).Hash
		if i > 0 {
			want = cs[i-1].Hash
		}
		if c.PrevHash != want {
			t.Errorf("change %d prev_hash %q, want %q", i, c.PrevHash, want)
		}
		if c.At.Location() != time.UTC || c.At.Nanosecond()%1000 != 0 {
			t.Errorf("change %d at %v: want UTC, microseconds", i, c.At)
		}
	}
	if string(cs[0].Body) != `{"privilege_envelope":{},"worker_id":"org.acme.worker0"}` {
		t.Errorf("body not canonicalized: %s", cs[0].Body)
	}

	all, err := s.Changes(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5+schemaChanges {
		t.Fatalf("%d changes, want 5 and the schema change", len(all))
	}
	all = all[schemaChanges:]
	for i := range all {
		a, _ := json.Marshal(all[i])
		b, _ := json.Marshal(*cs[i])
		if string(a) != string(b) {
			t.Errorf("change %d read back\n%s\nwant\n%s", i, a, b)
		}
	}
	for _, tc := range []struct {
		kind string
		seqs []uint64
	}{
		{ChangeSchema, []uint64{1}},
		{ChangeEnroll, []uint64{2, 5, 6}},
		{ChangeRules, []uint64{3}},
		{ChangeConfig, []uint64{4}},
		{"other", nil},
	} {
		got, err := s.Changes(context.Background(), tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, c := range got {
			seqs = append(seqs, c.Sequence)
		}
		if fmt.Sprint(seqs) != fmt.Sprint(tc.seqs) {
			t.Errorf("Changes(%q) sequences %v, want %v", tc.kind, seqs, tc.seqs)
		}
	}

	rep := verifyOK(t, s, nil)
	if rep.Changes != 5+schemaChanges || rep.Receipts != 2 || rep.Streams != 1 {
		t.Errorf("report %+v, want 5 changes and the schema change, 2 receipts, 1 stream", rep)
	}
	if len(rep.Heads) != 2 || rep.Heads[0] != (Head{Chain: ChainChanges, Tenant: ChangeChain, Sequence: 5 + schemaChanges, ReceiptID: cs[4].ChangeID, ReceiptHash: cs[4].Hash}) {
		t.Errorf("heads %+v, want the change head first", rep.Heads)
	}
	if _, err := s.w.Exec(`DELETE FROM changes WHERE seq = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("DELETE on changes: %v, want the append-only trigger", err)
	}
}

func TestRecordChangeDefaultsAt(t *testing.T) {
	s := openT(t, t.TempDir())
	c := newChange(0)
	c.At = time.Time{}
	before := time.Now().Add(-time.Second)
	if err := s.RecordChange(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if c.At.Before(before) || c.At.After(time.Now().Add(time.Second)) {
		t.Fatalf("At = %v, want now", c.At)
	}
}

func TestRecordChangeInvalid(t *testing.T) {
	s := openT(t, t.TempDir())
	for _, tc := range []struct {
		name  string
		edit  func(c *Change)
		field string
	}{
		{"no kind", func(c *Change) { c.Kind = "" }, "kind"},
		{"kind upper case", func(c *Change) { c.Kind = "Enroll" }, "kind"},
		{"no subject", func(c *Change) { c.Subject = "" }, "subject"},
		{"no actor", func(c *Change) { c.Actor = " " }, "actor"},
		{"actor with newline", func(c *Change) { c.Actor = "local:a\nb" }, "actor"},
		{"bad digest", func(c *Change) { c.Digest = "sha256:xyz" }, "digest"},
		{"enroll without artifact hash", func(c *Change) { c.ArtifactHash = "" }, "artifact_hash"},
		{"rules with bad artifact hash", func(c *Change) { c.Kind, c.ArtifactHash = ChangeRules, "x" }, "artifact_hash"},
		{"body not JSON", func(c *Change) { c.Body = json.RawMessage(`{`) }, "body"},
		{"year 10000", func(c *Change) { c.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newChange(0)
			tc.edit(c)
			err := s.RecordChange(context.Background(), c)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("RecordChange: %v, want ErrInvalid naming %s", err, tc.field)
			}
			if c.ChangeID != "" {
				t.Fatal("a refused change got chain fields")
			}
		})
	}
	if _, err := s.Changes(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	if rep := verifyOK(t, s, nil); rep.Changes != schemaChanges {
		t.Fatalf("%d changes stored, want none", rep.Changes)
	}
	if err := s.Append(context.Background(), newReceipt(ChangeChain, 0)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Append to tenant %q: %v, want ErrInvalid", ChangeChain, err)
	}
}

// TestRecordChangeConcurrent: changes recorded from many goroutines, mixed
// with receipts in the same group commits, form one gapless chain.
func TestRecordChangeConcurrent(t *testing.T) {
	s := openT(t, t.TempDir())
	const goroutines, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*goroutines*each)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				errs <- s.RecordChange(context.Background(), newChange(g*each+i))
				errs <- s.Append(context.Background(), newReceipt("a", i))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if rep := verifyOK(t, s, nil); rep.Changes != goroutines*each+schemaChanges || rep.Receipts != goroutines*each {
		t.Fatalf("report %+v", rep)
	}
}

func TestVerifyDetectsChangeTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, db *sql.DB, cs []*Change)
		// at is the index in cs of the change the break must name.
		at     int
		reason string
	}{
		{"digest changed in the signed body", func(t *testing.T, db *sql.DB, cs []*Change) {
			mustExec(t, db, `UPDATE changes SET body = replace(body, ?, ?) WHERE change_id = ?`, cs[2].Digest, digest("other"), cs[2].ChangeID)
		}, 2, "change altered"},
		{"actor changed and hash recomputed", func(t *testing.T, db *sql.DB, cs []*Change) {
			f := *cs[2]
			f.Actor = "local:mallory"
			body, _ := f.CanonicalBody()
			mustExec(t, db, `UPDATE changes SET body = ?, hash = ? WHERE change_id = ?`, string(body), hashBody(body), cs[2].ChangeID)
		}, 2, "signature does not verify"},
		{"lookup column changed", func(t *testing.T, db *sql.DB, cs []*Change) {
			mustExec(t, db, `UPDATE changes SET subject = 'org.evil.worker' WHERE change_id = ?`, cs[3].ChangeID)
		}, 3, "column subject"},
		{"middle change deleted", func(t *testing.T, db *sql.DB, cs []*Change) {
			mustExec(t, db, `DELETE FROM changes WHERE change_id = ?`, cs[2].ChangeID)
		}, 3, "changes 4..4 are missing"},
		{"first change deleted", func(t *testing.T, db *sql.DB, cs []*Change) {
			mustExec(t, db, `DELETE FROM changes WHERE change_id = ?`, cs[0].ChangeID)
		}, 1, "changes 2..2 are missing"},
		{"newest change deleted", func(t *testing.T, db *sql.DB, cs []*Change) {
			mustExec(t, db, `DELETE FROM changes WHERE change_id = ?`, cs[4].ChangeID)
		}, 4, "newest changes deleted"},
		{"every change deleted", func(t *testing.T, db *sql.DB, cs []*Change) {
			mustExec(t, db, `DELETE FROM changes`)
		}, 4, "all were deleted"},
		{"head row deleted", func(t *testing.T, db *sql.DB, cs []*Change) {
			mustExec(t, db, `DELETE FROM change_head`)
		}, 4, "no head record"},
		{"two rows swapped", func(t *testing.T, db *sql.DB, cs []*Change) {
			mustExec(t, db, `UPDATE changes SET seq = 0 WHERE change_id = ?`, cs[1].ChangeID)
			mustExec(t, db, `UPDATE changes SET seq = 3 WHERE change_id = ?`, cs[2].ChangeID)
			mustExec(t, db, `UPDATE changes SET seq = 4 WHERE change_id = ?`, cs[1].ChangeID)
		}, 2, "column seq"},
		{"two rows swapped and renumbered", func(t *testing.T, db *sql.DB, cs []*Change) {
			for _, m := range []struct {
				c   *Change
				seq uint64
			}{{cs[1], 0}, {cs[2], 3}, {cs[1], 4}} {
				f := *m.c
				f.Sequence = m.seq
				body, _ := f.CanonicalBody()
				mustExec(t, db, `UPDATE changes SET seq = ?, body = ?, hash = ? WHERE change_id = ?`,
					int64(m.seq), string(body), hashBody(body), m.c.ChangeID)
			}
		}, 2, "signature does not verify"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			appendN(t, s, "a", 3)
			cs := recordChanges(t, s, 5)
			appendN(t, s, "b", 2)
			verifyOK(t, s, nil)

			tc.tamper(t, rawChangesDB(t, s), cs)

			rep, err := s.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Breaks) != 1 {
				t.Fatalf("breaks %v, want exactly one, in the change chain", rep.Breaks)
			}
			b := rep.Breaks[0]
			if b.Tenant != ChangeChain || b.ReceiptID != cs[tc.at].ChangeID || !strings.Contains(b.Reason, tc.reason) {
				t.Errorf("break %+v\nwant change %s, reason containing %q", b, cs[tc.at].ChangeID, tc.reason)
			}
			if !strings.HasPrefix(b.String(), "change chain: change "+cs[tc.at].ChangeID+": ") {
				t.Errorf("String() = %q", b.String())
			}
		})
	}
}

func TestCheckHeadsChangeChain(t *testing.T) {
	s := openT(t, t.TempDir())
	cs := recordChanges(t, s, 4)
	saved := verifyOK(t, s, nil).Heads

	db := rawChangesDB(t, s)
	mustExec(t, db, `DELETE FROM changes WHERE change_id = ?`, cs[3].ChangeID)
	mustExec(t, db, `UPDATE change_head SET seq = ?, change_id = ?, hash = ?`, int64(cs[2].Sequence), cs[2].ChangeID, cs[2].Hash)

	verifyOK(t, s, nil) // consistent: Verify alone cannot see it
	breaks, err := s.CheckHeads(context.Background(), saved)
	if err != nil {
		t.Fatal(err)
	}
	if len(breaks) != 1 || breaks[0].Tenant != ChangeChain || breaks[0].ReceiptID != cs[3].ChangeID || !strings.Contains(breaks[0].Reason, "change chain truncated") {
		t.Fatalf("CheckHeads = %+v, want the change chain truncated at %s", breaks, cs[3].ChangeID)
	}
}

// TestMigrateFromVersion1 opens a database written by schema version 1
// (the first migration's DDL, with a receipt in it) and checks that it is
// brought to the current version with its receipts intact and the change
// chain usable.
func TestMigrateFromVersion1(t *testing.T) {
	dir := t.TempDir()
	priv, err := loadKey(filepath.Join(dir, KeyFile), true)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	old := &SQLite{path: filepath.Join(dir, DBFile)}
	old.key.Store(newSigner(priv))
	func() {
		defer db.Close()
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		// Migration steps are never edited once released, so step 1 is
		// the version 1 DDL verbatim.
		if _, err := tx.Exec(migrations[0].sql); err != nil {
			t.Fatal(err)
		}
		mustTxExec(t, tx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (1, 'initial schema', '2025-01-01T00:00:00Z')`)
		mustTxExec(t, tx, `PRAGMA user_version = 1`)
		for i := range 2 {
			r := newReceipt("a", i)
			r.ReceiptID, r.SigningKeyID, r.InputPayload, r.OutputPayload = fmt.Sprintf("old-%d", i), old.KeyID(), nil, nil
			r.DispatchedAt = r.DispatchedAt.UTC().Truncate(time.Microsecond)
			if err := old.link(tx, r); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}()

	s := openT(t, dir)
	var v, n int
	if err := s.r.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != schemaVersion || schemaVersion != 6 {
		t.Fatalf("user_version = %d, %v; want 6", v, err)
	}
	if err := s.r.QueryRow("SELECT count(*) FROM schema_migrations").Scan(&n); err != nil || n != 6 {
		t.Fatalf("schema_migrations rows = %d, %v; want 6", n, err)
	}
	rep := verifyOK(t, s, nil)
	// The migration is recorded: one schema change, from version 1.
	if rep.Receipts != 2 || rep.Changes != 1 {
		t.Fatalf("after migration: %+v", rep)
	}
	if sc := schemaHead(t, s); !strings.Contains(string(sc.Body), `"from":1,`) || strings.Contains(string(sc.Body), `"born"`) {
		t.Fatalf("schema change after migrating from version 1: %s", sc.Body)
	}
	recordChanges(t, s, 3)
	appendN(t, s, "a", 1)
	if rep := verifyOK(t, s, nil); rep.Receipts != 3 || rep.Changes != 4 {
		t.Fatalf("after writing: %+v", rep)
	}

	// A version 1 database opened read-only is not migrated behind the
	// operator's back.
	dir2 := t.TempDir()
	db2, err := sql.Open("sqlite", filepath.Join(dir2, DBFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{migrations[0].sql, `PRAGMA user_version = 1`} {
		if _, err := db2.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db2.Close()
	if _, err := Open(dir2, ReadOnly()); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only open of a version 1 database: %v, want ErrReadOnly", err)
	}
}

func mustTxExec(t *testing.T, tx *sql.Tx, q string) {
	t.Helper()
	if _, err := tx.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
