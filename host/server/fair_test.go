package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
)

// Issue 10, per-tenant fairness: tenant org.acme floods a Hall of two
// dispatch slots with workers that spin until their time limit; tenant
// org.other still gets a slot for each of its dispatches (it waits for the
// next free one instead of being refused), and the flood beyond the slots
// is refused with 503 HALL_SATURATED. Before, the first tenant held every
// slot and the second was refused with 503.
func TestFairSlotsWhileAnotherTenantFloods(t *testing.T) {
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(fx.dir, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir, MaxConcurrent: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(ctx)
	looper, err := os.ReadFile("testdata/looper.json") // timeout_ms 200
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		module, record []byte
	}{{fx.loop, looper}, {fx.summarizer, fx.summarizerRecord}} {
		if _, err := h.Enroll(ctx, host.EnrollRequest{Module: w.module, Record: w.record}); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(server.New(h, server.Config{Tokens: fx.tokens}))
	defer ts.Close()

	// The flood: four clients of org.acme dispatching the spinning worker
	// back to back until org.other is done.
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	flood := map[string]int{}
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				r, err := tryPost(ts.URL, "/wcp/run", fx.acme, runBody(input("cap.test.loop", fmt.Sprintf("flood-%d-%d", g, i)), "spin"))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				flood[fmt.Sprintf("%d %s", r.status, r.errCode())]++
				mu.Unlock()
			}
		})
	}
	waitFor(t, "org.acme holding both slots", func() bool {
		st := h.Admission()
		return st.Running == 2 && st.Tenants == 1
	})
	for i := range 5 {
		r := post(t, ts.URL, "/wcp/run", fx.other, runBody(input("cap.doc.summarize", fmt.Sprintf("fair-other-%d", i)), article))
		if r.status != 200 || r.body["output"] == "" {
			t.Errorf("org.other's dispatch %d during the flood: %v", i, r)
		}
	}
	close(done)
	wg.Wait()
	t.Logf("org.acme's flood: %v", flood)
	if flood["504 LIMIT_TIMEOUT"] == 0 {
		t.Errorf("the flooding tenant ran nothing: %v", flood)
	}
	for k := range flood {
		if k != "504 LIMIT_TIMEOUT" && k != "503 HALL_SATURATED" {
			t.Errorf("the flood got %q; want only 504 LIMIT_TIMEOUT and 503 HALL_SATURATED (%v)", k, flood)
		}
	}
	if st := h.Admission(); st.Running != 0 || st.Waiting != 0 {
		t.Errorf("slots still taken after the flood: %+v", st)
	}
}
