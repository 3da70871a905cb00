package server

import (
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wcphall/hall/host"
	hallmcp "github.com/wcphall/hall/host/mcp"
)

// Defaults of Config's zero fields.
const (
	// DefaultMaxBody bounds JSON request bodies. A dispatch payload travels
	// inside one, so it is the largest payload the API accepts (before the
	// worker's own input limit).
	DefaultMaxBody = 8 << 20
	// DefaultMaxUpload bounds module uploads (PUT /artifacts, multipart
	// POST /enroll).
	DefaultMaxUpload = 64 << 20
)

// DefaultMaxConcurrent is the Hall's number of dispatch slots when
// host.Options.MaxConcurrent is zero: 16 per CPU (host.DefaultMaxConcurrent).
func DefaultMaxConcurrent() int { return host.DefaultMaxConcurrent() }

// Config configures the HTTP API.
type Config struct {
	// Tokens authenticates callers (host.OpenLocalTokens, or a Stores'
	// Tokens). Without it every authenticated endpoint answers 401.
	Tokens host.TokenStore
	// MaxBody bounds JSON request bodies (default DefaultMaxBody).
	MaxBody int64
	// MaxUpload bounds module uploads (default DefaultMaxUpload).
	MaxUpload int64
	// MaxConcurrent, when positive, is an extra bound of this server's own
	// on its dispatches in flight (POST /wcp/run and MCP tool calls),
	// Hall-wide and refused at once beyond it. Zero (the default): only the
	// Hall's dispatch slots bound them, admitted fairly between tenants
	// (host.Options.MaxConcurrent, TenantShare; `hall serve
	// --max-concurrent` sets those).
	MaxConcurrent int
	// MaxConcurrentRoutes bounds decisions in flight on /wcp/route (default
	// 4 × the dispatch bound: a decision is cheaper than a dispatch).
	MaxConcurrentRoutes int
	// Logger receives one line per request and the server's errors
	// (default: discarded).
	Logger *slog.Logger
	// Version is reported by GET /health.
	Version string
	// Quotas bound the sessions and sign-in attempts callers create
	// (zero fields: the defaults of Quotas).
	Quotas Quotas
	// CORSOrigins are browser origins allowed to call the API across
	// origins, besides hall.json's http.cors_origins (each checked by
	// host.CheckCORSOrigin; "*" for any, never with credentials). None
	// by default (cors.go).
	CORSOrigins []string
}

// Server is the Hall API's http.Handler.
type Server struct {
	h   *host.Hall
	cfg Config
	log *slog.Logger
	// sem is Config.MaxConcurrent's bound, nil without one.
	sem chan struct{}
	// routeSem bounds decisions in flight (POST /wcp/route).
	routeSem chan struct{}
	metrics  *metrics
	mux      chi.Router
}

// New returns the Hall API over h. The endpoints are listed in
// docs/HTTP.md.
func New(h *host.Hall, cfg Config) http.Handler {
	// The token rows approvals and admin actions are checked against
	// are those of the store that authenticates (docs/EVIDENCE.md "Tokens").
	h.UseTokens(cfg.Tokens)
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.MaxConcurrent < 0 {
		cfg.MaxConcurrent = 0
	}
	if cfg.MaxConcurrentRoutes <= 0 {
		cfg.MaxConcurrentRoutes = 4 * DefaultMaxConcurrent()
		if cfg.MaxConcurrent > 0 {
			cfg.MaxConcurrentRoutes = 4 * cfg.MaxConcurrent
		} else if h != nil {
			cfg.MaxConcurrentRoutes = 4 * h.Admission().Slots
		}
	}
	s := &Server{h: h, cfg: cfg, log: cfg.Logger, routeSem: make(chan struct{}, cfg.MaxConcurrentRoutes)}
	if cfg.MaxConcurrent > 0 {
		s.sem = make(chan struct{}, cfg.MaxConcurrent)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.metrics = newMetrics(h.Online, func() int { return h.Registry().Len() }, h.Pools, h.Loads)
	s.metrics.reg.MustRegister(reloadCollector{h.Reloads})
	s.metrics.reg.MustRegister(snapshotCollector{h.SnapshotDigest})
	s.metrics.reg.MustRegister(approvalCollector{h})

	r := chi.NewRouter()
	if h != nil && h.TracerProvider() != nil {
		tp := h.TracerProvider()
		r.Use(traceRequests(tp)) // tracing.go
	}
	r.Use(s.observe)
	r.Use(s.cors)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errf(http.StatusNotFound, CodeNotFound, "no endpoint "+r.Method+" "+r.URL.EscapedPath()+" (see docs/HTTP.md)"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, errf(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.EscapedPath()))
	})

	r.Get("/", s.root)
	r.Get("/health", s.health)
	r.Get("/openapi.json", s.openAPI)
	r.Handle("/metrics", promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s.log}}))

	r.Group(func(r chi.Router) {
		r.Use(s.authenticate(adminToken))
		r.Post("/enroll", s.enroll)
		r.Put("/artifacts/{digest}", s.putArtifact)
		r.Post("/api/server/go-online", s.goOnline)
		r.Post("/api/server/go-offline", s.goOffline)
		r.Get("/admin/rules", s.getRules)
		r.Put("/admin/rules", s.putRules)
		r.Get("/admin/policy", s.getDocument(host.DocPolicy))
		r.Put("/admin/policy", s.putDocument(host.DocPolicy))
		r.Get("/admin/config", s.getDocument(host.DocConfig))
		r.Put("/admin/config", s.putDocument(host.DocConfig))
		r.Get("/admin/trust", s.getTrust)
		r.Put("/admin/trust", s.putTrust)
	})
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate(tenantToken))
		r.Post("/wcp/route", s.route)
		r.Post("/wcp/run", s.run)
		// MCP over Streamable HTTP (host/mcp, docs/MCP.md): the same tokens
		// and the same bounds on dispatches in flight as /wcp/run (the
		// Hall's fair slots are taken in host.Hall.Run).
		mcpHandler := hallmcp.Handler(h, hallmcp.Options{Logger: s.log, Version: cfg.Version, Admit: func() (func(), bool) {
			release, ok := s.admitOwn()
			if !ok {
				s.metrics.rejected.WithLabelValues("saturated").Inc()
			}
			return release, ok
		}}, hallmcp.HTTPOptions{MaxBody: cfg.MaxBody, Tenant: func(r *http.Request) string { return principal(r).Scope.Tenant },
			MaxSessionsPerPrincipal: cfg.Quotas.withDefaults().MCPSessionsPerToken, Principal: func(r *http.Request) string { return principal(r).ID }})
		r.Post("/mcp", mcpHandler.ServeHTTP)
		r.Get("/mcp", mcpHandler.ServeHTTP)
		r.Delete("/mcp", mcpHandler.ServeHTTP)
	})
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate(anyToken))
		r.Get("/wcp/health", s.wcpHealth)
		r.Get("/wcp/capabilities", s.capabilities)
		r.Get("/wcp/workers", s.workers)
		r.Get("/wcp/workers/{worker_id}", s.worker)
		// Human approvals (approvals.go): a tenant reads its own.
		r.Get("/wcp/approvals", s.approvalsList)
		r.Get("/wcp/approvals/{approval_id}", s.approvalGet)
	})
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate(auditToken))
		r.Get("/wcp/receipts", s.receipts)
		r.Get("/wcp/receipts/{receipt_id}", s.receipt)
	})
	// PyHall's Hall API (pyhall.go, docs/PYHALL.md).
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate(auditToken))
		r.Get("/status", s.pyStatus)
		r.Get("/dispatches", s.pyDispatches)
		r.Get("/dispatches/active", s.pyActive)
		r.Get("/alerts", s.pyAlerts)
		r.Post("/decisions/ingest", s.pyIngest)
	})
	r.With(s.authenticate(anyToken)).Get("/workers", s.pyWorkers)
	r.With(s.authenticate(anyToken)).Get("/wcp/registry/ban-list", s.pyRegistry)
	r.With(s.authenticate(anyToken)).Get("/wcp/registry/verify/{worker_id}", s.pyRegistry)
	r.Group(func(r chi.Router) {
		r.Use(s.authenticate(approverToken))
		r.Post("/wcp/approvals/{approval_id}/approve", s.approvalApprove)
		r.Post("/wcp/approvals/{approval_id}/deny", s.approvalDeny)
	})
	s.mountConsole(r)
	s.mux = r
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// slogPrinter adapts a slog.Logger to promhttp's Println logger.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Error("metrics: " + sprint(v...)) }
