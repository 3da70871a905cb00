package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpDir is a Hall directory for the MCP tests: host/mcp's rules, the
// summarizer (with description and schemas), a worker that never returns
// (cap.test.slow) and one routed in prod only (a denial in dev), enrolled
// with the real CLI; progress every 50 ms.
func mcpDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	td := "../../host/mcp/testdata"
	for _, f := range []string{"rules.json", "summarizer.json", "slow.json", "prodonly.json"} {
		b, err := os.ReadFile(filepath.Join(td, f))
		if err != nil {
			t.Fatal(err)
		}
		write(t, dir, f, string(b))
	}
	write(t, dir, "mcp.json", `{"progress_ms": 50}`)
	loopSrc, err := os.ReadFile(filepath.Join(td, "loop.wat"))
	if err != nil {
		t.Fatal(err)
	}
	loop := wat(t, string(loopSrc))
	for _, e := range [][2]string{{plugin(t, "summarizer"), "summarizer.json"}, {loop, "slow.json"}, {loop, "prodonly.json"}} {
		if r := hallInNoEnv(t, dir, "", "enroll", e[0], "--record", e[1]); r.code != 0 {
			t.Fatalf("enroll %s: %d %s", e[1], r.code, r.stderr)
		}
	}
	return dir
}

// TestMCPStdioGoClient drives `hall mcp` with the Go SDK's client over
// the process's standard input and output.
func TestMCPStdioGoClient(t *testing.T) {
	dir := mcpDir(t)
	cmd := exec.Command(hallBin, "mcp", "--tenant", "org.acme")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HALL_HOME="+filepath.Join(dir, ".hall"))
	c := sdk.NewClient(&sdk.Implementation{Name: "hall-cli-test", Version: "v0"}, nil)
	cs, err := c.Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
	}
	if got := strings.Join(names, ","); !strings.Contains(got, "doc_summarize") || !strings.Contains(got, "test_slow") {
		t.Fatalf("tools %v", names)
	}
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "doc_summarize", Arguments: map[string]any{"text": "One. Two. Three.", "sentences": 1}, Meta: sdk.Meta{"correlation_id": "stdio-go-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.IsError || res.Meta["receipt_id"] == nil || res.StructuredContent == nil {
		t.Fatalf("isError %v _meta %v", res.IsError, res.Meta)
	}
	cs.Close()
	r := hallInNoEnv(t, dir, "", "receipts", "--correlation-id", "stdio-go-1", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, res.Meta["receipt_id"].(string)) || !strings.Contains(r.stdout, "org.acme") {
		t.Fatalf("receipts: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestMCPNeedsATenant(t *testing.T) {
	dir := mcpDir(t)
	r := hallWith(t, dir, "", []string{"HALL_HOME=" + filepath.Join(dir, ".hall"), "HALL_TENANT="}, "mcp")
	if r.code != exitError || !strings.Contains(r.stderr, "--tenant") {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
	write(t, dir, "mcp.json", `{"env": "production"}`)
	r = hallInNoEnv(t, dir, "", "mcp", "--tenant", "org.acme")
	if r.code != exitError || !strings.Contains(r.stderr, "env") || !strings.Contains(r.stderr, "mcp.json") {
		t.Fatalf("bad mcp.json: exit %d, stderr %s", r.code, r.stderr)
	}
}

// TestMCPNodeClient drives both transports with the official TypeScript
// SDK (testdata/mcp-node, installed by `npm ci` there; .ci/run does it):
// list, call, denial, evidence ids, and cancellation of a slow call, whose
// receipt must say CANCELLED.
func TestMCPNodeClient(t *testing.T) {
	node, err := exec.LookPath("node")
	script, _ := filepath.Abs("../../testdata/mcp-node/client.mjs")
	if _, serr := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "@modelcontextprotocol", "sdk")); err != nil || serr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node or testdata/mcp-node/node_modules missing: .ci/run installs them (npm ci --prefix testdata/mcp-node)")
		}
		t.Skip("node or testdata/mcp-node/node_modules missing: run npm ci --prefix testdata/mcp-node")
	}
	dir := mcpDir(t)
	denied := "test_prod_only_849A25CA"
	// run starts the client and returns what it saw; it stays connected
	// until the test's checks are done (t.Cleanup closes its input).
	run := func(t *testing.T, env ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(node, script)
		cmd.Env = append(os.Environ(), env...)
		cmd.Env = append(cmd.Env, "DENIED_TOOL="+denied)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Errorf("node client: %v\nstderr: %s", err, stderr.String())
			}
		})
		line, err := bufio.NewReader(stdout).ReadBytes('\n')
		if err != nil {
			t.Fatalf("node client printed no line: %v\nstderr: %s", err, stderr.String())
		}
		var v map[string]any
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatalf("node client output %q: %v\nstderr: %s", line, err, stderr.String())
		}
		return v
	}
	check := func(t *testing.T, mode string, v map[string]any) {
		t.Helper()
		if tools := mustString(v["tools"]); !strings.Contains(tools, "doc_summarize") || !strings.Contains(tools, denied) {
			t.Errorf("tools %s", tools)
		}
		if s, _ := v["summarize"].(map[string]any); s["title"] != "cap.doc.summarize" || s["readOnly"] != true {
			t.Errorf("summarize tool %v", s)
		}
		a, _ := v["allowed"].(map[string]any)
		am, _ := a["meta"].(map[string]any)
		if a["isError"] != false || am["receipt_id"] == nil || am["correlation_id"] != "node-allowed-"+mode || a["structured"] == nil {
			t.Errorf("allowed call %v", a)
		}
		d, _ := v["denied"].(map[string]any)
		dm, _ := d["meta"].(map[string]any)
		if d["isError"] != true || dm["deny_code"] != "DENY_NO_MATCHING_RULE" || !strings.HasPrefix(mustString(d["text"]), "DENIED DENY_NO_MATCHING_RULE") {
			t.Errorf("denied call %v", d)
		}
		if v["cancelled"] != true || v["progress"] == float64(0) {
			t.Errorf("cancellation: %v (progress %v, %v)", v["cancelled"], v["progress"], v["cancelError"])
		}
		// The cancelled dispatch is recorded with its own outcome.
		var r result
		for range 200 { // the worker stops and its receipt commits shortly after the client gives up
			r = hallInNoEnv(t, dir, "", "receipts", "--correlation-id", "node-cancel-"+mode, "--json")
			if strings.Contains(r.stdout, "CANCELLED") {
				return
			}
			waitABit()
		}
		t.Errorf("no CANCELLED receipt for node-cancel-%s: %s %s; the client saw %v", mode, r.stdout, r.stderr, v)
	}
	t.Run("stdio", func(t *testing.T) {
		check(t, "stdio", run(t, "MODE=stdio", "HALL_BIN="+hallBin, "HALL_DIR="+dir, "HALL_TENANT=org.acme", "HALL_HOME="+filepath.Join(dir, ".hall")))
	})
	t.Run("http", func(t *testing.T) {
		tok := hallInNoEnv(t, dir, "", "tokens", "create", "--tenant", "org.acme")
		if tok.code != 0 {
			t.Fatalf("tokens create: %s", tok.stderr)
		}
		addr, _, _ := startServe(t, dir)
		check(t, "http", run(t, "MODE=http", "MCP_URL="+addr+"/mcp", "MCP_TOKEN="+strings.TrimSpace(tok.stdout)))
	})
}

func mustString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// waitABit spaces the polls of a condition with a deadline.
func waitABit() { time.Sleep(50 * time.Millisecond) }
