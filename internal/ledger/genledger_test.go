package ledger

import (
	"os"
	"strconv"
	"testing"
)

// TestWriteLedgerForTiming writes a ledger of HALL_GEN_RECEIPTS receipts
// (default 100,000, in 8 tenants) into the state directory named by
// HALL_GEN_LEDGER, for timing `hall audit verify` as a whole process:
//
//	HALL_GEN_LEDGER=/tmp/l/.hall go test -run TestWriteLedgerForTiming -count=1 ./internal/ledger
//	cd /tmp/l && time hall audit verify
//
// Without HALL_GEN_LEDGER it is skipped.
func TestWriteLedgerForTiming(t *testing.T) {
	dir := os.Getenv("HALL_GEN_LEDGER")
	if dir == "" {
		t.Skip("set HALL_GEN_LEDGER to a state directory to write a ledger for timing")
	}
	n := 100_000
	if v := os.Getenv("HALL_GEN_RECEIPTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("HALL_GEN_RECEIPTS=%q: want a positive number of receipts", v)
		}
	}
	s, err := Open(dir, WithSync(SyncNormal))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fillReceipts(t, s, n)
	rep, err := s.Verify(t.Context(), nil)
	if err != nil || !rep.OK() || rep.Receipts != n {
		t.Fatalf("the written ledger does not verify: %v %+v", err, rep)
	}
}
