package host_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wcphall/hall/host"
)

// probeLog is a log handler that, when the worker logs a line (guest
// code running, inside its call), looks at what the ledger holds of the
// dispatch's correlation id.
type probeLog struct {
	mu     sync.Mutex
	h      *host.Hall
	corr   string
	events int // telemetry events recorded for corr when the worker logged
	logged bool
}

func (p *probeLog) Enabled(context.Context, slog.Level) bool { return true }
func (p *probeLog) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *probeLog) WithGroup(string) slog.Handler            { return p }
func (p *probeLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "sandbox: guest log" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ev, err := p.h.Evidence()
	if err != nil {
		return err
	}
	evs, err := ev.Events(context.Background(), p.corr)
	if err != nil {
		return err
	}
	p.events, p.logged = len(evs), true
	return nil
}

// TestContainedWorkerCommitsOnce: the decision of a worker that can change
// nothing outside its sandbox commits with its receipt, after the call;
// a worker with a writable path still has its decision committed before
// its code runs. The probe runs inside the call, when the worker logs.
func TestContainedWorkerCommitsOnce(t *testing.T) {
	dir := t.TempDir()
	mod := mods.logger // logs through log_info, then returns
	rules := `{"rules": [
	  {"rule_id": "contained", "match": {"capability_id": "cap.test.contained"},
	   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.contained"}]}},
	  {"rule_id": "writer", "match": {"capability_id": "cap.test.writer"},
	   "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.writer"}]}}]}`
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	probe := &probeLog{}
	h, err := host.Open(context.Background(), host.Options{Dir: dir, Logger: slog.New(probe)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	probe.h = h
	out := t.TempDir()
	for _, rec := range [][]byte{
		record("org.acme.contained", "wrk.test.contained", "cap.test.contained", `, "privilege_envelope": {"filesystem_reads": ["/usr/share"]}`),
		record("org.acme.writer", "wrk.test.writer", "cap.test.writer", fmt.Sprintf(`, "privilege_envelope": {"filesystem_writes": [%q]}`, out)),
	} {
		if _, err := h.Enroll(context.Background(), host.EnrollRequest{Module: mod, Record: rec}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		capability    string
		decisionFirst bool
	}{
		{"cap.test.contained", false},
		{"cap.test.writer", true},
	} {
		t.Run(tc.capability, func(t *testing.T) {
			in := input(t, tc.capability, "org.acme")
			in.CorrelationID = "corr-" + strings.TrimPrefix(tc.capability, "cap.test.")
			probe.mu.Lock()
			probe.corr, probe.logged = in.CorrelationID, false
			probe.mu.Unlock()
			res, err := h.Run(context.Background(), host.RunRequest{Input: in})
			if err != nil || res.Outcome != "ok" || res.ReceiptID == "" {
				t.Fatalf("run: %v (outcome %q, receipt %q)", err, res.Outcome, res.ReceiptID)
			}
			probe.mu.Lock()
			logged, during := probe.logged, probe.events
			probe.mu.Unlock()
			if !logged {
				t.Fatal("the worker's log line never reached the Hall's log")
			}
			if got := during > 0; got != tc.decisionFirst {
				t.Errorf("while the worker ran, %d telemetry events of its decision were recorded; decision committed first = %v, want %v", during, got, tc.decisionFirst)
			}
			ev, _ := h.Evidence()
			if evs, err := ev.Events(context.Background(), in.CorrelationID); err != nil || len(evs) == 0 {
				t.Errorf("after the run: %d events (%v), want the decision's", len(evs), err)
			}
		})
	}
	ev, _ := h.Evidence()
	rep, err := ev.Verify(context.Background(), nil)
	if err != nil || !rep.OK() || rep.Receipts != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
