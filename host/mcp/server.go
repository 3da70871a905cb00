package mcp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	mcpauth "github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/wcphall/hall/host"
)

// Options configure a Server.
type Options struct {
	// Config is the operator's MCP configuration. The zero value reads
	// mcp.json from the Hall's directory (LoadConfig); fields left empty
	// take DefaultConfig's.
	Config Config
	// Version is reported to clients as the server's version.
	Version string
	// Logger receives the server's operational log (default: discarded).
	// Nothing is ever written to standard output, which stdio uses.
	Logger *slog.Logger
	// Admit is the Hall's dispatch admission: it returns a release
	// function, or false when the Hall runs its maximum of dispatches and
	// the call is refused (HALL_SATURATED). The HTTP API passes the bound
	// it applies to POST /wcp/run. nil: a bound of 16 calls per CPU.
	Admit func() (release func(), ok bool)
}

// Server serves one Hall's capabilities as MCP tools. Its methods are
// safe for concurrent use.
type Server struct {
	h     *host.Hall
	cfg   Config
	log   *slog.Logger
	admit func() (func(), bool)
	srv   *sdk.Server
	// cfgErr is why the configuration is unusable (every call is refused).
	cfgErr error

	mu     sync.Mutex // serialises sync
	tools  atomic.Pointer[map[string]*tool]
	cancel func()
	// runners run the dispatches of tool calls (runner.go).
	runners *runners
}

// New returns a Server over h with the tools of h's current state; it
// follows h's changes (enrollments, rules, reloads) until Close.
func New(h *host.Hall, opts Options) *Server {
	s := &Server{h: h, cfg: opts.Config, log: opts.Logger, admit: opts.Admit, runners: newRunners(time.Minute)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.cfg.isZero() {
		// The operator's mcp.json; one that does not load refuses every
		// call (fail closed) with its error, rather than serving defaults
		// the operator meant to change.
		if s.cfg, s.cfgErr = LoadConfig(h.Options().Dir); s.cfgErr != nil {
			s.log.Error("mcp: configuration not loaded; every tool call is refused", "error", s.cfgErr.Error())
		}
	}
	s.cfg = s.cfg.withDefaults()
	if s.cfgErr == nil {
		s.cfgErr = s.cfg.Check()
	}
	if s.admit == nil {
		sem := make(chan struct{}, 16*runtime.GOMAXPROCS(0))
		s.admit = func() (func(), bool) {
			select {
			case sem <- struct{}{}:
				return func() { <-sem }, true
			default:
				return nil, false
			}
		}
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	s.srv = sdk.NewServer(&sdk.Implementation{Name: "hall", Title: "Hall: governed WCP capabilities", Version: version}, &sdk.ServerOptions{
		Logger:       s.log,
		Capabilities: &sdk.ServerCapabilities{Tools: &sdk.ToolCapabilities{ListChanged: true}},
		Instructions: "Each tool is a capability of a WCP Hall. Every call is decided by the Hall's routing rules " +
			"and policy, runs in a sandbox limited to the worker's declared privileges, and is recorded in a signed " +
			"evidence ledger. A denied call returns isError with the deny code and reason in the text and in _meta; " +
			"_meta also carries decision_id, correlation_id and receipt_id.",
	})
	empty := map[string]*tool{}
	s.tools.Store(&empty)
	s.sync()
	s.cancel = h.OnChange(s.sync)
	return s
}

// Close stops following the Hall's changes. Sessions end with their
// transports.
func (s *Server) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.runners.close()
}

// sync brings the tool list in step with the Hall: tools that are gone
// are removed, new or changed ones (re)added. The SDK tells connected
// clients with notifications/tools/list_changed.
func (s *Server) sync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := catalog(s.h, s.log.Warn)
	cur := *s.tools.Load()
	var gone []string
	for name := range cur {
		if next[name] == nil {
			gone = append(gone, name)
		}
	}
	if len(gone) > 0 {
		s.srv.RemoveTools(gone...)
	}
	for name, t := range next {
		if c := cur[name]; c != nil && c.key == t.key {
			next[name] = c
			continue
		}
		s.srv.AddTool(t.def, s.handler(name))
	}
	s.tools.Store(&next)
}

// Tools returns the names of the tools served now, for diagnostics.
func (s *Server) Tools() []string {
	m := *s.tools.Load()
	out := make([]string, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	return out
}

// ServeStdio serves one MCP session over r and w (the process's standard
// input and output for `hall mcp`) until the client closes it or ctx is
// done. Calls run as the configured tenant (Config.Tenant).
func (s *Server) ServeStdio(ctx context.Context, r io.ReadCloser, w io.WriteCloser) error {
	if s.cfg.Tenant == "" {
		return errors.New("no tenant for stdio sessions: give --tenant, set HALL_TENANT or \"tenant\" in " + ConfigFile)
	}
	var t sdk.Transport = &sdk.IOTransport{Reader: r, Writer: w}
	if s.h.TracerProvider() != nil {
		t = stdioIDs{t} // tracing.go: jsonrpc.request.id on tools/call spans
	}
	err := s.srv.Run(ctx, t)
	if errors.Is(err, io.EOF) || (err != nil && ctx.Err() != nil) {
		return nil
	}
	return err
}

// HTTPOptions configure the Streamable HTTP handler.
type HTTPOptions struct {
	// Tenant returns the tenant of an authenticated request: the Hall API's
	// authentication runs first and the handler takes the tenant from it.
	// "" answers 401. Required.
	Tenant func(*http.Request) string
	// MaxBody bounds a request body (default 4 MiB, the SDK's).
	MaxBody int64
	// SessionTimeout closes sessions idle this long (default 30 minutes).
	SessionTimeout time.Duration
	// MaxSessionsPerPrincipal bounds the sessions one principal holds
	// open: one more is refused 429 with code SESSION_QUOTA (0: no bound).
	MaxSessionsPerPrincipal int
	// Principal names who a request's sessions count against (the
	// bearer token's id); default: the tenant.
	Principal func(*http.Request) string
}

// Handler returns the MCP Streamable HTTP endpoint. Mount it behind the
// API's authentication.
//
// # Notes
//
//   - A session belongs to the tenant that opened it: a request with
//     another tenant's token is refused (403), so a session id is no
//     credential.
//   - DNS rebinding: on a loopback listener, a Host that is not loopback
//     is refused (403); a cross-origin browser request (Origin or
//     Sec-Fetch-Site not matching) is refused (403).
//   - Bodies above MaxBody are refused (413).
//   - With MaxSessionsPerPrincipal, a principal's session beyond it is
//     refused (429 SESSION_QUOTA) until one of its sessions ends.
func (s *Server) Handler(o HTTPOptions) http.Handler {
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 30 * time.Minute
	}
	streamable := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s.srv }, &sdk.StreamableHTTPOptions{
		Logger:              s.log,
		MaxRequestBodyBytes: o.MaxBody,
		SessionTimeout:      o.SessionTimeout,
	})
	verify := func(_ context.Context, _ string, r *http.Request) (*mcpauth.TokenInfo, error) {
		t := ""
		if o.Tenant != nil {
			t = o.Tenant(r)
		}
		if t == "" {
			return nil, mcpauth.ErrInvalidToken
		}
		return &mcpauth.TokenInfo{UserID: t}, nil
	}
	limit := o.MaxBody
	if limit == 0 {
		limit = sdk.DefaultMaxRequestBodyBytes
	}
	h := mcpauth.RequireBearerToken(verify, &mcpauth.RequireBearerTokenOptions{AllowMissingExpiration: true})(wholeAnswers(streamable, limit, s.h.TracerProvider() != nil))
	if o.MaxSessionsPerPrincipal > 0 {
		p := o.Principal
		if p == nil {
			p = o.Tenant
		}
		if p == nil {
			p = func(*http.Request) string { return "" }
		}
		q := &sessionQuota{max: o.MaxSessionsPerPrincipal, principal: p, live: s.liveSessions, log: s.log, open: map[string]map[string]bool{}, opening: map[string]int{}}
		h = q.limit(h)
	}
	return http.NewCrossOriginProtection().Handler(h)
}

// wholeAnswers lets the SDK answer a POST that asks for no progress in one
// piece. The SDK answers every request as an SSE stream and flushes each
// event as it writes it, so that notifications about a call (progress)
// reach the client while the call runs. A request without a progress token
// has nothing to stream before its response: flushing then only costs a
// write of the headers and the event, then one of the chunked encoding's
// end, where net/http sends a short answer in a single write with a
// Content-Length, as POST /wcp/run's. The answer is the same SSE stream,
// so clients see no difference.
//
// A request whose body contains "progressToken" anywhere (even inside the
// arguments) is flushed as before; GET (the standalone stream) and DELETE
// are untouched. The body is read here, within limit (what the SDK allows;
// negative: no limit), and handed on as read; a body that cannot be read
// is handed on as its error, for the SDK to answer (413 over the limit).
//
// The SDK offers per-session JSON answers (StreamableHTTPOptions.
// JSONResponse), not per-request ones: with it, a call's progress
// notifications go to the standalone stream instead of the call's, which
// a client need not open.
//
// When the Hall traces, the JSON-RPC id of a tools/call (read from the
// body it holds anyway) and the HTTP request's span reach the call's span
// through markTransport (tracing.go).
func wholeAnswers(next http.Handler, limit int64, traced bool) http.Handler {
	progressToken := []byte(`"progressToken"`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		unmark(r) // tracing.go: the Hall's own headers come from the Hall only
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		body := io.Reader(r.Body)
		if limit > 0 {
			body = http.MaxBytesReader(w, r.Body, limit)
		}
		data, err := io.ReadAll(body)
		if err != nil {
			r.Body = failedBody{err}
			next.ServeHTTP(w, r)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		if traced {
			markTransport(r, data)
		}
		if bytes.Contains(data, progressToken) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(unflushed{w}, r)
	})
}

// unflushed is a ResponseWriter whose flushes do nothing: net/http sends
// what was written when the handler returns.
type unflushed struct{ http.ResponseWriter }

func (unflushed) Flush()            {}
func (unflushed) FlushError() error { return nil }

// failedBody is a request body that could not be read: reading it again
// returns the same error.
type failedBody struct{ err error }

func (b failedBody) Read([]byte) (int, error) { return 0, b.err }
func (failedBody) Close() error               { return nil }

// Handler is the MCP endpoint of h for an HTTP API: a Server built on the
// first request (so that an API that never serves MCP follows no changes),
// and its Handler(ho).
func Handler(h *host.Hall, opts Options, ho HTTPOptions) http.Handler {
	handler := sync.OnceValue(func() http.Handler { return New(h, opts).Handler(ho) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler().ServeHTTP(w, r) })
}
