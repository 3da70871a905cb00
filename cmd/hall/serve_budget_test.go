package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 10: the Hall-wide memory budget is set in hall.json
// (limits.memory_budget_mb) or by `hall serve --memory-budget-mb`, the flag
// winning. Values that cannot work are refused naming the field and the
// fix; a budget below a worker's charge refuses that worker's dispatch
// with LIMIT_MEMORY naming the budget; a valid one is in the startup
// summary and in /wcp/health.

// hallExits runs hall where it must exit on its own (a refused flag or
// file); the context only guards against a server that starts instead.
func hallExits(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, hallBin, args...)
	cmd.Dir = dir
	cmd.Env = testEnv("HALL_HOME=" + filepath.Join(dir, ".hall"))
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("hall %v did not exit: it should have refused its input\n%s", args, errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(errb.String(), "goroutine ") || strings.Contains(errb.String(), "panic:") {
		t.Fatalf("hall %v printed a Go stack trace:\n%s", args, errb.String())
	}
	return result{out.String(), errb.String(), code}
}

func TestServeRefusesBadDispatchBounds(t *testing.T) {
	for _, tc := range []struct {
		name, hallJSON string
		args           []string
		want           []string
	}{
		{"negative flag", "", []string{"serve", "--memory-budget-mb=-1"}, []string{"--memory-budget-mb: -1 is negative", "at least 16", "0 for half of physical memory"}},
		{"flag below the smallest charge", "", []string{"serve", "--memory-budget-mb", "5"}, []string{"--memory-budget-mb: 5 MiB could not admit even the smallest call", "give at least 16"}},
		{"negative in hall.json", `{"limits": {"memory_budget_mb": -3}}`, []string{"serve"}, []string{"hall.json: limits.memory_budget_mb: -3 is negative", "at least 16"}},
		{"hall.json below the smallest charge", `{"limits": {"memory_budget_mb": 9}}`, []string{"status"}, []string{"hall.json: limits.memory_budget_mb: 9 MiB could not admit", "give at least 16"}},
		{"tenant share over 1", "", []string{"serve", "--tenant-share", "1.5"}, []string{"--tenant-share: 1.5 is not a share", "(0, 1]"}},
		{"negative slots", "", []string{"serve", "--max-concurrent=-2"}, []string{"--max-concurrent: -2 is negative"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := hallDir(t)
			if tc.hallJSON != "" {
				write(t, dir, "hall.json", tc.hallJSON)
			}
			args := tc.args
			if args[0] == "serve" {
				args = append(args, "--addr", "127.0.0.1:0")
			}
			r := hallExits(t, dir, args...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
				t.Errorf("want one line, got %d:\n%s", n+1, r.stderr)
			}
		})
	}
}

func TestMemoryBudgetConfigured(t *testing.T) {
	dir := hallDir(t)
	write(t, dir, "doc.txt", document)
	module, err := os.ReadFile(plugin(t, "summarizer"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "summarizer.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
	record, err := os.ReadFile("../../plugins/summarizer/registry_record.json")
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "registry_record.json", string(record))
	mustOK(t, hallIn(t, dir, "", nil, "enroll", "summarizer.wasm"), "hall enroll")

	// A budget below the summarizer's charge (memory_mb 64: two 64 MiB
	// memories alone are 128 MiB): its dispatch fails as it loads, with a
	// receipt, naming the budget.
	write(t, dir, "hall.json", `{"limits": {"memory_budget_mb": 32}}`)
	r := hallIn(t, dir, document, nil, "run", "cap.doc.summarize", "--tenant", "org.acme")
	if r.code != 3 || !strings.Contains(r.stderr, "LIMIT_MEMORY") || !strings.Contains(r.stderr, "memory budget of 33554432 bytes") {
		t.Fatalf("hall run under a 32 MiB budget: exit %d, want 3 and LIMIT_MEMORY naming the budget\n%s", r.code, r.stderr)
	}

	admin := strings.TrimSpace(hallIn(t, dir, "", nil, "tokens", "create", "--admin").stdout)
	tenant := strings.TrimSpace(hallIn(t, dir, "", nil, "tokens", "create", "--tenant", "org.acme").stdout)
	if admin == "" || tenant == "" {
		t.Fatal("no tokens")
	}
	serve := func(args ...string) (summary map[string]any, health map[string]any, run httpResult) {
		t.Helper()
		base, cmd, logs := startServe(t, dir, append([]string{"--home", filepath.Join(dir, ".hall")}, args...)...)
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "hall: serving the Hall API" {
				summary = rec
			}
		}
		health = curl(t, "GET", base+"/wcp/health", tenant, "", nil).body
		body, _ := json.Marshal(map[string]any{
			"input": map[string]any{"capability_id": "cap.doc.summarize", "env": "dev", "data_label": "INTERNAL",
				"tenant_risk": "low", "qos_class": "P2", "correlation_id": "budget-" + strings.Join(args, "")},
			"payload": document,
		})
		run = curl(t, "POST", base+"/wcp/run", tenant, "application/json", body)
		stopServe(t, cmd, logs)
		return summary, health, run
	}

	// The file's budget: in the summary and /wcp/health; the dispatch is
	// refused as hall run's was.
	summary, health, run := serve()
	if summary["memory_budget"] != "32 MiB" || health["memory_budget_mb"] != 32.0 {
		t.Errorf("hall.json's 32 MiB budget: summary %v, /wcp/health %v", summary["memory_budget"], health["memory_budget_mb"])
	}
	if code, _ := run.body["error"].(map[string]any)["code"].(string); code != "LIMIT_MEMORY" || !strings.Contains(run.raw, "memory budget") {
		t.Errorf("dispatch under a 32 MiB budget: %d %s", run.status, run.raw)
	}

	// The flag wins over the file: the summarizer runs.
	summary, health, run = serve("--memory-budget-mb", "1024", "--max-concurrent", "6", "--tenant-share", "0.5")
	if summary["memory_budget"] != "1024 MiB" || health["memory_budget_mb"] != 1024.0 {
		t.Errorf("--memory-budget-mb 1024 over hall.json's 32: summary %v, /wcp/health %v", summary["memory_budget"], health["memory_budget_mb"])
	}
	if summary["max_concurrent"] != 6.0 || summary["tenant_max_concurrent"] != 3.0 || health["max_concurrent"] != 6.0 || health["tenant_max_concurrent"] != 3.0 {
		t.Errorf("dispatch slots: summary %v/%v, /wcp/health %v/%v; want 6 and 3", summary["max_concurrent"], summary["tenant_max_concurrent"], health["max_concurrent"], health["tenant_max_concurrent"])
	}
	if run.status != 200 || run.body["outcome"] != "ok" {
		t.Errorf("dispatch under --memory-budget-mb 1024: %d %s", run.status, run.raw)
	}

	// Neither: the default, said as such.
	if err := os.Remove(filepath.Join(dir, "hall.json")); err != nil {
		t.Fatal(err)
	}
	summary, health, _ = serve()
	if summary["memory_budget"] != "half of physical memory (default)" || health["memory_budget_mb"] != 0.0 {
		t.Errorf("no budget configured: summary %v, /wcp/health %v", summary["memory_budget"], health["memory_budget_mb"])
	}
}
