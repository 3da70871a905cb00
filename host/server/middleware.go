package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/wcphall/hall/internal/auth"
)

// reqState is what the middleware and the handlers learn about a request,
// for the access log.
type reqState struct {
	id            string
	correlationID string
	token         *auth.Token
	errCode       string
}

type stateKey struct{}

func state(r *http.Request) *reqState {
	st, _ := r.Context().Value(stateKey{}).(*reqState)
	return st
}

func requestID(r *http.Request) string {
	if st := state(r); st != nil {
		return st.id
	}
	return ""
}

func principal(r *http.Request) *auth.Token {
	if st := state(r); st != nil {
		return st.token
	}
	return nil
}

// saneRequestID accepts a caller's X-Request-ID only when it cannot forge
// log lines or blow up headers.
func saneRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe assigns the request id, recovers panics into a JSON 500 and
// writes one structured access-log line per request.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		st := &reqState{id: r.Header.Get("X-Request-ID")}
		if !saneRequestID(st.id) {
			st.id = uuid.NewString()
		}
		w.Header().Set("X-Request-ID", st.id)
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("http: handler panicked", "request_id", st.id, "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, r, errf(http.StatusInternalServerError, CodeInternal, "internal error; the server logged it under request id "+st.id))
				}
			}
			route := chi.RouteContext(r.Context()).RoutePattern()
			if route == "" {
				route = "unmatched"
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			s.metrics.requests.WithLabelValues(route, methodLabel(r.Method), fmt.Sprint(status)).Inc()
			attrs := []slog.Attr{
				slog.String("request_id", st.id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", route),
				slog.Int("status", status),
				slog.Int64("bytes", sw.bytes),
				slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			}
			if st.correlationID != "" {
				attrs = append(attrs, slog.String("correlation_id", st.correlationID))
			}
			if st.token != nil {
				attrs = append(attrs, slog.String("token_id", st.token.ID), slog.String("scope", st.token.Scope.String()))
			}
			if st.errCode != "" {
				attrs = append(attrs, slog.String("error_code", st.errCode))
			}
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelError
			}
			s.log.LogAttrs(r.Context(), level, "http request", attrs...)
		}()
		next.ServeHTTP(sw, r)
	})
}

// need says which tokens an endpoint accepts.
type need int

const (
	anyToken need = iota
	adminToken
	tenantToken
	// auditToken: admin, or a tenant (reading its own); never an approver,
	// whose empty tenant must not pass a tenant filter.
	auditToken
	// approverToken: an approver or admin (answering approvals).
	approverToken
)

func (n need) String() string {
	switch n {
	case adminToken:
		return "an admin token"
	case tenantToken:
		return "a tenant token"
	case auditToken:
		return "an admin or tenant token"
	case approverToken:
		return "an approver or admin token"
	}
	return "a token"
}

// authenticate requires a bearer token of the given kind: none or an
// invalid one is 401, the wrong scope 403.
func (s *Server) authenticate(n need) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := r.Header.Get("Authorization")
			if h == "" {
				writeError(w, r, errf(http.StatusUnauthorized, CodeUnauthenticated, "this endpoint needs "+n.String()+": send Authorization: Bearer <token> (create one with hall tokens create)"))
				return
			}
			scheme, tok, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				writeError(w, r, errf(http.StatusUnauthorized, CodeUnauthenticated, "the Authorization header must be \"Bearer <token>\""))
				return
			}
			if s.cfg.Tokens == nil {
				writeError(w, r, errf(http.StatusUnauthorized, CodeUnauthenticated, "the server has no token store, so no token is valid"))
				return
			}
			t, err := s.cfg.Tokens.Authenticate(r.Context(), strings.TrimSpace(tok))
			if errors.Is(err, auth.ErrInvalidToken) {
				writeError(w, r, errf(http.StatusUnauthorized, CodeUnauthenticated, "the token is not valid (unknown, malformed or revoked)"))
				return
			}
			if err != nil {
				s.log.Error("http: token store failed", "request_id", requestID(r), "error", err)
				writeError(w, r, unavailableOr(err, errf(http.StatusInternalServerError, CodeInternal, "the token store could not be read")))
				return
			}
			state(r).token = &t
			switch {
			case n == adminToken && !t.Scope.Admin:
				writeError(w, r, errf(http.StatusForbidden, CodeForbidden, "this endpoint needs an admin token; token "+t.ID+" has scope "+t.Scope.String()))
				return
			case n == tenantToken && t.Scope.Admin:
				writeError(w, r, errf(http.StatusForbidden, CodeForbidden, "this endpoint needs a tenant token (the token determines tenant_id); token "+t.ID+" is an admin token"))
				return
			case (n == tenantToken || n == auditToken) && !t.Scope.Admin && !t.Scope.IsTenant():
				writeError(w, r, errf(http.StatusForbidden, CodeForbidden, "this endpoint needs "+n.String()+"; token "+t.ID+" has scope "+t.Scope.String()+", which acts as no tenant"))
				return
			case n == approverToken && !t.Scope.Admin && !t.Scope.Approver:
				writeError(w, r, errf(http.StatusForbidden, CodeForbidden, "this endpoint needs an approver or admin token (hall tokens create --approver); token "+t.ID+" has scope "+t.Scope.String()))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// mediaType returns the request's media type, lower-case, without
// parameters ("" when absent or unparsable).
func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return mt
}

func requireMedia(r *http.Request, types ...string) *apiError {
	mt := mediaType(r)
	for _, t := range types {
		if mt == t {
			return nil
		}
	}
	got := r.Header.Get("Content-Type")
	if got == "" {
		got = "none"
	}
	return errf(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, fmt.Sprintf("Content-Type must be %s (got %s)", strings.Join(types, " or "), got))
}

// readBody reads the whole body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge(limit)
		}
		return nil, errf(http.StatusBadRequest, CodeInvalidRequest, "reading the request body: "+err.Error())
	}
	return b, nil
}

func tooLarge(limit int64) *apiError {
	return errf(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, fmt.Sprintf("the request body exceeds this endpoint's limit of %d bytes", limit))
}
