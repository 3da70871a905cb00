package mcp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/ledger"
	"github.com/wcphall/hall/internal/wasmtest"
)

// The research pipeline (plugins/research_ingest and the five workers it
// calls) is one MCP tool: research_ingest fetches from a local site
// through the egress check, and its call leaves six receipts under one
// correlation id, linked as a tree, that verify (issue 23).
func TestResearchPipelineIsOneTool(t *testing.T) {
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte(strings.Repeat("Lighthouses keep a coast safe at night. ", 60)))
	}))
	t.Cleanup(site.Close)
	addr := strings.TrimPrefix(site.URL, "http://")

	dir := t.TempDir()
	research := filepath.Join(dir, "research")
	rules, err := os.ReadFile("../../examples/research/rules.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir, Home: filepath.Join(dir, "home"), Pool: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	for _, p := range []string{"web_fetch", "doc_chunk", "embed", "doc_hash", "research_register", "research_ingest"} {
		wasm, err := wasmtest.Build("../../plugins/" + p)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := os.ReadFile(filepath.Join("../../plugins", p, "registry_record.json"))
		if err != nil {
			t.Fatal(err)
		}
		// Here web_fetch may reach the local site only, and
		// research_register writes the test's directory.
		r := strings.ReplaceAll(string(rec), `"example.com:443"`, `"`+addr+`"`)
		r = strings.ReplaceAll(r, "/var/lib/hall/research", research)
		if _, err := h.Enroll(ctx, host.EnrollRequest{Module: wasm, Record: []byte(r)}); err != nil {
			t.Fatalf("enroll %s: %v", p, err)
		}
	}
	ts := httptest.NewServer(server.New(h, server.Config{Tokens: fx.tokens}))
	t.Cleanup(ts.Close)
	cs := connect(t, ts.URL+"/mcp", fx.acme, nil)

	res := call(t, cs, "research_ingest", map[string]any{"url": site.URL + "/doc.txt", "tokens": 100}, nil)
	if res.IsError {
		t.Fatalf("tools/call research_ingest: %s", text(res))
	}
	var out struct {
		Chunks, Records int
		Registered      string
	}
	if err := json.Unmarshal([]byte(text(res)), &out); err != nil || out.Chunks != 5 || out.Records != 5 {
		t.Fatalf("output %s (%v), want 5 chunks registered", text(res), err)
	}
	lines, err := os.ReadFile(filepath.Join(research, "research.jsonl"))
	if err != nil || strings.Count(string(lines), "\n") != 5 {
		t.Fatalf("research.jsonl: %d lines, %v", strings.Count(string(lines), "\n"), err)
	}
	ev, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	root := metaString(res, "receipt_id")
	tree, err := host.ReceiptTree(ctx, ev, root)
	if err != nil {
		t.Fatalf("tree of %q: %v", root, err)
	}
	var workers []string
	for _, hop := range tree.Hops {
		workers = append(workers, hop.WorkerID)
	}
	if tree.WorkerID != "org.acme.research_ingest" || tree.ChainHops != 5 ||
		strings.Join(workers, ",") != "org.acme.web_fetch,org.acme.doc_chunk,org.acme.embed,org.acme.doc_hash,org.acme.research_register" {
		t.Fatalf("tree: root %s with %d hops %v", tree.WorkerID, tree.ChainHops, workers)
	}
	rc, err := ev.Receipt(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if rs, err := ev.Receipts(ctx, ledger.Filter{CorrelationID: rc.CorrelationID}); err != nil || len(rs) != 6 {
		t.Fatalf("%d receipts under %s (%v), want 6", len(rs), rc.CorrelationID, err)
	}
	rep, err := ev.Verify(ctx, nil)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", rep, err)
	}
}
