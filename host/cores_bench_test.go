package host_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
)

// fairBenchRules routes the benign summarizer and the spinning loop.
const fairBenchRules = `{"rules": [
  {"rule_id": "sum", "match": {"capability_id": "cap.doc.summarize"},
   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.doc.summarizer"}]}},
  {"rule_id": "loop", "match": {"capability_id": "cap.test.loop"},
   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.loop"}]}}]}`

// BenchmarkFairCPU is issue 25's fairness target: tenant org.evil keeps 8
// dispatches of a worker that spins until its time limit (default limits:
// 10 s) running, back to back, while tenant org.acme dispatches the
// summarizer one after another. Each iteration measures the benign p99
// over fairBenchRequests dispatches alone, then under the loops, and
// reports the median of the ratios (target ≤ 3), the medians of both
// p99s and the benign dispatches refused (target 0), at the default
// dispatch slots and at MaxConcurrent 4 (`hall serve --max-concurrent 4`).
func BenchmarkFairCPU(b *testing.B) {
	for _, slots := range []int{0, 4} {
		name := "default"
		if slots > 0 {
			name = fmt.Sprintf("max-concurrent-%d", slots)
		}
		b.Run(name, func(b *testing.B) { benchFairCPU(b, slots) })
	}
}

// fairBenchRequests is how many benign dispatches each phase times.
const fairBenchRequests = 40

func benchFairCPU(b *testing.B, slots int) {
	ctx := context.Background()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(fairBenchRules), 0o644); err != nil {
		b.Fatal(err)
	}
	h, err := host.Open(ctx, host.Options{Dir: dir, MaxConcurrent: slots})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close(ctx)
	summ, err := os.ReadFile("../plugins/summarizer/registry_record.json")
	if err != nil {
		b.Fatal(err)
	}
	m := integModules(b)
	for _, w := range []struct{ module, rec []byte }{
		{mods.summarizer, summ},
		{m.loop, record("org.evil.loop", "wrk.test.loop", "cap.test.loop", "")},
	} {
		if _, err := h.Enroll(ctx, host.EnrollRequest{Module: w.module, Record: w.rec}); err != nil {
			b.Fatal(err)
		}
	}
	payload := []byte(text)
	refused := 0
	benign := func() time.Duration {
		var times []time.Duration
		for range fairBenchRequests {
			start := time.Now()
			res, err := h.Run(ctx, host.RunRequest{Input: input(b, "cap.doc.summarize", "org.acme"), Payload: payload})
			var se *host.SaturatedError
			switch {
			case errors.As(err, &se):
				refused++
				continue
			case err != nil || res.Outcome != "ok":
				b.Fatalf("benign dispatch: %v %+v", err, res)
			}
			times = append(times, time.Since(start))
		}
		slices.Sort(times)
		if len(times) == 0 {
			return 0
		}
		return times[min(len(times)-1, len(times)*99/100)]
	}
	benign() // warm: the summarizer loaded and its pool filled
	var alones, loadeds, ratios []float64
	for b.Loop() {
		alone := benign()
		lctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for lctx.Err() == nil {
					h.Run(lctx, host.RunRequest{Input: input(b, "cap.test.loop", "org.evil")})
				}
			})
		}
		for h.Cores().Running < h.Cores().Cores {
			time.Sleep(time.Millisecond) // polling until the loops hold the cores
		}
		loaded := benign()
		stop()
		wg.Wait()
		alones = append(alones, alone.Seconds()*1e3)
		loadeds = append(loadeds, loaded.Seconds()*1e3)
		ratios = append(ratios, float64(loaded)/float64(max(alone, 1)))
	}
	b.ReportMetric(median(ratios), "loaded/alone-p99")
	b.ReportMetric(median(alones), "ms-p99-alone")
	b.ReportMetric(median(loadeds), "ms-p99-loaded")
	b.ReportMetric(float64(refused), "benign-refused")
}
