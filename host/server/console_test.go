package server_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wcphall/hall/host/server"
	"github.com/wcphall/hall/internal/auth"
)

// chromiumPath is Debian's chromium (.ci/run installs it).
const chromiumPath = "/usr/bin/chromium"

// browser starts a real headless Chromium with a fresh profile. Without
// Chromium the test is skipped on a developer's machine and fails in CI.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		p, lerr := exec.LookPath("chromium")
		if lerr != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("chromium is not installed (%v): .ci/run installs it with apt-get", err)
			}
			t.Skipf("chromium is not installed (apt-get install -y chromium); CI runs this test")
		}
		path = p
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(1200, 1600),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	// The first call starts the browser; it must not carry a deadline (it
	// would stop the browser), the steps after it each get one.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}

// artifacts is where the screenshots go: $HALL_TEST_ARTIFACTS/<test>, else
// the test's artifact directory (go test -artifacts keeps it).
func artifacts(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("HALL_TEST_ARTIFACTS"); d != "" {
		dir := filepath.Join(d, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.ArtifactDir()
}

// step runs one browser step with a deadline (a hung page fails the test,
// not the suite) and returns its value.
func step[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, a)
	if err != nil {
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v\npage: %s", what, err, body)
	}
	return v
}

// textOf reads the text of the element sel, reading again (within a
// deadline) when Chromium replaced the node found by a WaitVisible before
// its text was read ("No node with given id found" once the page finished
// loading).
func textOf[S chromedp.Selectable](t *testing.T, ctx context.Context, sel S, what string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := chromedp.Run(sctx, chromedp.Text(sel))
		cancel()
		if err == nil {
			return v
		}
		if !strings.Contains(err.Error(), "No node with given id") || time.Now().After(deadline) {
			return step(t, ctx, "text of "+what, chromedp.Text(sel))
		}
		time.Sleep(50 * time.Millisecond) // polling the page, within the deadline
	}
}

// pageSettled resolves once the page has loaded (its load event, which
// the last WaitVisible does not wait for) and Chromium has composited
// two frames of it since.
const pageSettled = `new Promise(resolve => {
	const painted = () => requestAnimationFrame(() => requestAnimationFrame(() => resolve(true)));
	if (document.readyState === "complete") painted(); else addEventListener("load", painted, {once: true});
})`

// screenshot saves a full-page screenshot of the settled page. The page
// may still be loading when the WaitVisible before it returns (see
// textOf), so it first waits for pageSettled; Chromium may answer
// "Unable to capture screenshot" while it has no frame to copy, so that
// answer alone is asked again, within the step's deadline.
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	step(t, ctx, "let the page settle before screenshot "+name, chromedp.Evaluate[bool](pageSettled, chromedp.EvalAwaitPromise))
	png := step(t, ctx, "screenshot "+name, chromedp.Action[[]byte](func(ctx context.Context, tg *chromedp.Target) ([]byte, error) {
		for {
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err == nil || !strings.Contains(err.Error(), "Unable to capture screenshot") {
				return png, err
			}
			t.Logf("screenshot %s: %v; asking again", name, err)
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w (last: %v)", ctx.Err(), err)
			case <-time.After(100 * time.Millisecond): // spacing the attempts, within the deadline
			}
		}
	}))
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}

// TestConsoleInChromium drives the console in a real headless Chromium:
// sign in as an approver, see the pending approval with its request,
// worker, envelope and blast radius, approve it with a comment; the tenant
// re-submits the run; an admin signs in and finds the receipt by its
// correlation id with its chain status; the workers page shows envelopes.
func TestConsoleInChromium(t *testing.T) {
	ctx := browser(t)
	dir := artifacts(t)
	h, base := approvalsHall(t)
	approver := approverToken(t, h, "")
	id := holdRun(t, base, "hold-console-1")
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		step(t, ctx, what, chromedp.Steps(steps...))
	}
	text := func(id string) string { return textOf(t, ctx, chromedp.ID(id), "#"+id) }
	do("open the sign-in page",
		chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.ID("token")))
	screenshot(t, ctx, dir, "1-signin")

	do("sign in as the approver",
		chromedp.SendKeys(chromedp.ID("token"), approver),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("approval-"+id)))
	got := text("approval-" + id)
	for _, want := range []string{"hold-console-1", "org.test.noop", "wrk.test.noop", "a human looks at every hold- request",
		`"network_egress"`, `"reversibility": "reversible"`, "org.acme", "sha256:"} {
		if !strings.Contains(got, want) {
			t.Errorf("the pending approval does not show %q:\n%s", want, got)
		}
	}
	if n := step(t, ctx, "count inline scripts", chromedp.Evaluate[int](`document.querySelectorAll("script:not([src])").length`)); n != 0 {
		t.Errorf("%d inline scripts", n)
	}
	screenshot(t, ctx, dir, "2-approvals-pending")

	do("approve with a comment",
		chromedp.SendKeys(chromedp.ID("comment-"+id), "checked in the browser"),
		chromedp.Click(chromedp.ID("approve-"+id)),
		chromedp.WaitVisible(chromedp.ID("notice")))
	if got := text("notice"); !strings.Contains(got, id+" approved") {
		t.Fatalf("notice after approving: %q", got)
	}
	do("the approval is answered", chromedp.WaitVisible(chromedp.ID("no-pending")))
	if got := text("recent-" + id); !strings.Contains(got, "approved") || !strings.Contains(got, "checked in the browser") {
		t.Fatalf("recent row: %q", got)
	}
	screenshot(t, ctx, dir, "3-approvals-answered")

	// The tenant re-submits the approved request.
	resubmit := runBody(input("cap.test.noop", "hold-console-1"), "x")
	resubmit["approval_id"] = id
	r := post(t, base, "/wcp/run", fx.acme, resubmit)
	if r.status != 200 || r.body["ran"] != true {
		t.Fatalf("re-submitted run: %v", r)
	}
	receiptID := r.body["receipt_id"].(string)

	do("an approver does not read receipts",
		chromedp.Navigate(base+"/console/receipts"),
		chromedp.WaitVisible(chromedp.ID("error")))
	do("sign out",
		chromedp.Click(chromedp.ID("signout")),
		chromedp.WaitVisible(chromedp.ID("token")))
	do("sign in as admin and search the receipt",
		chromedp.SendKeys(chromedp.ID("token"), fx.admin),
		chromedp.Click(chromedp.ID("signin")),
		chromedp.WaitVisible(chromedp.ID("recent")),
		chromedp.Navigate(base+"/console/receipts"),
		chromedp.WaitVisible(chromedp.ID("correlation_id")),
		chromedp.SendKeys(chromedp.ID("correlation_id"), "hold-console-1"),
		chromedp.Click(chromedp.ID("search")),
		// The search's answer (the unfiltered page already lists the
		// receipt: waiting for its row alone raced the navigation).
		chromedp.WaitVisible(chromedp.CSS(`#correlation_id[value="hold-console-1"]`)),
		chromedp.WaitVisible(chromedp.ID("receipt-"+receiptID)))
	got = text("receipt-" + receiptID)
	for _, want := range []string{"org.test.noop", "hold-console-1", "hash ok", "signature ok"} {
		if !strings.Contains(got, want) {
			t.Errorf("the receipt row does not show %q: %s", want, got)
		}
	}
	screenshot(t, ctx, dir, "4-receipts")

	do("workers and their envelopes",
		chromedp.Click(chromedp.CSS(`a[href="/console/workers"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[id="worker-org.test.noop"]`)))
	if got := textOf(t, ctx, chromedp.CSS(`[id="worker-org.test.noop"]`), "worker card"); !strings.Contains(got, "cap.test.noop") || !strings.Contains(got, `"filesystem_writes"`) {
		t.Errorf("worker card: %s", got)
	}
	screenshot(t, ctx, dir, "5-workers")
	for _, name := range []string{"1-signin", "2-approvals-pending", "3-approvals-answered", "4-receipts", "5-workers"} {
		if fi, err := os.Stat(filepath.Join(dir, name+".png")); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleClient is a Go HTTP client with a cookie jar that does not follow
// redirects.
func consoleClient(t *testing.T, base string, tlsServer *httptest.Server) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if tlsServer != nil {
		c.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tlsServer.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}}
	}
	return c
}

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// signIn signs c in with token and returns the session's CSRF token.
func signIn(t *testing.T, c *http.Client, base, token string) (*http.Response, string) {
	t.Helper()
	_, page := fetch(t, c, "GET", base+"/console/signin", nil)
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field on the sign-in page:\n%s", page)
	}
	res, _ := fetch(t, c, "POST", base+"/console/signin", url.Values{"csrf": {m[1]}, "token": {token}})
	if res.StatusCode != http.StatusSeeOther {
		return res, ""
	}
	_, page = fetch(t, c, "GET", base+"/console/approvals", nil)
	m = csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF field on the approvals page:\n%s", page)
	}
	return res, m[1]
}

// TestConsoleSecurity: the session cookie's attributes (Secure over TLS
// only), the Content-Security-Policy, CSRF refusals with and without a
// session, tenant tokens refused, a revoked token's session ended.
func TestConsoleSecurity(t *testing.T) {
	h, base := approvalsHall(t)
	approver := approverToken(t, h, "")
	id := holdRun(t, base, "hold-csrf-1")

	c := consoleClient(t, base, nil)
	res, csrf := signIn(t, c, base, approver)
	cookie := strings.Join(res.Header.Values("Set-Cookie"), "\n")
	for _, want := range []string{"hall_console=", "HttpOnly", "SameSite=Strict", "Path=/console"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie lacks %s: %s", want, cookie)
		}
	}
	if strings.Contains(cookie, "Secure") {
		t.Errorf("Secure cookie over plain HTTP (the browser would drop it): %s", cookie)
	}
	res, page := fetch(t, c, "GET", base+"/console/approvals", nil)
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}
	if strings.Contains(page, "<script>") || strings.Contains(page, " style=") || strings.Contains(page, "onclick") {
		t.Errorf("inline script or style in the page")
	}

	// CSRF: a POST with the session cookie but no or a wrong token is
	// refused, and the approval stays pending.
	for _, form := range []url.Values{{"comment": {"forged"}}, {"csrf": {"wrong"}, "comment": {"forged"}}} {
		res, body := fetch(t, c, "POST", base+"/console/approvals/"+id+"/approve", form)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Fatalf("POST without the CSRF token: %d %s", res.StatusCode, body)
		}
	}
	if a, err := h.Approval(context.Background(), id); err != nil || a.State != "pending" {
		t.Fatalf("after forged POSTs: %+v %v", a, err)
	}
	// Sign-in without the pre-session CSRF token is refused too.
	c2 := consoleClient(t, base, nil)
	if res, _ := fetch(t, c2, "POST", base+"/console/signin", url.Values{"token": {approver}}); res.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in without CSRF: %d", res.StatusCode)
	}
	// With it, the answer goes through.
	res, _ = fetch(t, c, "POST", base+"/console/approvals/"+id+"/deny", url.Values{"csrf": {csrf}, "comment": {"no"}})
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "state=denied") {
		t.Fatalf("deny: %d %s", res.StatusCode, loc)
	}

	// Tenant tokens do not sign in; a revoked token's session ends.
	if res, _ := signIn(t, consoleClient(t, base, nil), base, fx.acme); res.StatusCode != http.StatusForbidden {
		t.Fatalf("tenant sign-in: %d", res.StatusCode)
	}
	secret, meta, err := fx.hall.IssueToken(context.Background(), fx.tokens, approverScope(), "to revoke", "local:test")
	if err != nil {
		t.Fatal(err)
	}
	c3 := consoleClient(t, base, nil)
	signIn(t, c3, base, secret)
	if res, _ := fetch(t, c3, "GET", base+"/console/workers", nil); res.StatusCode != 200 {
		t.Fatalf("workers page: %d", res.StatusCode)
	}
	if _, err := fx.tokens.Revoke(context.Background(), meta.ID); err != nil {
		t.Fatal(err)
	}
	if res, _ := fetch(t, c3, "GET", base+"/console/workers", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoked token's session: %d", res.StatusCode)
	}

	// Over TLS the cookie is Secure.
	ts := httptest.NewTLSServer(server.New(h, server.Config{Tokens: fx.tokens}))
	t.Cleanup(ts.Close)
	res, _ = signIn(t, consoleClient(t, ts.URL, ts), ts.URL, approver)
	if cookie := strings.Join(res.Header.Values("Set-Cookie"), "\n"); !strings.Contains(cookie, "Secure") {
		t.Errorf("session cookie over TLS is not Secure: %s", cookie)
	}
}

func approverScope() auth.Scope { return auth.ApproverScope("") }
