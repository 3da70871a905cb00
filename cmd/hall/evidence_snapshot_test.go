package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/internal/ledger"
)

// TestAuditVerifySnapshots drives issue 21's snapshot evidence with the
// real binary: a hall.json rewritten between two commands is recorded
// before the next decision, hall audit verify and the Node verifier
// accept the ledger, and both report a decision that names a snapshot no
// change entry records.
func TestAuditVerifySnapshots(t *testing.T) {
	dir := t.TempDir()
	rules, err := os.ReadFile(filepath.Join(quickstart, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "rules.json", string(rules))
	write(t, dir, "hall.json", `{"enforce_worker_controls": true}`)
	route := func(corr string) {
		t.Helper()
		r := hallIn(t, dir, "", nil, "route", "--capability", "cap.nothing", "--tenant", "org.acme", "--correlation-id", corr)
		if r.code != exitDenied {
			t.Fatalf("route: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	route("c-1")
	write(t, dir, "hall.json", `{"enforce_worker_controls": false, "require_worker_attestation": false}`)
	route("c-2")
	r := hallIn(t, dir, "", nil, "audit", "verify")
	mustOK(t, r, "audit verify")

	bundle := filepath.Join(t.TempDir(), "bundle")
	mustOK(t, hallIn(t, dir, "", nil, "audit", "export", "--bundle", bundle), "audit export --bundle")
	var configs []string
	data, err := os.ReadFile(filepath.Join(bundle, ledger.BundleEntries))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var l struct {
			Chain string `json:"chain"`
			Entry struct {
				Kind string `json:"kind"`
				Body struct {
					Changed map[string]json.RawMessage `json:"changed"`
				} `json:"body"`
			} `json:"entry"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		if l.Chain == ledger.ChainChanges && l.Entry.Kind == ledger.ChangeSnapshot {
			configs = append(configs, string(l.Entry.Body.Changed["config"]))
		}
	}
	if len(configs) != 2 || !strings.Contains(configs[1], `"require_worker_attestation":false`) {
		t.Fatalf("the hall.json rewrite is not in the change chain: %q", configs)
	}
	script := nodeVerifierScript(t)
	if script != "" {
		if out, err := exec.Command("node", script, bundle).CombinedOutput(); err != nil {
			t.Fatalf("node verifier: %v\n%s", err, out)
		}
	}

	// A signed decision naming a snapshot the change chain does not hold.
	s, err := ledger.Open(filepath.Join(dir, ".hall"))
	if err != nil {
		t.Fatal(err)
	}
	err = s.RecordDecision(context.Background(), ledger.DecisionRecord{DecisionID: "dec-unsealed", CorrelationID: "c-3", TenantID: "org.acme",
		Decision: json.RawMessage(`{"decision_id":"dec-unsealed"}`), Snapshot: evDigest("a snapshot nobody recorded")})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	r = hallIn(t, dir, "", nil, "audit", "verify")
	if r.code != exitError || !strings.Contains(r.stdout, "which no change entry records") {
		t.Fatalf("audit verify of a decision under an unrecorded snapshot: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bundle2 := filepath.Join(t.TempDir(), "bundle")
	mustOK(t, hallIn(t, dir, "", nil, "audit", "export", "--bundle", bundle2), "audit export --bundle")
	if script != "" {
		out, err := exec.Command("node", script, bundle2).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "which no change entry records") {
			t.Fatalf("node verifier accepted a decision under an unrecorded snapshot: %v\n%s", err, out)
		}
	}
}
