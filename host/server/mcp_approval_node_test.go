package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/wcphall/hall/internal/ledger"
)

// nodeClient finds node and the pinned TypeScript MCP SDK
// (testdata/mcp-node): skipped on a developer's machine without them,
// failed in CI (.ci/run installs both).
func nodeClient(t *testing.T, script string) (node, path string) {
	t.Helper()
	node, err := exec.LookPath("node")
	path, _ = filepath.Abs(filepath.Join("../../testdata/mcp-node", script))
	if _, serr := os.Stat(filepath.Join(filepath.Dir(path), "node_modules", "@modelcontextprotocol", "sdk")); err != nil || serr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node or testdata/mcp-node/node_modules missing: .ci/run installs them (npm ci --prefix testdata/mcp-node)")
		}
		t.Skip("node or testdata/mcp-node/node_modules missing: run npm ci --prefix testdata/mcp-node")
	}
	return node, path
}

// TestMCPApprovalInConsoleNode is the approval flow of an agent end to
// end (issue 25): the official TypeScript MCP client calls a tool a policy
// holds and gets a tool error naming the approval, its expiry and how to
// resume; an approver approves it in the console, in headless Chromium,
// having seen the payload; the client resumes with _meta.approval_id alone
// (it never learns a correlation id) and the call runs, with a receipt.
func TestMCPApprovalInConsoleNode(t *testing.T) {
	node, script := nodeClient(t, "approval.mjs")
	ctx := browser(t)
	dir := artifacts(t)
	h, base := approvalsHall(t)
	approver := approverToken(t, h, "")

	cmd := exec.Command(node, script)
	cmd.Env = append(os.Environ(), "MCP_URL="+base+"/mcp", "MCP_TOKEN="+fx.acme, "TOOL=test_noop",
		"CORRELATION=hold-node-1", "PAYLOAD=pay 42 EUR to <b>acme</b>")
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
	waited := false
	t.Cleanup(func() {
		if !waited {
			stdin.Close()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	out := bufio.NewReader(stdout)
	var got struct {
		Held, Resumed struct {
			IsError    bool           `json:"isError"`
			Meta       map[string]any `json:"meta"`
			Structured map[string]any `json:"structured"`
			Text       string         `json:"text"`
		}
	}
	read := func(what string) {
		t.Helper()
		line, err := out.ReadBytes('\n')
		if err != nil {
			t.Fatalf("the node client printed no %s line: %v\nstderr: %s", what, err, stderr.String())
		}
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("node client %s line %q: %v", what, line, err)
		}
	}
	read("held")
	id, _ := got.Held.Structured["approval_id"].(string)
	if !got.Held.IsError || got.Held.Meta["status"] != "pending_approval" || !strings.HasPrefix(id, "apr_") ||
		got.Held.Structured["approval_expires_at"] == nil || got.Held.Structured["resume"] == nil || !strings.Contains(got.Held.Text, "_meta.approval_id") {
		t.Fatalf("held call as the TypeScript client saw it: %+v", got.Held)
	}

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step(t, ctx, what, chromedp.Steps(steps...))
	}
	do("sign in as the approver",
		chromedp.Navigate(base+"/console/signin"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), approver),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("approval-"+id)))
	if p := textOf(t, ctx, chromedp.ID("payload-"+id), "the payload"); p != "pay 42 EUR to <b>acme</b>" {
		t.Fatalf("the console shows the payload as %q", p)
	}
	if n := step(t, ctx, "count bold elements", chromedp.Evaluate[int](`document.querySelectorAll("main b").length`)); n != 0 {
		t.Fatalf("the payload was rendered as HTML (%d <b> elements)", n)
	}
	screenshot(t, ctx, dir, "1-held-mcp-call")
	do("deny without a comment",
		chromedp.Click(chromedp.ID("deny-"+id)),
		chromedp.WaitVisible(chromedp.ID("error")))
	if e := textOf(t, ctx, chromedp.ID("error"), "the banner"); !strings.Contains(e, "a denial needs a comment") || !strings.Contains(e, id) {
		t.Fatalf("banner after a denial without a comment: %q", e)
	}
	do("approve",
		chromedp.WaitVisible(chromedp.ID("approval-"+id)),
		chromedp.SendKeys(chromedp.ID("comment-"+id), "an agent's payment, checked"),
		chromedp.Click(chromedp.ID("approve-"+id)),
		chromedp.WaitVisible(chromedp.ID("notice")))
	screenshot(t, ctx, dir, "2-approved")

	if _, err := io.WriteString(stdin, "approved\n"); err != nil {
		t.Fatal(err)
	}
	read("resumed")
	stdin.Close()
	waited = true
	if err := cmd.Wait(); err != nil {
		t.Errorf("node client: %v\nstderr: %s", err, stderr.String())
	}
	rid, _ := got.Resumed.Meta["receipt_id"].(string)
	if got.Resumed.IsError || got.Resumed.Meta["status"] != "ok" || rid == "" || got.Resumed.Meta["correlation_id"] != "hold-node-1" {
		t.Fatalf("resumed call as the TypeScript client saw it: %+v", got.Resumed)
	}
	ev, err := h.Evidence()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ev.Receipts(context.Background(), ledger.Filter{CorrelationID: "hold-node-1"})
	if err != nil || len(rs) != 1 || rs[0].ReceiptID != rid {
		t.Fatalf("receipts of hold-node-1: %+v %v, want the one the client was given (%s)", rs, err, rid)
	}
	if a, err := h.Approval(context.Background(), id); err != nil || a.State != "used" {
		t.Fatalf("the approval after the resumed call: %+v %v", a, err)
	}
}
