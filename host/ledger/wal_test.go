package ledger

import (
	"context"
	"os"
	"path/filepath"
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
