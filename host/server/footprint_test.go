package server_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/wcphall/hall/host/server"
)

// TestMetricsWorkerMemory: after a dispatch, /metrics reports the loaded
// worker's memory, the loaded workers, the compiled modules they share and
// what they keep between dispatches.
func TestMetricsWorkerMemory(t *testing.T) {
	base := start(t, server.Config{})
	post(t, base, "/wcp/run", fx.acme, runBody(input("cap.doc.summarize", "m-mem"), article))
	r := get(t, base, "/metrics", "")
	if r.status != 200 {
		t.Fatal(r)
	}
	for _, want := range []string{
		`hall_worker_memory_bytes{worker_id="org.acme.summarizer"} `,
		"hall_idle_memory_bytes ",
		"hall_workers_evicted_total 0\n",
	} {
		if !strings.Contains(string(r.raw), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// The test Hall is shared by the package's tests: other workers may
	// be loaded too.
	for _, name := range []string{"hall_workers_loaded", "hall_compiled_modules"} {
		if v := metricValue(string(r.raw), name); v < 1 {
			t.Errorf("%s = %v, want at least 1 after a dispatch", name, v)
		}
	}
	if strings.Contains(string(r.raw), `hall_worker_memory_bytes{worker_id="org.acme.summarizer"} 0`+"\n") {
		t.Error("a loaded worker reports no memory at all")
	}
}

// metricValue returns the value of an unlabelled metric in a Prometheus
// text exposition, or -1.
func metricValue(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
