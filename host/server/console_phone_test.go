package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleApprovalAtPhoneWidth is the newcomer's report (issue 27): at
// 390 px (a phone) the approvals page overflowed sideways. In a real
// Chromium at 390 × 844, the page with a pending approval (its digests,
// request and envelope) and a table of answered ones is no wider than the
// screen, the Approve button is on it, and approving works.
func TestConsoleApprovalAtPhoneWidth(t *testing.T) {
	ctx := browser(t)
	dir := artifacts(t)
	h, base := approvalsHall(t)
	approver := approverToken(t, h, "")
	answered := holdRun(t, base, "hold-phone-answered")
	if r := post(t, base, "/wcp/approvals/"+answered+"/deny", approver, map[string]any{"comment": "a comment long enough to need wrapping on a narrow screen"}); r.status != 200 {
		t.Fatalf("deny: %v", r)
	}
	id := holdRun(t, base, "hold-phone-1")
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step(t, ctx, what, chromedp.Steps(steps...))
	}
	do("a phone's viewport", chromedp.EmulateViewport(390, 844))
	do("sign in as the approver",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), approver),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("approval-"+id)))
	screenshot(t, ctx, dir, "approvals-390px")
	width := step(t, ctx, "page width", chromedp.Evaluate[float64](`document.documentElement.scrollWidth`))
	if width > 390 {
		wide := step(t, ctx, "what is wide", chromedp.Evaluate[string](`[...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > 391).slice(0, 5).map(e => e.tagName + (e.id ? "#" + e.id : "") + "." + e.className + " " + Math.round(e.getBoundingClientRect().right)).join(", ")`))
		t.Errorf("the approvals page is %v px wide at a 390 px viewport (sideways scrolling); widest: %s", width, wide)
	}
	right := step(t, ctx, "Approve's right edge", chromedp.Evaluate[float64](fmt.Sprintf(`document.getElementById(%q).getBoundingClientRect().right`, "approve-"+id)))
	if right > 390 {
		t.Errorf("the Approve button ends at %v px, off a 390 px screen", right)
	}
	do("approve", chromedp.Click(chromedp.ID("approve-"+id)), chromedp.WaitVisible(chromedp.ID("notice")))
	if got := textOf(t, ctx, chromedp.ID("notice"), "#notice"); !strings.Contains(got, id+" approved") {
		t.Fatalf("notice after approving at 390 px: %q", got)
	}
	screenshot(t, ctx, dir, "approvals-390px-answered")
}
