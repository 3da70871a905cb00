package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeShutdownRecordsDispatchInFlight: SIGTERM while a worker runs
// past --shutdown-grace cancels the dispatch and records it CANCELLED
// before the ledger closes (issue 21: Close cancelled running calls and
// closed the ledger at once, so a long worker's receipt could be lost).
func TestServeShutdownRecordsDispatchInFlight(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, ".hall")
	write(t, dir, "rules.json", `{"rules": [{"rule_id": "block", "match": {"capability_id": "cap.test.block", "env": {"in": ["dev"]}},
	  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.block"}]}}]}`)
	write(t, dir, "block.json", `{"worker_id": "org.acme.block", "worker_species_id": "wrk.test.block",
	  "capabilities": ["cap.test.block"], "risk_tier": "low", "allowed_environments": ["dev"]}`)
	// run logs "started" through Extism's log_info, then loops until
	// stopped.
	const text = "started"
	module := wat(t, fmt.Sprintf(`(module
	  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
	  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
	  (import "extism:host/env" "log_info" (func $log (param i64)))
	  (memory (export "memory") 1)
	  (data (i32.const 0) %q)
	  (func (export "run") (result i32)
	    (local $offs i64) (local $i i32)
	    (local.set $offs (call $alloc (i64.const %d)))
	    (block $done (loop $next
	      (br_if $done (i32.ge_u (local.get $i) (i32.const %d)))
	      (call $store_u8 (i64.add (local.get $offs) (i64.extend_i32_u (local.get $i))) (i32.load8_u (local.get $i)))
	      (local.set $i (i32.add (local.get $i) (i32.const 1)))
	      (br $next)))
	    (call $log (local.get $offs))
	    (loop $forever (br $forever))
	    (i32.const 0)))`, text, len(text), len(text)))
	mustOK(t, hallIn(t, dir, "", nil, "enroll", module, "--record", "block.json", "--home", home), "hall enroll")
	acme := hallIn(t, dir, "", nil, "tokens", "create", "--tenant", "org.acme", "--home", home)
	mustOK(t, acme, "tokens create")
	tok := strings.TrimSpace(acme.stdout)
	base, cmd, logs := startServe(t, dir, "--home", home, "--shutdown-grace", "0")

	// The dispatch, from a goroutine that only reports.
	answered := make(chan string, 1)
	go func() {
		body, _ := json.Marshal(map[string]any{"input": map[string]any{"capability_id": "cap.test.block", "env": "dev", "data_label": "INTERNAL",
			"tenant_risk": "low", "qos_class": "P2", "correlation_id": "corr-shutdown"}, "payload": "x"})
		req, _ := http.NewRequest("POST", base+"/wcp/run", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			answered <- err.Error()
			return
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answered <- fmt.Sprintf("%d %s", res.StatusCode, raw)
	}()
	// Running: its guest log line is in the server's log.
	for deadline := time.Now().Add(time.Minute); !strings.Contains(logs.String(), `"message":"started"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the dispatch did not start:\n%s", logs.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("hall serve exited with %v:\n%s", err, logs.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("hall serve did not stop on SIGTERM:\n%s", logs.String())
	}
	t.Logf("the client got: %s", <-answered)

	r := hallIn(t, dir, "", nil, "receipts", "--json", "--home", home, "--correlation-id", "corr-shutdown")
	mustOK(t, r, "receipts")
	var rs []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rs); err != nil {
		t.Fatalf("receipts --json: %v\n%s", err, r.stdout)
	}
	if len(rs) != 1 || rs[0]["outcome"] != "CANCELLED" {
		t.Fatalf("receipts of the dispatch cut off at shutdown: %v, want one with outcome CANCELLED\n%s", rs, logs.String())
	}
	if out := logs.String(); !strings.Contains(out, "recorded with outcome CANCELLED") || strings.Contains(out, "panic") {
		t.Fatalf("the shutdown did not say it cancelled the dispatch:\n%s", out)
	}
}
