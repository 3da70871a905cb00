package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/wcphall/hall/host"
	"github.com/wcphall/hall/host/wcp"
	"github.com/wcphall/hall/internal/approval"
	"github.com/wcphall/hall/internal/auth"
	"github.com/wcphall/hall/internal/ledger"
)

// The web console (docs/HTTP.md, "Console"): server-side pages for
// approvers and administrators under /console. No front-end build: the
// pages are html/template files and one CSS and one JS file, embedded.
//
// Security (each measure has a test in console_test.go):
//   - sign-in exchanges a token for a session cookie (HttpOnly,
//     SameSite=Strict, Secure when served over TLS, Path=/console); the
//     token is kept in the server's memory only and authenticated again on
//     every request, so a revoked token ends its sessions at once;
//   - every form carries a CSRF token (the session's, or before sign-in a
//     random value bound to a cookie) compared in constant time;
//   - a Content-Security-Policy allows scripts and styles from the console
//     itself only: no inline script, no inline style, no framing.

//go:embed console
var consoleFiles embed.FS

const (
	sessionCookie  = "hall_console"
	preCSRFCookie  = "hall_console_csrf"
	sessionTTL     = 8 * time.Hour
	consolePath    = "/console"
	consoleCSP     = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	consoleMaxBody = 64 << 10
)

// consoleTemplates parses the console's pages on first use: parsing them
// at package initialisation cost every hall process (~93 kB, 1,488
// allocations), most of which never serve the console.
var consoleTemplates = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"json": func(v any) string {
			b, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				return err.Error()
			}
			return string(b)
		},
		"rawjson": func(b json.RawMessage) string {
			var v any
			if len(b) == 0 || json.Unmarshal(b, &v) != nil {
				return string(b)
			}
			out, _ := json.MarshalIndent(v, "", "  ")
			return string(out)
		},
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format(time.RFC3339)
		},
	}).ParseFS(consoleFiles, "console/*.html"))
})

// session is a signed-in browser.
type session struct {
	token   string // the bearer token, authenticated again per request
	tokenID string // its id: the principal the session quotas count by
	csrf    string
	created time.Time
	expires time.Time
}

type console struct {
	s        *Server
	mu       sync.Mutex
	sessions map[string]*session
	static   http.Handler
	quotas   Quotas
	signins  *throttle
}

// mountConsole serves the console under /console.
func (s *Server) mountConsole(r chi.Router) {
	sub, err := fs.Sub(consoleFiles, "console/static")
	if err != nil {
		panic("server: console static files: " + err.Error())
	}
	q := s.cfg.Quotas.withDefaults()
	c := &console{s: s, sessions: map[string]*session{}, static: http.StripPrefix(consolePath+"/static/", http.FileServerFS(sub)),
		quotas: q, signins: newThrottle(q.SigninPerMinute)}
	r.Route(consolePath, func(r chi.Router) {
		r.Use(consoleHeaders)
		r.Get("/", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, consolePath+"/approvals", http.StatusSeeOther)
		})
		r.Get("/static/*", c.static.ServeHTTP)
		r.Get("/signin", c.signinPage)
		r.Post("/signin", c.signin)
		r.Group(func(r chi.Router) {
			r.Use(c.requireSession)
			r.Post("/signout", c.signout)
			r.Get("/approvals", c.approvalsPage)
			r.Post("/approvals/{approval_id}/{answer}", c.answer)
			r.Get("/receipts", c.receiptsPage)
			r.Get("/workers", c.workersPage)
		})
	})
}

// consoleHeaders sets the security headers of every console response.
func consoleHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

func randomToken() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("server: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func sameSecret(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: consolePath, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Scope   string
	TokenID string
	Admin   bool
	CSRF    string
	Notice  string
	Error   string
	Data    any
}

func (c *console) render(w http.ResponseWriter, status int, name string, p page) {
	var b strings.Builder
	if err := consoleTemplates().ExecuteTemplate(&b, name, p); err != nil {
		c.s.log.Error("console: rendering "+name, "error", err)
		http.Error(w, "the console could not render this page (see the server log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// signinPage shows the sign-in form with a fresh pre-session CSRF token.
func (c *console) signinPage(w http.ResponseWriter, r *http.Request) {
	c.renderSignin(w, r, http.StatusOK, "")
}

func (c *console) renderSignin(w http.ResponseWriter, r *http.Request, status int, msg string) {
	csrf := randomToken()
	setCookie(w, r, preCSRFCookie, csrf, 600)
	c.render(w, status, "signin.html", page{Title: "Sign in", CSRF: csrf, Error: msg})
}

// readForm parses a small urlencoded form.
func readForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, consoleMaxBody)
	if mediaType(r) != "application/x-www-form-urlencoded" {
		http.Error(w, "the console accepts its own forms only", http.StatusUnsupportedMediaType)
		return false
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "the form could not be read", http.StatusBadRequest)
		return false
	}
	return true
}

// signin turns a token into a session: admin and approver tokens only.
func (c *console) signin(w http.ResponseWriter, r *http.Request) {
	if ok, wait := c.signins.allow(sourceOf(r), time.Now()); !ok {
		c.s.log.Warn("console: sign-in throttled", "request_id", requestID(r), "source", sourceOf(r))
		w.Header().Set("Retry-After", retryAfter(wait))
		c.renderSignin(w, r, http.StatusTooManyRequests, consoleMessage(msgSigninThrottled))
		return
	}
	if !readForm(w, r) {
		return
	}
	ck, err := r.Cookie(preCSRFCookie)
	if err != nil || !sameSecret(ck.Value, r.PostForm.Get("csrf")) {
		c.s.log.Warn("console: sign-in without a valid CSRF token", "request_id", requestID(r))
		c.renderSignin(w, r, http.StatusForbidden, "The form expired or did not come from this console (CSRF check failed). Sign in again.")
		return
	}
	secret := strings.TrimSpace(r.PostForm.Get("token"))
	if c.s.cfg.Tokens == nil {
		c.renderSignin(w, r, http.StatusUnauthorized, "This server has no token store, so no token is valid.")
		return
	}
	tok, err := c.s.cfg.Tokens.Authenticate(r.Context(), secret)
	if err != nil {
		c.renderSignin(w, r, http.StatusUnauthorized, "That token is not valid (unknown, malformed or revoked).")
		return
	}
	if !tok.Scope.Admin && !tok.Scope.Approver {
		c.renderSignin(w, r, http.StatusForbidden, "The console is for approver and admin tokens; token "+tok.ID+" has scope "+tok.Scope.String()+".")
		return
	}
	id := randomToken()
	c.mu.Lock()
	now := time.Now()
	evicted := c.admitSession(id, &session{token: secret, tokenID: tok.ID, csrf: randomToken(), created: now, expires: now.Add(sessionTTL)}, now)
	c.mu.Unlock()
	setCookie(w, r, preCSRFCookie, "", -1)
	setCookie(w, r, sessionCookie, id, int(sessionTTL/time.Second))
	c.s.log.Info("console: signed in", "request_id", requestID(r), "token_id", tok.ID, "scope", tok.Scope.String(), "sessions_evicted", evicted)
	http.Redirect(w, r, consolePath+"/approvals", http.StatusSeeOther)
}

type signedIn struct {
	id  string
	s   *session
	tok auth.Token
}

// requireSession admits requests with a live session whose token is still
// valid; POSTs must carry the session's CSRF token.
func (c *console) requireSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ck, err := r.Cookie(sessionCookie)
		var s *session
		if err == nil {
			c.mu.Lock()
			s = c.sessions[ck.Value]
			if s != nil && time.Now().After(s.expires) {
				delete(c.sessions, ck.Value)
				s = nil
			}
			c.mu.Unlock()
		}
		if s == nil {
			c.toSignin(w, r)
			return
		}
		tok, err := c.s.cfg.Tokens.Authenticate(r.Context(), s.token)
		if err != nil {
			c.mu.Lock()
			delete(c.sessions, ck.Value)
			c.mu.Unlock()
			c.toSignin(w, r)
			return
		}
		if r.Method == http.MethodPost {
			if !readForm(w, r) {
				return
			}
			if !sameSecret(s.csrf, r.PostForm.Get("csrf")) {
				c.s.log.Warn("console: POST without a valid CSRF token", "request_id", requestID(r), "token_id", tok.ID, "path", r.URL.Path)
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.WriteHeader(http.StatusForbidden)
				_, _ = w.Write([]byte("CSRF check failed: this form did not come from the console (reload the page and try again)\n"))
				return
			}
		}
		state(r).token = &tok
		ctx := r.Context()
		next.ServeHTTP(w, r.WithContext(withSignedIn(ctx, &signedIn{id: ck.Value, s: s, tok: tok})))
	})
}

func (c *console) toSignin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "not signed in to the console", http.StatusUnauthorized)
		return
	}
	http.Redirect(w, r, consolePath+"/signin", http.StatusSeeOther)
}

func (c *console) page(r *http.Request, title, nav string) page {
	si := signedInOf(r.Context())
	return page{Title: title, Nav: nav, Scope: si.tok.Scope.String(), TokenID: si.tok.ID, Admin: si.tok.Scope.Admin, CSRF: si.s.csrf}
}

func (c *console) signout(w http.ResponseWriter, r *http.Request) {
	si := signedInOf(r.Context())
	c.mu.Lock()
	delete(c.sessions, si.id)
	c.mu.Unlock()
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, consolePath+"/signin", http.StatusSeeOther)
}

// approvalView is an approval as the console shows it.
type approvalView struct {
	approval.Approval
	Record *wcp.Record
}

func (c *console) approvalsPage(w http.ResponseWriter, r *http.Request) {
	p := c.page(r, "Approvals", "approvals")
	q := r.URL.Query()
	if id, st := q.Get("done"), q.Get("state"); approval.ValidID(id) && (st == "approved" || st == "denied") {
		p.Notice = "Approval " + id + " " + st + "."
	}
	p.Error = consoleMessageFor(q)
	data, err := c.pending(r.Context(), q)
	if err != nil {
		c.s.log.Error("console: listing approvals", "error", err)
		p.Error = "The approvals could not be read (see the server log)."
	}
	recent, _ := c.s.h.Approvals(r.Context(), host.ApprovalFilter{Limit: 20})
	var done []approval.Approval
	for _, a := range recent {
		if a.State != approval.Pending {
			done = append(done, a)
		}
	}
	data.Recent = done
	p.Data = data
	c.render(w, http.StatusOK, "approvals.html", p)
}

// answer approves or denies from the console's form.
func (c *console) answer(w http.ResponseWriter, r *http.Request) {
	id, _ := pathParam(r, "approval_id")
	ans := chi.URLParam(r, "answer")
	if ans != "approve" && ans != "deny" {
		http.Error(w, "the answer is approve or deny", http.StatusNotFound)
		return
	}
	si := signedInOf(r.Context())
	if ans == "deny" && strings.TrimSpace(r.PostForm.Get("comment")) == "" {
		http.Redirect(w, r, consolePath+"/approvals?"+url.Values{"error": {msgCommentRequired}, "id": {id}}.Encode(), http.StatusSeeOther)
		return
	}
	a, err := c.s.h.DecideApproval(r.Context(), id, ans == "approve", Approver(&si.tok), r.PostForm.Get("comment"))
	if err != nil {
		code := msgAnswerFailed
		var ae *host.ApprovalError
		if errors.As(err, &ae) && consoleMessage(string(ae.Code)) != "" {
			code = string(ae.Code)
			c.s.log.Info("console: answer refused", "request_id", requestID(r), "approval_id", id, "code", ae.Code, "reason", ae.Msg)
		} else {
			c.s.log.Error("console: answering an approval", "approval_id", id, "error", err)
		}
		http.Redirect(w, r, consolePath+"/approvals?"+url.Values{"error": {code}, "id": {id}}.Encode(), http.StatusSeeOther)
		return
	}
	c.s.log.Info("hall: approval answered", "request_id", requestID(r), "approval_id", a.ID, "state", a.State, "token_id", si.tok.ID, "via", "console")
	http.Redirect(w, r, consolePath+"/approvals?done="+a.ID+"&state="+string(a.State), http.StatusSeeOther)
}

// receiptView is a receipt with its chain status.
type receiptView struct {
	ledger.Receipt
	HashOK, SignatureOK bool
	// Link is "linked" (its previous receipt is in the listing and its
	// hash is prev_receipt_hash), "broken", "first" or "" (not listed).
	Link string
}

func (c *console) receiptsPage(w http.ResponseWriter, r *http.Request) {
	p := c.page(r, "Receipts", "receipts")
	corr := strings.TrimSpace(r.URL.Query().Get("correlation_id"))
	data := map[string]any{"CorrelationID": corr}
	p.Data = data
	if !p.Admin {
		p.Error = "Receipts are a tenant's evidence: an admin token reads them (an approver token acts as no tenant)."
		c.render(w, http.StatusForbidden, "receipts.html", p)
		return
	}
	ev, err := c.s.h.Evidence()
	var rs []ledger.Receipt
	if err == nil {
		rs, err = ev.Receipts(r.Context(), ledger.Filter{CorrelationID: corr, Limit: 100})
	}
	if err != nil {
		c.s.log.Error("console: reading receipts", "error", err)
		p.Error = "The evidence ledger could not be read (see the server log)."
		c.render(w, http.StatusInternalServerError, "receipts.html", p)
		return
	}
	keys := c.keys(r)
	byHash := map[string]bool{}
	for _, rc := range rs {
		byHash[rc.TenantID+" "+rc.ReceiptHash] = true
	}
	views := make([]receiptView, len(rs))
	for i := range rs {
		rc := &rs[i]
		v := receiptView{Receipt: *rc}
		if h, err := rc.ComputeHash(); err == nil && h == rc.ReceiptHash {
			v.HashOK = true
		}
		if pub, ok := keys[rc.SigningKeyID]; ok {
			v.SignatureOK = ledger.VerifySignature(pub, rc)
		}
		switch {
		case rc.PrevReceiptHash == "":
			v.Link = "first"
		case byHash[rc.TenantID+" "+rc.PrevReceiptHash]:
			v.Link = "linked"
		}
		views[i] = v
	}
	data["Receipts"] = views
	// Decisions ingested from elsewhere (POST /decisions/ingest) have no
	// receipt: nothing ran here. They are listed apart, marked as such.
	ext, err := c.s.h.ExternalDecisions(r.Context(), "", true, 100)
	if err != nil {
		c.s.log.Error("console: reading ingested decisions", "error", err)
		p.Error = "The evidence ledger could not be read (see the server log)."
		c.render(w, http.StatusInternalServerError, "receipts.html", p)
		return
	}
	data["External"] = ext
	// ?tree=<receipt id>: the chain of dispatches it belongs to, from its
	// root (host.ReceiptTree), above the listing.
	if id := r.URL.Query().Get("tree"); id != "" {
		if _, perr := uuid.Parse(id); perr != nil || len(id) != 36 {
			p.Error = "tree: not a receipt id (a UUID)."
		} else if tree, err := host.ReceiptTree(r.Context(), ev, id); err == nil {
			data["Tree"] = tree
		} else if errors.Is(err, ledger.ErrNotFound) {
			p.Error = "tree: no receipt " + id + "."
		} else {
			c.s.log.Error("console: reading a receipt tree", "error", err)
			p.Error = "The evidence ledger could not be read (see the server log)."
		}
	}
	c.render(w, http.StatusOK, "receipts.html", p)
}

// InChain reports whether the receipt is part of a chain of dispatches
// (a hop, or a root that made hops): the console links its tree.
func (v receiptView) InChain() bool { return v.ParentDecisionID != "" || v.BlastScore != nil }

// keys are the ledger's public keys by id (empty when unavailable).
func (c *console) keys(r *http.Request) map[string]ed25519.PublicKey {
	ev, err := c.s.h.Evidence()
	if err != nil {
		return nil
	}
	set, err := ev.KeySet(r.Context())
	if err != nil {
		return nil
	}
	pub, _ := set.Public()
	return pub
}

type signedInKey struct{}

func withSignedIn(ctx context.Context, si *signedIn) context.Context {
	return context.WithValue(ctx, signedInKey{}, si)
}

func signedInOf(ctx context.Context) *signedIn {
	si, _ := ctx.Value(signedInKey{}).(*signedIn)
	return si
}

func (c *console) workersPage(w http.ResponseWriter, r *http.Request) {
	p := c.page(r, "Workers", "workers")
	recs := c.s.h.Registry().Records()
	sort.Slice(recs, func(i, j int) bool { return recs[i].WorkerID < recs[j].WorkerID })
	p.Data = recs
	c.render(w, http.StatusOK, "workers.html", p)
}
