package mcp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wcphall/hall/host/server"
)

// initialize posts an MCP initialize request with token and returns the
// answer's status, session id and body.
func initialize(t *testing.T, endpoint, token string) (int, string, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	req, err := http.NewRequest("POST", endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header.Get("Mcp-Session-Id"), string(b)
}

// endSession ends an MCP session (DELETE).
func endSession(t *testing.T, endpoint, token, id string) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", endpoint, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Mcp-Session-Id", id)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}

// TestMCPSessionsPerToken: issue 25 — one tenant opened 5,000 MCP
// sessions in 13 s (+76 MiB), unbounded. At the default bound, the next
// session of the token is refused 429 SESSION_QUOTA; another token still
// opens one; ending a session makes room.
func TestMCPSessionsPerToken(t *testing.T) {
	endpoint := serve(t, server.Config{})
	var ids []string
	for i := range server.DefaultMCPSessionsPerToken {
		status, id, body := initialize(t, endpoint, fx.acme)
		if status != 200 || id == "" {
			t.Fatalf("session %d: %d %q %s", i+1, status, id, body)
		}
		ids = append(ids, id)
	}
	t.Cleanup(func() {
		for _, id := range ids {
			endSession(t, endpoint, fx.acme, id)
		}
	})
	status, _, body := initialize(t, endpoint, fx.acme)
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	if status != http.StatusTooManyRequests || e.Error.Code != "SESSION_QUOTA" || !strings.Contains(e.Error.Message, "DELETE") {
		t.Fatalf("one session over the bound: %d %s", status, body)
	}
	// Another token of another tenant is not affected.
	cs := connect(t, endpoint, fx.other, nil)
	if _, err := cs.ListTools(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	// Ending one makes room for one.
	endSession(t, endpoint, fx.acme, ids[0])
	ids = ids[1:]
	status, id, body := initialize(t, endpoint, fx.acme)
	if status != 200 {
		t.Fatalf("after ending a session: %d %s", status, body)
	}
	ids = append(ids, id)
}
