package ledger

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// replayCase is a ledger whose receipts are written in order by the key
// holder, each with a preset receipt id (so that one can name another
// that comes later): broken names the replay receipt verification must
// report, "" for a ledger that verifies.
type replayCase struct {
	name     string
	receipts func() []*Receipt
	broken   int // index in receipts of the receipt reported, -1 for none
}

func replayCases() []replayCase {
	id := func() string { return uuid.Must(uuid.NewV7()).String() }
	rec := func(tenant string, i int, replayOf string) *Receipt {
		r := newReceipt(tenant, i)
		r.ReceiptID, r.Version, r.ReplayOf = id(), formatV2, replayOf
		r.DispatchedAt = r.DispatchedAt.UTC().Truncate(time.Microsecond)
		return r
	}
	// replay is the receipt of a replay of orig: its worker, correlation
	// id and module.
	replay := func(orig *Receipt, i int) *Receipt {
		r := rec(orig.TenantID, i, orig.ReceiptID)
		r.WorkerID, r.CorrelationID, r.ArtifactHash = orig.WorkerID, orig.CorrelationID, orig.ArtifactHash
		return r
	}
	return []replayCase{
		{"names an earlier receipt of its stream", func() []*Receipt {
			a := rec("t", 0, "")
			return []*Receipt{a, rec("t", 1, ""), replay(a, 2)}
		}, -1},
		{"ran another worker", func() []*Receipt {
			a := rec("t", 0, "")
			r := replay(a, 1)
			r.WorkerID = "org.acme.other"
			return []*Receipt{a, r}
		}, 1},
		{"ran another module", func() []*Receipt {
			a := rec("t", 0, "")
			r := replay(a, 1)
			r.ArtifactHash = digest("another module")
			return []*Receipt{a, r}
		}, 1},
		{"answered another correlation id", func() []*Receipt {
			a := rec("t", 0, "")
			r := replay(a, 1)
			r.CorrelationID = "corr-other"
			return []*Receipt{a, r}
		}, 1},
		{"names no receipt", func() []*Receipt {
			return []*Receipt{rec("t", 0, ""), rec("t", 1, id())}
		}, 1},
		{"names a receipt recorded after it", func() []*Receipt {
			later := rec("t", 2, "")
			return []*Receipt{rec("t", 0, ""), rec("t", 1, later.ReceiptID), later}
		}, 1},
		{"names itself", func() []*Receipt {
			r := rec("t", 0, "")
			r.ReplayOf = r.ReceiptID
			return []*Receipt{r}
		}, 0},
		{"names a receipt of another tenant", func() []*Receipt {
			other := rec("u", 0, "")
			return []*Receipt{other, rec("t", 0, other.ReceiptID)}
		}, 1},
	}
}

// writeSigned appends rs in order, signed with s's key, keeping their ids.
func writeSigned(t *testing.T, s *SQLite, rs []*Receipt) {
	t.Helper()
	w := &SQLite{path: s.path}
	w.key.Store(s.key.Load())
	db, err := sql.Open("sqlite", s.path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := w.link(tx, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// A receipt's replay_of must name a receipt recorded before it in its
// stream (docs/EVIDENCE.md, "Replays"); before, verify accepted a replay
// of a receipt that does not exist (issue 21).
func TestVerifyReplayOf(t *testing.T) {
	for _, tc := range replayCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			rs := tc.receipts()
			writeSigned(t, s, rs)
			rep, err := s.Verify(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.broken < 0 {
				if !rep.OK() {
					t.Fatalf("breaks: %v", rep.Breaks)
				}
				return
			}
			want := rs[tc.broken]
			if len(rep.Breaks) != 1 {
				t.Fatalf("breaks %v, want one at receipt %s", rep.Breaks, want.ReceiptID)
			}
			b := rep.Breaks[0]
			if b.Chain != ChainReceipts || b.Tenant != want.TenantID || b.ReceiptID != want.ReceiptID || b.Sequence != want.Sequence || !strings.Contains(b.Reason, "replay_of") {
				t.Fatalf("break %+v, want receipt %s (%s #%d) with a reason naming replay_of", b, want.ReceiptID, want.TenantID, want.Sequence)
			}
		})
	}
}

// The Node verifier checks replay_of in a bundle the same way.
func TestBundleNodeVerifierReplayOf(t *testing.T) {
	script := nodeVerifier(t)
	for _, tc := range replayCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			writeSigned(t, s, tc.receipts())
			bundle := filepath.Join(t.TempDir(), "bundle")
			if _, err := s.ExportBundle(context.Background(), bundle); err != nil {
				t.Fatal(err)
			}
			out, code := runNode(t, script, nil, bundle)
			switch {
			case tc.broken < 0 && code != 0:
				t.Fatalf("node verifier: exit %d\n%s", code, out)
			case tc.broken >= 0 && (code != 1 || !strings.Contains(out, "replay_of")):
				t.Fatalf("node verifier: exit %d, want 1 naming replay_of\n%s", code, out)
			}
		})
	}
}
