package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Issue 25, item 1, the acceptance test: the real `hall serve`; tenant
// org.evil runs 8 CPU-loop dispatches at once, back to back (default
// limits: each spins until its 10 s time limit), while tenant org.acme
// dispatches the quick start's summarizer one request after another. The
// bound is generous so that it cannot flake on a loaded 2-core machine: no
// benign request refused (503) and the benign p99 within 10× of its p99
// alone, at the default settings and at --max-concurrent 4. The tight
// target (3×) is measured by `make bench` (BenchmarkFairCPU in host/).
//
// Before issue 25 the benign p99 was 211 ms under load against 13 ms alone
// (16×), and 3,045 ms with 2 of 24 requests refused at --max-concurrent 4:
// slots were shared between tenants, cores were not.
func TestFairCoresUnderCPULoops(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"max-concurrent-4", []string{"--max-concurrent", "4"}},
	} {
		t.Run(tc.name, func(t *testing.T) { fairCoresRun(t, tc.args...) })
	}
}

// fairBenignRequests is how many benign requests each phase sends.
const fairBenignRequests = 24

func fairCoresRun(t *testing.T, serveArgs ...string) {
	var spec soakSpec
	readJSON(t, "../../testdata/soak/hostile.json", &spec)
	spec.Enrolled = slices.DeleteFunc(spec.Enrolled, func(w struct {
		Module  string                         `json:"module"`
		Trigger bool                           `json:"trigger"`
		Record  map[string]any                 `json:"record"`
		Expect  map[string]soakExpectedOutcome `json:"expect"`
	}) bool {
		return w.Record["worker_id"] != "org.soak.loop"
	})
	if len(spec.Enrolled) != 1 {
		t.Fatal("testdata/soak/hostile.json has no org.soak.loop")
	}
	loop := spec.Enrolled[0]
	delete(loop.Record, "limits") // the default limits: 10 s
	h := newSoakHall(t, spec, serveArgs...)
	if st, body := h.enroll(soakModule(t, loop.Module), loop.Record); st != 201 {
		t.Fatalf("enroll the loop: %d %v", st, body)
	}
	summarizer, err := os.ReadFile(plugin(t, "summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	var benignRecord map[string]any
	readJSON(t, "../../plugins/summarizer/registry_record.json", &benignRecord)
	if st, body := h.enroll(summarizer, benignRecord); st != 201 {
		t.Fatalf("enroll the summarizer: %d %v", st, body)
	}
	doc := strings.Repeat("The Hall shares the cores fairly between tenants. ", 40)
	benign := func(phase string) (p99 time.Duration, refused []string) {
		var times []time.Duration
		for i := range fairBenignRequests {
			r := h.run(h.benign, "cap.doc.summarize", fmt.Sprintf("fair-%s-%d", phase, i), doc)
			if r.err != nil || r.status != 200 {
				refused = append(refused, fmt.Sprintf("%d %s %s %v", r.status, r.code, r.message, r.err))
				continue
			}
			times = append(times, r.elapsed)
		}
		slices.Sort(times)
		return percentile(times, 99), refused
	}
	benign("warm")
	alone, refused := benign("alone")
	if len(refused) > 0 {
		t.Fatalf("the benign tenant alone was refused: %v", refused)
	}

	// The loops' requests are abandoned at the end (the server then stops
	// them), so the test does not wait out their 10 s limits.
	lctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	var mu sync.Mutex
	hostile := map[string]int{}
	for g := range 8 {
		wg.Go(func() {
			for i := 0; lctx.Err() == nil; i++ {
				code := fairLoop(lctx, h, fmt.Sprintf("loop-%d-%d", g, i))
				mu.Lock()
				hostile[code]++
				mu.Unlock()
			}
		})
	}
	// The loops hold the cores before the benign phase starts.
	for deadline := time.Now().Add(time.Minute); ; {
		if fairInFlight(t, h) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("org.evil's loops never ran")
		}
		time.Sleep(10 * time.Millisecond)
	}
	loaded, refused := benign("loaded")
	stop()
	wg.Wait()
	t.Logf("benign p99 alone %v, under 8 CPU loops %v (×%.1f); hostile outcomes %v", alone, loaded, float64(loaded)/float64(alone), hostile)
	if len(refused) > 0 {
		t.Errorf("benign requests refused under load: %v", refused)
	}
	if loaded > 10*alone {
		t.Errorf("benign p99 under load %v is more than 10× its p99 alone %v", loaded, alone)
	}
}

// fairInFlight reads hall_dispatches_in_flight from /metrics.
func fairInFlight(t *testing.T, h *soakHall) int {
	res, err := h.client.Get(h.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "hall_dispatches_in_flight "); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return 0
}

// fairLoop dispatches the spinning worker for org.evil until it ends or ctx
// is done, and returns "<status> <code>" ("abandoned" when ctx ended it).
func fairLoop(ctx context.Context, h *soakHall, corr string) string {
	b, _ := json.Marshal(map[string]any{
		"input": map[string]any{"capability_id": "cap.soak.loop", "env": "dev", "data_label": "INTERNAL",
			"tenant_risk": "low", "qos_class": "P2", "correlation_id": corr},
		"payload": "",
	})
	req, err := http.NewRequestWithContext(ctx, "POST", h.base+"/wcp/run", bytes.NewReader(b))
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+h.hostile)
	req.Header.Set("Content-Type", "application/json")
	res, err := h.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "abandoned"
		}
		return err.Error()
	}
	defer res.Body.Close()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	json.NewDecoder(res.Body).Decode(&body)
	return fmt.Sprintf("%d %s", res.StatusCode, body.Error.Code)
}
