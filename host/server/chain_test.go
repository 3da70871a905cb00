package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"net/http/httptest"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/wasmtest"
)

// GET /wcp/receipts/{id}?tree=1 and the console show a chain of
// dispatches (issue 23) from its root, for its own tenant only.
func TestReceiptTreeHTTPAndConsole(t *testing.T) {
	wasm, err := wasmtest.Build("../../testdata/pipeline/chainguest")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var rules []string
	for _, n := range []string{"caller", "leaf"} {
		rules = append(rules, fmt.Sprintf(`{"rule_id": "r_%s", "match": {"capability_id": "cap.test.%s", "env": {"in": ["dev"]}},
		  "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.%s"}]}}`, n, n, n))
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(`{"rules": [`+strings.Join(rules, ",")+`]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir, Home: filepath.Join(dir, "home"), Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	for _, rec := range []string{
		`{"worker_id": "org.acme.caller", "worker_species_id": "wrk.test.caller", "capabilities": ["cap.test.caller"], "risk_tier": "low", "privilege_envelope": {"network_egress": "none", "tools": ["cap.test.leaf"]}}`,
		`{"worker_id": "org.acme.leaf", "worker_species_id": "wrk.test.leaf", "capabilities": ["cap.test.leaf"], "risk_tier": "low", "privilege_envelope": {"network_egress": "none", "tools": []}}`,
	} {
		if _, err := h.Enroll(ctx, host.EnrollRequest{Module: wasm, Record: []byte(rec)}); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(server.New(h, server.Config{Tokens: fx.tokens}))
	t.Cleanup(ts.Close)
	base := ts.URL

	r := post(t, base, "/wcp/run", fx.acme, runBody(input("cap.test.caller", "c-tree"), map[string]any{"op": "call", "cap": "cap.test.leaf", "input": map[string]any{"op": "echo", "text": "t"}}))
	root, _ := r.body["receipt_id"].(string)
	if r.status != 200 || r.body["outcome"] != "ok" || root == "" {
		t.Fatalf("run: %v", r)
	}
	tr := get(t, base, "/wcp/receipts/"+root+"?tree=1", fx.acme)
	hops, _ := tr.body["hops"].([]any)
	if tr.status != 200 || tr.body["receipt_id"] != root || tr.body["chain_hops"] != float64(1) || len(hops) != 1 {
		t.Fatalf("tree: %v", tr)
	}
	hop, _ := hops[0].(map[string]any)
	if hop["worker_id"] != "org.acme.leaf" || hop["outcome"] != "ok" || hop["depth"] != float64(1) || hop["blast_score"] == nil || hop["artifact_hash"] == "" {
		t.Fatalf("hop node: %v", hop)
	}
	// Asked from the hop, the tree still starts at the root.
	hopID, _ := hop["receipt_id"].(string)
	if up := get(t, base, "/wcp/receipts/"+hopID+"?tree=1", fx.acme); up.body["receipt_id"] != root {
		t.Fatalf("tree from the hop: %v", up)
	}
	// Another tenant learns nothing.
	if other := get(t, base, "/wcp/receipts/"+root+"?tree=1", fx.other); other.status != 404 || other.errCode() != "RECEIPT_NOT_FOUND" {
		t.Fatalf("another tenant: %v", other)
	}
	// Without tree=1, the signed receipt as before, with its chain members.
	if one := get(t, base, "/wcp/receipts/"+hopID, fx.acme); one.body["parent_decision_id"] == nil || one.body["chain_depth"] != float64(1) {
		t.Fatalf("the hop's receipt: %v", one)
	}

	// The console: the listing links the tree, which shows both hops.
	c := consoleClient(t, base, nil)
	signIn(t, c, base, fx.admin)
	res, page := fetch(t, c, "GET", base+"/console/receipts?correlation_id=c-tree", nil)
	if res.StatusCode != 200 || !strings.Contains(page, `class="tree-link" href="/console/receipts?correlation_id=c-tree&amp;tree=`) {
		t.Fatalf("console listing (%d) has no tree link:\n%s", res.StatusCode, page)
	}
	res, page = fetch(t, c, "GET", base+"/console/receipts?correlation_id=c-tree&tree="+hopID, nil)
	if res.StatusCode != 200 || !strings.Contains(page, `id="tree"`) || !strings.Contains(page, `id="hop-`+root+`"`) ||
		!strings.Contains(page, `class="hop requested" id="hop-`+hopID+`"`) || !strings.Contains(page, "1 hop(s) ran under this root") {
		t.Fatalf("console tree (%d):\n%s", res.StatusCode, page)
	}
}
