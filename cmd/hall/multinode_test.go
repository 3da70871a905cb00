package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wcphall/hall/internal/pgtest"
)

// node is one `hall serve` of a shared database.
type node struct {
	base string
	kill func()
}

// TestMultiNodePostgres runs three real `hall serve` processes on one
// PostgreSQL database (issue 22): a worker enrolled through one is routed
// and run through the others; one node is killed with SIGKILL in the
// middle of a burst; afterwards every chain verifies and every receipt a
// node acknowledged is in the ledger. A rules change through one node is
// in force on the others within a second, and a token revoked through the
// CLI is refused by every node at its next request.
func TestMultiNodePostgres(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	home0 := filepath.Join(dir, "node0")
	db := []string{"--database-url", dsn}

	// Tokens through the CLI; the first command makes the signing key that
	// every node is then given (--key).
	admin := hall(t, dir, "", append([]string{"tokens", "create", "--admin", "--home", home0}, db...)...)
	acme := hall(t, dir, "", append([]string{"tokens", "create", "--tenant", "org.acme", "--home", home0}, db...)...)
	if admin.code != 0 || acme.code != 0 {
		t.Fatalf("tokens create: %+v %+v", admin, acme)
	}
	adminTok, acmeTok := strings.TrimSpace(admin.stdout), strings.TrimSpace(acme.stdout)
	key := filepath.Join(home0, "keys", "ed25519.key")

	var nodes []*node
	for i := range 3 {
		ndir := filepath.Join(dir, fmt.Sprintf("n%d", i))
		if err := os.MkdirAll(ndir, 0o700); err != nil {
			t.Fatal(err)
		}
		base, cmd, _ := startServe(t, ndir, append([]string{"--home", filepath.Join(ndir, ".hall"), "--key", key}, db...)...)
		nodes = append(nodes, &node{base: base, kill: func() { cmd.Process.Kill(); cmd.Wait() }})
	}

	// Enroll through node 0: the module, the record, the rules.
	enrollSummarizer(t, nodes[0].base, adminTok)
	rules, err := os.ReadFile(filepath.Join(quickstart, "rules.json"))
	if err != nil {
		t.Fatal(err)
	}

	// In force on the others within a second: they serve node 0's
	// snapshot, and route to the worker.
	inForceEverywhere(t, nodes, "the enrollment and rules made through node 0")
	route, _ := json.Marshal(map[string]any{"capability_id": "cap.doc.summarize", "env": "dev", "data_label": "INTERNAL",
		"tenant_risk": "low", "qos_class": "P2", "correlation_id": "route-n1"})
	for _, n := range nodes[1:] {
		if r := curl(t, "POST", n.base+"/wcp/route", acmeTok, "application/json", route); r.status != 200 || r.body["denied"] != false {
			t.Fatalf("route through %s: %+v", n.base, r)
		}
	}

	// A burst through all three; node 2 is killed once it has
	// acknowledged a few runs, while requests to it are in flight.
	const perNode = 30
	var mu sync.Mutex
	acked := map[string]string{} // receipt id -> node
	killAt := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for i, n := range nodes {
		for w := range 2 {
			wg.Go(func() {
				for j := range perNode / 2 {
					body, _ := json.Marshal(map[string]any{
						"input": map[string]any{"capability_id": "cap.doc.summarize", "env": "dev", "data_label": "INTERNAL",
							"tenant_risk": "low", "qos_class": "P2", "correlation_id": fmt.Sprintf("burst-%d-%d-%d", i, w, j)},
						"payload": "Nodes share one database. Each receipt is acknowledged once committed.",
					})
					r, err := post(n.base+"/wcp/run", acmeTok, body)
					if err != nil {
						if i == 2 {
							return // the killed node: refused connections, cut answers
						}
						t.Errorf("run through node %d: %v", i, err)
						return
					}
					if r.status == 200 {
						if id, _ := r.body["receipt_id"].(string); id != "" {
							mu.Lock()
							acked[id] = n.base
							count := len(acked)
							mu.Unlock()
							if i == 2 && count >= 5 {
								once.Do(func() { close(killAt) })
							}
						}
					} else if i != 2 {
						t.Errorf("run through node %d: %d %s", i, r.status, r.raw)
						return
					}
				}
			})
		}
	}
	<-killAt
	nodes[2].kill()
	wg.Wait()
	if t.Failed() {
		return
	}

	// Every chain verifies; every acknowledged receipt is there.
	v := hall(t, dir, "", append([]string{"audit", "verify", "--home", home0, "--key", key}, db...)...)
	if v.code != 0 {
		t.Fatalf("audit verify after the kill: %+v", v)
	}
	list := hall(t, dir, "", append([]string{"receipts", "--json", "--limit", "0", "--home", home0}, db...)...)
	var all []struct {
		ReceiptID string `json:"receipt_id"`
	}
	if err := json.Unmarshal([]byte(list.stdout), &all); err != nil {
		t.Fatalf("receipts --json: %v: %+v", err, list)
	}
	stored := map[string]bool{}
	for _, r := range all {
		stored[r.ReceiptID] = true
	}
	for id, n := range acked {
		if !stored[id] {
			t.Errorf("receipt %s acknowledged by %s is not in the ledger", id, n)
		}
	}
	t.Logf("%d receipts acknowledged by three nodes (one killed mid-burst), all in the ledger; %s", len(acked), strings.TrimSpace(v.stdout))

	// A rules change through node 1 is in force on node 0 within a second.
	live := nodes[:2]
	changed := strings.Replace(string(rules), `"dev"`, `"dev", "stage"`, 1)
	if r := curl(t, "PUT", live[1].base+"/admin/rules", adminTok, "application/json", []byte(changed)); r.status != 200 {
		t.Fatalf("rules through node 1: %+v", r)
	}
	inForceEverywhere(t, []*node{live[1], live[0]}, "the rules changed through node 1")

	// A configuration set through the CLI is in force on both nodes
	// within a second, and /admin/config answers it.
	write(t, dir, "hall.json", `{"default_tenant": "org.acme"}`)
	before := health(t, live[0].base)
	if r := hall(t, dir, "", append([]string{"config", "set", "hall.json", "--home", home0, "--key", key}, db...)...); r.code != 0 {
		t.Fatalf("hall config set: %+v", r)
	}
	changedEverywhere(t, live, before, "the configuration set through the CLI")
	if r := curl(t, "GET", live[1].base+"/admin/config", adminTok, "", nil); r.status != 200 || r.body["default_tenant"] != "org.acme" {
		t.Fatalf("GET /admin/config: %+v", r)
	}
	if r := curl(t, "PUT", live[1].base+"/admin/config", adminTok, "application/json", []byte(`{"bogus": true}`)); r.status != 422 {
		t.Fatalf("PUT /admin/config of an invalid configuration: %+v", r)
	}

	// An approval granted on one node is usable once on any node: two
	// runs presenting it at once on two nodes give one dispatch.
	write(t, dir, "policy.json", heldPolicy)
	before = health(t, live[0].base)
	if r := hall(t, dir, "", append([]string{"policy", "set", "policy.json", "--home", home0, "--key", key}, db...)...); r.code != 0 {
		t.Fatalf("hall policy set: %+v", r)
	}
	changedEverywhere(t, live, before, "the policy set through the CLI")
	held, _ := json.Marshal(map[string]any{
		"input": map[string]any{"capability_id": "cap.doc.summarize", "env": "dev", "data_label": "INTERNAL",
			"tenant_risk": "low", "qos_class": "P2", "correlation_id": "hold-1"},
		"payload": "Held for a human.",
	})
	r := curl(t, "POST", live[0].base+"/wcp/run", acmeTok, "application/json", held)
	approvalID, _ := r.body["approval_id"].(string)
	if r.status != 202 || approvalID == "" {
		t.Fatalf("held run through node 0: %+v", r)
	}
	approverTok := strings.TrimSpace(hall(t, dir, "", append([]string{"tokens", "create", "--approver", "--home", home0, "--key", key}, db...)...).stdout)
	if r := curl(t, "POST", live[1].base+"/wcp/approvals/"+approvalID+"/approve", approverTok, "application/json", []byte(`{}`)); r.status != 200 {
		t.Fatalf("approve through node 1: %+v", r)
	}
	var again map[string]any
	json.Unmarshal(held, &again)
	again["approval_id"] = approvalID
	resubmit, _ := json.Marshal(again)
	results := make([]httpResult, len(live))
	errs := make([]error, len(live))
	var rw sync.WaitGroup
	for i, n := range live {
		rw.Go(func() { results[i], errs[i] = post(n.base+"/wcp/run", acmeTok, resubmit) })
	}
	rw.Wait()
	ran := 0
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("approved run through %s: %v", live[i].base, errs[i])
		}
		if res.status == 200 && res.body["ran"] != false {
			ran++
		}
	}
	if ran != 1 {
		t.Fatalf("one approval presented on two nodes at once ran %d times: %s | %s", ran, results[0].raw, results[1].raw)
	}

	// PostgreSQL stops: the nodes answer 503 STATE_UNAVAILABLE (nothing
	// runs whose decision is not durable) and /health says so; it comes
	// back: they serve again without being touched.
	pg := pgtest.Start(t)
	if err := pg.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			pg.Resume()
		}
	}()
	runBody, _ := json.Marshal(map[string]any{
		"input": map[string]any{"capability_id": "cap.doc.summarize", "env": "dev", "data_label": "INTERNAL",
			"tenant_risk": "low", "qos_class": "P2", "correlation_id": "while-down"},
		"payload": "The database is down.",
	})
	for _, n := range live {
		r := curl(t, "POST", n.base+"/wcp/run", acmeTok, "application/json", runBody)
		if code, _ := r.body["error"].(map[string]any)["code"].(string); r.status != 503 || code != "STATE_UNAVAILABLE" {
			t.Errorf("run through %s while the database is down: %d %s", n.base, r.status, r.raw)
		}
		h := curl(t, "GET", n.base+"/health", "", "", nil)
		if db, _ := h.body["database"].(map[string]any); db["status"] != "unreachable" {
			t.Errorf("/health of %s while the database is down: %s", n.base, h.raw)
		}
	}
	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	back := time.Now()
	for _, n := range live {
		for {
			r, err := post(n.base+"/wcp/run", acmeTok, runBody)
			if err == nil && r.status == 200 {
				break
			}
			if time.Since(back) > 30*time.Second {
				t.Fatalf("%s does not serve 30s after the database came back: %v %+v", n.base, err, r)
			}
		}
	}
	t.Logf("after the database came back, both nodes served again within %v", time.Since(back).Round(time.Millisecond))

	// A token revoked through the CLI is refused by every node at once.
	toks := hall(t, dir, "", append([]string{"tokens", "list", "--json", "--home", home0}, db...)...)
	var tl []map[string]any
	if err := json.Unmarshal([]byte(toks.stdout), &tl); err != nil {
		t.Fatalf("tokens list: %v %+v", err, toks)
	}
	var acmeID string
	for _, tk := range tl {
		if tk["scope"] == "tenant:org.acme" {
			acmeID, _ = tk["id"].(string)
		}
	}
	if r := hall(t, dir, "", append([]string{"tokens", "revoke", acmeID, "--home", home0, "--key", key}, db...)...); r.code != 0 {
		t.Fatalf("tokens revoke: %+v", r)
	}
	for _, n := range live {
		if r := curl(t, "POST", n.base+"/wcp/route", acmeTok, "application/json", route); r.status != 401 {
			t.Errorf("a revoked token through %s: %d %s", n.base, r.status, r.raw)
		}
	}
}

// inForceEverywhere waits until every node serves the same snapshot as the
// first (the one the change went through), failing after one second.
func inForceEverywhere(t *testing.T, nodes []*node, what string) {
	t.Helper()
	want := health(t, nodes[0].base)
	start := time.Now()
	for _, n := range nodes[1:] {
		for health(t, n.base) != want {
			if time.Since(start) > time.Second {
				t.Fatalf("%s: %s still serves snapshot %s a second after %s serves %s", what, n.base, health(t, n.base), nodes[0].base, want)
			}
		}
	}
	t.Logf("%s: in force on %d nodes %v after the first", what, len(nodes), time.Since(start).Round(time.Millisecond))
}

// changedEverywhere waits until every node serves a snapshot other than
// before (a change made through the CLI, which no node answered), and
// the same one, failing after one second.
func changedEverywhere(t *testing.T, nodes []*node, before, what string) {
	t.Helper()
	start := time.Now()
	for _, n := range nodes {
		for health(t, n.base) == before {
			if time.Since(start) > time.Second {
				t.Fatalf("%s is not in force on %s a second later", what, n.base)
			}
		}
	}
	inForceEverywhere(t, nodes, what)
	t.Logf("%s: in force on %d nodes %v after the CLI returned", what, len(nodes), time.Since(start).Round(time.Millisecond))
}

func health(t *testing.T, base string) string {
	t.Helper()
	r := curl(t, "GET", base+"/health", "", "", nil)
	s, _ := r.body["snapshot_digest"].(string)
	return s
}

// post is curl for goroutines: errors are returned, never fatal.
func post(url, token string, body []byte) (httpResult, error) {
	req, err := http.NewRequest("POST", url, bytes.NewReader(body))
	if err != nil {
		return httpResult{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return httpResult{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return httpResult{}, err
	}
	r := httpResult{status: res.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		return r, fmt.Errorf("%d, not JSON: %s", res.StatusCode, raw)
	}
	return r, nil
}

// hall db migrate creates and versions the schema once (the step recorded
// in the change chain; a second run finds it done), and hall serve
// --no-migrate refuses a database that was not migrated.
func TestDBMigrate(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	dir := t.TempDir()
	home := filepath.Join(dir, ".hall")
	if r := hall(t, dir, "", "serve", "--no-migrate", "--addr", "127.0.0.1:0", "--home", home, "--database-url", dsn); r.code == 0 || !strings.Contains(r.stderr, "hall db migrate") {
		t.Fatalf("serve --no-migrate on a new database: %+v", r)
	}
	first := hall(t, dir, "", "db", "migrate", "--home", home, "--database-url", dsn)
	second := hall(t, dir, "", "db", "migrate", "--home", home, "--database-url", dsn)
	if first.code != 0 || second.code != 0 || first.stdout != second.stdout || !strings.Contains(first.stdout, "recorded in change chg_") {
		t.Fatalf("db migrate twice: %+v %+v", first, second)
	}
}

// hall db migrate --from-home copies a local Hall into an empty database:
// afterwards audit verify passes on both sides with the same chains and
// heads, the copied Hall runs its worker with the copied tokens' evidence,
// and a second copy into the same database is refused.
func TestMigrateFromHome(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, ".hall")
	env := []string{"HALL_HOME=" + home}
	run := func(stdin string, args ...string) result {
		t.Helper()
		return hallWith(t, dir, stdin, env, args...)
	}
	rec, _ := filepath.Abs("../../plugins/summarizer/registry_record.json")
	if r := run("", "enroll", plugin(t, "summarizer"), "--record", rec); r.code != 0 {
		t.Fatalf("enroll: %+v", r)
	}
	if r := run("A short document. It has two sentences.", "run", "cap.doc.summarize", "--tenant", "org.acme"); r.code != 0 {
		t.Fatalf("run: %+v", r)
	}
	if r := run("", "tokens", "create", "--admin"); r.code != 0 {
		t.Fatalf("tokens create: %+v", r)
	}
	dsn := pgtest.NewDatabase(t)
	key := filepath.Join(home, "keys", "ed25519.key")
	db := []string{"--database-url", dsn, "--key", key}
	if r := run("", append([]string{"db", "migrate", "--from-home", home}, db...)...); r.code != 0 || !strings.Contains(r.stdout, "1 tokens, 1 modules, 1 records") {
		t.Fatalf("db migrate --from-home: %+v", r)
	}
	local, shared := run("", "audit", "verify"), run("", append([]string{"audit", "verify"}, db...)...)
	if local.code != 0 || shared.code != 0 || local.stdout != shared.stdout {
		t.Fatalf("audit verify, local then shared:\n%+v\n%+v", local, shared)
	}
	var ls, ss statusReport
	for _, s := range []struct {
		args []string
		dst  *statusReport
	}{{[]string{"status", "--json"}, &ls}, {append([]string{"status", "--json"}, db...), &ss}} {
		r := run("", s.args...)
		if err := json.Unmarshal([]byte(r.stdout), s.dst); err != nil {
			t.Fatalf("%v: %v %+v", s.args, err, r)
		}
	}
	if ls.Ledger.HeadReceiptHash == "" || ls.Ledger.HeadReceiptHash != ss.Ledger.HeadReceiptHash || ls.Ledger.HeadChangeHash != ss.Ledger.HeadChangeHash || ls.SnapshotDigest != ss.SnapshotDigest {
		t.Fatalf("heads or snapshot differ: local %+v, shared %+v", ls.Ledger, ss.Ledger)
	}
	if r := run("Copied. It runs from the database.", append([]string{"run", "cap.doc.summarize", "--tenant", "org.acme"}, db...)...); r.code != 0 {
		t.Fatalf("run on the copy: %+v", r)
	}
	if r := run("", append([]string{"audit", "verify"}, db...)...); r.code != 0 {
		t.Fatalf("audit verify of the copy after a run: %+v", r)
	}
	if r := run("", append([]string{"db", "migrate", "--from-home", home}, db...)...); r.code == 0 || !strings.Contains(r.stderr, "already holds a ledger") {
		t.Fatalf("a second copy: %+v", r)
	}
}
