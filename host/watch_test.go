package host_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
)

// watching runs h.Watch until the test ends and returns what it has
// reported so far.
func watching(t *testing.T, h *host.Hall) func() []error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu      sync.Mutex
		reports []error
	)
	done := make(chan error, 1)
	go func() {
		done <- h.Watch(ctx, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			reports = append(reports, err)
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
	return func() []error {
		mu.Lock()
		defer mu.Unlock()
		return append([]error(nil), reports...)
	}
}

// eventually polls cond until it holds, for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %s", what)
		}
	}
}

func reported(reports []error, substr string) bool {
	for _, err := range reports {
		if strings.Contains(err.Error(), substr) {
			return true
		}
	}
	return false
}

// replaceFile writes data beside path and renames it over path, as
// editors and deploy tools do.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".swp"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWatchAppliesRulesEditedOnDisk(t *testing.T) {
	h := newHall(t, host.Options{})
	reports := watching(t, h)
	decide := func() wcp.RouteDecision { return h.Decide(context.Background(), input(t, "cap.test.tiny", "org.acme")) }
	if dec := decide(); dec.Denied {
		t.Fatalf("before the edit: denied %s", dec.Code())
	}
	// The tiny rule removed, in place (the file is written, not replaced).
	edited := strings.Replace(rules, `{"rule_id": "tiny", "match": {"capability_id": "cap.test.tiny"},
   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.tiny"}]}},`, "", 1)
	if edited == rules {
		t.Fatal("the test rules lack the tiny rule")
	}
	if err := os.WriteFile(h.Options().Rules, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rules edited on disk are not in force (cap.test.tiny still routed)", func() bool {
		dec := decide()
		return dec.Denied && dec.Code() == wcp.DenyNoMatchingRule
	})
	// And back, by rename.
	replaceFile(t, h.Options().Rules, rules)
	eventually(t, "the rules replaced on disk are not in force (cap.test.tiny still denied)", func() bool { return !decide().Denied })
	if r := reports(); len(r) > 0 {
		t.Errorf("reports for valid edits: %v", r)
	}
}

func TestWatchInvalidRulesReportedPreviousKeepDeciding(t *testing.T) {
	h := newHall(t, host.Options{})
	reports := watching(t, h)
	replaceFile(t, h.Options().Rules, `{"rules": [{"rule_id": `)
	eventually(t, "the invalid rules.json was not reported", func() bool { return reported(reports(), "rules.json") })
	if dec := h.Decide(context.Background(), input(t, "cap.test.tiny", "org.acme")); dec.Denied {
		t.Fatalf("after an invalid rules edit the previous rules no longer decide: denied %s", dec.Code())
	}
	// A later good edit is applied: the watch survives the failure.
	replaceFile(t, h.Options().Rules, `{"rules": []}`)
	eventually(t, "the rules fixed on disk are not in force", func() bool {
		dec := h.Decide(context.Background(), input(t, "cap.test.tiny", "org.acme"))
		return dec.Code() == wcp.DenyNoMatchingRule
	})
}

func TestWatchRecordEditedOnDiskDeniedTampered(t *testing.T) {
	h := newHall(t, host.Options{})
	reports := watching(t, h)
	path := filepath.Join(h.Options().RegistryDir, "org.acme.tiny.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec["risk_tier"] = "critical"
	b, _ = json.MarshalIndent(rec, "", "  ")
	replaceFile(t, path, string(b))
	eventually(t, "the worker whose record was edited on disk is not denied DENY_WORKER_TAMPERED", func() bool {
		dec := h.Decide(context.Background(), input(t, "cap.test.tiny", "org.acme"))
		return dec.Code() == wcp.DenyWorkerTampered
	})
	eventually(t, "the tampered record was not reported", func() bool { return reported(reports(), "RECORD_TAMPERED") })
	if r := reports(); !reported(r, "org.acme.tiny.json") {
		t.Errorf("the report does not name the file: %v", r)
	}
}
