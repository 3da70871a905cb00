package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeReloadLoggedAndCounted is the newcomer's report (issue 27): a
// reload that recovered from an invalid file logged nothing. A broken
// rules.json is logged as a failed reload, the fixed one as "hall:
// reloaded" (recovered), and both are counted in hall_reloads_total.
func TestServeReloadLoggedAndCounted(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "rules.json", `{"rules": []}`)
	base, _, logs := startServe(t, dir)
	poll := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 10 s: %s\n%s", what, logs.String())
			}
		}
	}
	before := len(logs.String())
	write(t, dir, "rules.json", `{"rules": [`)
	poll("no failed reload logged for a broken rules.json", func() bool { return strings.Contains(logs.String()[before:], `"msg":"hall: reload"`) })
	before = len(logs.String())
	write(t, dir, "rules.json", `{"rules": [{"rule_id": "r1", "match": {"capability_id": "cap.x.y"}, "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.x.y"}]}}]}`)
	poll("no 'hall: reloaded' logged once the file is fixed", func() bool {
		return strings.Contains(logs.String()[before:], `"msg":"hall: reloaded"`) && strings.Contains(logs.String()[before:], `"recovered":true`)
	})
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	raw := string(body)
	if !strings.Contains(raw, `hall_reloads_total{result="error"} `) || strings.Contains(raw, `hall_reloads_total{result="error"} 0`) ||
		!strings.Contains(raw, `hall_reloads_total{result="ok"} `) {
		t.Fatalf("hall_reloads_total:\n%s", grepLines(raw, "hall_reloads_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
