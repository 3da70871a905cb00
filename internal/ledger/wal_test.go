package ledger

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestWALKeptBetweenOpens: closing the ledger leaves its WAL on disk (a
// one-shot process neither deletes it nor creates it again), and what was
// committed is there for the next writer and for a read-only reader.
func TestWALKeptBetweenOpens(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir)
	appendN(t, s, "org.a", 3)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, DBFile+"-wal")); err != nil {
		t.Fatalf("the WAL was not kept at close: %v", err)
	}
	s = openT(t, dir)
	appendN(t, s, "org.a", 2)
	pub := s.PublicKey()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	ro, err := Open(dir, ReadOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.Receipts(context.Background(), Filter{})
	if err != nil || len(got) != 5 {
		t.Fatalf("read-only reopen: %d receipts, %v; want 5", len(got), err)
	}
	verifyOK(t, ro, pub)
}

// TestWALCheckpointedInTheBackground: a long-lived ledger copies its WAL
// back on the checkpointer's own connection every walKickEvery commits,
// and what it copied is what the database holds after a reopen.
func TestWALCheckpointedInTheBackground(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ds := recordDecisions(t, s, "a", slices.Repeat([]string{"allowed"}, 3*walKickEvery)...)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := s.wal.done.Load(); got == 0 {
		t.Fatalf("%d commits, no background checkpoint ran", 3*walKickEvery)
	}
	s = openT(t, dir)
	if rep := verifyOK(t, s, nil); rep.Decisions != len(ds) {
		t.Fatalf("verified %d decisions, want %d", rep.Decisions, len(ds))
	}
}
