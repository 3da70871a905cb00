package ledger

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestVerifySnapshots: every decision and receipt must name a snapshot the
// change chain recorded before it; one that does not is reported.
func TestVerifySnapshots(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	snapA, snapB := digest("snapshot A"), digest("snapshot B")
	seal := func(t *testing.T, s *SQLite, d string, at time.Time) {
		t.Helper()
		if err := s.RecordChange(ctx, &Change{Kind: ChangeSnapshot, Subject: "snapshot", Digest: d, Body: []byte(`{"manifest":{}}`), Actor: "file", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	decide := func(t *testing.T, s *SQLite, snapshot string, at time.Time) {
		t.Helper()
		d := newDecision("org.acme", "allowed", 0)
		d.Timestamp, d.Snapshot = at, snapshot
		if err := s.RecordDecision(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	dispatch := func(t *testing.T, s *SQLite, snapshot string, at time.Time) {
		t.Helper()
		r := newReceipt("org.acme", 1)
		r.DispatchedAt, r.Snapshot = at, snapshot
		if err := s.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, s *SQLite)
		// want is a substring of the one break wanted ("" for none), on
		// chain.
		want, chain string
	}{
		{"recorded before", func(t *testing.T, s *SQLite) {
			seal(t, s, snapA, base)
			decide(t, s, snapA, base.Add(time.Second))
			dispatch(t, s, snapA, base.Add(2*time.Second))
		}, "", ""},
		{"legacy: no snapshots at all", func(t *testing.T, s *SQLite) {
			decide(t, s, "", base)
			dispatch(t, s, "", base)
		}, "", ""},
		{"decision under an unrecorded snapshot", func(t *testing.T, s *SQLite) {
			seal(t, s, snapA, base)
			decide(t, s, snapB, base.Add(time.Second))
		}, "which no change entry records", ChainDecisions},
		{"snapshot recorded after the decision", func(t *testing.T, s *SQLite) {
			seal(t, s, snapA, base.Add(time.Hour))
			decide(t, s, snapA, base)
		}, "after the decision", ChainDecisions},
		{"decision naming no snapshot after snapshots began", func(t *testing.T, s *SQLite) {
			seal(t, s, snapA, base)
			decide(t, s, "", base.Add(time.Second))
		}, "names no snapshot", ChainDecisions},
		{"receipt under an unrecorded snapshot", func(t *testing.T, s *SQLite) {
			seal(t, s, snapA, base)
			decide(t, s, snapA, base.Add(time.Second))
			dispatch(t, s, snapB, base.Add(2*time.Second))
		}, "receipt names snapshot", ChainReceipts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openT(t, t.TempDir())
			tc.setup(t, s)
			rep, err := s.Verify(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if len(rep.Breaks) != 0 {
					t.Fatalf("breaks %v, want none", rep.Breaks)
				}
				return
			}
			if len(rep.Breaks) != 1 || !strings.Contains(rep.Breaks[0].Reason, tc.want) || chainOf(rep.Breaks[0].Chain, rep.Breaks[0].Tenant) != tc.chain {
				t.Fatalf("breaks %v, want one on %s saying %q", rep.Breaks, tc.chain, tc.want)
			}
		})
	}
}

// A decision entry's snapshot is signed and read back.
func TestDecisionSnapshotRoundTrip(t *testing.T) {
	s := openT(t, t.TempDir())
	d := newDecision("org.acme", "allowed", 0)
	d.Snapshot = digest("snapshot")
	if err := s.RecordDecision(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	got, err := s.Decision(context.Background(), d.DecisionID)
	if err != nil || got.Snapshot != d.Snapshot {
		t.Fatalf("snapshot %q (%v), want %q", got.Snapshot, err, d.Snapshot)
	}
	d2 := newDecision("org.acme", "allowed", 1)
	d2.Snapshot = "sha256:nope"
	if err := s.RecordDecision(context.Background(), d2); err == nil || !strings.Contains(err.Error(), "snapshot") {
		t.Fatalf("a malformed snapshot digest was recorded: %v", err)
	}
}

// LastChange returns what Changes returns last for a kind, or nil.
func TestLastChange(t *testing.T) {
	ctx := context.Background()
	s := openT(t, t.TempDir())
	if c, err := s.LastChange(ctx, ChangeSnapshot); err != nil || c != nil {
		t.Fatalf("empty chain: %v %v", c, err)
	}
	for _, d := range []string{"a", "b"} {
		if err := s.RecordChange(ctx, &Change{Kind: ChangeSnapshot, Subject: "snapshot", Digest: digest(d), Actor: "file"}); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordChange(ctx, &Change{Kind: ChangeRules, Subject: "rules.json", Digest: digest("rules " + d), Actor: "file"}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Changes(ctx, ChangeSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.LastChange(ctx, ChangeSnapshot)
	if err != nil || last == nil || last.Digest != digest("b") || last.Hash != all[len(all)-1].Hash || last.Signature != all[len(all)-1].Signature {
		t.Fatalf("LastChange %+v (%v), want %+v", last, err, all[len(all)-1])
	}
}
