package mcp_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wcphall/hall/host"
	hallmcp "github.com/wcphall/hall/host/mcp"
)

// Two capability ids longer than 55 characters that share their first 55
// and the first 32 bits of their SHA-256 (found by a birthday search):
// ToolName gives them the same name.
const (
	collideA = "cap.inventory.warehouse.replenishment.forecast.seasonal.adjust.region.v114750"
	collideB = "cap.inventory.warehouse.replenishment.forecast.seasonal.adjust.region.v135794"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestToolNamesNeverCollide: issue 25 — two capabilities whose names
// collided on the 32-bit suffix were served as one tool, the one that
// sorts first silently taking the name. Both must be served, under
// distinct names, each saying in tools/list why it was renamed, and the
// log saying so too; a call of each reaches its own capability.
func TestToolNamesNeverCollide(t *testing.T) {
	a, b := sha256.Sum256([]byte(collideA)), sha256.Sum256([]byte(collideB))
	if hallmcp.ToolName(collideA) != hallmcp.ToolName(collideB) || !bytes.Equal(a[:4], b[:4]) {
		t.Fatalf("the fixture no longer collides: %s and %s", hallmcp.ToolName(collideA), hallmcp.ToolName(collideB))
	}
	dir := t.TempDir()
	rules := `{"rules": [` + collideRule("rr_a", collideA) + `,` + collideRule("rr_b", collideB) + `]}`
	if err := os.WriteFile(filepath.Join(dir, "rules.json"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := host.Open(ctx, host.Options{Dir: dir, Home: filepath.Join(dir, "home")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(ctx) })
	rec, err := os.ReadFile("testdata/collide.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Enroll(ctx, host.EnrollRequest{Module: fx.noop, Record: rec, RecordSource: "collide.json"}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	s := hallmcp.New(h, hallmcp.Options{Config: hallmcp.Config{Tenant: "org.acme"}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	t.Cleanup(s.Close)
	cs := connectStdio(t, s)
	res, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	byCap := map[string]*sdk.Tool{}
	names := map[string]bool{}
	for _, tl := range res.Tools {
		c, _ := tl.Meta["capability_id"].(string)
		byCap[c] = tl
		if names[tl.Name] {
			t.Errorf("tool name %s listed twice", tl.Name)
		}
		names[tl.Name] = true
	}
	for _, c := range []string{collideA, collideB} {
		tl := byCap[c]
		if tl == nil {
			t.Errorf("capability %s is not served as a tool (tools: %v)", c, names)
			continue
		}
		if tl.Name == hallmcp.ToolName(c) {
			t.Errorf("%s keeps the colliding name %s", c, tl.Name)
		}
		if len(tl.Name) > 64 {
			t.Errorf("renamed %s is %d characters", tl.Name, len(tl.Name))
		}
		if tl.Meta["renamed_from"] != hallmcp.ToolName(c) || !strings.Contains(tl.Description, hallmcp.ToolName(c)) {
			t.Errorf("%s: tools/list does not say it was renamed from %s: _meta %v, description %q", tl.Name, hallmcp.ToolName(c), tl.Meta, tl.Description)
		}
		r := call(t, cs, tl.Name, map[string]any{"input": "x"}, nil)
		if r.IsError || metaString(r, "capability_id") != c {
			t.Errorf("calling %s: %s %v, want capability %s run", tl.Name, text(r), r.Meta, c)
		}
	}
	if l := logs.String(); !strings.Contains(l, "renamed") || !strings.Contains(l, collideA) || !strings.Contains(l, collideB) {
		t.Errorf("the log does not say which tools were renamed:\n%s", l)
	}
}

// connectStdio serves one stdio session of s over pipes and connects the
// Go SDK's client to it.
func connectStdio(tb testing.TB, s *hallmcp.Server) *sdk.ClientSession {
	tb.Helper()
	toServer, fromClient := io.Pipe()
	toClient, fromServer := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.ServeStdio(ctx, toServer, fromServer)
	}()
	c := sdk.NewClient(&sdk.Implementation{Name: "hall-test", Version: "v0"}, nil)
	cs, err := c.Connect(ctx, &sdk.IOTransport{Reader: toClient, Writer: fromClient}, nil)
	if err != nil {
		cancel()
		tb.Fatalf("connect over stdio: %v", err)
	}
	tb.Cleanup(func() {
		cs.Close()
		cancel()
		fromClient.Close()
		toClient.Close()
		<-done
	})
	return cs
}

func collideRule(id, capability string) string {
	return `{"rule_id": "` + id + `", "match": {"capability_id": "` + capability + `", "env": "dev"},
	 "decision": {"candidate_workers_ranked": [{"worker_species_id": "wrk.test.collide", "score_hint": 1.0}]}}`
}
