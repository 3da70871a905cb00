package server_test

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/ledger"
)

// Issue 10: a dispatch refused because the ledger's disk is below its
// free-space floor answered 500 INTERNAL; it is 507 HALL_DISK_LOW, and
// nothing ran.
func TestRunBelowFreeSpaceFloorIs507(t *testing.T) {
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(fx.dir, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir, MinFreeDisk: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	rec, err := os.ReadFile("testdata/looper.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: fx.loop, Record: rec}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(h, server.Config{Tokens: fx.tokens}))
	defer ts.Close()
	r := post(t, ts.URL, "/wcp/run", fx.acme, runBody(input("cap.test.loop", "disk-low-1"), "spin"))
	if r.status != 507 || r.errCode() != "HALL_DISK_LOW" {
		t.Fatalf("got %s, want 507 HALL_DISK_LOW", r)
	}
	ev, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	if rs, _ := ev.Receipts(ctx, ledger.Filter{CorrelationID: "disk-low-1"}); len(rs) != 0 {
		t.Fatalf("a worker ran below the floor: %d receipts", len(rs))
	}
}
