package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/wcphall/hall/host/server"
)

// PyHall's Hall API (docs/PYHALL.md), tested from PyHall's documented
// behaviour: the same keys and statuses, the Hall's tokens and tenant
// scoping.

func rows(t *testing.T, r *response, key string) []map[string]any {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("%v", r)
	}
	list, ok := r.body[key].([]any)
	if !ok {
		t.Fatalf("no %q list: %v", key, r)
	}
	if n, _ := r.body["count"].(float64); int(n) != len(list) {
		t.Fatalf("count %v for %d %s: %v", r.body["count"], len(list), key, r)
	}
	out := make([]map[string]any, len(list))
	for i, x := range list {
		out[i], _ = x.(map[string]any)
	}
	return out
}

func findDecision(ds []map[string]any, id string) map[string]any {
	for _, d := range ds {
		if d["decision_id"] == id {
			return d
		}
	}
	return nil
}

// TestPyHallEndpointsNeedTokens: every PyHall endpoint is behind the
// Hall's tokens (PyHall's has none), and an approver, who acts as no
// tenant, reads no tenant's decisions.
func TestPyHallEndpointsNeedTokens(t *testing.T) {
	base := start(t, server.Config{})
	for _, p := range []string{"/status", "/workers", "/dispatches", "/dispatches/active", "/alerts"} {
		if r := get(t, base, p, ""); r.status != 401 || r.errCode() != server.CodeUnauthenticated {
			t.Errorf("GET %s without a token: %v", p, r)
		}
	}
	if r := post(t, base, "/decisions/ingest", "", map[string]any{"decision_id": "x"}); r.status != 401 {
		t.Errorf("ingest without a token: %v", r)
	}
}

// TestPyHallStatusAndWorkers: /status has PyHall's keys with the Hall's
// counts; /workers lists every enrolled record with PyHall's members,
// enrolled_at from its seal.
func TestPyHallStatusAndWorkers(t *testing.T) {
	base := start(t, server.Config{Version: "test"})
	r := get(t, base, "/status", fx.acme)
	for _, k := range []string{"hall_version", "hall_name", "workers_enrolled", "decisions_total", "decisions_today", "denials_today", "timestamp", "online", "account_standing", "standing_checked_at"} {
		if _, ok := r.body[k]; !ok {
			t.Errorf("/status has no %q: %v", k, r)
		}
	}
	if r.body["hall_version"] != "test" || r.body["online"] != true {
		t.Errorf("/status: %v", r)
	}
	ws := rows(t, get(t, base, "/workers", fx.acme), "workers")
	if n, _ := r.body["workers_enrolled"].(float64); int(n) != len(ws) || len(ws) < 4 {
		t.Fatalf("workers_enrolled %v, /workers lists %d", r.body["workers_enrolled"], len(ws))
	}
	var found bool
	for _, w := range ws {
		for _, k := range []string{"worker_id", "worker_species_id", "capabilities", "risk_tier", "enrolled_at", "status"} {
			if _, ok := w[k]; !ok {
				t.Errorf("worker %v has no %q", w["worker_id"], k)
			}
		}
		if w["worker_id"] == "org.test.slow" {
			found = true
			if w["status"] != "active" || w["enrolled_at"] == nil || w["risk_tier"] != "low" {
				t.Errorf("slow worker: %v", w)
			}
		}
	}
	if !found {
		t.Errorf("org.test.slow not listed: %v", ws)
	}
}

// TestPyHallDispatchesScoped: /dispatches lists the tenant's own
// decisions (the Hall's, made over /wcp/route) in PyHall's row shape,
// newest first, and never another tenant's; limit is PyHall's.
func TestPyHallDispatchesScoped(t *testing.T) {
	base := start(t, server.Config{})
	corr := "py-disp-" + uuid.NewString()
	rt := post(t, base, "/wcp/route", fx.acme, input("cap.doc.summarize", corr))
	if rt.status != 200 {
		t.Fatalf("route: %v", rt)
	}
	id, _ := rt.body["decision_id"].(string)
	ds := rows(t, get(t, base, "/dispatches?limit=200", fx.acme), "dispatches")
	d := findDecision(ds, id)
	if d == nil {
		t.Fatalf("decision %s not in acme's /dispatches", id)
	}
	for _, k := range []string{"decision_id", "decided_at", "capability_id", "tenant_id", "env", "denied", "deny_reason", "selected_worker", "blast_score", "artifact_hash"} {
		if _, ok := d[k]; !ok {
			t.Errorf("dispatch row has no %q: %v", k, d)
		}
	}
	if d["source"] != "hall" || d["decided_by_this_hall"] != true || d["denied"] != float64(0) || d["env"] != "dev" || d["selected_worker"] != "wrk.doc.summarizer" {
		t.Errorf("row: %v", d)
	}
	if findDecision(rows(t, get(t, base, "/dispatches?limit=200", fx.other), "dispatches"), id) != nil {
		t.Errorf("org.other sees acme's decision %s", id)
	}
	if findDecision(rows(t, get(t, base, "/dispatches?limit=200", fx.admin), "dispatches"), id) == nil {
		t.Errorf("the admin does not see decision %s", id)
	}
	if r := get(t, base, "/dispatches?limit=x", fx.acme); r.status != 400 || r.errField() != "limit" {
		t.Errorf("limit=x: %v", r)
	}
	if got := rows(t, get(t, base, "/dispatches?limit=0", fx.acme), "dispatches"); len(got) != 1 {
		t.Errorf("limit=0 (clamped to 1): %d rows", len(got))
	}
}

// TestPyHallIngest: an ingested decision is recorded in the tenant's
// chain, marked as not decided by this Hall, shows in /dispatches and
// /status, is idempotent by decision_id, and the ledger still verifies.
func TestPyHallIngest(t *testing.T) {
	base := start(t, server.Config{})
	id := "py-" + uuid.NewString()
	before := get(t, base, "/status", fx.acme)
	dec := map[string]any{"decision_id": id, "capability_id": "cap.db.write", "tenant_id": "org.acme", "env": "prod",
		"denied": true, "deny_reason": "blast:78", "selected_worker": nil, "blast_score": 78}
	r := post(t, base, "/decisions/ingest", fx.acme, dec)
	if r.status != 201 || r.body["recorded"] != true || r.body["decision_id"] != id || r.body["duplicate"] != false || r.body["decided_by_this_hall"] != false {
		t.Fatalf("ingest: %v", r)
	}
	entry, _ := r.body["entry_id"].(string)
	d := findDecision(rows(t, get(t, base, "/dispatches", fx.acme), "dispatches"), id)
	if d == nil {
		t.Fatalf("ingested decision %s not in /dispatches", id)
	}
	if d["source"] != "external" || d["decided_by_this_hall"] != false || d["denied"] != float64(1) || d["deny_reason"] != "blast:78" ||
		d["env"] != "prod" || d["blast_score"] != float64(78) || d["entry_id"] != entry || d["tenant_id"] != "org.acme" {
		t.Errorf("row: %v", d)
	}
	after := get(t, base, "/status", fx.acme)
	if after.body["decisions_total"].(float64) != before.body["decisions_total"].(float64)+1 ||
		after.body["denials_today"].(float64) != before.body["denials_today"].(float64)+1 {
		t.Errorf("status before %v after %v", before, after)
	}
	if findDecision(rows(t, get(t, base, "/dispatches?limit=200", fx.other), "dispatches"), id) != nil {
		t.Errorf("org.other sees acme's ingested decision")
	}

	// Idempotent: the same decision again records nothing new.
	r2 := post(t, base, "/decisions/ingest", fx.acme, dec)
	if r2.status != 201 || r2.body["duplicate"] != true || r2.body["entry_id"] != entry {
		t.Errorf("second ingest: %v", r2)
	}
	if n := get(t, base, "/status", fx.acme).body["decisions_total"]; n != after.body["decisions_total"] {
		t.Errorf("decisions_total %v after a duplicate, want %v", n, after.body["decisions_total"])
	}
	// Another tenant may use the same decision_id: its own chain.
	if r := post(t, base, "/decisions/ingest", fx.other, map[string]any{"decision_id": id, "capability_id": "cap.doc.summarize"}); r.status != 201 || r.body["duplicate"] != false || r.body["entry_id"] == entry {
		t.Errorf("other tenant, same id: %v", r)
	}
	// Other content under a recorded id is refused.
	dec["denied"] = false
	if r := post(t, base, "/decisions/ingest", fx.acme, dec); r.status != 409 || r.errCode() != server.CodeDecisionConflict || r.errField() != "decision_id" {
		t.Errorf("changed content: %v", r)
	}
	// A tenant token records into its own tenant only.
	if r := post(t, base, "/decisions/ingest", fx.acme, map[string]any{"decision_id": "x-" + id, "tenant_id": "org.other"}); r.status != 403 || r.errCode() != server.CodeTenantMismatch {
		t.Errorf("other tenant_id: %v", r)
	}
	// Without a decision_id the Hall gives one, as PyHall does.
	if r := post(t, base, "/decisions/ingest", fx.acme, map[string]any{"capability_id": "cap.doc.summarize"}); r.status != 201 || len(r.body["decision_id"].(string)) != 36 {
		t.Errorf("no decision_id: %v", r)
	}
	// The admin records into the decision's tenant_id.
	if r := post(t, base, "/decisions/ingest", fx.admin, map[string]any{"decision_id": "adm-" + id, "tenant_id": "org.acme"}); r.status != 201 || r.body["tenant_id"] != "org.acme" {
		t.Errorf("admin ingest: %v", r)
	}

	ev, err := fx.hall.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := ev.Verify(context.Background(), nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify after ingestion: %v %+v", err, rep)
	}
}

// TestPyHallIngestBounds: sizes are bounded and the field at fault named;
// a 7 MiB decision_id is refused without being recorded.
func TestPyHallIngestBounds(t *testing.T) {
	base := start(t, server.Config{})
	huge := strings.Repeat("a", 7<<20)
	cases := []struct {
		name   string
		body   map[string]any
		status int
		field  string
	}{
		{"7 MiB decision_id", map[string]any{"decision_id": huge}, 422, "decision_id"},
		{"long capability_id", map[string]any{"decision_id": "b1", "capability_id": strings.Repeat("c", 300)}, 422, "capability_id"},
		{"decision_id not a string", map[string]any{"decision_id": 7}, 422, "decision_id"},
		{"control character", map[string]any{"decision_id": "a\nb"}, 422, "decision_id"},
		{"decision too large", map[string]any{"decision_id": "big-" + uuid.NewString(), "extra": strings.Repeat("x", 70<<10)}, 422, "decision"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, base, "/decisions/ingest", fx.acme, tc.body)
			if r.status != tc.status || r.errField() != tc.field {
				t.Errorf("got %d %s: %.300s", r.status, r.errField(), r.raw)
			}
		})
	}
	if r := call(t, base, req{method: "POST", path: "/decisions/ingest", token: fx.acme, ctype: "application/json", body: strings.NewReader("[1]")}); r.status != 422 || r.errCode() != server.CodeInvalidRequest || r.errField() != "decision" {
		t.Errorf("array: %v", r)
	}
}

// TestPyHallActiveAndAlerts: /dispatches/active lists a running dispatch
// to its tenant only; /alerts is empty while the Hall is healthy and
// reports it offline.
func TestPyHallActiveAndAlerts(t *testing.T) {
	base := start(t, server.Config{})
	if a := rows(t, get(t, base, "/alerts", fx.acme), "alerts"); len(a) != 0 {
		t.Errorf("alerts of a healthy Hall: %v", a)
	}
	if a := rows(t, get(t, base, "/dispatches/active", fx.acme), "dispatches"); len(a) != 0 {
		t.Errorf("active with nothing running: %v", a)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if _, err := tryPost(base, "/wcp/run", fx.acme, runBody(input("cap.test.slow", "py-active"), "")); err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "the slow dispatch in /dispatches/active", func() bool {
		return len(rows(t, get(t, base, "/dispatches/active", fx.acme), "dispatches")) == 1
	})
	if a := rows(t, get(t, base, "/dispatches/active", fx.other), "dispatches"); len(a) != 0 {
		t.Errorf("org.other sees acme's running dispatch: %v", a)
	}
	wg.Wait()
	if a := rows(t, get(t, base, "/dispatches/active", fx.acme), "dispatches"); len(a) != 0 {
		t.Errorf("active after it ended: %v", a)
	}

	fx.hall.SetOnline(false)
	defer fx.hall.SetOnline(true)
	a := rows(t, get(t, base, "/alerts", fx.acme), "alerts")
	if len(a) != 1 || a[0]["code"] != server.CodeHallOffline || a[0]["level"] != "warning" {
		t.Errorf("alerts offline: %v", a)
	}
}

// TestPyHallIngestInConsole: the console's receipts page lists ingested
// decisions apart from receipts, marked as not decided by this Hall.
func TestPyHallIngestInConsole(t *testing.T) {
	base := start(t, server.Config{})
	id := "console-" + uuid.NewString()
	if r := post(t, base, "/decisions/ingest", fx.acme, map[string]any{"decision_id": id, "capability_id": "cap.doc.summarize", "env": "dev"}); r.status != 201 {
		t.Fatalf("ingest: %v", r)
	}
	c := consoleClient(t, base, nil)
	if res, _ := signIn(t, c, base, fx.admin); res.StatusCode != 303 {
		t.Fatalf("admin sign-in: %d", res.StatusCode)
	}
	res, page := fetch(t, c, "GET", base+"/console/receipts", nil)
	if res.StatusCode != 200 || !strings.Contains(page, "not decided by this Hall") || !strings.Contains(page, id) {
		t.Fatalf("console receipts: %d\n%s", res.StatusCode, page)
	}
}

// TestPyHallRegistryProxies: PyHall's registry proxies answer as PyHall
// does when its registry cannot be reached (503, source local-only): the
// Hall consults no registry service.
func TestPyHallRegistryProxies(t *testing.T) {
	base := start(t, server.Config{})
	for _, p := range []string{"/wcp/registry/ban-list", "/wcp/registry/verify/x.test.w1"} {
		r := get(t, base, p, fx.acme)
		if r.status != 503 || r.errCode() != server.CodeRegistryUnavailable || r.body["source"] != "local-only" {
			t.Errorf("GET %s: %v", p, r)
		}
		if r := get(t, base, p, ""); r.status != 401 {
			t.Errorf("GET %s without a token: %v", p, r)
		}
	}
}

// TestPyHallIngestConcurrentDuplicates: the same decision sent eight times
// at once is recorded once; every answer is 201, all but one duplicates.
func TestPyHallIngestConcurrentDuplicates(t *testing.T) {
	base := start(t, server.Config{})
	before := get(t, base, "/status", fx.other).body["decisions_total"].(float64)
	dec := map[string]any{"decision_id": "conc-" + uuid.NewString(), "capability_id": "cap.doc.summarize"}
	type answer struct {
		r   *response
		err error
	}
	answers := make(chan answer, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			r, err := tryPost(base, "/decisions/ingest", fx.other, dec)
			answers <- answer{r, err}
		})
	}
	wg.Wait()
	close(answers)
	dups := 0
	for a := range answers {
		if a.err != nil || a.r.status != 201 {
			t.Fatalf("ingest: %v %v", a.err, a.r)
		}
		if a.r.body["duplicate"] == true {
			dups++
		}
	}
	if dups != 7 {
		t.Errorf("%d duplicates of 8, want 7", dups)
	}
	if after := get(t, base, "/status", fx.other).body["decisions_total"].(float64); after != before+1 {
		t.Errorf("decisions_total %v -> %v, want one more", before, after)
	}
}
