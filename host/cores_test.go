package host_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
)

// Issue 25, item 1: a dispatch that waited for a core says so in its
// receipt (queue_wait_ms) and in its RunResult: every core is held by
// another tenant's guest code when it starts, and it runs once they are
// given back.
func TestQueueWaitInReceipt(t *testing.T) {
	h := newHall(t, host.Options{Pool: -1})
	ctx := context.Background()
	release, err := host.HoldCores(h, "org.evil", h.Cores().Cores)
	if err != nil {
		t.Fatal(err)
	}
	type ran struct {
		res *host.RunResult
		err error
	}
	done := make(chan ran)
	go func() {
		res, err := h.Run(ctx, host.RunRequest{Input: input(t, "cap.test.tiny", "org.acme")})
		done <- ran{res, err}
	}()
	for h.Cores().Waiting != 1 {
		select {
		case r := <-done:
			t.Fatalf("ran while every core was held: %+v %v", r.res, r.err)
		default:
		}
		time.Sleep(time.Millisecond) // polling a count, not synchronising
	}
	release()
	r := <-done
	if r.err != nil || r.res.Outcome != "ok" || r.res.QueueWait <= 0 {
		t.Fatalf("%+v %v: want ok after a queue wait", r.res, r.err)
	}
	ev, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ev.Receipt(ctx, r.res.ReceiptID)
	if err != nil || rc.QueueWaitMS <= 0 || rc.QueueWaitMS != float64(r.res.QueueWait.Microseconds())/1000 {
		t.Fatalf("receipt %+v %v: want the queue wait", rc, err)
	}
	if st := h.Cores(); st.Running != 0 || st.Waiting != 0 {
		t.Fatalf("cores after the dispatch: %+v", st)
	}
}

// Issue 25, item 1: hall.json's per-tenant weights are part of the sealed
// snapshot, and a weight out of range is refused naming the field.
func TestTenantWeightsSealed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644)
	os.WriteFile(filepath.Join(dir, "hall.json"), []byte(`{"tenants": {"org.acme": {"weight": 3}}}`), 0o644)
	h, err := host.Open(ctx, host.Options{Dir: dir, Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	h.Decide(ctx, input(t, "cap.test.tiny", "org.acme"))
	if got := string(lastSealed(t, h).Changed["config"]); !strings.Contains(got, `"tenants":{"org.acme":{"weight":3}}`) {
		t.Fatalf("the sealed configuration lacks the tenant weight: %s", got)
	}
	_, err = host.ParseConfig([]byte(`{"tenants": {"org.acme": {"weight": 5000}}}`))
	if err == nil || !strings.Contains(err.Error(), "tenants.org.acme.weight: 5000 is out of range") {
		t.Fatalf("got %v", err)
	}
}
