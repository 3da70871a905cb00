package server_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/auth"
)

// pyRules routes the PyHall-style worker's capability in dev.
const pyRules = `{"rules": [{"rule_id": "rr_pyhall_dev", "match": {"capability_id": "cap.test.pyhall", "env": {"in": ["dev"]}},
  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.pyhall", "score_hint": 1.0}]}}]}`

// pyHall opens a Hall of its own in dir (its own ledger, so its own
// recorded tokens) and serves it; it returns the Hall, the URL, an admin
// and a tenant token.
func pyHall(t *testing.T, dir string) (*host.Hall, string, string, string) {
	t.Helper()
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir, Home: filepath.Join(dir, "home"), Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	tokens, err := auth.Open(filepath.Join(dir, "home", auth.DBFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tokens.Close() })
	admin, _, err := h.IssueToken(ctx, tokens, auth.AdminScope(), "test", "local:test")
	if err != nil {
		t.Fatal(err)
	}
	tenant, _, err := h.IssueToken(ctx, tokens, auth.TenantScope("org.test"), "test", "local:test")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(h, server.Config{Tokens: tokens}))
	t.Cleanup(ts.Close)
	return h, ts.URL, admin, tenant
}

// pyRecord is a record as PyHall's clients build it, with its PyHall
// record hash as artifact_hash.
func pyRecord(t *testing.T, fields map[string]any) map[string]any {
	t.Helper()
	rec := map[string]any{"worker_id": "org.test.hello-worker", "worker_species_id": "wrk.test.pyhall",
		"capabilities": []string{"cap.test.pyhall"}, "risk_tier": "low", "owner": "org.test"}
	for k, v := range fields {
		rec[k] = v
	}
	b, _ := json.Marshal(rec)
	h, err := host.PyHallRecordHash(b)
	if err != nil {
		t.Fatal(err)
	}
	rec["artifact_hash"] = h
	return rec
}

// TestPyHallEnrollRoutingOnly: a record whose artifact_hash is its PyHall
// record hash enrolls as a routing-only record (sealed, listed, decided
// for, never dispatched, kept across a restart); a record changed after
// its hash was computed is refused and changes nothing; a record missing
// fields is refused listing every one.
func TestPyHallEnrollRoutingOnly(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(pyRules), 0o644); err != nil {
		t.Fatal(err)
	}
	h, base, admin, tenant := pyHall(t, dir)

	rec := pyRecord(t, nil)
	r := post(t, base, "/enroll", admin, rec)
	if r.status != 201 || r.body["enrolled"] != true || r.body["artifact_hash_verified"] != true || r.body["routing_only"] != true ||
		r.body["artifact_hash"] != rec["artifact_hash"] || r.body["enrollment_id"] == nil {
		t.Fatalf("enroll: %v", r)
	}
	ws := rows(t, get(t, base, "/workers", tenant), "workers")
	if len(ws) != 1 || ws[0]["worker_id"] != "org.test.hello-worker" || ws[0]["status"] != "routing_only" || ws[0]["enrolled_at"] == nil {
		t.Fatalf("/workers: %v", ws)
	}
	if n := get(t, base, "/status", tenant).body["workers_enrolled"]; n != float64(1) {
		t.Errorf("workers_enrolled %v", n)
	}
	if r := post(t, base, "/enroll", admin, rec); r.status != 200 || r.body["updated"] != true {
		t.Errorf("enroll again: %v", r)
	}

	// It decides: under the Hall's defaults, which require a worker's
	// attestation, nothing attests a record without a module...
	rt := post(t, base, "/wcp/route", tenant, input("cap.test.pyhall", "py-route-0"))
	if rt.status != 200 || rt.body["denied"] != true || !strings.Contains(string(rt.raw), "DENY_WORKER_ATTESTATION_MISSING") {
		t.Fatalf("route under the Hall's defaults: %v", rt)
	}
	// ...and with PyHall's default (no attestation required) it is selected.
	if err := os.WriteFile(filepath.Join(dir, "hall.json"), []byte(`{"require_worker_attestation": false}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	rt = post(t, base, "/wcp/route", tenant, input("cap.test.pyhall", "py-route"))
	if rt.status != 200 || rt.body["denied"] != false || rt.body["selected_worker_species_id"] != "wrk.test.pyhall" || rt.body["artifact_hash"] != nil {
		t.Fatalf("route: %v", rt)
	}
	// ...and never dispatches: there is no module to run.
	run := post(t, base, "/wcp/run", tenant, runBody(input("cap.test.pyhall", "py-run"), "x"))
	if run.status != 409 || run.errCode() != "WORKER_ROUTING_ONLY" || run.body["ran"] != false {
		t.Fatalf("run of a routing-only record: %v", run)
	}

	// Changed after its hash was computed: refused, nothing changes.
	tampered := pyRecord(t, nil)
	tampered["capabilities"] = []string{"cap.test.pyhall", "cap.test.other"}
	r = post(t, base, "/enroll", admin, tampered)
	if r.status != 422 || r.errCode() != server.CodeArtifactUnknown || r.errField() != "artifact_hash" || !strings.Contains(string(r.raw), "not the record's own hash") {
		t.Fatalf("tampered record: %v", r)
	}
	if got, _ := h.Registry().Record("org.test.hello-worker"); len(got.Capabilities) != 1 {
		t.Errorf("the tampered record changed the enrolled one: %v", got.Capabilities)
	}

	// Every missing field is listed, artifact_hash among them.
	r = post(t, base, "/enroll", admin, map[string]any{"worker_species_id": "wrk.doc.summarizer"})
	if r.status != 422 || r.errCode() != server.CodeRecordInvalid {
		t.Fatalf("missing fields: %v", r)
	}
	for _, f := range []string{"artifact_hash", "worker_id", "capabilities", "risk_tier"} {
		if !strings.Contains(string(r.raw), `"field":"`+f+`"`) && !strings.Contains(string(r.raw), f) {
			t.Errorf("missing %s not listed: %v", f, r)
		}
	}
	probs, _ := r.body["error"].(map[string]any)["problems"].([]any)
	if len(probs) < 4 {
		t.Errorf("problems: %v", r)
	}

	// A restart keeps it: its seal is in the change chain.
	ctx := context.Background()
	if err := h.Close(ctx); err != nil {
		t.Fatal(err)
	}
	h2, err := host.Open(ctx, host.Options{Dir: dir, Home: filepath.Join(dir, "home"), Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close(ctx)
	if err := h2.Problems(); err != nil {
		t.Fatalf("problems after a restart: %v", err)
	}
	if _, ok := h2.Registry().Record("org.test.hello-worker"); !ok {
		t.Fatal("the routing-only record is not loaded after a restart")
	}
	ev, err := h2.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := ev.Verify(ctx, nil); err != nil || !rep.OK() {
		t.Fatalf("verify: %v %+v", err, rep)
	}
}

// TestPyHallIngestHallCheck: an ingested decision that carries its routing
// input (a whole RouteDecision, as PyHall's make_decision returns) is
// re-decided under the snapshot in force and the agreement is signed with
// it; a disagreement shows in /dispatches and /alerts; a minimal payload
// is recorded unchecked, saying why.
func TestPyHallIngestHallCheck(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(pyRules), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hall.json"), []byte(`{"require_worker_attestation": false}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, base, admin, tenant := pyHall(t, dir)
	if r := post(t, base, "/enroll", admin, pyRecord(t, nil)); r.status != 201 {
		t.Fatalf("enroll: %v", r)
	}
	rt := post(t, base, "/wcp/route", tenant, input("cap.test.pyhall", "py-check"))
	if rt.status != 200 || rt.body["denied"] != false {
		t.Fatalf("route: %v", rt)
	}
	same := rt.body
	same["decision_id"] = "py-agree-1"
	r := post(t, base, "/decisions/ingest", tenant, same)
	check, _ := r.body["hall_check"].(map[string]any)
	if r.status != 201 || check["checked"] != true || check["agrees"] != true {
		t.Fatalf("ingest of the same decision: %v", r)
	}
	other := map[string]any{}
	for k, v := range rt.body {
		other[k] = v
	}
	other["decision_id"] = "py-disagree-1"
	other["selected_worker_species_id"] = "wrk.test.elsewhere"
	r = post(t, base, "/decisions/ingest", tenant, other)
	check, _ = r.body["hall_check"].(map[string]any)
	if r.status != 201 || check["checked"] != true || check["agrees"] != false || !strings.Contains(string(r.raw), `"differs":["selected_worker_species_id"]`) {
		t.Fatalf("ingest of another decision: %v", r)
	}
	r = post(t, base, "/decisions/ingest", tenant, map[string]any{"decision_id": "py-minimal-1", "capability_id": "cap.test.pyhall"})
	check, _ = r.body["hall_check"].(map[string]any)
	if r.status != 201 || check["checked"] != false || !strings.Contains(check["skipped"].(string), "routing input") {
		t.Fatalf("ingest of a minimal decision: %v", r)
	}

	ds := rows(t, get(t, base, "/dispatches", tenant), "dispatches")
	if d := findDecision(ds, "py-agree-1"); d == nil || d["hall_agrees"] != true {
		t.Errorf("agreeing row: %v", d)
	}
	if d := findDecision(ds, "py-disagree-1"); d == nil || d["hall_agrees"] != false {
		t.Errorf("disagreeing row: %v", d)
	}
	if d := findDecision(ds, "py-minimal-1"); d == nil || d["hall_agrees"] != nil {
		t.Errorf("unchecked row: %v", d)
	}
	a := rows(t, get(t, base, "/alerts", tenant), "alerts")
	if len(a) != 1 || a[0]["code"] != "DECISION_DISAGREEMENT" || !strings.Contains(a[0]["message"].(string), "py-disagree-1") || a[0]["capability_id"] != "cap.test.pyhall" {
		t.Errorf("alerts: %v", a)
	}
}
