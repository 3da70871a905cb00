package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"strings"
	"testing"
)

// rawDB opens the ledger's database behind the store's back, as an
// attacker with write access to the file would, without the guard triggers.
func rawDB(t *testing.T, s *SQLite) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", s.Path()+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{"DROP TRIGGER receipts_no_update", "DROP TRIGGER receipts_no_delete"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		t.Fatalf("%s: no row changed", q)
	}
}

func TestTriggersRefuseEdits(t *testing.T) {
	s := openT(t, t.TempDir())
	r := appendN(t, s, "a", 1)[0]
	for _, q := range []string{
		"UPDATE receipts SET worker_id = 'x' WHERE receipt_id = ?",
		"DELETE FROM receipts WHERE receipt_id = ?",
	} {
		if _, err := s.w.Exec(q, r.ReceiptID); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want append-only refusal", q, err)
		}
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name string
		// tamper edits the database; rs are stream a's five receipts.
		tamper func(t *testing.T, db *sql.DB, rs []*Receipt)
		// at is the index in rs of the receipt the break must name.
		at     int
		reason string
	}{
		{"field changed in the signed body", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			mustExec(t, db, `UPDATE receipts SET body = replace(body, '"outcome":"ok"', '"outcome":"DENIED"') WHERE receipt_id = ?`, rs[2].ReceiptID)
		}, 2, "receipt altered"},
		{"field changed and hash recomputed", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			forged := *rs[2]
			forged.WorkerID = "org.evil.worker"
			body, _ := forged.CanonicalBody()
			mustExec(t, db, `UPDATE receipts SET body = ?, receipt_hash = ?, worker_id = ? WHERE receipt_id = ?`,
				string(body), hashBody(body), forged.WorkerID, rs[2].ReceiptID)
		}, 2, "signature does not verify"},
		{"lookup column changed", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			mustExec(t, db, `UPDATE receipts SET worker_id = 'org.evil.worker' WHERE receipt_id = ?`, rs[2].ReceiptID)
		}, 2, "column worker_id"},
		{"middle receipt deleted", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			mustExec(t, db, `DELETE FROM receipts WHERE receipt_id = ?`, rs[2].ReceiptID)
		}, 3, "receipts 3..3 are missing"},
		{"first receipt deleted", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			mustExec(t, db, `DELETE FROM receipts WHERE receipt_id = ?`, rs[0].ReceiptID)
		}, 1, "receipts 1..1 are missing"},
		{"newest receipt deleted", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			mustExec(t, db, `DELETE FROM receipts WHERE receipt_id = ?`, rs[4].ReceiptID)
		}, 4, "newest receipts deleted"},
		{"every receipt deleted", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			mustExec(t, db, `DELETE FROM receipts WHERE tenant_id = 'a'`)
		}, 4, "all were deleted"},
		{"head row deleted", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			mustExec(t, db, `DELETE FROM stream_heads WHERE tenant_id = 'a'`)
		}, 4, "no head record"},
		{"two rows swapped", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			// Exchange positions 2 and 3 (seq is UNIQUE, so go through 0).
			mustExec(t, db, `UPDATE receipts SET seq = 0 WHERE receipt_id = ?`, rs[1].ReceiptID)
			mustExec(t, db, `UPDATE receipts SET seq = 2 WHERE receipt_id = ?`, rs[2].ReceiptID)
			mustExec(t, db, `UPDATE receipts SET seq = 3 WHERE receipt_id = ?`, rs[1].ReceiptID)
		}, 2, "column seq"},
		{"two rows swapped and renumbered", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			// The attacker also rewrites the sequence inside the bodies and
			// recomputes the hashes; only the key could make them sign.
			for _, m := range []struct {
				r   *Receipt
				seq uint64
			}{{rs[1], 0}, {rs[2], 2}, {rs[1], 3}} {
				f := *m.r
				f.Sequence = m.seq
				body, _ := f.CanonicalBody()
				mustExec(t, db, `UPDATE receipts SET seq = ?, body = ?, receipt_hash = ? WHERE receipt_id = ?`,
					int64(m.seq), string(body), hashBody(body), m.r.ReceiptID)
			}
		}, 2, "signature does not verify"},
		{"receipt forged with another key", func(t *testing.T, db *sql.DB, rs []*Receipt) {
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			f := *newReceipt("a", 99)
			f.ReceiptID, f.Sequence, f.PrevReceiptHash = "forged", 6, rs[4].ReceiptHash
			f.SigningKeyID = KeyID(priv.Public().(ed25519.PublicKey))
			body, _ := f.CanonicalBody()
			f.ReceiptHash = hashBody(body)
			sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(f.ReceiptHash)))
			mustExec(t, db, `INSERT INTO receipts (tenant_id, seq, receipt_id, correlation_id, worker_id, dispatched_at,
				prev_receipt_hash, receipt_hash, signing_key_id, signature, body) VALUES ('a', 6, 'forged', ?, ?, ?, ?, ?, ?, ?, ?)`,
				f.CorrelationID, f.WorkerID, f.DispatchedAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00"),
				f.PrevReceiptHash, f.ReceiptHash, f.SigningKeyID, sig, string(body))
			mustExec(t, db, `UPDATE stream_heads SET seq = 6, receipt_id = 'forged', receipt_hash = ? WHERE tenant_id = 'a'`, f.ReceiptHash)
		}, -1, "signed by key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			appendN(t, s, "b", 2)
			rs := appendN(t, s, "a", 5)
			appendN(t, s, "c", 2)
			verifyOK(t, s, nil)

			tc.tamper(t, rawDB(t, s), rs)

			rep, err := s.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Breaks) != 1 {
				t.Fatalf("breaks %v, want exactly one, in stream a", rep.Breaks)
			}
			b := rep.Breaks[0]
			want := "forged"
			if tc.at >= 0 {
				want = rs[tc.at].ReceiptID
			}
			if b.Tenant != "a" || b.ReceiptID != want || !strings.Contains(b.Reason, tc.reason) {
				t.Errorf("break %+v\nwant tenant a, receipt %s, reason containing %q", b, want, tc.reason)
			}
		})
	}
}

// TestTruncationNeedsSavedHeads documents the limit of Verify alone: an
// attacker who deletes the newest receipts AND rolls the head row back
// leaves a shorter but consistent chain. Heads saved earlier catch it.
func TestTruncationNeedsSavedHeads(t *testing.T) {
	s := openT(t, t.TempDir())
	rs := appendN(t, s, "a", 5)
	saved := verifyOK(t, s, nil).Heads

	db := rawDB(t, s)
	mustExec(t, db, `DELETE FROM receipts WHERE receipt_id = ?`, rs[4].ReceiptID)
	mustExec(t, db, `UPDATE stream_heads SET seq = 4, receipt_id = ?, receipt_hash = ? WHERE tenant_id = 'a'`, rs[3].ReceiptID, rs[3].ReceiptHash)

	verifyOK(t, s, nil) // consistent: Verify alone cannot see it
	breaks, err := s.CheckHeads(context.Background(), saved)
	if err != nil {
		t.Fatal(err)
	}
	if len(breaks) != 1 || breaks[0].ReceiptID != rs[4].ReceiptID || !strings.Contains(breaks[0].Reason, "truncated") {
		t.Fatalf("CheckHeads = %+v, want truncation at %s", breaks, rs[4].ReceiptID)
	}
	// An untouched stream passes.
	s2 := openT(t, t.TempDir())
	appendN(t, s2, "a", 3)
	saved = verifyOK(t, s2, nil).Heads
	appendN(t, s2, "a", 2)
	if breaks, err := s2.CheckHeads(context.Background(), saved); err != nil || len(breaks) != 0 {
		t.Fatalf("CheckHeads on a grown stream: %v, %v", breaks, err)
	}
}

// TestAppendRefusesToForkAfterHeadLoss: with the head row gone the next
// Append would restart the stream at 1; UNIQUE(tenant_id, seq) refuses it.
func TestAppendRefusesToForkAfterHeadLoss(t *testing.T) {
	s := openT(t, t.TempDir())
	appendN(t, s, "a", 2)
	mustExec(t, rawDB(t, s), `DELETE FROM stream_heads WHERE tenant_id = 'a'`)
	err := s.Append(context.Background(), newReceipt("a", 3))
	if err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("Append after head loss: %v, want a UNIQUE constraint failure", err)
	}
}
