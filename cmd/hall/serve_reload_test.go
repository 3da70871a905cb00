package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeReloadsEnrollAndSIGHUP: a running `hall serve` serves a worker
// `hall enroll` enrolls in its directory (it watches enrolled/ and the
// artifact store), and applies a rules edit on SIGHUP; a SIGHUP with an
// invalid rules file is logged and the last good rules keep serving.
func TestServeReloadsEnrollAndSIGHUP(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, ".hall")
	rule := func(id, capability string) string {
		return fmt.Sprintf(`{"rule_id": %q, "match": {"capability_id": %q, "env": {"in": ["dev"]}},
		  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.reload"}]}}`, id, capability)
	}
	write(t, dir, "rules.json", `{"rules": [`+rule("reload", "cap.test.reload")+`]}`)
	acme := hallIn(t, dir, "", nil, "tokens", "create", "--tenant", "org.acme", "--home", home)
	mustOK(t, acme, "tokens create")
	tok := strings.TrimSpace(acme.stdout)
	base, cmd, logs := startServe(t, dir, "--home", home)

	poll := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("after 10 s: %s\n%s", what, logs.String())
			}
		}
	}
	routed := func(capability string) bool {
		b, _ := json.Marshal(map[string]any{"capability_id": capability, "env": "dev", "data_label": "INTERNAL",
			"tenant_risk": "low", "qos_class": "P2", "correlation_id": "corr-reload"})
		r := curl(t, "POST", base+"/wcp/route", tok, "application/json", b)
		if r.status != 200 {
			t.Fatalf("route %s: %d %s", capability, r.status, r.raw)
		}
		return r.body["denied"] == false
	}

	// Enrolled by the CLI, in another process, while the server runs.
	if r := curl(t, "GET", base+"/wcp/workers/org.acme.reload", tok, "", nil); r.status != 404 {
		t.Fatalf("before enrolling: %d %s", r.status, r.raw)
	}
	write(t, dir, "reload.json", `{"worker_id": "org.acme.reload", "worker_species_id": "wrk.test.reload",
	  "capabilities": ["cap.test.reload", "cap.test.hup"], "risk_tier": "low", "allowed_environments": ["dev"]}`)
	module := wat(t, `(module (memory (export "memory") 1) (func (export "run") (result i32) (i32.const 0)))`)
	mustOK(t, hallIn(t, dir, "", nil, "enroll", module, "--record", "reload.json", "--home", home), "hall enroll")
	poll("the worker `hall enroll` enrolled is not served (GET /wcp/workers/org.acme.reload is not 200)", func() bool {
		return curl(t, "GET", base+"/wcp/workers/org.acme.reload", tok, "", nil).status == 200
	})
	if !routed("cap.test.reload") {
		t.Fatal("cap.test.reload is denied with the worker enrolled")
	}

	// sighup signals the server and waits for the log line its reload
	// ends with: the reload is done when it is written.
	sighup := func(want string) {
		t.Helper()
		before := len(logs.String())
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		poll("no "+want+" in the log after SIGHUP", func() bool { return strings.Contains(logs.String()[before:], want) })
	}
	if routed("cap.test.hup") {
		t.Fatal("cap.test.hup is routed before a rule names it")
	}
	write(t, dir, "rules.json", `{"rules": [`+rule("reload", "cap.test.reload")+`, `+rule("hup", "cap.test.hup")+`]}`)
	sighup(`"msg":"hall: SIGHUP: reloaded"`)
	if !routed("cap.test.hup") {
		t.Fatalf("after SIGHUP the rules edit is not applied (cap.test.hup denied)\n%s", logs.String())
	}

	write(t, dir, "rules.json", `{"rules": [{"rule_id": `)
	sighup(`"msg":"hall: SIGHUP: reload failed`)
	if !routed("cap.test.hup") || !routed("cap.test.reload") {
		t.Fatal("after a SIGHUP with an invalid rules file the last good rules no longer serve")
	}

	// SIGTERM still stops the server cleanly, the watch included.
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
	case <-time.After(30 * time.Second):
		t.Fatalf("hall serve did not stop on SIGTERM:\n%s", logs.String())
	}
	if out := logs.String(); !strings.Contains(out, "hall: stopped") || strings.Contains(out, "panic") {
		t.Fatalf("unclean stop:\n%s", out)
	}
}
