package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/ledger"
)

// TestNoSilentDeadEnds is the newcomer's report (issue 27): a capability no
// rule routes was denied with only DENY_NO_MATCHING_RULE while hall status
// listed it as served; hall status in the wrong folder created .hall/
// there, and hall audit verify then "verified 0 receipt(s)", exit 0.
func TestNoSilentDeadEnds(t *testing.T) {
	t.Run("enrolled but no rule", func(t *testing.T) {
		dir := t.TempDir()
		if out, err := exec.Command("wat2wasm", "../../host/server/testdata/noop.wat", "-o", filepath.Join(dir, "noop.wasm")).CombinedOutput(); err != nil {
			t.Fatalf("wat2wasm: %v\n%s", err, out)
		}
		write(t, dir, "rules.json", `{"rules": []}`)
		rec, _ := filepath.Abs("../../host/server/testdata/noop.json")
		if r := hallIn(t, dir, "", nil, "enroll", "--record", rec, "noop.wasm"); r.code != 0 {
			t.Fatalf("enroll: %d %s", r.code, r.stderr)
		}
		r := hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme")
		if r.code != exitDenied || !strings.Contains(r.stderr, "DENY_NO_MATCHING_RULE") || !strings.Contains(r.stderr, "no rule routes it") || !strings.Contains(r.stderr, "hall enroll --add-rule") {
			t.Fatalf("run of an enrolled capability no rule routes: exit %d\n%s", r.code, r.stderr)
		}
		write(t, dir, "rules.json", `{"rules": [{"rule_id": "rr_other", "match": {"capability_id": "cap.test.noop"}, "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.absent"}]}}]}`)
		r = hallIn(t, dir, "x", nil, "run", "cap.test.noop", "--tenant", "org.acme")
		if r.code != exitDenied || !strings.Contains(r.stderr, "DENY_NO_AVAILABLE_WORKER") || !strings.Contains(r.stderr, "wrk.test.absent (no worker of it serving cap.test.noop is enrolled)") {
			t.Fatalf("run routed to a species nothing enrolled serves: exit %d\n%s", r.code, r.stderr)
		}
		r = hallIn(t, dir, "", nil, "status", "--addr", "127.0.0.1:1")
		if !strings.Contains(r.stdout, "cap.test.noop (no rule routes it)") {
			t.Fatalf("status does not mark the unrouted capability:\n%s", r.stdout)
		}
	})
	t.Run("read commands in the wrong folder", func(t *testing.T) {
		hallDir := t.TempDir()
		if r := hallIn(t, hallDir, "", nil, "tokens", "create", "--admin"); r.code != 0 {
			t.Fatalf("tokens create: %d %s", r.code, r.stderr)
		}
		wrong := filepath.Join(hallDir, "sub", "dir")
		if err := os.MkdirAll(wrong, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"status", "--addr", "127.0.0.1:1"}, {"receipts"}, {"audit", "verify"}} {
			r := hallWith(t, wrong, "", nil, args...)
			if r.code != exitError || !strings.Contains(r.stderr, "no Hall here") || !strings.Contains(r.stderr, hallDir) || !strings.Contains(r.stderr, "HALL_HOME") {
				t.Errorf("hall %v in a folder without a Hall: exit %d\n%s", args, r.code, r.stderr)
			}
			if _, err := os.Stat(filepath.Join(wrong, ".hall")); err == nil {
				t.Fatalf("hall %v created .hall/ in the wrong folder", args)
			}
		}
	})
	t.Run("audit verify of an empty ledger", func(t *testing.T) {
		dir := t.TempDir()
		// What hall status used to leave behind: a ledger holding its schema.
		l, err := ledger.Open(filepath.Join(dir, ".hall"))
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		if r := hallIn(t, dir, "", nil, "audit", "verify"); r.code != exitError || !strings.Contains(r.stderr, "--allow-empty") {
			t.Fatalf("audit verify of a ledger with nothing decided or run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if r := hallIn(t, dir, "", nil, "audit", "verify", "--allow-empty"); r.code != 0 {
			t.Fatalf("audit verify --allow-empty: exit %d\n%s", r.code, r.stderr)
		}
	})
	t.Run("status reaches another folder's server", func(t *testing.T) {
		served, here := t.TempDir(), t.TempDir()
		write(t, served, "rules.json", `{"rules": []}`)
		write(t, here, "rules.json", `{"rules": [{"rule_id": "rr_x", "match": {"capability_id": "cap.x.y"}, "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.x.y", "score_hint": 1.0}]}}]}`)
		base, _, _ := startServe(t, served)
		addr := strings.TrimPrefix(base, "http://")
		if err := os.Mkdir(filepath.Join(here, ".hall"), 0o700); err != nil {
			t.Fatal(err)
		}
		r := hallIn(t, here, "", nil, "status", "--addr", addr)
		if r.code != 0 || !strings.Contains(r.stdout, "serves ANOTHER Hall") {
			t.Fatalf("status against another folder's server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = hallWith(t, served, "", []string{"HALL_HOME=" + filepath.Join(served, ".hall")}, "status", "--addr", addr)
		if r.code != 0 || strings.Contains(r.stdout, "ANOTHER") || !strings.Contains(r.stdout, "answers") {
			t.Fatalf("status against its own server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}
